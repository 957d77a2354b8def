//! The `Task` aggregate: `handle` holds every business rule and decides which
//! events happen; `apply` only folds an event into state.

use chrono::{DateTime, Datelike, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::values::ensure_storable_year;
use crate::values::{Due, Priority, Reminders, TagSet, TaskId, UserId};
use crate::{NextOccurrence, Series, TaskCommand, TaskError, TaskEvent, TaskServices};

mod decide;

/// Namespace of the UUIDv5 ids derived here (series ids, next occurrences).
pub(crate) const TASKLEDGER_NAMESPACE: Uuid =
    Uuid::from_u128(0x6f1c_2b7e_8d0a_4c61_9e57_3a2d_1b4f_7c90);

/// Where a task stands, as its owner sees it. Every layer uses this one type:
/// the aggregate, the read model's filters and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskStatus {
    Open,
    Completed,
    /// In the trash; restoring it brings back whether it was done.
    Deleted,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    id: Option<TaskId>,
    owner: Option<UserId>,
    title: String,
    description: Option<String>,
    completed: bool,
    deleted_at: Option<DateTime<Utc>>,
    priority: Priority,
    tags: TagSet,
    due: Option<Due>,
    reminders: Reminders,
    series: Option<Series>,
    /// Whether a completion of this occurrence already named its successor:
    /// re-completing after a reopen must not start a second one.
    next_started: bool,
    /// The shared list it is in; `None`: its owner's Inbox.
    #[serde(default)]
    list: Option<Uuid>,
    /// The member it is given to, if any.
    #[serde(default)]
    assignee: Option<UserId>,
    /// Who its reminders fire to, when not its owner: the member of its
    /// shared list who set them.
    #[serde(default)]
    reminded: Option<UserId>,
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
        if self.is_deleted() {
            TaskStatus::Deleted
        } else if self.completed {
            TaskStatus::Completed
        } else {
            TaskStatus::Open
        }
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    pub fn priority(&self) -> Priority {
        self.priority
    }

    pub fn tags(&self) -> &TagSet {
        &self.tags
    }

    pub fn due(&self) -> Option<&Due> {
        self.due.as_ref()
    }

    pub fn reminders(&self) -> &Reminders {
        &self.reminders
    }

    pub fn series(&self) -> Option<&Series> {
        self.series.as_ref()
    }

    /// The shared list it is in; `None`: its owner's Inbox.
    pub fn list(&self) -> Option<Uuid> {
        self.list
    }

    pub fn assignee(&self) -> Option<&UserId> {
        self.assignee.as_ref()
    }

    /// Who its reminders fire to: who set them last, or its owner.
    pub fn reminded(&self) -> Option<&UserId> {
        self.reminded.as_ref().or(self.owner.as_ref())
    }

    /// The shared lists whose membership the commit of `command` checks:
    /// the writer must be an owner or editor of each, as the list stands
    /// when the events commit (docs/adr/0016). The list the task is in and,
    /// for a move or a creation, the list it goes to. An Inbox is its
    /// owner's alone, which the aggregate checks itself; the next
    /// occurrence of a series was decided by a completion checked so.
    pub fn lists_to_check(&self, command: &TaskCommand) -> Vec<Uuid> {
        let mut lists: Vec<Uuid> = match command {
            TaskCommand::Create { details, .. } => details.list.into_iter().collect(),
            TaskCommand::CreateOccurrence(_) => Vec::new(),
            TaskCommand::Move { to, .. } => self.list.into_iter().chain(*to).collect(),
            _ => self.list.into_iter().collect(),
        };
        lists.sort_unstable();
        lists.dedup();
        lists
    }

    /// Refuses anyone but the owner of a task in their Inbox, and answers a
    /// stranger exactly as if the task did not exist. In a shared list the
    /// commit checks the writer's membership (`lists_to_check`).
    fn ensure_owned_by(&self, actor: &UserId) -> Result<(), TaskError> {
        match (&self.owner, self.list) {
            (Some(_), Some(_)) => Ok(()),
            (Some(owner), None) if owner == actor => Ok(()),
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

    /// The occurrence after this one, if the series goes on: the first time
    /// on the rule after this occurrence's due time, with this task's title,
    /// description, priority, tags and reminders. The series ends where the
    /// next due date could not be stored (past the year 9999).
    pub fn next_occurrence(&self) -> Option<NextOccurrence> {
        let series = self.series.as_ref()?;
        let due = self.due?;
        let owner = self.owner.clone()?;
        let next = series
            .rule
            .next_after(series.start, due.time_zone, due.anchor())?;
        let next_due = due.moved_to(next);
        ensure_storable_year("due", next_due.instant().year()).ok()?;
        let occurrence = series.occurrence + 1;
        Some(NextOccurrence {
            task_id: occurrence_id(series.id, occurrence),
            owner,
            title: self.title.clone(),
            description: self.description.clone(),
            priority: self.priority,
            tags: self.tags.clone(),
            due: next_due,
            reminders: self.reminders.shifted(next_due.instant() - due.instant()),
            series: Series {
                occurrence,
                ..series.clone()
            },
            list_id: self.list,
        })
    }
}

/// A reminder of a task at the instant it fires. Its id is a UUIDv5 of the
/// task, the occurrence, the reminder and the instant, so whoever derives it,
/// and however often, names the same reminder; moving the due date names a
/// new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledReminder {
    pub reminder_id: Uuid,
    pub remind_at: DateTime<Utc>,
}

impl Task {
    /// The reminders this task calls for: none once it is done or in the
    /// trash. Whether one already passed is the scheduler's business.
    pub fn reminder_schedule(&self) -> Vec<ScheduledReminder> {
        let (Some(id), TaskStatus::Open) = (self.id, self.status()) else {
            return Vec::new();
        };
        let occurrence = self.series.as_ref().map_or(1, |s| s.occurrence);
        let mut schedule: Vec<ScheduledReminder> = self
            .reminders
            .as_slice()
            .iter()
            .filter_map(|reminder| {
                let remind_at = reminder.fires_at(self.due.as_ref())?;
                let name = format!(
                    "{id}/occurrence/{occurrence}/reminder/{}/{}",
                    serde_json::to_string(reminder).ok()?,
                    remind_at.timestamp_micros()
                );
                Some(ScheduledReminder {
                    reminder_id: Uuid::new_v5(&TASKLEDGER_NAMESPACE, name.as_bytes()),
                    remind_at,
                })
            })
            .collect();
        // Two reminders firing at the same instant notify once.
        schedule.sort_by_key(|r| (r.remind_at, r.reminder_id));
        schedule.dedup_by_key(|r| r.remind_at);
        schedule
    }
}

/// The id a snoozed reminder fires again under: one snooze per notification.
pub fn snoozed_reminder_id(notification: Uuid) -> Uuid {
    Uuid::new_v5(
        &TASKLEDGER_NAMESPACE,
        format!("{notification}/snoozed").as_bytes(),
    )
}

/// The id of occurrence `n` of a series: the same whoever computes it, so a
/// redelivered or raced completion creates the next task once.
pub fn occurrence_id(series: Uuid, occurrence: u32) -> TaskId {
    let name = format!("{series}/occurrence/{occurrence}");
    TaskId::from(Uuid::new_v5(&TASKLEDGER_NAMESPACE, name.as_bytes()))
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
                priority,
                tags,
                due,
                reminders,
                series,
                list_id,
                ..
            } => {
                self.id = Some(task_id);
                self.owner = Some(user_id);
                self.list = list_id;
                self.title = title;
                self.description = description;
                self.priority = priority;
                self.tags = tags;
                self.due = due;
                self.reminders = reminders;
                self.series = series;
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
                next_occurrence,
                stopped_repeating,
                ..
            } => {
                self.completed = true;
                self.next_started |= next_occurrence.is_some();
                if stopped_repeating {
                    self.series = None;
                }
            }
            TaskEvent::TaskReopened { .. } => self.completed = false,
            TaskEvent::TaskDeleted { deleted_at } => self.deleted_at = Some(deleted_at),
            TaskEvent::TaskRestored { .. } => self.deleted_at = None,
            TaskEvent::TaskPrioritySet { priority, .. } => self.priority = priority,
            TaskEvent::TaskTagsChanged { tags, .. } => self.tags = tags,
            TaskEvent::TaskDueDateSet { due, .. } => {
                if let Some(series) = &mut self.series {
                    series.start = due.anchor();
                }
                self.due = Some(due);
            }
            TaskEvent::TaskDueDateCleared { .. } => self.due = None,
            TaskEvent::TaskRemindersSet {
                reminders, set_by, ..
            } => {
                self.reminders = reminders;
                self.reminded = set_by;
            }
            TaskEvent::TaskRecurrenceSet { series, .. } => {
                self.next_started = false;
                self.series = Some(series);
            }
            TaskEvent::TaskRecurrenceCleared { .. } => self.series = None,
            TaskEvent::TaskMoved { list_id, owner, .. } => {
                self.list = list_id;
                self.owner = Some(owner);
                self.assignee = None;
            }
            TaskEvent::TaskAssigned { assignee, .. } => self.assignee = assignee,
            TaskEvent::TaskReverted {
                title,
                description,
                priority,
                tags,
                due,
                reminders,
                completed,
                ..
            } => {
                if let (Some(series), Some(due)) = (&mut self.series, &due) {
                    series.start = due.anchor();
                }
                self.title = title;
                self.description = description;
                self.priority = priority;
                self.tags = tags;
                self.due = due;
                self.reminders = reminders;
                self.completed = completed;
            }
        }
    }
}

#[cfg(test)]
mod tests;
