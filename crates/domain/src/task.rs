//! The `Task` aggregate: `handle` holds every business rule and decides which
//! events happen; `apply` only folds an event into state.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::values::{TaskId, UserId};
use crate::{TaskCommand, TaskError, TaskEvent, TaskServices};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskStatus {
    #[default]
    Open,
    Completed,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    id: Option<TaskId>,
    owner: Option<UserId>,
    title: String,
    description: Option<String>,
    status: TaskStatus,
    deleted_at: Option<DateTime<Utc>>,
}

impl Task {
    pub fn id(&self) -> Option<TaskId> {
        self.id
    }

    pub fn owner(&self) -> Option<&UserId> {
        self.owner.as_ref()
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    pub fn status(&self) -> TaskStatus {
        self.status
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// Refuses anyone but the owner, and answers a stranger exactly as if the
    /// task did not exist.
    fn ensure_owned_by(&self, actor: &UserId) -> Result<(), TaskError> {
        match &self.owner {
            Some(owner) if owner == actor => Ok(()),
            _ => Err(TaskError::NotFound),
        }
    }

    fn ensure_live(&self, actor: &UserId) -> Result<(), TaskError> {
        self.ensure_owned_by(actor)?;
        if self.is_deleted() {
            return Err(TaskError::Deleted);
        }
        Ok(())
    }

    fn decide(
        &self,
        command: TaskCommand,
        services: &TaskServices,
    ) -> Result<Option<TaskEvent>, TaskError> {
        let now = services.clock.now();
        let event = match command {
            TaskCommand::Create {
                task_id,
                owner,
                title,
                description,
            } => {
                if self.id.is_some() {
                    return Err(TaskError::AlreadyExists);
                }
                TaskEvent::TaskCreated {
                    task_id,
                    user_id: owner,
                    title: title.as_str().to_owned(),
                    description: description.map(|d| d.as_str().to_owned()),
                    created_at: now,
                }
            }
            TaskCommand::Edit {
                actor,
                title,
                description,
            } => {
                self.ensure_live(&actor)?;
                let title = title.map_or_else(|| self.title.clone(), |t| t.as_str().to_owned());
                let description = match description {
                    Some(new) => new.map(|d| d.as_str().to_owned()),
                    None => self.description.clone(),
                };
                if title == self.title && description == self.description {
                    return Ok(None);
                }
                TaskEvent::TaskEdited {
                    title,
                    description,
                    edited_at: now,
                }
            }
            TaskCommand::Complete { actor } => {
                self.ensure_live(&actor)?;
                if self.status == TaskStatus::Completed {
                    return Ok(None);
                }
                TaskEvent::TaskCompleted { completed_at: now }
            }
            TaskCommand::Reopen { actor } => {
                self.ensure_live(&actor)?;
                if self.status == TaskStatus::Open {
                    return Ok(None);
                }
                TaskEvent::TaskReopened { reopened_at: now }
            }
            TaskCommand::Delete { actor } => {
                self.ensure_owned_by(&actor)?;
                if self.is_deleted() {
                    return Ok(None);
                }
                TaskEvent::TaskDeleted { deleted_at: now }
            }
        };
        Ok(Some(event))
    }
}

impl Aggregate for Task {
    const TYPE: &'static str = "Task";
    type Command = TaskCommand;
    type Event = TaskEvent;
    type Error = TaskError;
    type Services = TaskServices;

    /// Repeating a command whose effect already holds (completing a completed
    /// task, deleting a deleted one) records nothing, so client retries are safe.
    async fn handle(
        &mut self,
        command: TaskCommand,
        services: &TaskServices,
        sink: &EventSink<Self>,
    ) -> Result<(), TaskError> {
        if let Some(event) = self.decide(command, services)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: TaskEvent) {
        match event {
            TaskEvent::TaskCreated {
                task_id,
                user_id,
                title,
                description,
                ..
            } => {
                self.id = Some(task_id);
                self.owner = Some(user_id);
                self.title = title;
                self.description = description;
            }
            TaskEvent::TaskEdited {
                title, description, ..
            } => {
                self.title = title;
                self.description = description;
            }
            TaskEvent::TaskCompleted { .. } => self.status = TaskStatus::Completed,
            TaskEvent::TaskReopened { .. } => self.status = TaskStatus::Open,
            TaskEvent::TaskDeleted { deleted_at } => self.deleted_at = Some(deleted_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::values::{TaskDescription, TaskTitle};
    use crate::Clock;

    struct FixedClock(DateTime<Utc>);

    impl Clock for FixedClock {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap()
    }

    fn task() -> TestFramework<Task> {
        TestFramework::with(TaskServices::new(Arc::new(FixedClock(now()))))
    }

    fn alice() -> UserId {
        UserId::parse("alice").unwrap()
    }

    fn bob() -> UserId {
        UserId::parse("bob").unwrap()
    }

    fn id() -> TaskId {
        TaskId::parse("0192f0c1-0000-7000-8000-000000000001").unwrap()
    }

    fn created() -> TaskEvent {
        TaskEvent::TaskCreated {
            task_id: id(),
            user_id: alice(),
            title: "Buy milk".into(),
            description: None,
            created_at: now(),
        }
    }

    fn deleted() -> TaskEvent {
        TaskEvent::TaskDeleted { deleted_at: now() }
    }

    fn completed() -> TaskEvent {
        TaskEvent::TaskCompleted {
            completed_at: now(),
        }
    }

    #[test]
    fn create_records_the_task() {
        task()
            .given_no_previous_events()
            .when(TaskCommand::Create {
                task_id: id(),
                owner: alice(),
                title: TaskTitle::parse("Buy milk").unwrap(),
                description: None,
            })
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn create_twice_is_refused() {
        task()
            .given(vec![created()])
            .when(TaskCommand::Create {
                task_id: id(),
                owner: alice(),
                title: TaskTitle::parse("Again").unwrap(),
                description: None,
            })
            .then_expect_error(TaskError::AlreadyExists);
    }

    #[test]
    fn edit_records_the_full_new_text() {
        task()
            .given(vec![created()])
            .when(TaskCommand::Edit {
                actor: alice(),
                title: None,
                description: Some(Some(TaskDescription::parse("2 litres").unwrap())),
            })
            .then_expect_events(vec![TaskEvent::TaskEdited {
                title: "Buy milk".into(),
                description: Some("2 litres".into()),
                edited_at: now(),
            }]);
    }

    #[test]
    fn edit_that_changes_nothing_records_nothing() {
        task()
            .given(vec![created()])
            .when(TaskCommand::Edit {
                actor: alice(),
                title: Some(TaskTitle::parse("Buy milk").unwrap()),
                description: None,
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn editing_a_missing_task_is_not_found() {
        task()
            .given_no_previous_events()
            .when(TaskCommand::Edit {
                actor: alice(),
                title: Some(TaskTitle::parse("x").unwrap()),
                description: None,
            })
            .then_expect_error(TaskError::NotFound);
    }

    #[test]
    fn another_user_cannot_touch_the_task() {
        for command in [
            TaskCommand::Complete { actor: bob() },
            TaskCommand::Reopen { actor: bob() },
            TaskCommand::Delete { actor: bob() },
            TaskCommand::Edit {
                actor: bob(),
                title: Some(TaskTitle::parse("mine now").unwrap()),
                description: None,
            },
        ] {
            task()
                .given(vec![created()])
                .when(command)
                .then_expect_error(TaskError::NotFound);
        }
    }

    #[test]
    fn complete_records_completion() {
        task()
            .given(vec![created()])
            .when(TaskCommand::Complete { actor: alice() })
            .then_expect_events(vec![completed()]);
    }

    #[test]
    fn completing_a_completed_task_records_nothing() {
        task()
            .given(vec![created(), completed()])
            .when(TaskCommand::Complete { actor: alice() })
            .then_expect_events(vec![]);
    }

    #[test]
    fn completing_a_deleted_task_is_refused() {
        task()
            .given(vec![created(), deleted()])
            .when(TaskCommand::Complete { actor: alice() })
            .then_expect_error(TaskError::Deleted);
    }

    #[test]
    fn reopen_records_reopening_of_a_completed_task() {
        task()
            .given(vec![created(), completed()])
            .when(TaskCommand::Reopen { actor: alice() })
            .then_expect_events(vec![TaskEvent::TaskReopened { reopened_at: now() }]);
    }

    #[test]
    fn reopening_an_open_task_records_nothing() {
        task()
            .given(vec![created()])
            .when(TaskCommand::Reopen { actor: alice() })
            .then_expect_events(vec![]);
    }

    #[test]
    fn editing_a_deleted_task_is_refused() {
        task()
            .given(vec![created(), deleted()])
            .when(TaskCommand::Edit {
                actor: alice(),
                title: Some(TaskTitle::parse("x").unwrap()),
                description: None,
            })
            .then_expect_error(TaskError::Deleted);
    }

    #[test]
    fn delete_records_deletion_once() {
        task()
            .given(vec![created()])
            .when(TaskCommand::Delete { actor: alice() })
            .then_expect_events(vec![deleted()]);
        task()
            .given(vec![created(), deleted()])
            .when(TaskCommand::Delete { actor: alice() })
            .then_expect_events(vec![]);
    }

    #[test]
    fn deleting_a_missing_task_is_not_found() {
        task()
            .given_no_previous_events()
            .when(TaskCommand::Delete { actor: alice() })
            .then_expect_error(TaskError::NotFound);
    }

    #[test]
    fn apply_folds_the_history() {
        let mut state = Task::default();
        for event in [created(), completed(), deleted()] {
            state.apply(event);
        }
        assert_eq!(state.id(), Some(id()));
        assert_eq!(state.owner(), Some(&alice()));
        assert_eq!(state.status(), TaskStatus::Completed);
        assert!(state.is_deleted());
    }
}
