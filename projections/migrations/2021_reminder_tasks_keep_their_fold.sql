-- The task as the reminders projection folded it at `version`: each batch
-- folds a task from here and the events it lacks, as the task list folds
-- its rows, instead of reading its whole history (ADR 0011). NULL where none
-- is kept (a task a writer of which was erased, and rows from before this
-- migration, folded once from their first event at their next change). What
-- it holds of what users typed goes with their erasure, which deletes the
-- rows of every task they wrote.
ALTER TABLE reminder_tasks ADD COLUMN task jsonb;
