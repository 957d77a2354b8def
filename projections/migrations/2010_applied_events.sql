-- How many of each user's events the task list has applied: the sum of their
-- rows' versions (a task's version is the number of its events). Kept by
-- statement triggers beside the other counts, and compared with the event
-- store's user_writes (event-store migration 1004) by a read that must show
-- the caller's own writes (docs/adr/0010).
ALTER TABLE task_stats ADD COLUMN events bigint NOT NULL DEFAULT 0;

UPDATE task_stats s
   SET events = v.events
  FROM (SELECT user_id, sum(version) AS events FROM task_list GROUP BY user_id) AS v
 WHERE s.user_id = v.user_id;

-- `pairs` holds each changed row's user and how far its version moved.
CREATE FUNCTION task_stats_add_events(owners text[], moved bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO task_stats AS s (user_id, events)
    SELECT owner, sum(delta)
      FROM unnest(owners, moved) AS m (owner, delta)
     GROUP BY owner
    HAVING sum(delta) <> 0
     ORDER BY owner
    ON CONFLICT (user_id) DO UPDATE SET events = s.events + EXCLUDED.events;
$$;

CREATE FUNCTION task_list_events_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM task_stats_add_events(ARRAY(SELECT user_id FROM new_rows ORDER BY id),
                                  ARRAY(SELECT version FROM new_rows ORDER BY id));
    RETURN NULL;
END $$;

CREATE FUNCTION task_list_events_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM task_stats_add_events(
        ARRAY(SELECT n.user_id FROM new_rows n JOIN old_rows o USING (id) ORDER BY id),
        ARRAY(SELECT n.version - o.version FROM new_rows n JOIN old_rows o USING (id) ORDER BY id));
    RETURN NULL;
END $$;

CREATE TRIGGER task_list_events_inserted
    AFTER INSERT ON task_list
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION task_list_events_inserted();

CREATE TRIGGER task_list_events_updated
    AFTER UPDATE ON task_list
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION task_list_events_updated();
