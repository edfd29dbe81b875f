-- Review after verification, verification expiry, who reads what, the public register and
-- the handbook.
--
-- The columns lists filter on are copied out of the stored document by a trigger, so they
-- can never disagree with it, and a previous release still running during a rolling deploy
-- (which writes only the document) keeps them right too.
ALTER TABLE companies
    ADD COLUMN needs_review               boolean NOT NULL DEFAULT false,
    ADD COLUMN verification_level         text NOT NULL DEFAULT 'self_declared',
    ADD COLUMN verified_at                timestamptz,
    ADD COLUMN valid_until                date,
    ADD COLUMN reserved_contract_eligible boolean NOT NULL DEFAULT false,
    ADD COLUMN registered_by              text;

CREATE FUNCTION companies_from_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.needs_review := coalesce((NEW.document->>'needs_review')::boolean, false);
    NEW.verification_level := coalesce(NEW.document->'verification'->>'level', 'self_declared');
    NEW.verified_at := (NEW.document->'verification'->>'at')::timestamptz;
    NEW.valid_until := (NEW.document->'verification'->>'valid_until')::date;
    NEW.reserved_contract_eligible :=
        coalesce((NEW.document->>'reserved_contract_eligible')::boolean, false);
    NEW.registered_by := NEW.document->>'registered_by';
    RETURN NEW;
END $$;
CREATE TRIGGER companies_from_document BEFORE INSERT OR UPDATE OF document ON companies
    FOR EACH ROW EXECUTE FUNCTION companies_from_document();
UPDATE companies SET document = document;

-- The officers' queue, the daily expiry sweep, a representative's own companies, and the
-- open-data export (the active register in id order, a batch at a time).
CREATE INDEX companies_needing_review ON companies (name, id) WHERE needs_review;
CREATE INDEX companies_verified_until ON companies (valid_until, id)
    WHERE status = 'active' AND verification_level <> 'self_declared';
CREATE INDEX companies_registered_by ON companies (registered_by);
CREATE INDEX companies_active_by_id ON companies (id) WHERE status = 'active';

-- Each expiry warning and each expiry, once per company and verification decision, whichever
-- replica's sweep gets there first: the key is what makes it once.
CREATE TABLE verification_notices (
    company_id  uuid NOT NULL REFERENCES companies (id),
    decided_at  timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('expiring', 'expired')),
    valid_until date NOT NULL,
    sent_at     timestamptz NOT NULL,
    PRIMARY KEY (company_id, decided_at, kind)
);

-- Learning examples: submitted → published | declined; the handbook's filters.
ALTER TABLE learning_examples
    ADD COLUMN status              text NOT NULL DEFAULT 'submitted'
        CHECK (status IN ('submitted', 'published', 'declined')),
    ADD COLUMN version             integer NOT NULL DEFAULT 1,
    ADD COLUMN county_code         text,
    ADD COLUMN title               text,
    ADD COLUMN collaboration_types text[],
    ADD COLUMN published_at        timestamptz;

CREATE FUNCTION learning_examples_from_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.status := coalesce(NEW.document->>'status', 'submitted');
    NEW.version := coalesce((NEW.document->>'version')::integer, 1);
    NEW.county_code := left(NEW.municipality_code, 2);  -- a municipality code starts with it
    NEW.title := NEW.document->>'title';
    NEW.collaboration_types :=
        ARRAY(SELECT jsonb_array_elements_text(NEW.document->'collaboration_types'));
    NEW.published_at := CASE WHEN NEW.status = 'published'
                             THEN (NEW.document->'publication'->>'at')::timestamptz END;
    RETURN NEW;
END $$;
CREATE TRIGGER learning_examples_from_document
    BEFORE INSERT OR UPDATE OF document ON learning_examples
    FOR EACH ROW EXECUTE FUNCTION learning_examples_from_document();
UPDATE learning_examples SET document = document;

ALTER TABLE learning_examples
    ALTER COLUMN county_code SET NOT NULL,
    ALTER COLUMN title SET NOT NULL,
    ALTER COLUMN collaboration_types SET NOT NULL;

CREATE INDEX learning_examples_by_status ON learning_examples (status, created_at, id);
CREATE INDEX learning_examples_published ON learning_examples (published_at DESC, id DESC)
    WHERE status = 'published';

-- How many changes the register has seen: the open-data files' ETag. Bumped once per
-- statement that changes companies, in its transaction, so it moves exactly when a change
-- commits (company writes are rare: people registering, officers deciding).
CREATE TABLE register_state (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    changes  bigint NOT NULL
);
INSERT INTO register_state (changes) SELECT coalesce(sum(version), 0) FROM companies;
CREATE FUNCTION register_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE register_state SET changes = changes + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER register_changed AFTER INSERT OR UPDATE OR DELETE ON companies
    FOR EACH STATEMENT EXECUTE FUNCTION register_changed();

-- Requests to the public register per client address and time window, shared by every
-- replica. Unlogged: counters are worth losing in a crash rather than a WAL write per request.
CREATE UNLOGGED TABLE public_rate_limits (
    client       text NOT NULL,
    window_start timestamptz NOT NULL,
    hits         integer NOT NULL,
    PRIMARY KEY (client, window_start)
);
