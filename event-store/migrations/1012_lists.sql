-- Lists people share (docs/adr/0015): who belongs to each list and with
-- which role, and the invitations waiting for an answer. Written by the
-- command side only, by a trigger on the events that change them, so each
-- change commits in the same transaction as its event; a task's commit
-- checks its list's membership here (never an asynchronous read model).
-- Nothing a user typed is kept here: a list's name stays sealed in its
-- events (docs/adr/0014).
CREATE TABLE lists (
    list_id uuid PRIMARY KEY,
    created_by text NOT NULL,
    archived boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL
);

CREATE TABLE list_members (
    list_id uuid NOT NULL REFERENCES lists ON DELETE CASCADE,
    user_id text NOT NULL,
    role text NOT NULL CHECK (role IN ('OWNER', 'EDITOR', 'VIEWER')),
    since timestamptz NOT NULL,
    PRIMARY KEY (list_id, user_id)
);
-- `lists`: the lists a user belongs to.
CREATE INDEX list_members_by_user ON list_members (user_id);

CREATE TABLE list_invitations (
    invitation_id uuid PRIMARY KEY,
    list_id uuid NOT NULL REFERENCES lists ON DELETE CASCADE,
    user_id text NOT NULL,
    role text NOT NULL CHECK (role IN ('EDITOR', 'VIEWER')),
    invited_by text NOT NULL,
    invited_at timestamptz NOT NULL
);
-- `invitations`: those waiting for a user.
CREATE INDEX list_invitations_by_user ON list_invitations (user_id);

CREATE FUNCTION events_keep_list_members() RETURNS trigger LANGUAGE plpgsql AS $$
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
    RETURN NULL;
END $$;

CREATE TRIGGER events_keep_list_members
    AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.aggregate_type = 'List')
    EXECUTE FUNCTION events_keep_list_members();
