-- A task's folded state every 25 events (docs/adr/0011), so a cold load of
-- a task with a long history reads one snapshot and the events after it. The
-- events stay the truth: a snapshot is written in the same statement as the
-- events that reach its sequence, and one that no longer reads (the task's
-- shape changed) is ignored and the task folded from its events. What a user
-- typed is sealed in it as in the events (docs/adr/0014), so erasing their
-- key erases it here too.
CREATE TABLE task_snapshots (
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    sequence bigint NOT NULL CHECK (sequence > 0),
    state json NOT NULL,
    sealed_by text GENERATED ALWAYS AS (state -> 'sealed' ->> 'by') STORED,
    taken_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id)
);
