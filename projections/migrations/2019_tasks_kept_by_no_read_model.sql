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

-- Drops tasks `typed` from the read models: their rows (members' rows out of
-- the lists' counts first; the owners' rows' triggers keep theirs), their
-- reminders and the notifications fired of them, recording each at the
-- version its rows had. What an erasure does to every task its user typed
-- into (projections::erasure::drop_derived).
CREATE FUNCTION task_list_drop(typed uuid[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_list_gone (id, version)
    SELECT id, max(version) FROM task_list WHERE id = ANY(typed) GROUP BY id
    ON CONFLICT (id) DO UPDATE SET version = greatest(task_list_gone.version, excluded.version);
    PERFORM task_list_keep(ARRAY(
        SELECT ROW(user_id, status, priority, tags, deleted_at IS NOT NULL, title, -1)::task_list_change
          FROM task_list WHERE id = ANY(typed) AND user_id <> owner));
    DELETE FROM task_list WHERE id = ANY(typed) AND user_id <> owner;
    DELETE FROM task_list WHERE id = ANY(typed);
    DELETE FROM reminder_tasks WHERE task_id = ANY(typed);
    DELETE FROM reminders WHERE task_id = ANY(typed);
    DELETE FROM notifications WHERE task_id = ANY(typed);
END $$;

-- Erasures before this migration dropped only their users' own tasks: the
-- tasks they typed into in other members' lists kept their text in these
-- tables. Those are the tasks with an event that reads as erased (the key
-- its box names is gone); one pass over the events finds them.
SELECT task_list_drop(ARRAY(
    SELECT DISTINCT e.aggregate_id::uuid
      FROM events e
     WHERE e.aggregate_type = 'Task' AND e.sealed_by IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM user_keys k
                        WHERE k.user_id = e.sealed_by
                          AND k.key_id = e.payload -> e.event_type -> 'sealed' ->> 'key')));
