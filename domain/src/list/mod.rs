//! Lists people share: the `List` aggregate with its members and their roles,
//! invitations, and the rules of who may do what. `handle` decides; `apply`
//! folds. Every membership change is an event with who and when. The store's
//! optimistic concurrency makes each decision on the list as it stands at
//! commit (docs/adr/0015).

mod command;
mod event;
mod name;
mod role;

pub use command::ListCommand;
pub use event::ListEvent;
pub use name::ListName;
pub use role::Role;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::UserId;
use crate::TaskServices;

/// The id of `user`'s Inbox, the list every task of theirs is in until it
/// moves to a shared one. It is theirs alone: no aggregate, no members but
/// them, and its id is derived (a UUIDv5), so it exists from first use and
/// every task stored before lists (which names no list) is in it
/// (docs/adr/0016).
pub fn inbox_of(user: &UserId) -> Uuid {
    Uuid::new_v5(
        &crate::task::TASKLEDGER_NAMESPACE,
        format!("inbox:{}", user.as_str()).as_bytes(),
    )
}

/// Members of one list at most, pending invitations included.
pub const MAX_MEMBERS: usize = 50;

/// Why the `List` aggregate refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Validation(#[from] crate::ValidationError),
    /// The list does not exist or the caller is not a member: the two are
    /// indistinguishable, so ids of other people's lists leak nothing.
    #[error("list not found")]
    NotFound,
    /// The caller is a member whose role does not allow this.
    #[error("your role in this list does not allow this: {0}")]
    Forbidden(&'static str),
    #[error("a list with this id already exists")]
    AlreadyExists,
    #[error("invitation not found")]
    InvitationNotFound,
    #[error("{0}")]
    Refused(&'static str),
    #[error("a list has at most {MAX_MEMBERS} members and pending invitations")]
    TooManyMembers,
    #[error("the list is archived")]
    Archived,
}

/// An invitation waiting for its invitee's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub user_id: UserId,
    pub role: Role,
    pub invited_by: UserId,
    pub invited_at: DateTime<Utc>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct List {
    id: Option<Uuid>,
    name: String,
    archived: bool,
    members: BTreeMap<UserId, Role>,
    invitations: BTreeMap<Uuid, Invitation>,
}

impl List {
    pub fn id(&self) -> Option<Uuid> {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_archived(&self) -> bool {
        self.archived
    }

    /// `user`'s role, if they are a member.
    pub fn role_of(&self, user: &UserId) -> Option<Role> {
        self.members.get(user).copied()
    }

    pub fn members(&self) -> impl Iterator<Item = (&UserId, Role)> {
        self.members.iter().map(|(user, role)| (user, *role))
    }

    pub fn invitations(&self) -> impl Iterator<Item = (&Uuid, &Invitation)> {
        self.invitations.iter()
    }

    /// The one owner.
    pub fn owner(&self) -> Option<&UserId> {
        self.members
            .iter()
            .find(|(_, role)| **role == Role::Owner)
            .map(|(user, _)| user)
    }

    /// The caller's role, or `NotFound` if they are not a member (or the
    /// list does not exist).
    fn member(&self, actor: &UserId) -> Result<Role, ListError> {
        self.id
            .and_then(|_| self.role_of(actor))
            .ok_or(ListError::NotFound)
    }

    /// The caller must own the list.
    fn owned_by(&self, actor: &UserId, what: &'static str) -> Result<(), ListError> {
        match self.member(actor)? {
            Role::Owner => Ok(()),
            _ => Err(ListError::Forbidden(what)),
        }
    }

    fn decide(
        &self,
        command: ListCommand,
        services: &TaskServices,
    ) -> Result<Option<ListEvent>, ListError> {
        let at = services.clock.now();
        match command {
            ListCommand::Create {
                list_id,
                owner,
                name,
            } => {
                if self.id.is_some() {
                    return Err(ListError::AlreadyExists);
                }
                Ok(Some(ListEvent::ListCreated {
                    list_id,
                    owner,
                    name: name.as_str().to_owned(),
                    created_at: at,
                }))
            }
            ListCommand::Rename { actor, name } => {
                match self.member(&actor)? {
                    Role::Owner | Role::Editor => {}
                    Role::Viewer => return Err(ListError::Forbidden("a viewer cannot rename")),
                }
                if self.name == name.as_str() {
                    return Ok(None);
                }
                Ok(Some(ListEvent::ListRenamed {
                    name: name.as_str().to_owned(),
                    renamed_by: actor,
                    renamed_at: at,
                }))
            }
            ListCommand::Archive { actor } => {
                self.owned_by(&actor, "only the owner archives a list")?;
                if self.archived {
                    return Ok(None);
                }
                Ok(Some(ListEvent::ListArchived {
                    archived_by: actor,
                    archived_at: at,
                }))
            }
            ListCommand::Invite {
                actor,
                invitation_id,
                user_id,
                role,
            } => {
                self.owned_by(&actor, "only the owner invites")?;
                self.open()?;
                if role == Role::Owner {
                    return Err(ListError::Refused(
                        "invite as EDITOR or VIEWER; ownership is transferred, not given",
                    ));
                }
                if self.members.contains_key(&user_id) {
                    return Err(ListError::Refused("already a member"));
                }
                if self.invitations.values().any(|i| i.user_id == user_id) {
                    return Err(ListError::Refused("already invited"));
                }
                if self.members.len() + self.invitations.len() >= MAX_MEMBERS {
                    return Err(ListError::TooManyMembers);
                }
                Ok(Some(ListEvent::ListMemberInvited {
                    invitation_id,
                    user_id,
                    role,
                    invited_by: actor,
                    invited_at: at,
                }))
            }
            ListCommand::Accept {
                actor,
                invitation_id,
            } => {
                let invitation = self.invitation_for(&actor, invitation_id)?;
                self.open()?;
                Ok(Some(ListEvent::ListInvitationAccepted {
                    invitation_id,
                    user_id: actor,
                    role: invitation.role,
                    accepted_at: at,
                }))
            }
            ListCommand::Decline {
                actor,
                invitation_id,
            } => {
                self.invitation_for(&actor, invitation_id)?;
                Ok(Some(ListEvent::ListInvitationDeclined {
                    invitation_id,
                    user_id: actor,
                    declined_at: at,
                }))
            }
            ListCommand::ChangeRole {
                actor,
                user_id,
                role,
            } => {
                self.owned_by(&actor, "only the owner changes roles")?;
                let current = self
                    .role_of(&user_id)
                    .ok_or(ListError::Refused("not a member"))?;
                if role == Role::Owner || current == Role::Owner {
                    return Err(ListError::Refused(
                        "the owner's role changes only by transferring ownership",
                    ));
                }
                if current == role {
                    return Ok(None);
                }
                Ok(Some(ListEvent::ListMemberRoleChanged {
                    user_id,
                    role,
                    changed_by: actor,
                    changed_at: at,
                }))
            }
            ListCommand::Remove { actor, user_id } => {
                self.owned_by(&actor, "only the owner removes members")?;
                match self.role_of(&user_id) {
                    None => Err(ListError::Refused("not a member")),
                    Some(Role::Owner) => Err(ListError::Refused(
                        "the owner cannot be removed; transfer ownership first",
                    )),
                    Some(_) => Ok(Some(ListEvent::ListMemberRemoved {
                        user_id,
                        removed_by: actor,
                        removed_at: at,
                    })),
                }
            }
            ListCommand::Leave { actor } => match self.member(&actor)? {
                Role::Owner => Err(ListError::Refused(
                    "the owner cannot leave; transfer ownership first",
                )),
                _ => Ok(Some(ListEvent::ListMemberLeft {
                    user_id: actor,
                    left_at: at,
                })),
            },
            ListCommand::TransferOwnership { actor, user_id } => {
                self.owned_by(&actor, "only the owner transfers ownership")?;
                self.open()?;
                match self.role_of(&user_id) {
                    None => Err(ListError::Refused(
                        "ownership goes to a member who accepted",
                    )),
                    Some(Role::Owner) => Ok(None),
                    Some(_) => Ok(Some(ListEvent::ListOwnershipTransferred {
                        from: actor,
                        to: user_id,
                        transferred_at: at,
                    })),
                }
            }
        }
    }

    fn open(&self) -> Result<(), ListError> {
        if self.archived {
            Err(ListError::Archived)
        } else {
            Ok(())
        }
    }

    /// The pending invitation `id`, if it is `actor`'s.
    fn invitation_for(&self, actor: &UserId, id: Uuid) -> Result<&Invitation, ListError> {
        self.invitations
            .get(&id)
            .filter(|invitation| &invitation.user_id == actor)
            .ok_or(ListError::InvitationNotFound)
    }
}

impl Aggregate for List {
    const TYPE: &'static str = "List";
    type Command = ListCommand;
    type Event = ListEvent;
    type Error = ListError;
    type Services = TaskServices;

    async fn handle(
        &mut self,
        command: ListCommand,
        services: &TaskServices,
        sink: &EventSink<Self>,
    ) -> Result<(), ListError> {
        if let Some(event) = self.decide(command, services)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: ListEvent) {
        match event {
            ListEvent::ListCreated {
                list_id,
                owner,
                name,
                ..
            } => {
                self.id = Some(list_id);
                self.name = name;
                self.members.insert(owner, Role::Owner);
            }
            ListEvent::ListRenamed { name, .. } => self.name = name,
            ListEvent::ListArchived { .. } => {
                self.archived = true;
                self.invitations.clear();
            }
            ListEvent::ListMemberInvited {
                invitation_id,
                user_id,
                role,
                invited_by,
                invited_at,
            } => {
                self.invitations.insert(
                    invitation_id,
                    Invitation {
                        user_id,
                        role,
                        invited_by,
                        invited_at,
                    },
                );
            }
            ListEvent::ListInvitationAccepted {
                invitation_id,
                user_id,
                role,
                ..
            } => {
                self.invitations.remove(&invitation_id);
                self.members.insert(user_id, role);
            }
            ListEvent::ListInvitationDeclined { invitation_id, .. } => {
                self.invitations.remove(&invitation_id);
            }
            ListEvent::ListMemberRoleChanged { user_id, role, .. } => {
                self.members.insert(user_id, role);
            }
            ListEvent::ListMemberRemoved { user_id, .. }
            | ListEvent::ListMemberLeft { user_id, .. } => {
                self.members.remove(&user_id);
            }
            ListEvent::ListOwnershipTransferred { from, to, .. } => {
                self.members.insert(from, Role::Editor);
                self.members.insert(to, Role::Owner);
            }
        }
    }
}

#[cfg(test)]
mod tests;
