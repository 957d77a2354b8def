use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Role;
use crate::values::UserId;

/// What happened to a list. Every type starts with `List`, which is how a
/// consumer of `task-events` tells them from a task's (docs/analytics.md).
/// Who did it is in each event; the name is what a user typed, sealed with
/// their key as a task's title is (docs/adr/0014).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ListEvent {
    ListCreated {
        list_id: Uuid,
        owner: UserId,
        name: String,
        created_at: DateTime<Utc>,
    },
    ListRenamed {
        name: String,
        renamed_by: UserId,
        renamed_at: DateTime<Utc>,
    },
    ListArchived {
        archived_by: UserId,
        archived_at: DateTime<Utc>,
    },
    ListMemberInvited {
        invitation_id: Uuid,
        user_id: UserId,
        role: Role,
        invited_by: UserId,
        invited_at: DateTime<Utc>,
    },
    ListInvitationAccepted {
        invitation_id: Uuid,
        user_id: UserId,
        role: Role,
        accepted_at: DateTime<Utc>,
    },
    ListInvitationDeclined {
        invitation_id: Uuid,
        user_id: UserId,
        declined_at: DateTime<Utc>,
    },
    ListMemberRoleChanged {
        user_id: UserId,
        role: Role,
        changed_by: UserId,
        changed_at: DateTime<Utc>,
    },
    ListMemberRemoved {
        user_id: UserId,
        removed_by: UserId,
        removed_at: DateTime<Utc>,
    },
    ListMemberLeft {
        user_id: UserId,
        left_at: DateTime<Utc>,
    },
    ListOwnershipTransferred {
        from: UserId,
        to: UserId,
        transferred_at: DateTime<Utc>,
    },
}

impl DomainEvent for ListEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ListCreated { .. } => "ListCreated",
            Self::ListRenamed { .. } => "ListRenamed",
            Self::ListArchived { .. } => "ListArchived",
            Self::ListMemberInvited { .. } => "ListMemberInvited",
            Self::ListInvitationAccepted { .. } => "ListInvitationAccepted",
            Self::ListInvitationDeclined { .. } => "ListInvitationDeclined",
            Self::ListMemberRoleChanged { .. } => "ListMemberRoleChanged",
            Self::ListMemberRemoved { .. } => "ListMemberRemoved",
            Self::ListMemberLeft { .. } => "ListMemberLeft",
            Self::ListOwnershipTransferred { .. } => "ListOwnershipTransferred",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
