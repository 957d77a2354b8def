//! A task-list row folded in memory: a batch applies every event of a task
//! to its row here, so the row is written once per batch whatever the number
//! of its events (and its search words computed once, when its text changed).

use chrono::{DateTime, NaiveDate, Utc};
use domain::list::inbox_of;
use domain::values::Reminders;
use domain::{TaskEvent, Version};
use uuid::Uuid;

use crate::consumer::ProjectionError;

/// The columns of a `task_list` row the projection writes; the derived ones
/// (search words, sort keys, the change number) are Postgres's.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub(super) struct Fields {
    pub id: Uuid,
    /// The key it is read under ([`reader_key`]).
    pub user_id: String,
    /// Its list: a shared one, or its owner's Inbox.
    pub list_id: Uuid,
    pub owner: String,
    pub assignee: Option<String>,
    pub title: String,
    pub description: Option<String>,
    /// `status = 'completed'`.
    pub completed: bool,
    pub version: Version,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// [`domain::values::Priority::rank`].
    pub priority: i16,
    pub tags: Vec<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub due_date: Option<NaiveDate>,
    pub time_zone: Option<String>,
    pub reminders: serde_json::Value,
    pub recurrence: Option<String>,
    pub series_id: Option<Uuid>,
    pub occurrence: Option<i32>,
}

/// Selects [`Fields`] from `task_list`.
pub(super) const FIELDS: &str =
    "id, user_id, list_id, owner, assignee, title, description, status = 'completed' AS completed, \
     version, created_at, updated_at, completed_at, deleted_at, priority, tags, due_at, due_date, \
     time_zone, reminders, recurrence, series_id, occurrence";

impl Fields {
    /// The row a task's creation (its event `version`, the first) makes.
    pub fn created(id: Uuid, version: Version, event: TaskEvent) -> Result<Self, ProjectionError> {
        let TaskEvent::TaskCreated {
            user_id: owner,
            list_id,
            title,
            description,
            created_at,
            priority,
            tags,
            due,
            reminders,
            series,
            ..
        } = event
        else {
            return Err(ProjectionError::Invalid(format!(
                "event {version} of task {id} has no task to apply to"
            )));
        };
        Ok(Self {
            id,
            user_id: reader_key(list_id, owner.as_str()),
            list_id: list_id.unwrap_or_else(|| inbox_of(&owner)),
            owner: owner.as_str().to_owned(),
            assignee: None,
            title,
            description,
            completed: false,
            version,
            created_at,
            updated_at: created_at,
            completed_at: None,
            deleted_at: None,
            priority: priority.rank(),
            tags: tags.to_strings(),
            due_at: due.map(|d| d.instant()),
            due_date: due.and_then(|d| d.date()),
            time_zone: due.map(|d| d.time_zone.to_string()),
            reminders: to_json(&reminders)?,
            recurrence: series.as_ref().map(|s| s.rule.as_str().to_owned()),
            series_id: series.as_ref().map(|s| s.id),
            occurrence: series.as_ref().map(|s| s.occurrence as i32),
        })
    }

    /// Applies the task's event `version`, recorded `at`.
    pub fn apply(
        &mut self,
        version: Version,
        at: DateTime<Utc>,
        event: TaskEvent,
    ) -> Result<(), ProjectionError> {
        match event {
            TaskEvent::TaskCreated { .. } => {
                return Err(ProjectionError::Invalid(format!(
                    "event {version} of task {} creates it again",
                    self.id
                )))
            }
            TaskEvent::TaskEdited {
                title, description, ..
            } => {
                if let Some(title) = title {
                    self.title = title;
                }
                if let Some(description) = description {
                    self.description = description;
                }
            }
            TaskEvent::TaskCompleted {
                completed_at,
                stopped_repeating,
                ..
            } => {
                self.completed = true;
                self.completed_at = Some(completed_at);
                if stopped_repeating {
                    self.clear_recurrence();
                }
            }
            TaskEvent::TaskReopened { .. } => {
                self.completed = false;
                self.completed_at = None;
            }
            TaskEvent::TaskDeleted { deleted_at } => self.deleted_at = Some(deleted_at),
            TaskEvent::TaskRestored { .. } => self.deleted_at = None,
            TaskEvent::TaskPrioritySet { priority, .. } => self.priority = priority.rank(),
            TaskEvent::TaskTagsChanged { tags, .. } => self.tags = tags.to_strings(),
            TaskEvent::TaskDueDateSet { due, .. } => {
                self.due_at = Some(due.instant());
                self.due_date = due.date();
                self.time_zone = Some(due.time_zone.to_string());
            }
            TaskEvent::TaskDueDateCleared { .. } => {
                self.due_at = None;
                self.due_date = None;
                self.time_zone = None;
            }
            TaskEvent::TaskRemindersSet { reminders, .. } => self.reminders = to_json(&reminders)?,
            TaskEvent::TaskRecurrenceSet { series, .. } => {
                self.recurrence = Some(series.rule.as_str().to_owned());
                self.series_id = Some(series.id);
                self.occurrence = Some(series.occurrence as i32);
            }
            TaskEvent::TaskRecurrenceCleared { .. } => self.clear_recurrence(),
            TaskEvent::TaskMoved { list_id, owner, .. } => {
                self.user_id = reader_key(list_id, owner.as_str());
                self.list_id = list_id.unwrap_or_else(|| inbox_of(&owner));
                self.owner = owner.as_str().to_owned();
                self.assignee = None;
            }
            TaskEvent::TaskAssigned { assignee, .. } => {
                self.assignee = assignee.map(|a| a.as_str().to_owned());
            }
            TaskEvent::TaskReverted {
                title,
                description,
                priority,
                tags,
                due,
                reminders,
                completed,
                at: reverted_at,
                ..
            } => {
                self.title = title;
                self.description = description;
                self.priority = priority.rank();
                self.tags = tags.to_strings();
                self.due_at = due.as_ref().map(|due| due.instant());
                self.due_date = due.as_ref().and_then(|due| due.date());
                self.time_zone = due.as_ref().map(|due| due.time_zone.to_string());
                self.reminders = to_json(&reminders)?;
                if completed != self.completed {
                    self.completed_at = completed.then_some(reverted_at);
                }
                self.completed = completed;
            }
        }
        self.version = version;
        self.updated_at = at;
        Ok(())
    }

    fn clear_recurrence(&mut self) {
        self.recurrence = None;
        self.series_id = None;
        self.occurrence = None;
    }
}

/// The key a task's row is read under: its owner's id while it is in their
/// Inbox (`list` absent), `list <id>` while it is in a shared list. A user id
/// holds no whitespace, so the two never meet (docs/adr/0016).
pub fn reader_key(list: Option<Uuid>, owner: &str) -> String {
    match list {
        Some(list) => list_reader_key(list),
        None => owner.to_owned(),
    }
}

/// The key the tasks of shared list `list` are read under.
pub fn list_reader_key(list: Uuid) -> String {
    format!("list {list}")
}

fn to_json(reminders: &Reminders) -> Result<serde_json::Value, ProjectionError> {
    serde_json::to_value(reminders).map_err(|e| ProjectionError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use domain::values::{Priority, TagSet};

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn created() -> Fields {
        let event = TaskEvent::TaskCreated {
            task_id: domain::values::TaskId::from(Uuid::nil()),
            user_id: domain::values::UserId::parse("ada").unwrap(),
            title: "buy milk".into(),
            description: None,
            created_at: at(10),
            priority: Priority::Low,
            tags: TagSet::default(),
            due: None,
            reminders: Reminders::default(),
            series: None,
            list_id: None,
        };
        Fields::created(Uuid::nil(), 1, event).unwrap()
    }

    #[test]
    fn a_task_folds_its_events_in_order_into_one_row() {
        let mut row = created();
        assert_eq!(row.updated_at, row.created_at);
        row.apply(
            2,
            at(20),
            TaskEvent::TaskEdited {
                title: Some("buy oat milk".into()),
                description: Some(Some("the big one".into())),
                edited_at: at(20),
            },
        )
        .unwrap();
        row.apply(
            3,
            at(30),
            TaskEvent::TaskCompleted {
                completed_at: at(30),
                next_occurrence: None,
                stopped_repeating: false,
            },
        )
        .unwrap();
        row.apply(4, at(40), TaskEvent::TaskDeleted { deleted_at: at(40) })
            .unwrap();
        row.apply(
            5,
            at(50),
            TaskEvent::TaskRestored {
                restored_at: at(50),
            },
        )
        .unwrap();
        assert_eq!(row.title, "buy oat milk");
        assert_eq!(row.description.as_deref(), Some("the big one"));
        assert!(row.completed);
        assert_eq!(row.completed_at, Some(at(30)));
        assert_eq!(row.deleted_at, None);
        assert_eq!((row.version, row.updated_at), (5, at(50)));
        row.apply(
            6,
            at(60),
            TaskEvent::TaskReopened {
                reopened_at: at(60),
            },
        )
        .unwrap();
        assert!(!row.completed);
        assert_eq!(row.completed_at, None);
    }

    #[test]
    fn a_second_creation_is_refused_and_changes_nothing() {
        let mut row = created();
        let before = row.clone();
        let again = TaskEvent::TaskCreated {
            task_id: domain::values::TaskId::from(Uuid::nil()),
            user_id: domain::values::UserId::parse("ada").unwrap(),
            title: "other".into(),
            description: None,
            created_at: at(99),
            priority: Priority::High,
            tags: TagSet::default(),
            due: None,
            reminders: Reminders::default(),
            series: None,
            list_id: None,
        };
        assert!(row.apply(2, at(99), again.clone()).is_err());
        assert_eq!(row, before);
        let edited = TaskEvent::TaskEdited {
            title: Some("x".into()),
            description: None,
            edited_at: at(1),
        };
        assert!(Fields::created(Uuid::nil(), 1, edited).is_err());
    }
}
