//! Upcasters: stored payloads of older event versions rewritten into the
//! current shape before they are deserialized. Used by the event store when it
//! loads aggregates and by projections when they read events.

use serde_json::{json, Value};

/// The current version of `event_type`'s payload.
pub fn current_version(event_type: &str) -> &'static str {
    match event_type {
        "TaskCompleted" => "3.0",
        "TaskCreated" | "TaskEdited" => "2.0",
        _ => "1.0",
    }
}

/// Whether [`upcast`] changes events of this type and version.
pub fn needs_upcast(event_type: &str, event_version: &str) -> bool {
    matches!(
        (event_type, event_version),
        ("TaskCreated", "1.0") | ("TaskCompleted", "1.0" | "2.0")
    )
}

/// Rewrites the event's own fields (the object under its type name) from
/// `event_version` to the current version.
pub fn upcast(event_type: &str, event_version: &str, mut data: Value) -> Value {
    if let Value::Object(fields) = &mut data {
        match (event_type, event_version) {
            ("TaskCreated", "1.0") => {
                fields.insert("priority".into(), json!("NONE"));
                fields.insert("tags".into(), json!([]));
                fields.insert("due".into(), Value::Null);
                fields.insert("reminders".into(), json!([]));
                fields.insert("series".into(), Value::Null);
            }
            ("TaskCompleted", "1.0") => {
                fields.insert("next_occurrence".into(), Value::Null);
                fields.insert("stopped_repeating".into(), json!(false));
            }
            // Version 2 named the next occurrence by id, due date and number
            // alone; the rest of it is in the task's history, which an
            // upcaster cannot read. The recurrence processor carries out such
            // a completion from the history (see [`legacy_next_occurrence`]).
            ("TaskCompleted", "2.0") => {
                fields.insert("next_occurrence".into(), Value::Null);
            }
            _ => {}
        }
    }
    data
}

/// Whether a stored completion of version 2 called for a next occurrence: its
/// next task is decided from the history up to it
/// ([`crate::Task::next_occurrence`] of the task just before it).
pub fn legacy_next_occurrence(event_type: &str, event_version: &str, data: &Value) -> bool {
    (event_type, event_version) == ("TaskCompleted", "2.0")
        && data
            .get("next_occurrence")
            .is_some_and(|next| !next.is_null())
}

/// The stored payload `{"<event_type>": {...}}` as a current [`crate::TaskEvent`].
pub fn parse_stored(
    event_type: &str,
    event_version: &str,
    data: Value,
) -> Result<crate::TaskEvent, serde_json::Error> {
    let data = upcast(event_type, event_version, data);
    serde_json::from_value(json!({ event_type: data }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Priority;
    use crate::TaskEvent;

    #[test]
    fn a_version_1_creation_reads_as_a_plain_task() {
        let stored = json!({
            "task_id": "0192f0c1-0000-7000-8000-000000000001",
            "user_id": "alice",
            "title": "old",
            "description": null,
            "created_at": "2025-01-01T00:00:00Z"
        });
        assert!(
            serde_json::from_value::<TaskEvent>(json!({ "TaskCreated": stored.clone() })).is_err(),
            "version 1 does not fit the current shape without the upcaster"
        );
        let TaskEvent::TaskCreated {
            priority,
            tags,
            due,
            series,
            ..
        } = parse_stored("TaskCreated", "1.0", stored).unwrap()
        else {
            panic!("not a creation");
        };
        assert_eq!(priority, Priority::None);
        assert!(tags.is_empty() && due.is_none() && series.is_none());
    }

    #[test]
    fn a_version_1_completion_starts_no_next_occurrence() {
        let event = parse_stored(
            "TaskCompleted",
            "1.0",
            json!({ "completed_at": "2025-01-01T00:00:00Z" }),
        )
        .unwrap();
        assert!(matches!(
            event,
            TaskEvent::TaskCompleted {
                next_occurrence: None,
                stopped_repeating: false,
                ..
            }
        ));
        assert!(needs_upcast("TaskCompleted", "1.0"));
        assert!(needs_upcast("TaskCompleted", "2.0"));
        // What the store records for a new completion is what is current.
        assert_eq!(
            cqrs_es::DomainEvent::event_version(&event),
            current_version("TaskCompleted")
        );
        assert!(!needs_upcast(
            "TaskCompleted",
            current_version("TaskCompleted")
        ));
    }

    #[test]
    fn a_version_2_completion_reads_without_its_next_occurrence_and_is_flagged() {
        let stored = json!({
            "completed_at": "2025-01-01T00:00:00Z",
            "next_occurrence": {
                "task_id": "0192f0c1-0000-7000-8000-000000000002",
                "due": { "at": "2025-01-02T00:00:00Z", "time_zone": "UTC" },
                "occurrence": 2
            },
            "stopped_repeating": false
        });
        assert!(legacy_next_occurrence("TaskCompleted", "2.0", &stored));
        assert!(!legacy_next_occurrence(
            "TaskCompleted",
            "2.0",
            &json!({ "next_occurrence": null })
        ));
        let event = parse_stored("TaskCompleted", "2.0", stored).unwrap();
        assert!(matches!(
            event,
            TaskEvent::TaskCompleted {
                next_occurrence: None,
                ..
            }
        ));
    }
}
