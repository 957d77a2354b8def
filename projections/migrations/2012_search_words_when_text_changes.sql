-- The projection writes each task's row once per batch, folded in memory
-- (projections/src/task_list/fold.rs); an update of a row whose text did not
-- change (a completion, a priority, a due date) keeps the search words it
-- has instead of parsing and stemming title, tags and description again.
-- The sort keys stay computed on every write: they are arithmetic.
CREATE OR REPLACE FUNCTION task_list_derive() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT'
       OR NEW.title IS DISTINCT FROM OLD.title
       OR NEW.tags IS DISTINCT FROM OLD.tags
       OR NEW.description IS DISTINCT FROM OLD.description
       OR NEW.user_id IS DISTINCT FROM OLD.user_id THEN
        NEW.search := owner_tsvector(NEW.user_id,
               setweight(to_tsvector('english', NEW.title), 'A')
            -- unstemmed title words too, so type-ahead prefixes match whole words
            || setweight(to_tsvector('simple', NEW.title), 'A')
            || setweight(to_tsvector('simple', array_to_string(NEW.tags, ' ')), 'B')
            || setweight(to_tsvector('english', replace(array_to_string(NEW.tags, ' '), '/', ' ')), 'B')
            || setweight(to_tsvector('english', coalesce(NEW.description, '')), 'C'));
    END IF;
    NEW.sort_priority := -NEW.priority;
    NEW.sort_due := coalesce((extract(epoch FROM NEW.due_at) * 1000000)::bigint, 9223372036854775807);
    NEW.sort_created := -(extract(epoch FROM NEW.created_at) * 1000000)::bigint;
    NEW.sort_updated := -(extract(epoch FROM NEW.updated_at) * 1000000)::bigint;
    RETURN NEW;
END $$;
