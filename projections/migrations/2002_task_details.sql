-- The task domain's details: priority, tags, due date, reminders, recurrence.
ALTER TABLE task_list
    ADD COLUMN priority   smallint NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 4),
    ADD COLUMN tags       text[]   NOT NULL DEFAULT '{}',
    ADD COLUMN due_at     timestamptz,
    -- set for all-day tasks; `due_at` is then the end of that day in `time_zone`
    ADD COLUMN due_date   date,
    ADD COLUMN time_zone  text,
    -- the domain's `Reminders`, as stored in events
    ADD COLUMN reminders  jsonb    NOT NULL DEFAULT '[]',
    ADD COLUMN recurrence text,
    ADD COLUMN series_id  uuid,
    ADD COLUMN occurrence integer;

CREATE INDEX task_list_tags ON task_list USING gin (tags);
