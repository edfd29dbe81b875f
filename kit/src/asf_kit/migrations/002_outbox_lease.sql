-- Events handed to the relay of the process that wrote them, in memory, right after the
-- commit (asf_kit.outbox): the row carries a lease, and until it runs out the polling relay
-- (of any replica) leaves the row alone, so the event is not published twice. A row whose
-- lease ran out unpublished (the process died between commit and publish, the broker
-- refused) is the poll's again. Rows written without a relay in the process (a CLI command,
-- a sweep on its own transaction) have no lease and wake the relay by NOTIFY as before.
ALTER TABLE outbox ADD COLUMN lease_until timestamptz;

DROP TRIGGER outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH ROW WHEN (NEW.lease_until IS NULL) EXECUTE FUNCTION outbox_notify();
