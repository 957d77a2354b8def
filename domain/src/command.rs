//! What a user can ask of a task. Every command names the acting user, whom the
//! aggregate checks against the task's owner for a task in their Inbox; in a
//! shared list the commit checks their membership (docs/adr/0016).

use crate::values::{
    Due, Priority, Recurrence, Reminder, TagSet, TaskDescription, TaskId, TaskTitle, UserId,
};
use crate::NextOccurrence;

/// Everything a new task may start with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewTask {
    pub description: Option<TaskDescription>,
    pub priority: Priority,
    pub tags: TagSet,
    pub due: Option<Due>,
    pub reminders: Vec<Reminder>,
    pub recurrence: Option<Recurrence>,
    /// The shared list it starts in; `None`: the creator's Inbox.
    pub list: Option<uuid::Uuid>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TaskCommand {
    Create {
        task_id: TaskId,
        owner: UserId,
        title: TaskTitle,
        details: NewTask,
    },
    /// The next occurrence of a series, exactly as the completion of the one
    /// before decided it; created by the recurrence processor.
    CreateOccurrence(NextOccurrence),
    /// Changes the title and/or description. `description: Some(None)` clears it.
    Edit {
        actor: UserId,
        title: Option<TaskTitle>,
        description: Option<Option<TaskDescription>>,
    },
    SetPriority {
        actor: UserId,
        priority: Priority,
    },
    AddTags {
        actor: UserId,
        tags: TagSet,
    },
    RemoveTags {
        actor: UserId,
        tags: TagSet,
    },
    SetDueDate {
        actor: UserId,
        due: Due,
    },
    ClearDueDate {
        actor: UserId,
    },
    SetReminders {
        actor: UserId,
        reminders: Vec<Reminder>,
    },
    SetRecurrence {
        actor: UserId,
        rule: Recurrence,
    },
    ClearRecurrence {
        actor: UserId,
    },
    /// Marks the task done; with `stop_repeating`, its series ends here.
    Complete {
        actor: UserId,
        stop_repeating: bool,
    },
    Reopen {
        actor: UserId,
    },
    Delete {
        actor: UserId,
    },
    Restore {
        actor: UserId,
    },
    /// Moves the task to shared list `to`, or (`None`) to the actor's Inbox.
    Move {
        actor: UserId,
        to: Option<uuid::Uuid>,
    },
    /// Gives the task to `assignee`, a member of its list, or to no one.
    Assign {
        actor: UserId,
        assignee: Option<UserId>,
    },
    /// Brings the task back to `earlier`, the task as it stood at
    /// `to_version` (folded from the store by the caller).
    Revert {
        actor: UserId,
        to_version: crate::Version,
        earlier: Box<crate::Task>,
    },
}

impl TaskCommand {
    /// The user on whose behalf the command runs.
    pub fn actor(&self) -> &UserId {
        match self {
            Self::Create { owner, .. } => owner,
            Self::CreateOccurrence(next) => &next.owner,
            Self::Edit { actor, .. }
            | Self::SetPriority { actor, .. }
            | Self::AddTags { actor, .. }
            | Self::RemoveTags { actor, .. }
            | Self::SetDueDate { actor, .. }
            | Self::ClearDueDate { actor }
            | Self::SetReminders { actor, .. }
            | Self::SetRecurrence { actor, .. }
            | Self::ClearRecurrence { actor }
            | Self::Complete { actor, .. }
            | Self::Reopen { actor }
            | Self::Delete { actor }
            | Self::Restore { actor }
            | Self::Move { actor, .. }
            | Self::Assign { actor, .. }
            | Self::Revert { actor, .. } => actor,
        }
    }
}
