-- Tasks the task list keeps no row of because events of theirs read as
-- erased (docs/adr/0014: an erasure drops every task its user typed into),
-- with the version applied when their rows went. A later batch then reads
-- only the events after it, and counts only those as applied per writer
-- (docs/adr/0010), instead of reading and counting the whole task again.
CREATE TABLE task_list_gone
(
    id      uuid PRIMARY KEY,
    version bigint NOT NULL
);

-- Whether an event reads as erased: the key its box names is gone (the
-- writer was erased, or came back with a new key). As the event store opens
-- it (event-store keys.rs).
CREATE FUNCTION event_reads_erased(sealed_by text, payload json, event_type text)
    RETURNS boolean LANGUAGE sql STABLE
    RETURN sealed_by IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM user_keys k
                        WHERE k.user_id = sealed_by
                          AND k.key_id = payload -> event_type -> 'sealed' ->> 'key');

-- Drops the rows of tasks `typed` from the task list: each row out of the
-- kept counts (no trigger counts a deletion), and each task recorded at the
-- version its rows had when they went (locked and read by the deletion
-- itself, so a batch that committed a newer version first is not applied
-- twice).
CREATE FUNCTION task_list_drop(typed uuid[]) RETURNS void LANGUAGE sql AS $$
    WITH dropped AS (
        DELETE FROM task_list WHERE id = ANY(typed)
        RETURNING id, version, user_id, status, priority, tags, deleted_at, title
    ), gone AS (
        INSERT INTO task_list_gone (id, version)
        SELECT id, max(version) FROM dropped GROUP BY id
        ON CONFLICT (id) DO UPDATE SET version = greatest(task_list_gone.version, excluded.version)
    )
    SELECT task_list_keep(ARRAY(
        SELECT ROW(user_id, status, priority, tags, deleted_at IS NOT NULL, title, -1)::task_list_change
          FROM dropped))
$$;

-- Erasures before this migration dropped only their users' own tasks: the
-- tasks they typed into in other members' lists kept their text in these
-- tables. Those are the tasks with an event that reads as erased (the key
-- its box names is gone); one pass over the events finds them. A task whose
-- rows an earlier erasure already dropped is recorded at its last event:
-- nothing before this migration is read again.
CREATE TEMPORARY TABLE typed_by_the_erased ON COMMIT DROP AS
SELECT e.aggregate_id::uuid AS id, max(e.sequence) AS last
  FROM events e
 WHERE e.aggregate_type = 'Task' AND event_reads_erased(e.sealed_by, e.payload, e.event_type)
 GROUP BY 1;

SELECT task_list_drop(ARRAY(SELECT id FROM typed_by_the_erased));
INSERT INTO task_list_gone (id, version)
SELECT g.id, (SELECT max(sequence) FROM events
               WHERE aggregate_type = 'Task' AND aggregate_id = g.id::text)
  FROM typed_by_the_erased g
ON CONFLICT (id) DO NOTHING;
DELETE FROM reminder_tasks WHERE task_id IN (SELECT id FROM typed_by_the_erased);
DELETE FROM reminders WHERE task_id IN (SELECT id FROM typed_by_the_erased);
DELETE FROM notifications WHERE task_id IN (SELECT id FROM typed_by_the_erased);
