-- Each task's creator, for a user's data export (projections/src/export.rs)
-- and erasure: the first event of every task, keyed by the user whose request
-- stored it. One entry per task, not per event.
CREATE INDEX events_tasks_by_creator
    ON events ((metadata ->> 'user_id'), aggregate_id)
    WHERE aggregate_type = 'Task' AND sequence = 1;
