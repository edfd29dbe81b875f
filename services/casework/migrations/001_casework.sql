-- The company read model: what casework needs to know about companies, built from
-- registry events and kept at the newest aggregate_version seen.
CREATE TABLE companies (
    id                uuid PRIMARY KEY,
    name              text NOT NULL,
    municipality_code text NOT NULL,
    status            text NOT NULL,
    training_places   integer NOT NULL,
    version           integer NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- One participant, one case. Personal data lives only in `personal` (AES-GCM under the
-- participant's data key) and `identity_hash` (HMAC); both are nulled on erasure.
CREATE TABLE participants (
    id                uuid PRIMARY KEY,
    municipality_code text NOT NULL,
    referral_source   text NOT NULL,
    assigned_to       text NOT NULL,
    stage             text NOT NULL CHECK (stage IN
                        ('referred', 'assessment', 'in_training', 'employed', 'closed')),
    exit_reason       text,
    referred_at       timestamptz NOT NULL,
    closed_at         timestamptz,
    erased_at         timestamptz,
    personal          bytea,
    identity_hash     bytea,
    key_id            text,
    created_by        text NOT NULL,
    version           integer NOT NULL,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX participants_scope ON participants (municipality_code, referred_at, id);
CREATE INDEX participants_identity ON participants (identity_hash) WHERE identity_hash IS NOT NULL;
-- One open case per person and municipality; a closed case may be followed by a new referral.
CREATE UNIQUE INDEX participants_one_open_case ON participants (municipality_code, identity_hash)
    WHERE identity_hash IS NOT NULL AND stage <> 'closed';

-- The participant's data key, wrapped by the master key `key_id`. Deleting the row
-- shreds everything sealed with it.
CREATE TABLE participant_keys (
    participant_id uuid PRIMARY KEY REFERENCES participants (id),
    key_id         text NOT NULL,
    wrapped        bytea NOT NULL
);

-- Every stage move: the pseudonymous history that stays after erasure.
CREATE TABLE stage_changes (
    id             bigserial PRIMARY KEY,
    participant_id uuid NOT NULL REFERENCES participants (id),
    from_stage     text,
    to_stage       text NOT NULL,
    exit_reason    text,
    at             timestamptz NOT NULL,
    by             text NOT NULL
);
CREATE INDEX stage_changes_by_participant ON stage_changes (participant_id, id);
CREATE INDEX stage_changes_closed ON stage_changes (at) WHERE to_stage = 'closed';

CREATE TABLE placements (
    id             uuid PRIMARY KEY,
    participant_id uuid NOT NULL REFERENCES participants (id),
    company_id     uuid NOT NULL REFERENCES companies (id),
    kind           text NOT NULL,
    start          date NOT NULL,
    planned_end    date,
    hours_per_week double precision,
    status         text NOT NULL CHECK (status IN ('active', 'ended')),
    ended_on       date,
    end_reason     text,
    flagged_at     timestamptz,
    flag_reason    text,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL,
    version        integer NOT NULL
);
CREATE INDEX placements_by_participant ON placements (participant_id, created_at);
CREATE INDEX placements_active_by_company ON placements (company_id) WHERE status = 'active';

CREATE TABLE employments (
    id                  uuid PRIMARY KEY,
    participant_id      uuid NOT NULL REFERENCES participants (id),
    form                text NOT NULL,
    employer_company_id uuid,
    employer_name       text,
    start               date NOT NULL,
    ended_on            date,
    created_at          timestamptz NOT NULL
);
CREATE INDEX employments_by_participant ON employments (participant_id, created_at);

CREATE TABLE follow_ups (
    id              uuid PRIMARY KEY,
    participant_id  uuid NOT NULL REFERENCES participants (id),
    employment_id   uuid NOT NULL REFERENCES employments (id),
    offset_days     integer NOT NULL,
    due_date        date NOT NULL,
    due_notified_at timestamptz,
    cancelled_at    timestamptz,
    recorded_at     timestamptz,
    recorded_by     text,
    still_employed  boolean,
    UNIQUE (employment_id, offset_days)
);
CREATE INDEX follow_ups_pending ON follow_ups (due_date)
    WHERE due_notified_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX follow_ups_by_participant ON follow_ups (participant_id, due_date);

-- Notes are sealed with the participant's data key, so erasure shreds them too.
CREATE TABLE notes (
    id             uuid PRIMARY KEY,
    participant_id uuid NOT NULL REFERENCES participants (id),
    author         text NOT NULL,
    confidential   boolean NOT NULL,
    sealed         bytea,
    created_at     timestamptz NOT NULL
);
CREATE INDEX notes_by_participant ON notes (participant_id, created_at);

-- Who read or changed which participant's data, and when. Ids only; kept after erasure.
CREATE TABLE access_log (
    id             bigserial PRIMARY KEY,
    participant_id uuid NOT NULL,
    actor          text NOT NULL,
    action         text NOT NULL,
    at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX access_log_by_participant ON access_log (participant_id, id);
