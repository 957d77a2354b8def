//! What a user can ask of a task. Every command names the acting user, whom the
//! aggregate checks against the task's owner.

use crate::values::{TaskDescription, TaskId, TaskTitle, UserId};

#[derive(Debug, Clone, PartialEq)]
pub enum TaskCommand {
    Create {
        task_id: TaskId,
        owner: UserId,
        title: TaskTitle,
        description: Option<TaskDescription>,
    },
    /// Changes the title and/or description. `description: Some(None)` clears it.
    Edit {
        actor: UserId,
        title: Option<TaskTitle>,
        description: Option<Option<TaskDescription>>,
    },
    Complete {
        actor: UserId,
    },
    Reopen {
        actor: UserId,
    },
    Delete {
        actor: UserId,
    },
}

impl TaskCommand {
    /// The user on whose behalf the command runs.
    pub fn actor(&self) -> &UserId {
        match self {
            Self::Create { owner, .. } => owner,
            Self::Edit { actor, .. }
            | Self::Complete { actor }
            | Self::Reopen { actor }
            | Self::Delete { actor } => actor,
        }
    }
}
