-- Review after verification, verification expiry, who reads what, the public register and
-- the handbook. Columns that lists filter on, copied out of the company document.
ALTER TABLE companies
    ADD COLUMN needs_review               boolean NOT NULL DEFAULT false,
    ADD COLUMN verification_level         text NOT NULL DEFAULT 'self_declared',
    ADD COLUMN verified_at                timestamptz,
    ADD COLUMN valid_until                date,
    ADD COLUMN reserved_contract_eligible boolean NOT NULL DEFAULT false,
    ADD COLUMN registered_by              text;

UPDATE companies SET
    needs_review = coalesce((document->>'needs_review')::boolean, false),
    verification_level = document->'verification'->>'level',
    verified_at = (document->'verification'->>'at')::timestamptz,
    valid_until = (document->'verification'->>'valid_until')::date,
    reserved_contract_eligible = (document->>'reserved_contract_eligible')::boolean,
    registered_by = document->>'registered_by';

-- The officers' queue, and the daily expiry sweep.
CREATE INDEX companies_needing_review ON companies (name, id) WHERE needs_review;
CREATE INDEX companies_verified_until ON companies (valid_until, id)
    WHERE status = 'active' AND verification_level <> 'self_declared';
CREATE INDEX companies_registered_by ON companies (registered_by);
-- The open-data export reads the active register in id order, a batch at a time.
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

-- Learning examples: submitted → published | declined.
ALTER TABLE learning_examples
    ADD COLUMN status              text NOT NULL DEFAULT 'submitted'
        CHECK (status IN ('submitted', 'published', 'declined')),
    ADD COLUMN version             integer NOT NULL DEFAULT 1,
    ADD COLUMN county_code         text,
    ADD COLUMN title               text,
    ADD COLUMN collaboration_types text[],
    ADD COLUMN published_at        timestamptz;

UPDATE learning_examples SET
    county_code = left(municipality_code, 2),  -- a municipality code starts with its county's
    title = document->>'title',
    collaboration_types = ARRAY(SELECT jsonb_array_elements_text(document->'collaboration_types'));

ALTER TABLE learning_examples
    ALTER COLUMN county_code SET NOT NULL,
    ALTER COLUMN title SET NOT NULL,
    ALTER COLUMN collaboration_types SET NOT NULL;

CREATE INDEX learning_examples_by_status ON learning_examples (status, created_at, id);
CREATE INDEX learning_examples_published ON learning_examples (published_at DESC, id DESC)
    WHERE status = 'published';

-- Requests to the public register per client address and time window, shared by every
-- replica. Unlogged: counters are worth losing in a crash rather than a WAL write per request.
CREATE UNLOGGED TABLE public_rate_limits (
    client       text NOT NULL,
    window_start timestamptz NOT NULL,
    hits         integer NOT NULL,
    PRIMARY KEY (client, window_start)
);
