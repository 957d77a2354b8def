-- Each list change is announced as it commits on `taskledger_lists`
-- (docs/adr/0015): every API process hears it, looks up the list's members
-- once, and hands the change to their `listChanges` subscriptions. A
-- NOTIFY holds a lock from commit until the commit is flushed (ADR 0011),
-- which list changes, rare beside task commands, can afford.
CREATE OR REPLACE FUNCTION events_keep_list_members() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    fields json := NEW.payload -> NEW.event_type;
    list uuid := NEW.aggregate_id::uuid;
BEGIN
    CASE NEW.event_type
    WHEN 'ListCreated' THEN
        INSERT INTO lists (list_id, created_by, created_at)
        VALUES (list, fields ->> 'owner', NEW.recorded_at);
        INSERT INTO list_members VALUES (list, fields ->> 'owner', 'OWNER', NEW.recorded_at);
    WHEN 'ListArchived' THEN
        UPDATE lists SET archived = true WHERE list_id = list;
        DELETE FROM list_invitations WHERE list_id = list;
    WHEN 'ListMemberInvited' THEN
        INSERT INTO list_invitations
        VALUES ((fields ->> 'invitation_id')::uuid, list, fields ->> 'user_id',
                fields ->> 'role', fields ->> 'invited_by', NEW.recorded_at);
    WHEN 'ListInvitationAccepted' THEN
        DELETE FROM list_invitations WHERE invitation_id = (fields ->> 'invitation_id')::uuid;
        INSERT INTO list_members
        VALUES (list, fields ->> 'user_id', fields ->> 'role', NEW.recorded_at);
    WHEN 'ListInvitationDeclined' THEN
        DELETE FROM list_invitations WHERE invitation_id = (fields ->> 'invitation_id')::uuid;
    WHEN 'ListMemberRoleChanged' THEN
        UPDATE list_members SET role = fields ->> 'role'
         WHERE list_id = list AND user_id = fields ->> 'user_id';
    WHEN 'ListMemberRemoved', 'ListMemberLeft' THEN
        DELETE FROM list_members WHERE list_id = list AND user_id = fields ->> 'user_id';
    WHEN 'ListOwnershipTransferred' THEN
        UPDATE list_members
           SET role = CASE WHEN user_id = fields ->> 'to' THEN 'OWNER' ELSE 'EDITOR' END
         WHERE list_id = list AND user_id IN (fields ->> 'from', fields ->> 'to');
    ELSE
        NULL;
    END CASE;
    -- Who the change is about besides the members: an invitee, or whoever
    -- just left, was removed or declined.
    PERFORM pg_notify('taskledger_lists', json_build_object(
        'listId', list, 'event', NEW.event_type, 'version', NEW.sequence,
        'user', fields ->> 'user_id')::text);
    RETURN NULL;
END $$;
