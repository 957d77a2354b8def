-- Each list change is announced as it commits on `taskledger_lists`
-- (docs/adr/0015): every API process hears it, looks up the list's members
-- once, and hands the change to their `listChanges` subscriptions. A
-- NOTIFY holds a lock from commit until the commit is flushed (ADR 0011),
-- which list changes, rare beside task commands, can afford. The payload
-- names whom the change is about besides the members: an invitee, or
-- whoever just left, was removed or declined.
CREATE FUNCTION events_announce_list_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('taskledger_lists', json_build_object(
        'listId', NEW.aggregate_id, 'event', NEW.event_type, 'version', NEW.sequence,
        'user', NEW.payload -> NEW.event_type ->> 'user_id')::text);
    RETURN NULL;
END $$;

CREATE TRIGGER events_announce_list_change
    AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.aggregate_type = 'List')
    EXECUTE FUNCTION events_announce_list_change();
