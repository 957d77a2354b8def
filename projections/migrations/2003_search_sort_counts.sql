-- Search, sort and counts for the task list (issue: search, filter and sort).

CREATE EXTENSION IF NOT EXISTS pg_trgm;
-- lets one GIN index hold the owner and the words, so a search never reads
-- other users' matches
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- Sort keys, all ascending so that one row comparison serves keyset paging
-- for every order: negated where the order is descending, NULL due dates last.
ALTER TABLE task_list
    ADD COLUMN search        tsvector,
    ADD COLUMN sort_priority smallint,
    ADD COLUMN sort_due      bigint,
    ADD COLUMN sort_created  bigint,
    ADD COLUMN sort_updated  bigint;

CREATE FUNCTION task_list_derive() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search :=
           setweight(to_tsvector('english', NEW.title), 'A')
        -- unstemmed title words too, so type-ahead prefixes match whole words
        || setweight(to_tsvector('simple', NEW.title), 'A')
        || setweight(to_tsvector('simple', array_to_string(NEW.tags, ' ')), 'B')
        || setweight(to_tsvector('english', replace(array_to_string(NEW.tags, ' '), '/', ' ')), 'B')
        || setweight(to_tsvector('english', coalesce(NEW.description, '')), 'C');
    NEW.sort_priority := -NEW.priority;
    NEW.sort_due := coalesce((extract(epoch FROM NEW.due_at) * 1000000)::bigint, 9223372036854775807);
    NEW.sort_created := -(extract(epoch FROM NEW.created_at) * 1000000)::bigint;
    NEW.sort_updated := -(extract(epoch FROM NEW.updated_at) * 1000000)::bigint;
    RETURN NEW;
END $$;

CREATE TRIGGER task_list_derive
    BEFORE INSERT OR UPDATE ON task_list
    FOR EACH ROW EXECUTE FUNCTION task_list_derive();

UPDATE task_list SET title = title;

ALTER TABLE task_list
    ALTER COLUMN search SET NOT NULL,
    ALTER COLUMN sort_priority SET NOT NULL,
    ALTER COLUMN sort_due SET NOT NULL,
    ALTER COLUMN sort_created SET NOT NULL,
    ALTER COLUMN sort_updated SET NOT NULL;

DROP INDEX task_list_by_user_created;

-- One index per sort preset, each ending in id (the tie-breaker).
CREATE INDEX task_list_smart    ON task_list (user_id, sort_priority, sort_due, sort_created, id) WHERE deleted_at IS NULL;
CREATE INDEX task_list_due      ON task_list (user_id, sort_due, id)                             WHERE deleted_at IS NULL;
CREATE INDEX task_list_priority ON task_list (user_id, sort_priority, sort_created, id)           WHERE deleted_at IS NULL;
CREATE INDEX task_list_created  ON task_list (user_id, sort_created, id)                         WHERE deleted_at IS NULL;
CREATE INDEX task_list_updated  ON task_list (user_id, sort_updated, id)                         WHERE deleted_at IS NULL;
CREATE INDEX task_list_title    ON task_list (user_id, (lower(title) COLLATE "C"), id)           WHERE deleted_at IS NULL;
CREATE INDEX task_list_trash    ON task_list (user_id, sort_updated, id)                         WHERE deleted_at IS NOT NULL;
CREATE INDEX task_list_search   ON task_list USING gin (user_id, search);
CREATE INDEX task_list_trigram  ON task_list USING gin (user_id, title gin_trgm_ops);
CREATE INDEX task_list_open_due ON task_list (user_id, due_at) WHERE status = 'open' AND deleted_at IS NULL;
-- Tag filters within one user's tasks, replacing the index over everyone's tags.
DROP INDEX task_list_tags;
CREATE INDEX task_list_user_tags ON task_list USING gin (user_id, tags);
-- Lets totalCount over status and priority read the index alone.
CREATE INDEX task_list_counting ON task_list (user_id, status, priority) WHERE deleted_at IS NULL;

-- Counts kept with every change, so `taskStats` and `tags` read one row per
-- user or tag instead of counting tasks.
CREATE TABLE task_stats
(
    user_id          text PRIMARY KEY,
    open             bigint   NOT NULL DEFAULT 0,
    completed        bigint   NOT NULL DEFAULT 0,
    deleted          bigint   NOT NULL DEFAULT 0,
    -- open tasks by priority rank 0..4
    open_by_priority bigint[] NOT NULL DEFAULT '{0,0,0,0,0}'
);

CREATE TABLE tag_counts
(
    user_id text   NOT NULL,
    tag     text   NOT NULL,
    open    bigint NOT NULL DEFAULT 0,
    total   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, tag)
);

CREATE FUNCTION task_counts_add(t task_list, delta integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    is_open   integer := CASE WHEN t.deleted_at IS NULL AND t.status = 'open' THEN delta ELSE 0 END;
    is_done   integer := CASE WHEN t.deleted_at IS NULL AND t.status = 'completed' THEN delta ELSE 0 END;
    is_gone   integer := CASE WHEN t.deleted_at IS NOT NULL THEN delta ELSE 0 END;
    by_rank   bigint[] := '{0,0,0,0,0}';
BEGIN
    by_rank[t.priority + 1] := is_open;
    INSERT INTO task_stats AS s (user_id, open, completed, deleted, open_by_priority)
    VALUES (t.user_id, is_open, is_done, is_gone, by_rank)
    ON CONFLICT (user_id) DO UPDATE
       SET open = s.open + EXCLUDED.open,
           completed = s.completed + EXCLUDED.completed,
           deleted = s.deleted + EXCLUDED.deleted,
           open_by_priority = ARRAY[
               s.open_by_priority[1] + EXCLUDED.open_by_priority[1],
               s.open_by_priority[2] + EXCLUDED.open_by_priority[2],
               s.open_by_priority[3] + EXCLUDED.open_by_priority[3],
               s.open_by_priority[4] + EXCLUDED.open_by_priority[4],
               s.open_by_priority[5] + EXCLUDED.open_by_priority[5]];
    IF t.deleted_at IS NULL THEN
        INSERT INTO tag_counts AS c (user_id, tag, open, total)
        SELECT t.user_id, tag, is_open, delta FROM (SELECT DISTINCT unnest(t.tags) AS tag) AS distinct_tags
        ON CONFLICT (user_id, tag) DO UPDATE
           SET open = c.open + EXCLUDED.open, total = c.total + EXCLUDED.total;
    END IF;
END $$;

CREATE FUNCTION task_list_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.status = NEW.status AND OLD.priority = NEW.priority AND OLD.tags = NEW.tags
           AND (OLD.deleted_at IS NULL) = (NEW.deleted_at IS NULL) THEN
            RETURN NULL;
        END IF;
        PERFORM task_counts_add(OLD, -1);
    END IF;
    PERFORM task_counts_add(NEW, 1);
    RETURN NULL;
END $$;

CREATE TRIGGER task_list_count
    AFTER INSERT OR UPDATE ON task_list
    FOR EACH ROW EXECUTE FUNCTION task_list_count();

INSERT INTO task_stats (user_id) SELECT DISTINCT user_id FROM task_list ON CONFLICT DO NOTHING;
SELECT task_counts_add(t, 1) FROM task_list t;
