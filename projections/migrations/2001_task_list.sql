-- Where each projection has got to in each partition. Written in the same
-- transaction as the read-model change it accounts for (docs/adr/0002).
CREATE TABLE projection_offsets
(
    projection  text    NOT NULL,
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, topic, partition)
);

-- The task list read model: one row per task, at the version of the last
-- event applied.
CREATE TABLE task_list
(
    id           uuid PRIMARY KEY,
    user_id      text        NOT NULL,
    title        text        NOT NULL,
    description  text,
    status       text        NOT NULL CHECK (status IN ('open', 'completed')),
    version      bigint      NOT NULL CHECK (version > 0),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    completed_at timestamptz,
    deleted_at   timestamptz
);

-- Serves the default listing (newest first) with keyset pagination.
CREATE INDEX task_list_by_user_created
    ON task_list (user_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
