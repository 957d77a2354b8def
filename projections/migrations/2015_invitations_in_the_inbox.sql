-- An invitation to a list is a notification in the invitee's inbox
-- (docs/adr/0015), beside the reminders that fired. It is written in the
-- transaction that stores the `ListMemberInvited` event: the event store's
-- trigger adds the waiting invitation to `list_invitations` (migration
-- 1012), and this trigger adds its notification. It keeps nothing the
-- inviter typed: the list's name is opened as the inbox is read, and only
-- while the invitee may still see the list.

ALTER TABLE notifications
    ADD COLUMN kind      text NOT NULL DEFAULT 'REMINDER'
                         CHECK (kind IN ('REMINDER', 'INVITATION')),
    ALTER COLUMN task_id DROP NOT NULL,
    ADD COLUMN list_id   uuid,
    ADD COLUMN role      text,
    ADD COLUMN from_user text,
    ADD CONSTRAINT notifications_of_a_kind CHECK (
        CASE kind
            WHEN 'REMINDER' THEN task_id IS NOT NULL
            ELSE task_id IS NULL AND list_id IS NOT NULL AND role IS NOT NULL
                 AND from_user IS NOT NULL
        END);

CREATE FUNCTION list_invitation_notified() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notifications (id, user_id, kind, list_id, role, from_user, title, remind_at,
                               fired_at)
    VALUES (NEW.invitation_id, NEW.user_id, 'INVITATION', NEW.list_id, NEW.role,
            NEW.invited_by, '', NEW.invited_at, NEW.invited_at)
    ON CONFLICT (id) DO NOTHING;
    -- An inbox keeps its newest 1,000, whoever fills it.
    DELETE FROM notifications
     WHERE user_id = NEW.user_id
       AND seq <= (SELECT seq FROM notifications WHERE user_id = NEW.user_id
                    ORDER BY seq DESC OFFSET 1000 LIMIT 1);
    RETURN NULL;
END $$;

CREATE TRIGGER list_invitation_notified AFTER INSERT ON list_invitations
    FOR EACH ROW EXECUTE FUNCTION list_invitation_notified();
