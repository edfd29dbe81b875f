-- Who has signed in to casework, as their tokens said the last time casework noted them
-- (at most once an hour per process and person). A case can be assigned only to someone
-- noted here as a case worker of the case's municipality. No personal data of
-- participants; the staff member's name is not kept either.
CREATE TABLE known_users (
    sub               text PRIMARY KEY,
    municipality_code text,
    roles             text[] NOT NULL,
    seen_at           timestamptz NOT NULL
);
CREATE INDEX known_users_case_workers ON known_users (municipality_code)
    WHERE 'case_worker' = ANY (roles);

-- Each hand-over of a case from one case worker to another: part of the timeline.
CREATE TABLE reassignments (
    id               bigserial PRIMARY KEY,
    participant_id   uuid NOT NULL REFERENCES participants (id),
    from_assigned_to text NOT NULL,
    assigned_to      text NOT NULL,
    at               timestamptz NOT NULL,
    by               text NOT NULL
);
CREATE INDEX reassignments_by_participant ON reassignments (participant_id, id);

-- What `/stream` sent, kept for clients that reconnect with Last-Event-ID (ids and stages
-- only). Ids are handed out under an advisory lock held until commit, so they follow the
-- order of the commits and a client resuming after id N misses nothing.
CREATE TABLE stream_events (
    id                bigserial PRIMARY KEY,
    municipality_code text NOT NULL,
    participant_id    uuid NOT NULL,
    body              jsonb NOT NULL,
    at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stream_events_scope ON stream_events (municipality_code, id);
CREATE INDEX stream_events_age ON stream_events (at);

-- The highest id pruned so far: a client resuming from before it is told to reload.
CREATE TABLE stream_pruned (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    through  bigint NOT NULL
);
INSERT INTO stream_pruned (through) VALUES (0);

-- Open `/stream` connections on every replica, to hold each person to their limit.
-- Each replica refreshes `seen_at` of its own; rows of a replica that died go stale.
CREATE TABLE open_streams (
    id         uuid PRIMARY KEY,
    sub        text NOT NULL,
    process_id uuid NOT NULL,
    opened_at  timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX open_streams_by_sub ON open_streams (sub);

-- The worklists.
CREATE INDEX follow_ups_worklist ON follow_ups (due_date, id);
CREATE INDEX placements_worklist ON placements (created_at, id);

-- Notes sealed with the note's id and its confidential flag in the associated data (2),
-- so that a note cannot be moved to another row or have its flag changed unnoticed. 1:
-- sealed before that, bound to the participant only, until `casework reseal` reseals it.
ALTER TABLE notes ADD COLUMN sealed_with smallint NOT NULL DEFAULT 1;

-- The employer's name is personal data: sealed with the participant's key (bound to the
-- employment) and gone with an erasure. `employer_name` only holds names written before,
-- until `casework reseal` seals them.
ALTER TABLE employments ADD COLUMN employer_sealed bytea;
