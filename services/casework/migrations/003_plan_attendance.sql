-- The individual plan (genomförandeplan): one per case. The head row holds what the rules
-- and the review sweep need; each version's goals and activities are sealed with the
-- participant's data key in plan_versions (nulled on erasure, unreadable once the key is gone).
CREATE TABLE plans (
    id                   uuid PRIMARY KEY,
    participant_id       uuid NOT NULL UNIQUE REFERENCES participants (id),
    version              integer NOT NULL CHECK (version > 0),
    next_review_date     date,
    participant_involved boolean NOT NULL,
    created_at           timestamptz NOT NULL,
    created_by           text NOT NULL,
    updated_at           timestamptz NOT NULL,
    updated_by           text NOT NULL
);
CREATE INDEX plans_next_review ON plans (next_review_date, id) WHERE next_review_date IS NOT NULL;

CREATE TABLE plan_versions (
    plan_id              uuid NOT NULL REFERENCES plans (id),
    version              integer NOT NULL,
    change               text NOT NULL CHECK (change IN ('written', 'reviewed')),
    sealed               bytea,
    next_review_date     date,
    participant_involved boolean NOT NULL,
    at                   timestamptz NOT NULL,
    by                   text NOT NULL,
    PRIMARY KEY (plan_id, version)
);

-- Each review held: its date and outcome stay (pseudonymous); the comment is sealed.
CREATE TABLE plan_reviews (
    id               uuid PRIMARY KEY,
    plan_id          uuid NOT NULL REFERENCES plans (id),
    held_on          date NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('continue', 'revise', 'end')),
    sealed           bytea,
    next_review_date date,
    plan_version     integer NOT NULL,
    recorded_by      text NOT NULL,
    recorded_at      timestamptz NOT NULL
);
CREATE INDEX plan_reviews_by_plan ON plan_reviews (plan_id, recorded_at);

-- Each review date announced with casework.plan.review_due.v1. The primary key is what
-- makes it once per date, whichever replica's sweep gets there first.
CREATE TABLE plan_review_notices (
    plan_id      uuid NOT NULL REFERENCES plans (id),
    review_date  date NOT NULL,
    plan_version integer NOT NULL,
    announced_at timestamptz NOT NULL,
    PRIMARY KEY (plan_id, review_date)
);

-- Attendance reported by the host company, per placement and day (hours, no names).
CREATE TABLE attendance (
    placement_id   uuid NOT NULL REFERENCES placements (id),
    day            date NOT NULL,
    hours_present  numeric(4, 2) NOT NULL CHECK (hours_present BETWEEN 0 AND 24),
    absence_reason text CHECK (absence_reason IN ('sick', 'leave', 'unexcused', 'other')),
    reported_by    text NOT NULL,
    reported_at    timestamptz NOT NULL,
    version        integer NOT NULL,
    PRIMARY KEY (placement_id, day)
);
CREATE INDEX placements_by_company ON placements (company_id, start);

-- What a municipality pays per day or hour present, per kind of placement, from a date.
CREATE TABLE rates (
    id                uuid PRIMARY KEY,
    municipality_code text NOT NULL,
    kind              text NOT NULL,
    unit              text NOT NULL CHECK (unit IN ('day', 'hour')),
    amount_sek        numeric(10, 2) NOT NULL CHECK (amount_sek > 0),
    valid_from        date NOT NULL,
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL,
    UNIQUE (municipality_code, kind, valid_from)
);

-- Monthly statements per company, municipality and month. Immutable: a correction is a new
-- row that supersedes the old one. One original per company, municipality and month (the
-- guarantee behind closing a month exactly once across replicas), one correction per
-- statement (a chain).
CREATE TABLE statements (
    id                uuid PRIMARY KEY,
    company_id        uuid NOT NULL,
    company_name      text,
    municipality_code text NOT NULL,
    month             text NOT NULL CHECK (month ~ '^\d{4}-(0[1-9]|1[0-2])$'),
    kind              text NOT NULL CHECK (kind IN ('original', 'correction')),
    supersedes        uuid UNIQUE REFERENCES statements (id),
    reason            text,
    issued_at         timestamptz NOT NULL,
    issued_by         text NOT NULL,
    lines             jsonb NOT NULL,
    totals            jsonb NOT NULL,
    CHECK ((kind = 'original') = (supersedes IS NULL))
);
CREATE UNIQUE INDEX statements_one_original ON statements (company_id, municipality_code, month)
    WHERE kind = 'original';
CREATE INDEX statements_by_company ON statements (company_id, issued_at DESC, id);
CREATE INDEX statements_by_municipality ON statements (municipality_code, issued_at DESC, id);

CREATE FUNCTION statements_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'statements are immutable: issue a correction instead';
END;
$$;
CREATE TRIGGER statements_immutable BEFORE UPDATE OR DELETE ON statements
    FOR EACH ROW EXECUTE FUNCTION statements_are_immutable();
