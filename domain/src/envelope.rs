//! The messages Taskledger publishes: CloudEvents 1.0 in structured JSON mode,
//! so Dapr subscribers and plain Kafka clients read them alike.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `content-type` header value of every published message.
pub const CLOUDEVENTS_CONTENT_TYPE: &str = "application/cloudevents+json";
/// The `source` attribute of task events.
pub const TASK_EVENT_SOURCE: &str = "taskledger/event-store";

/// A CloudEvents 1.0 envelope around `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CloudEvent<T> {
    pub specversion: String,
    /// Deterministic: the stored event's id, so a redelivered message has the same id.
    pub id: String,
    pub source: String,
    /// Versioned, for example `taskledger.task.completed.v1`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The task id.
    pub subject: String,
    pub time: DateTime<Utc>,
    pub datacontenttype: String,
    /// Ties the event to the request that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlationid: Option<String>,
    /// The W3C trace context of the request that caused it (the CloudEvents
    /// distributed-tracing extension), when that request was traced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub data: T,
}

/// The `data` of a message on `task-events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskEventData {
    /// The stored event type, for example `TaskCompleted`.
    pub event_type: String,
    pub task_id: String,
    /// The event's own fields, as stored.
    pub task_data: serde_json::Value,
    pub user_id: String,
    /// When the change happened (commit time of the event).
    pub timestamp: DateTime<Utc>,
    /// The task's version after this event: 1 for its creation, then +1 per event.
    #[schemars(range(min = 1))]
    pub sequence: crate::Version,
    /// Position in the global log; increases in commit-safe order.
    pub global_position: i64,
    pub schema_version: String,
}

/// The `data` of a message on `reminders`: a reminder that is due.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReminderEventData {
    /// Deterministic per task, reminder and due time, so a replay never
    /// notifies twice.
    pub reminder_id: String,
    pub task_id: String,
    /// Absent when sealed (see `sealed`).
    #[serde(default)]
    pub title: String,
    /// The task's title and tags, sealed with its owner's key
    /// (docs/adr/0014); those fields are then absent. The inbox reads them
    /// from the reminders table, never from the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<serde_json::Value>,
    pub due_at: Option<DateTime<Utc>>,
    pub remind_at: DateTime<Utc>,
    pub user_id: String,
    /// `NONE`, `LOW`, `MEDIUM`, `HIGH` or `URGENT`.
    #[serde(default)]
    pub priority: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// When the scheduler published it.
    pub fired_at: DateTime<Utc>,
    /// How long after `remind_at` it was published: more than a second means
    /// it fell due while nothing ran and fires late, once.
    #[serde(default)]
    pub late_ms: i64,
}

/// A message on `reminders`.
pub type ReminderMessage = CloudEvent<ReminderEventData>;

/// The `source` attribute of task updates.
pub const TASK_UPDATE_SOURCE: &str = "taskledger/task-list";
/// The version of the `task-updates` message, the `v1` of its type. A change
/// a reader could trip on (a field renamed, retyped or removed) makes a new
/// version; a new field does not.
pub const TASK_UPDATE_VERSION: u32 = 1;
/// The CloudEvents `type` of a task update, at [`TASK_UPDATE_VERSION`].
pub const TASK_UPDATE_TYPE: &str = "taskledger.task.updated.v1";

/// The `data` of a message on `task-updates`: one change of one task, with
/// the task as the read model holds it after the change. A type of its own,
/// not the read model's row, so that reworking the read model cannot change
/// what subscribers read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskUpdateData {
    /// The owner's change cursor after this change: changes of one user
    /// arrive in increasing cursor order.
    pub cursor: i64,
    /// The task's owner.
    pub user_id: String,
    /// The list the task is in: a shared list, or its owner's Inbox. Every
    /// member of a shared list hears of its tasks' changes (the message is
    /// keyed by the list there, by the owner in an Inbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_id: Option<uuid::Uuid>,
    pub version: crate::Version,
    pub task: TaskUpdateTask,
}

/// The task in a task update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskUpdateTask {
    pub id: uuid::Uuid,
    /// Its owner.
    pub user_id: String,
    /// The member it is given to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Absent when sealed (see `sealed`).
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// What the owner typed (title, description, tags), sealed with their
    /// key (docs/adr/0014); those fields are then absent. Consumers of ours
    /// read a task from the read model, never from the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<serde_json::Value>,
    /// Whether it is done; whether it is in the trash is `deleted_at`.
    pub status: TaskUpdateStatus,
    /// The version of the last event applied.
    #[schemars(range(min = 1))]
    pub version: crate::Version,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// 0 (none), 1 (low), 2 (medium), 3 (high) or 4 (urgent).
    #[schemars(range(min = 0, max = 4))]
    pub priority: i16,
    /// Lower case, sorted; absent when sealed.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The instant the task falls due (for an all-day task, the end of its day).
    pub due_at: Option<DateTime<Utc>>,
    /// Set for all-day tasks.
    pub due_date: Option<chrono::NaiveDate>,
    /// The IANA zone of the due date and recurrence.
    pub time_zone: Option<String>,
    /// Each reminder as `{"at": instant}` or `{"minutes_before": minutes}`.
    pub reminders: serde_json::Value,
    /// The repeat rule as RRULE text.
    pub recurrence: Option<String>,
    /// Shared by every occurrence of a recurring task.
    pub series_id: Option<uuid::Uuid>,
    /// A recurring task's place in its series, 1 for the first.
    pub occurrence: Option<i32>,
    /// The same as the update's `cursor`.
    pub change_seq: i64,
}

/// Whether a task in a task update is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskUpdateStatus {
    Open,
    Completed,
}

/// A message on `task-updates`.
pub type TaskUpdateMessage = CloudEvent<TaskUpdateData>;

/// The published message types and the file each one's JSON Schema is kept
/// in, under `docs/schemas/`.
pub fn json_schemas() -> Vec<(&'static str, String)> {
    let pretty = |schema: schemars::Schema| {
        serde_json::to_string_pretty(&schema).expect("a schema serializes") + "\n"
    };
    vec![
        (
            "task-event.schema.json",
            pretty(schemars::schema_for!(CloudEvent<TaskEventData>)),
        ),
        (
            "reminder-event.schema.json",
            pretty(schemars::schema_for!(CloudEvent<ReminderEventData>)),
        ),
        (
            "task-update.schema.json",
            pretty(schemars::schema_for!(CloudEvent<TaskUpdateData>)),
        ),
    ]
}

/// The CloudEvents `type` for a stored event: `TaskCompleted` version `1.0`
/// becomes `taskledger.task.completed.v1`.
pub fn task_cloud_event_type(event_type: &str, event_version: &str) -> String {
    let name = event_type.strip_prefix("Task").unwrap_or(event_type);
    let mut snake = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    let major = event_version.split('.').next().unwrap_or("1");
    format!("taskledger.task.{snake}.v{major}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Analytics consumers validate against the committed schemas; they must
    /// describe what is published. Regenerate with
    /// `UPDATE_SCHEMAS=1 cargo test -p domain committed_schemas`.
    #[test]
    fn committed_schemas_match_the_types() {
        // The runner's directory of this crate, not the one it was compiled
        // in: a build reused from another checkout must read this one's files.
        let crate_dir = std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
        let dir = std::path::Path::new(&crate_dir).join("../docs/schemas");
        for (file, generated) in json_schemas() {
            let path = dir.join(file);
            if std::env::var_os("UPDATE_SCHEMAS").is_some() {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &generated).unwrap();
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == generated,
                "docs/schemas/{file} is out of date with the Rust types; \
                 run UPDATE_SCHEMAS=1 cargo test -p domain committed_schemas"
            );
        }
    }

    #[test]
    fn a_published_task_event_validates_its_shape() {
        let (_, schema) = &json_schemas()[0];
        let schema: serde_json::Value = serde_json::from_str(schema).unwrap();
        let required = schema["required"].as_array().unwrap();
        for field in [
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "data",
        ] {
            assert!(
                required.contains(&serde_json::json!(field)),
                "{field} is required"
            );
        }
    }

    #[test]
    fn the_task_update_type_carries_its_version() {
        assert_eq!(
            TASK_UPDATE_TYPE,
            format!("taskledger.task.updated.v{TASK_UPDATE_VERSION}")
        );
    }

    #[test]
    fn cloud_event_types_are_versioned_snake_case() {
        assert_eq!(
            task_cloud_event_type("TaskCompleted", "1.0"),
            "taskledger.task.completed.v1"
        );
        assert_eq!(
            task_cloud_event_type("TaskDueDateSet", "2.0"),
            "taskledger.task.due_date_set.v2"
        );
    }
}
