-- `task_list_counting` (user, status, priority) was built for counts over
-- status and priority, which `task_stats` has answered since 2004. No
-- statement needs it (docs/indexes.md: every index beside the statements it
-- serves); it cost every insert and update of a task about 4.5 µs.
DROP INDEX IF EXISTS task_list_counting;
