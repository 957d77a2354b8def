-- Each member row says whether its list is archived (docs/adr/0016), so a
-- task's commit checks and locks the writer's member row alone: not the
-- list's row too, which every member's commit would otherwise share-lock
-- (a lock many transactions hold at once is a MultiXact Postgres must
-- create and look up). Archiving marks every member row, in the same
-- transaction as `ListArchived`; nobody joins an archived list (its
-- invitations go with the archive), so a row is never added archived.
ALTER TABLE list_members ADD COLUMN list_archived boolean NOT NULL DEFAULT false;

UPDATE list_members m SET list_archived = true
  FROM lists l WHERE l.list_id = m.list_id AND l.archived;

CREATE FUNCTION events_archive_member_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE list_members SET list_archived = true WHERE list_id = NEW.aggregate_id::uuid;
    RETURN NULL;
END $$;

CREATE TRIGGER events_archive_member_rows
    AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.aggregate_type = 'List' AND NEW.event_type = 'ListArchived')
    EXECUTE FUNCTION events_archive_member_rows();
