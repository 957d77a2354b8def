//! Past-tense facts about a task. `event_type` strings and the shape of each
//! version are stable forever: a change adds a new version and an upcaster
//! (see `upcast.rs`).

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::{Due, Priority, Recurrence, Reminders, TagSet, TaskId, UserId};

/// A recurring task's place in its series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Shared by every occurrence of the series.
    pub id: Uuid,
    pub rule: Recurrence,
    /// The first occurrence's due instant: where the rule is evaluated from.
    pub start: DateTime<Utc>,
    /// 1 for the first occurrence, then +1 for each next one.
    pub occurrence: u32,
}

/// The next occurrence a completion calls for, decided wholly by the
/// aggregate: everything the next task starts with, so the recurrence
/// processor only creates it. (Version 2 of `TaskCompleted` carried the id,
/// due date and occurrence number alone; version 3 carries the whole task.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextOccurrence {
    /// Deterministic: the same completion always names the same next task.
    pub task_id: TaskId,
    pub owner: UserId,
    pub title: String,
    pub description: Option<String>,
    pub priority: Priority,
    pub tags: TagSet,
    pub due: Due,
    /// The completed occurrence's reminders: offsets as they are, absolute
    /// reminders moved by as much as the due time moved.
    pub reminders: Reminders,
    /// The series, at the next occurrence's number.
    pub series: Series,
    /// The shared list the completed occurrence was in (`None`: its owner's
    /// Inbox); the next one starts there too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskEvent {
    /// Version 2 added priority, tags, due, reminders and series.
    TaskCreated {
        task_id: TaskId,
        user_id: UserId,
        title: String,
        description: Option<String>,
        created_at: DateTime<Utc>,
        priority: Priority,
        tags: TagSet,
        due: Option<Due>,
        reminders: Reminders,
        series: Option<Series>,
        /// The shared list it starts in; absent: its owner's Inbox (every
        /// task stored before lists were, docs/adr/0016).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        list_id: Option<Uuid>,
    },
    /// Carries what the edit changed, in full: `title` if it changed,
    /// `description` if it changed (`null`: cleared). Version 1 carried
    /// both, which read as both changed; version 2 leaves out the other, so
    /// an event holds no text its writer did not type (what another member
    /// typed stays sealed with their key alone, ADR 0014).
    TaskEdited {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        description: Option<Option<String>>,
        edited_at: DateTime<Utc>,
    },
    /// Version 2 added `next_occurrence` and `stopped_repeating`; version 3
    /// made `next_occurrence` the whole next task.
    TaskCompleted {
        completed_at: DateTime<Utc>,
        next_occurrence: Option<NextOccurrence>,
        stopped_repeating: bool,
    },
    TaskReopened {
        reopened_at: DateTime<Utc>,
    },
    TaskDeleted {
        deleted_at: DateTime<Utc>,
    },
    TaskRestored {
        restored_at: DateTime<Utc>,
    },
    TaskPrioritySet {
        priority: Priority,
        at: DateTime<Utc>,
    },
    /// The whole new set, whether tags were added or removed.
    TaskTagsChanged {
        tags: TagSet,
        at: DateTime<Utc>,
    },
    TaskDueDateSet {
        due: Due,
        at: DateTime<Utc>,
    },
    TaskDueDateCleared {
        at: DateTime<Utc>,
    },
    TaskRemindersSet {
        reminders: Reminders,
        at: DateTime<Utc>,
        /// Who set them, when not the task's owner (a member of its shared
        /// list): they fire to whoever set them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        set_by: Option<UserId>,
    },
    TaskRecurrenceSet {
        series: Series,
        at: DateTime<Utc>,
    },
    TaskRecurrenceCleared {
        at: DateTime<Utc>,
    },
    /// The task moved to another list: a shared one, or (`list_id` absent)
    /// the Inbox of `owner`, who moved it there and owns it from then on.
    /// Whoever was assigned is no longer (they may not be a member there).
    TaskMoved {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        list_id: Option<Uuid>,
        owner: UserId,
        at: DateTime<Utc>,
    },
    /// The task given to a member of its list to do, or (`assignee` absent)
    /// to no one.
    TaskAssigned {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignee: Option<UserId>,
        at: DateTime<Utc>,
    },
    /// The task brought back to the values it had at version `to_version`:
    /// its text, priority, tags, due date, reminders and whether it was done
    /// (its recurrence stays as it is). The restored values are carried, so
    /// projections and auditors need no lookup; the history keeps both.
    TaskReverted {
        to_version: crate::Version,
        title: String,
        description: Option<String>,
        priority: Priority,
        tags: TagSet,
        due: Option<Due>,
        reminders: Reminders,
        completed: bool,
        at: DateTime<Utc>,
    },
}

impl TaskEvent {
    /// The stable name of this event, as stored in the event store.
    pub fn name(&self) -> &'static str {
        match self {
            Self::TaskCreated { .. } => "TaskCreated",
            Self::TaskEdited { .. } => "TaskEdited",
            Self::TaskCompleted { .. } => "TaskCompleted",
            Self::TaskReopened { .. } => "TaskReopened",
            Self::TaskDeleted { .. } => "TaskDeleted",
            Self::TaskRestored { .. } => "TaskRestored",
            Self::TaskPrioritySet { .. } => "TaskPrioritySet",
            Self::TaskTagsChanged { .. } => "TaskTagsChanged",
            Self::TaskDueDateSet { .. } => "TaskDueDateSet",
            Self::TaskDueDateCleared { .. } => "TaskDueDateCleared",
            Self::TaskRemindersSet { .. } => "TaskRemindersSet",
            Self::TaskRecurrenceSet { .. } => "TaskRecurrenceSet",
            Self::TaskRecurrenceCleared { .. } => "TaskRecurrenceCleared",
            Self::TaskReverted { .. } => "TaskReverted",
            Self::TaskMoved { .. } => "TaskMoved",
            Self::TaskAssigned { .. } => "TaskAssigned",
        }
    }

    /// The version of this event's payload shape: its major number in
    /// [`crate::upcast::current_version`], the one table of versions.
    pub fn version(&self) -> u32 {
        let current = crate::upcast::current_version(self.name());
        current
            .split('.')
            .next()
            .and_then(|major| major.parse().ok())
            .expect("versions are written MAJOR.MINOR")
    }
}

impl DomainEvent for TaskEvent {
    fn event_type(&self) -> String {
        self.name().to_owned()
    }

    fn event_version(&self) -> String {
        crate::upcast::current_version(self.name()).to_owned()
    }
}

/// A field that may be absent (`None`), present as `null` (`Some(None)`)
/// or present with a value.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
