-- Search that costs what the owner's matches cost, fuzzy search through a
-- word list, and counts for every status and priority (docs/adr/0004).

-- Every word in `search` is keyed by its owner ("3f2a9c0d41b7_budget"), so
-- one GIN posting list holds one user's tasks with one word: a search reads
-- the owner's matches and nothing else, where a (user_id, search) index
-- intersects the word's matches across all users with all of the user's
-- tasks. Positions and weights are kept, so every text query keyed the same
-- way matches and ranks exactly as it would unkeyed. The key is a hash, so
-- queries still say `user_id = $1`: a collision costs a row read, never a leak.
-- A lexeme may hold 2046 bytes; the few words too long to carry the key are
-- left out of the search rather than failing the task's write.
CREATE FUNCTION owner_key(owner text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN left(md5(owner), 12) || '_';

CREATE FUNCTION owner_tsvector(owner text, doc tsvector) RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(string_agg(
               '''' || replace(replace(owner_key(owner) || lexeme, '\', '\\'), '''', '''''') || ''''
               || coalesce(':' || (SELECT string_agg(position::text || weight::text, ',')
                                     FROM unnest(positions, weights) AS p (position, weight)), ''),
               ' '), '')::tsvector
      FROM unnest(doc)
     WHERE octet_length(lexeme) <= 2046 - octet_length(owner_key(owner));
END;

-- In a tsquery's text form every lexeme is quoted; the key goes inside the quotes.
CREATE FUNCTION owner_tsquery(owner text, query tsquery) RETURNS tsquery
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN regexp_replace(query::text, '''((?:[^''\\]|''''|\\.)*)''',
                          '''' || owner_key(owner) || '\1''', 'g')::tsquery;

CREATE OR REPLACE FUNCTION task_list_derive() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search := owner_tsvector(NEW.user_id,
           setweight(to_tsvector('english', NEW.title), 'A')
        -- unstemmed title words too, so type-ahead prefixes match whole words
        || setweight(to_tsvector('simple', NEW.title), 'A')
        || setweight(to_tsvector('simple', array_to_string(NEW.tags, ' ')), 'B')
        || setweight(to_tsvector('english', replace(array_to_string(NEW.tags, ' '), '/', ' ')), 'B')
        || setweight(to_tsvector('english', coalesce(NEW.description, '')), 'C'));
    NEW.sort_priority := -NEW.priority;
    NEW.sort_due := coalesce((extract(epoch FROM NEW.due_at) * 1000000)::bigint, 9223372036854775807);
    NEW.sort_created := -(extract(epoch FROM NEW.created_at) * 1000000)::bigint;
    NEW.sort_updated := -(extract(epoch FROM NEW.updated_at) * 1000000)::bigint;
    RETURN NEW;
END $$;

DROP INDEX task_list_search;
DROP INDEX task_list_trigram;
UPDATE task_list SET title = title;
CREATE INDEX task_list_words ON task_list USING gin (search);

-- The distinct words of each user's titles, with how many tasks use each:
-- fuzzy search finds the words close to what was typed here, then looks the
-- tasks up through their words.
CREATE TABLE task_words
(
    user_id text   NOT NULL,
    word    text   NOT NULL,
    tasks   bigint NOT NULL,
    PRIMARY KEY (user_id, word)
);
CREATE INDEX task_words_trigram ON task_words USING gin (user_id, word gin_trgm_ops);

CREATE FUNCTION title_words(title text) RETURNS SETOF text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN unnest(tsvector_to_array(to_tsvector('simple', title)));

-- One upsert of the words that changed, in word order, after locking the
-- user's counts row, which every change to a user's counts locks first: so
-- concurrent projections never deadlock over one user's rows.
CREATE FUNCTION task_list_words() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.title = NEW.title THEN
        RETURN NULL;
    END IF;
    PERFORM FROM task_stats WHERE user_id = NEW.user_id FOR UPDATE;
    INSERT INTO task_words AS w (user_id, word, tasks)
    SELECT NEW.user_id, word, sum(delta)
      FROM (SELECT word, -1 AS delta FROM title_words(CASE WHEN TG_OP = 'UPDATE' THEN OLD.title END) AS word
            UNION ALL
            SELECT word, 1 FROM title_words(NEW.title) AS word) AS change
     GROUP BY word
    HAVING sum(delta) <> 0
     ORDER BY word
    ON CONFLICT ON CONSTRAINT task_words_pkey DO UPDATE SET tasks = w.tasks + EXCLUDED.tasks;
    RETURN NULL;
END $$;

CREATE TRIGGER task_list_words
    AFTER INSERT OR UPDATE OF title ON task_list
    FOR EACH ROW EXECUTE FUNCTION task_list_words();

INSERT INTO task_words (user_id, word, tasks)
SELECT user_id, word, count(*) FROM task_list, title_words(title) AS word GROUP BY 1, 2;

-- Counts for every status and priority, so a totalCount over status and
-- priority alone adds up at most 15 of them instead of counting tasks.
ALTER TABLE task_stats
    ADD COLUMN completed_by_priority bigint[] NOT NULL DEFAULT '{0,0,0,0,0}',
    ADD COLUMN deleted_by_priority   bigint[] NOT NULL DEFAULT '{0,0,0,0,0}';

CREATE OR REPLACE FUNCTION task_counts_add(t task_list, delta integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    is_open   integer := CASE WHEN t.deleted_at IS NULL AND t.status = 'open' THEN delta ELSE 0 END;
    is_done   integer := CASE WHEN t.deleted_at IS NULL AND t.status = 'completed' THEN delta ELSE 0 END;
    is_gone   integer := CASE WHEN t.deleted_at IS NOT NULL THEN delta ELSE 0 END;
    open_by   bigint[] := '{0,0,0,0,0}';
    done_by   bigint[] := '{0,0,0,0,0}';
    gone_by   bigint[] := '{0,0,0,0,0}';
BEGIN
    open_by[t.priority + 1] := is_open;
    done_by[t.priority + 1] := is_done;
    gone_by[t.priority + 1] := is_gone;
    INSERT INTO task_stats AS s (user_id, open, completed, deleted,
                                 open_by_priority, completed_by_priority, deleted_by_priority)
    VALUES (t.user_id, is_open, is_done, is_gone, open_by, done_by, gone_by)
    ON CONFLICT (user_id) DO UPDATE
       SET open = s.open + EXCLUDED.open,
           completed = s.completed + EXCLUDED.completed,
           deleted = s.deleted + EXCLUDED.deleted,
           open_by_priority = ARRAY(SELECT a + b FROM unnest(s.open_by_priority, EXCLUDED.open_by_priority) AS x (a, b)),
           completed_by_priority = ARRAY(SELECT a + b FROM unnest(s.completed_by_priority, EXCLUDED.completed_by_priority) AS x (a, b)),
           deleted_by_priority = ARRAY(SELECT a + b FROM unnest(s.deleted_by_priority, EXCLUDED.deleted_by_priority) AS x (a, b));
    IF t.deleted_at IS NULL THEN
        INSERT INTO tag_counts AS c (user_id, tag, open, total)
        SELECT t.user_id, tag, is_open, delta FROM (SELECT DISTINCT unnest(t.tags) AS tag) AS distinct_tags
        ORDER BY tag
        ON CONFLICT (user_id, tag) DO UPDATE
           SET open = c.open + EXCLUDED.open, total = c.total + EXCLUDED.total;
    END IF;
END $$;

UPDATE task_stats AS s
   SET completed_by_priority = c.completed_by, deleted_by_priority = c.deleted_by
  FROM (SELECT user_id, array_agg(completed ORDER BY rank) AS completed_by,
               array_agg(deleted ORDER BY rank) AS deleted_by
          FROM (SELECT user_id, rank,
                       count(*) FILTER (WHERE deleted_at IS NULL AND status = 'completed' AND priority = rank) AS completed,
                       count(*) FILTER (WHERE deleted_at IS NOT NULL AND priority = rank) AS deleted
                  FROM task_list, generate_series(0, 4) AS rank
                 GROUP BY user_id, rank) AS by_rank
         GROUP BY user_id) AS c
 WHERE s.user_id = c.user_id;
