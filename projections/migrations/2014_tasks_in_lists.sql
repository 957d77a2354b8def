-- Tasks in lists (docs/adr/0016). Every row names its list and its owner;
-- `user_id` becomes the key the row is read under: its owner's id while the
-- task is in their Inbox (every row so far), `list <list id>` while it is in
-- a shared list. A user id holds no whitespace, so the two never meet. The
-- counts, tag counts, search words and indexes keyed by `user_id` are kept
-- per Inbox and per shared list as they were per user, and a reader asks for
-- their own key and those of the lists they belong to.

-- The Inbox's id is derived from its owner as the domain derives it
-- (`domain::list::inbox_of`: a UUIDv5 of "inbox:<user id>").
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";

ALTER TABLE task_list
    ADD COLUMN list_id  uuid,
    ADD COLUMN owner    text,
    ADD COLUMN assignee text;

UPDATE task_list
   SET list_id = uuid_generate_v5('6f1c2b7e-8d0a-4c61-9e57-3a2d1b4f7c90', 'inbox:' || user_id),
       owner = user_id;

ALTER TABLE task_list
    ALTER COLUMN list_id SET NOT NULL,
    ALTER COLUMN owner SET NOT NULL;

-- An erasure finds the erased owner's tasks in shared lists.
CREATE INDEX task_list_by_owner ON task_list (owner) WHERE user_id <> owner;

-- A move changes only the key a row is read under: the counts follow it.
CREATE OR REPLACE FUNCTION task_list_kept_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM task_list_keep(ARRAY(
        SELECT change
          FROM new_rows n JOIN old_rows o USING (id),
               LATERAL (VALUES
                   (ROW(n.user_id, n.status, n.priority, n.tags, n.deleted_at IS NOT NULL, n.title, 1)::task_list_change),
                   (ROW(o.user_id, o.status, o.priority, o.tags, o.deleted_at IS NOT NULL, o.title, -1)::task_list_change)
               ) AS v (change)
         WHERE (o.user_id, o.status, o.priority, o.tags, o.deleted_at IS NULL, o.title)
               IS DISTINCT FROM (n.user_id, n.status, n.priority, n.tags, n.deleted_at IS NULL, n.title)));
    RETURN NULL;
END $$;

-- The events applied per user (docs/adr/0010) are counted per writer by
-- the projection, which knows who wrote each event it applies: the sum of
-- a row's versions no longer says whose they were once others write to it.
DROP TRIGGER task_list_events_inserted ON task_list;
DROP TRIGGER task_list_events_updated ON task_list;
DROP FUNCTION task_list_events_inserted();
DROP FUNCTION task_list_events_updated();
