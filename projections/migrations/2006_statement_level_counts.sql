-- The kept counts (task_stats, tag_counts) and the fuzzy word list
-- (task_words) maintained once per statement instead of once per row: the
-- projection inserts a batch's new tasks in one statement, and row triggers
-- made every row pay three upserts. Each statement's rows arrive in transition
-- tables; every new row counts +1 and every old row -1, so only net changes
-- are written, in key order (concurrent writers lock the same rows in the
-- same order).

DROP TRIGGER task_list_count ON task_list;
DROP TRIGGER task_list_words ON task_list;
DROP FUNCTION task_list_count();
DROP FUNCTION task_list_words();

-- One row's part in the counts: +1 for a new version, -1 for an old one.
CREATE TYPE task_list_change AS
(
    user_id  text,
    status   text,
    priority smallint,
    tags     text[],
    gone     boolean,
    title    text,
    delta    integer
);

CREATE FUNCTION task_list_keep(changes task_list_change[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO task_stats AS s (user_id, open, completed, deleted,
                                 open_by_priority, completed_by_priority, deleted_by_priority)
    SELECT user_id, sum(open), sum(completed), sum(deleted),
           array_agg(open ORDER BY rank), array_agg(completed ORDER BY rank), array_agg(deleted ORDER BY rank)
      FROM (SELECT c.user_id, rank,
                   coalesce(sum(c.delta) FILTER (WHERE NOT c.gone AND c.status = 'open' AND c.priority = rank), 0) AS open,
                   coalesce(sum(c.delta) FILTER (WHERE NOT c.gone AND c.status = 'completed' AND c.priority = rank), 0) AS completed,
                   coalesce(sum(c.delta) FILTER (WHERE c.gone AND c.priority = rank), 0) AS deleted
              FROM unnest(changes) AS c, generate_series(0, 4) AS rank
             GROUP BY c.user_id, rank) AS by_rank
     GROUP BY user_id
     ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE
       SET open = s.open + EXCLUDED.open,
           completed = s.completed + EXCLUDED.completed,
           deleted = s.deleted + EXCLUDED.deleted,
           open_by_priority = ARRAY(SELECT a + b FROM unnest(s.open_by_priority, EXCLUDED.open_by_priority) AS x (a, b)),
           completed_by_priority = ARRAY(SELECT a + b FROM unnest(s.completed_by_priority, EXCLUDED.completed_by_priority) AS x (a, b)),
           deleted_by_priority = ARRAY(SELECT a + b FROM unnest(s.deleted_by_priority, EXCLUDED.deleted_by_priority) AS x (a, b));

    INSERT INTO tag_counts AS t (user_id, tag, open, total)
    SELECT c.user_id, tag, sum(CASE WHEN c.status = 'open' THEN c.delta ELSE 0 END), sum(c.delta)
      FROM unnest(changes) AS c, LATERAL (SELECT DISTINCT unnest(c.tags) AS tag) AS distinct_tags
     WHERE NOT c.gone
     GROUP BY c.user_id, tag
    HAVING sum(CASE WHEN c.status = 'open' THEN c.delta ELSE 0 END) <> 0 OR sum(c.delta) <> 0
     ORDER BY c.user_id, tag
    ON CONFLICT (user_id, tag) DO UPDATE
       SET open = t.open + EXCLUDED.open, total = t.total + EXCLUDED.total;

    INSERT INTO task_words AS w (user_id, word, tasks)
    SELECT c.user_id, word, sum(c.delta)
      FROM unnest(changes) AS c, title_words(c.title) AS word
     GROUP BY c.user_id, word
    HAVING sum(c.delta) <> 0
     ORDER BY c.user_id, word
    ON CONFLICT ON CONSTRAINT task_words_pkey DO UPDATE SET tasks = w.tasks + EXCLUDED.tasks;
$$;

CREATE FUNCTION task_list_kept_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM task_list_keep(ARRAY(
        SELECT ROW(n.user_id, n.status, n.priority, n.tags, n.deleted_at IS NOT NULL, n.title, 1)::task_list_change
          FROM new_rows n));
    RETURN NULL;
END $$;

-- Rows whose counted columns did not change would cancel out; they are left out.
CREATE FUNCTION task_list_kept_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM task_list_keep(ARRAY(
        SELECT change
          FROM new_rows n JOIN old_rows o USING (id),
               LATERAL (VALUES
                   (ROW(n.user_id, n.status, n.priority, n.tags, n.deleted_at IS NOT NULL, n.title, 1)::task_list_change),
                   (ROW(o.user_id, o.status, o.priority, o.tags, o.deleted_at IS NOT NULL, o.title, -1)::task_list_change)
               ) AS v (change)
         WHERE (o.status, o.priority, o.tags, o.deleted_at IS NULL, o.title)
               IS DISTINCT FROM (n.status, n.priority, n.tags, n.deleted_at IS NULL, n.title)));
    RETURN NULL;
END $$;

CREATE TRIGGER task_list_kept_inserted
    AFTER INSERT ON task_list
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION task_list_kept_inserted();

CREATE TRIGGER task_list_kept_updated
    AFTER UPDATE ON task_list
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION task_list_kept_updated();
