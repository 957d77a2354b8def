-- `task_counts_add(task_list, integer)` has had no caller since the counts
-- moved to statement triggers (2006), and it takes the task list's row type:
-- a rebuild moves the live table to a schema of its own and drops that
-- schema, which would drop the function with it. Nothing may depend on the
-- task list's row type (docs/adr/0008).
DROP FUNCTION IF EXISTS task_counts_add(task_list, integer);
