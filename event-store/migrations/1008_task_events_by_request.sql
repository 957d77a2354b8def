-- A request's task events by its correlation id, for `undo(correlationId)`
-- (command-api/src/revert.rs): which tasks one request changed, and from
-- which version to which.
CREATE INDEX events_tasks_by_request
    ON events ((metadata ->> 'correlation_id'))
    WHERE aggregate_type = 'Task';
