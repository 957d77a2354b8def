//! The messages Taskledger publishes: CloudEvents 1.0 in structured JSON mode,
//! so Dapr subscribers and plain Kafka clients read them alike.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The `content-type` header value of every published message.
pub const CLOUDEVENTS_CONTENT_TYPE: &str = "application/cloudevents+json";
/// The `source` attribute of task events.
pub const TASK_EVENT_SOURCE: &str = "taskledger/event-store";

/// A CloudEvents 1.0 envelope around `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub data: T,
}

/// The `data` of a message on `task-events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub sequence: u64,
    /// Position in the global log; increases in commit-safe order.
    pub global_position: i64,
    pub schema_version: String,
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
