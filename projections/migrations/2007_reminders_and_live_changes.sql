-- Reminders, the notification inbox and the change feed.

-- Every change the task-list projection makes takes the next change number:
-- a user's changes since a cursor are `change_seq > cursor`, and the
-- task-updates publisher sends changes in this order. Only the task-list
-- projection writes task_list, one transaction at a time (its lock), so change
-- numbers commit in order.
CREATE SEQUENCE task_change_seq;
ALTER TABLE task_list ADD COLUMN change_seq bigint;
UPDATE task_list SET change_seq = nextval('task_change_seq')
 WHERE id IN (SELECT id FROM task_list ORDER BY updated_at, id);
ALTER TABLE task_list ALTER COLUMN change_seq SET DEFAULT nextval('task_change_seq');
ALTER TABLE task_list ALTER COLUMN change_seq SET NOT NULL;
CREATE UNIQUE INDEX task_list_by_change ON task_list (change_seq);
CREATE INDEX task_list_by_user_change ON task_list (user_id, change_seq);

-- Wakes the task-updates publisher: one notification per statement, and
-- Postgres folds a transaction's identical notifications into one.
CREATE FUNCTION task_list_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('taskledger_task_changes', '');
    RETURN NULL;
END $$;
CREATE TRIGGER task_list_changed AFTER INSERT OR UPDATE ON task_list
    FOR EACH STATEMENT EXECUTE FUNCTION task_list_changed();

-- How far each task-updates publisher got: the last change number the broker
-- acknowledged.
CREATE TABLE task_update_publishers
(
    name       text PRIMARY KEY,
    change_seq bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every reminder of every open task, at the instant it fires. `pending` until
-- the scheduler publishes it (`sent`) or finds it too late (`missed`).
CREATE TABLE reminders
(
    reminder_id  uuid PRIMARY KEY,
    task_id      uuid        NOT NULL,
    user_id      text        NOT NULL,
    title        text        NOT NULL,
    due_at       timestamptz,
    remind_at    timestamptz NOT NULL,
    priority     smallint    NOT NULL DEFAULT 0,
    tags         text[]      NOT NULL DEFAULT '{}',
    status       text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sent', 'missed')),
    -- Set for a snoozed reminder: the notification it repeats.
    snoozed_from uuid,
    fired_at     timestamptz,
    late_ms      bigint
);
CREATE INDEX reminders_due ON reminders (remind_at) WHERE status = 'pending';
CREATE INDEX reminders_by_task ON reminders (task_id);

-- The version of each task the reminders projection has applied.
CREATE TABLE reminder_tasks
(
    task_id uuid PRIMARY KEY,
    version bigint NOT NULL
);

-- Wakes the scheduler when a reminder is added or moved.
CREATE FUNCTION reminders_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('taskledger_reminders', '');
    RETURN NULL;
END $$;
CREATE TRIGGER reminders_changed AFTER INSERT OR UPDATE OF remind_at ON reminders
    FOR EACH STATEMENT EXECUTE FUNCTION reminders_changed();

-- Each user's notification inbox: one row per reminder fired, whatever the
-- number of deliveries.
CREATE TABLE notifications
(
    id          uuid PRIMARY KEY,
    seq         bigserial   NOT NULL UNIQUE,
    user_id     text        NOT NULL,
    task_id     uuid        NOT NULL,
    title       text        NOT NULL,
    due_at      timestamptz,
    remind_at   timestamptz NOT NULL,
    fired_at    timestamptz NOT NULL,
    late_ms     bigint      NOT NULL DEFAULT 0,
    priority    smallint    NOT NULL DEFAULT 0,
    tags        text[]      NOT NULL DEFAULT '{}',
    read_at     timestamptz
);
CREATE INDEX notifications_by_user ON notifications (user_id, seq DESC);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;
