-- How many task events each user's commands have stored, kept by the insert
-- itself (a statement trigger: no round trip of its own). A read that must
-- show the caller's own writes compares this with the events the task list
-- has applied for them (task_stats.events, projections migration 2010);
-- see docs/adr/0010.
CREATE TABLE user_writes
(
    user_id text PRIMARY KEY,
    events  bigint NOT NULL
);

INSERT INTO user_writes (user_id, events)
SELECT metadata ->> 'user_id', count(*)
  FROM events
 WHERE aggregate_type = 'Task' AND metadata ->> 'user_id' IS NOT NULL
 GROUP BY 1;

CREATE FUNCTION events_count_user_writes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_writes AS w (user_id, events)
    SELECT metadata ->> 'user_id', count(*)
      FROM new_events
     WHERE aggregate_type = 'Task' AND metadata ->> 'user_id' IS NOT NULL
     GROUP BY 1
     ORDER BY 1
    ON CONFLICT (user_id) DO UPDATE SET events = w.events + EXCLUDED.events;
    RETURN NULL;
END $$;

CREATE TRIGGER events_count_user_writes
    AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION events_count_user_writes();
