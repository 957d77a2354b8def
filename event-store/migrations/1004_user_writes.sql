-- How many task events each user's commands have stored, kept by the insert
-- itself (a statement trigger: no round trip of its own). A read that must
-- show the caller's own writes compares the sum of a user's rows with the
-- events the task list has applied for them (task_stats.events, projections
-- migration 2010); see docs/adr/0010.
--
-- Each user's count is kept in 16 parts, by task: commands of one user on
-- different tasks mostly update different rows, so they do not wait on one
-- another's commit for the counter (one row per user did: 8 clients of one
-- user wrote at a third of raw inserts).
CREATE TABLE user_writes
(
    user_id text     NOT NULL,
    part    smallint NOT NULL,
    events  bigint   NOT NULL,
    PRIMARY KEY (user_id, part)
);

CREATE FUNCTION user_writes_part(aggregate_id text) RETURNS smallint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN abs(hashtext(aggregate_id) % 16);

INSERT INTO user_writes (user_id, part, events)
SELECT metadata ->> 'user_id', user_writes_part(aggregate_id), count(*)
  FROM events
 WHERE aggregate_type = 'Task' AND metadata ->> 'user_id' IS NOT NULL
 GROUP BY 1, 2;

CREATE FUNCTION events_count_user_writes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_writes AS w (user_id, part, events)
    SELECT metadata ->> 'user_id', user_writes_part(aggregate_id), count(*)
      FROM new_events
     WHERE aggregate_type = 'Task' AND metadata ->> 'user_id' IS NOT NULL
     GROUP BY 1, 2
     ORDER BY 1, 2
    ON CONFLICT (user_id, part) DO UPDATE SET events = w.events + EXCLUDED.events;
    RETURN NULL;
END $$;

CREATE TRIGGER events_count_user_writes
    AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION events_count_user_writes();
