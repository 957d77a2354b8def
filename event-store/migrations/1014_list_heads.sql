-- What `lists` and `invitations` show of a list, kept with each list event
-- (docs/adr/0015), so those queries read a row per list and per member
-- instead of folding each list's whole history: its version, and the fields
-- of the event that last named it (the name sealed in them with its
-- writer's key, opened as it is read; an erasure of that writer erases it).
ALTER TABLE lists
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN name_fields json,
    ADD COLUMN named_by text GENERATED ALWAYS AS (name_fields -> 'sealed' ->> 'by') STORED;

UPDATE lists l
   SET version = e.version, name_fields = e.fields
  FROM (SELECT aggregate_id::uuid AS list_id, max(sequence) AS version,
               (array_agg(payload -> event_type ORDER BY sequence DESC)
                  FILTER (WHERE event_type IN ('ListCreated', 'ListRenamed')))[1] AS fields
          FROM events WHERE aggregate_type = 'List' GROUP BY 1) e
 WHERE l.list_id = e.list_id;

-- After `events_keep_list_members` (triggers of one event fire in name
-- order), which creates the row.
CREATE FUNCTION events_keep_lists_current() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE lists
       SET version = NEW.sequence,
           name_fields = CASE WHEN NEW.event_type IN ('ListCreated', 'ListRenamed')
                              THEN NEW.payload -> NEW.event_type ELSE name_fields END
     WHERE list_id = NEW.aggregate_id::uuid;
    RETURN NULL;
END $$;

CREATE TRIGGER events_keep_lists_current
    AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.aggregate_type = 'List')
    EXECUTE FUNCTION events_keep_lists_current();
