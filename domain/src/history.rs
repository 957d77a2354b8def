//! A task's history as an auditor reads it: for each event, which fields of
//! the task it changed, from what to what. Computed by folding, so an event
//! says what it did to the task as it stood, whatever its shape.

use serde::Serialize;
use serde_json::Value;

use crate::Task;

/// One field an event changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    /// `null` where the field had no value.
    pub old: Value,
    pub new: Value,
}

/// Bookkeeping of the aggregate, not a field of the task.
const INTERNAL: &[&str] = &["next_started"];

/// The task's fields as history names them (what an export shows as the
/// task's state): its serialized form, without the aggregate's bookkeeping.
pub fn fields(task: &Task) -> serde_json::Map<String, Value> {
    let Ok(Value::Object(mut fields)) = serde_json::to_value(task) else {
        return serde_json::Map::new();
    };
    fields.retain(|field, _| !INTERNAL.contains(&field.as_str()));
    fields
}

/// The fields that differ between `before` and `after`, in a stable order.
pub fn changes(before: &Task, after: &Task) -> Vec<FieldChange> {
    let (Ok(Value::Object(before)), Ok(Value::Object(after))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Vec::new();
    };
    after
        .iter()
        .filter(|(field, _)| !INTERNAL.contains(&field.as_str()))
        .filter_map(|(field, new)| {
            let old = before.get(field).cloned().unwrap_or(Value::Null);
            (old != *new).then(|| FieldChange {
                field: field.clone(),
                old,
                new: new.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Utc};
    use cqrs_es::Aggregate;

    use super::*;
    use crate::values::{Priority, Reminders, TagSet, TaskId, UserId};
    use crate::TaskEvent;

    #[test]
    fn an_event_shows_the_fields_it_changed_and_nothing_else() {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
        let mut task = Task::default();
        task.apply(TaskEvent::TaskCreated {
            task_id: TaskId::parse("0192f0c1-0000-7000-8000-000000000001").unwrap(),
            user_id: UserId::parse("alice").unwrap(),
            title: "Buy milk".into(),
            description: None,
            created_at: at,
            priority: Priority::None,
            tags: TagSet::default(),
            due: None,
            reminders: Reminders::default(),
            series: None,
            list_id: None,
        });
        let before = task.clone();
        task.apply(TaskEvent::TaskEdited {
            title: Some("Buy oat milk".into()),
            description: Some(Some("2 litres".into())),
            edited_at: at,
        });
        let changed = changes(&before, &task);
        assert_eq!(
            changed,
            vec![
                FieldChange {
                    field: "description".into(),
                    old: Value::Null,
                    new: "2 litres".into()
                },
                FieldChange {
                    field: "title".into(),
                    old: "Buy milk".into(),
                    new: "Buy oat milk".into()
                },
            ]
        );
        let creation = changes(&Task::default(), &before);
        assert!(creation
            .iter()
            .any(|c| c.field == "title" && c.new == "Buy milk"));
        assert!(creation.iter().all(|c| c.field != "next_started"));
    }
}
