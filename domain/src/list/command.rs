use uuid::Uuid;

use super::{ListName, Role};
use crate::values::UserId;

/// What someone asks of a list; each names who asks.
#[derive(Debug, Clone, PartialEq)]
pub enum ListCommand {
    Create {
        list_id: Uuid,
        owner: UserId,
        name: ListName,
    },
    Rename {
        actor: UserId,
        name: ListName,
    },
    Archive {
        actor: UserId,
    },
    Invite {
        actor: UserId,
        invitation_id: Uuid,
        user_id: UserId,
        role: Role,
    },
    Accept {
        actor: UserId,
        invitation_id: Uuid,
    },
    Decline {
        actor: UserId,
        invitation_id: Uuid,
    },
    ChangeRole {
        actor: UserId,
        user_id: UserId,
        role: Role,
    },
    Remove {
        actor: UserId,
        user_id: UserId,
    },
    Leave {
        actor: UserId,
    },
    TransferOwnership {
        actor: UserId,
        user_id: UserId,
    },
}

impl ListCommand {
    /// Who asks.
    pub fn actor(&self) -> &UserId {
        match self {
            Self::Create { owner, .. } => owner,
            Self::Rename { actor, .. }
            | Self::Archive { actor }
            | Self::Invite { actor, .. }
            | Self::Accept { actor, .. }
            | Self::Decline { actor, .. }
            | Self::ChangeRole { actor, .. }
            | Self::Remove { actor, .. }
            | Self::Leave { actor }
            | Self::TransferOwnership { actor, .. } => actor,
        }
    }
}
