-- Whether a task's events read as erased in part (a writer of it was
-- erased). The reminders projection keeps no reminder of such a task, and
-- folds it from its first event every time: never from a snapshot, since a
-- snapshot taken after the erasure reads whole under the next writer's key
-- (ADR 0011). Set by each fold from the first event; an erasure deletes the
-- rows of every task its user wrote, so their next fold sets it.
ALTER TABLE reminder_tasks ADD COLUMN erased boolean NOT NULL DEFAULT false;

UPDATE reminder_tasks r SET erased = true
 WHERE EXISTS (SELECT 1 FROM events e
                WHERE e.aggregate_type = 'Task' AND e.aggregate_id = r.task_id::text
                  AND event_reads_erased(e.sealed_by, e.payload, e.event_type));
