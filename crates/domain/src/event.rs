//! Past-tense facts about a task. `event_type` strings and the shape of each
//! version are stable forever: a change adds a new version and an upcaster.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::values::{TaskId, UserId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskEvent {
    TaskCreated {
        task_id: TaskId,
        user_id: UserId,
        title: String,
        description: Option<String>,
        created_at: DateTime<Utc>,
    },
    /// Carries the full new title and description so projections need no lookup.
    TaskEdited {
        title: String,
        description: Option<String>,
        edited_at: DateTime<Utc>,
    },
    TaskCompleted {
        completed_at: DateTime<Utc>,
    },
    TaskReopened {
        reopened_at: DateTime<Utc>,
    },
    TaskDeleted {
        deleted_at: DateTime<Utc>,
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
        }
    }

    /// The version of this event's payload shape.
    pub fn version(&self) -> u32 {
        1
    }

    /// When the change happened, as decided by the aggregate.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Self::TaskCreated { created_at: at, .. }
            | Self::TaskEdited { edited_at: at, .. }
            | Self::TaskCompleted { completed_at: at }
            | Self::TaskReopened { reopened_at: at }
            | Self::TaskDeleted { deleted_at: at } => *at,
        }
    }
}

impl DomainEvent for TaskEvent {
    fn event_type(&self) -> String {
        self.name().to_owned()
    }

    fn event_version(&self) -> String {
        format!("{}.0", self.version())
    }
}
