//! What a task decides: every business rule of a command on a task, the
//! event it leads to (or none, when the effect is already in place).

use chrono::{DateTime, Utc};

use uuid::Uuid;

use super::{Task, TASKLEDGER_NAMESPACE};
use crate::values::{Due, Recurrence, Reminders, TagSet, TaskId, TaskTitle, UserId};
use crate::{NewTask, Series, TaskCommand, TaskError, TaskEvent, TaskServices, ValidationError};

impl Task {
    pub(super) fn decide(
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
                details,
            } => {
                let series = match &details.recurrence {
                    None => None,
                    Some(rule) => Some(new_series(task_id, rule, details.due.as_ref(), None)?),
                };
                self.created(task_id, owner, title, details, series, now)?
            }
            TaskCommand::CreateOccurrence(next) => {
                if self.id.is_some() {
                    return Err(TaskError::AlreadyExists);
                }
                TaskEvent::TaskCreated {
                    task_id: next.task_id,
                    user_id: next.owner,
                    title: next.title,
                    description: next.description,
                    created_at: now,
                    priority: next.priority,
                    tags: next.tags,
                    due: Some(next.due),
                    reminders: next.reminders,
                    series: Some(next.series),
                    list_id: next.list_id,
                }
            }
            TaskCommand::Move { actor, to } => {
                self.ensure_live(&actor)?;
                if to == self.list && (to.is_some() || self.owner.as_ref() == Some(&actor)) {
                    return Ok(None);
                }
                TaskEvent::TaskMoved {
                    list_id: to,
                    owner: actor,
                    at: now,
                }
            }
            TaskCommand::Assign { actor, assignee } => {
                self.ensure_live(&actor)?;
                // In an Inbox its owner is the only member; in a shared list
                // the service checks the assignee's membership.
                if self.list.is_none()
                    && assignee
                        .as_ref()
                        .is_some_and(|a| Some(a) != self.owner.as_ref())
                {
                    return Err(ValidationError::new(
                        "userId",
                        "must be a member of the task's list",
                    )
                    .into());
                }
                if assignee == self.assignee {
                    return Ok(None);
                }
                TaskEvent::TaskAssigned { assignee, at: now }
            }
            TaskCommand::Edit {
                actor,
                title,
                description,
            } => {
                self.ensure_live(&actor)?;
                // Only what changes: the event holds no text its writer
                // did not type.
                let title = title
                    .map(|t| t.as_str().to_owned())
                    .filter(|t| *t != self.title);
                let description = description
                    .map(|new| new.map(|d| d.as_str().to_owned()))
                    .filter(|d| *d != self.description);
                if title.is_none() && description.is_none() {
                    return Ok(None);
                }
                TaskEvent::TaskEdited {
                    title,
                    description,
                    edited_at: now,
                }
            }
            TaskCommand::SetPriority { actor, priority } => {
                self.ensure_live(&actor)?;
                if priority == self.priority {
                    return Ok(None);
                }
                TaskEvent::TaskPrioritySet { priority, at: now }
            }
            TaskCommand::AddTags { actor, tags } => {
                self.ensure_live(&actor)?;
                return Ok(self.tags_changed(self.tags.union(&tags)?, now));
            }
            TaskCommand::RemoveTags { actor, tags } => {
                self.ensure_live(&actor)?;
                return Ok(self.tags_changed(self.tags.difference(&tags), now));
            }
            TaskCommand::SetDueDate { actor, due } => {
                self.ensure_live(&actor)?;
                if let Some(series) = &self.series {
                    // The series restarts from the new due date (see `apply`).
                    series.rule.ensure_occurs(due.anchor(), due.time_zone)?;
                }
                if self.due == Some(due) {
                    return Ok(None);
                }
                TaskEvent::TaskDueDateSet { due, at: now }
            }
            TaskCommand::ClearDueDate { actor } => {
                self.ensure_live(&actor)?;
                if self.due.is_none() {
                    return Ok(None);
                }
                if self.reminders.has_offsets() {
                    return Err(ValidationError::new(
                        "due",
                        "reminders relative to the due time need it; change them first",
                    )
                    .into());
                }
                if self.series.is_some() {
                    return Err(ValidationError::new(
                        "due",
                        "a recurring task needs a due date; clear the recurrence first",
                    )
                    .into());
                }
                TaskEvent::TaskDueDateCleared { at: now }
            }
            TaskCommand::SetReminders { actor, reminders } => {
                self.ensure_live(&actor)?;
                let reminders = Reminders::parse(reminders, self.due.as_ref())?;
                if reminders == self.reminders {
                    return Ok(None);
                }
                TaskEvent::TaskRemindersSet {
                    reminders,
                    at: now,
                    set_by: (self.owner.as_ref() != Some(&actor)).then_some(actor),
                }
            }
            TaskCommand::SetRecurrence { actor, rule } => {
                self.ensure_live(&actor)?;
                let id = self.id.ok_or(TaskError::NotFound)?;
                if self.series.as_ref().is_some_and(|s| s.rule == rule) {
                    return Ok(None);
                }
                let series = match &self.series {
                    // A changed rule keeps the series and restarts it from here.
                    Some(current) => Series {
                        rule: rule.clone(),
                        start: self.due.map_or(current.start, |d| d.anchor()),
                        ..current.clone()
                    },
                    // A new series, even on a task that had one before: its
                    // occurrences must not collide with the old series' ids.
                    None => new_series(id, &rule, self.due.as_ref(), Some(now))?,
                };
                let zone = self
                    .due
                    .map(|d| d.time_zone)
                    .unwrap_or(crate::values::TimeZone::UTC);
                series.rule.ensure_occurs(series.start, zone)?;
                TaskEvent::TaskRecurrenceSet { series, at: now }
            }
            TaskCommand::ClearRecurrence { actor } => {
                self.ensure_live(&actor)?;
                if self.series.is_none() {
                    return Ok(None);
                }
                TaskEvent::TaskRecurrenceCleared { at: now }
            }
            TaskCommand::Complete {
                actor,
                stop_repeating,
            } => {
                self.ensure_live(&actor)?;
                if self.completed {
                    return Ok(None);
                }
                let next_occurrence = if stop_repeating || self.next_started {
                    None
                } else {
                    self.next_occurrence()
                };
                TaskEvent::TaskCompleted {
                    completed_at: now,
                    next_occurrence,
                    stopped_repeating: stop_repeating && self.series.is_some(),
                }
            }
            TaskCommand::Reopen { actor } => {
                self.ensure_live(&actor)?;
                if !self.completed {
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
            TaskCommand::Restore { actor } => {
                self.ensure_owned_by(&actor)?;
                if !self.is_deleted() {
                    return Ok(None);
                }
                TaskEvent::TaskRestored { restored_at: now }
            }
            TaskCommand::Revert {
                actor,
                to_version,
                earlier,
            } => {
                self.ensure_live(&actor)?;
                if earlier.id != self.id {
                    return Err(TaskError::NotFound);
                }
                let unchanged = earlier.title == self.title
                    && earlier.description == self.description
                    && earlier.priority == self.priority
                    && earlier.tags == self.tags
                    && earlier.due == self.due
                    && earlier.reminders == self.reminders
                    && earlier.completed == self.completed;
                if unchanged {
                    return Ok(None);
                }
                let earlier = *earlier;
                TaskEvent::TaskReverted {
                    to_version,
                    title: earlier.title,
                    description: earlier.description,
                    priority: earlier.priority,
                    tags: earlier.tags,
                    due: earlier.due,
                    reminders: earlier.reminders,
                    completed: earlier.completed,
                    at: now,
                }
            }
        };
        Ok(Some(event))
    }

    fn created(
        &self,
        task_id: TaskId,
        owner: UserId,
        title: TaskTitle,
        details: NewTask,
        series: Option<Series>,
        now: DateTime<Utc>,
    ) -> Result<TaskEvent, TaskError> {
        if self.id.is_some() {
            return Err(TaskError::AlreadyExists);
        }
        let reminders = Reminders::parse(details.reminders, details.due.as_ref())?;
        Ok(TaskEvent::TaskCreated {
            task_id,
            user_id: owner,
            title: title.as_str().to_owned(),
            description: details.description.map(|d| d.as_str().to_owned()),
            created_at: now,
            priority: details.priority,
            tags: details.tags,
            due: details.due,
            reminders,
            series,
            list_id: details.list,
        })
    }

    fn tags_changed(&self, tags: TagSet, now: DateTime<Utc>) -> Option<TaskEvent> {
        (tags != self.tags).then_some(TaskEvent::TaskTagsChanged { tags, at: now })
    }
}

/// A new series starting at this task's due date. Its id derives from the
/// task, and for a series started after creation also from when it started.
fn new_series(
    task_id: TaskId,
    rule: &Recurrence,
    due: Option<&Due>,
    started_later_at: Option<DateTime<Utc>>,
) -> Result<Series, TaskError> {
    let due = due.ok_or_else(|| {
        ValidationError::new(
            "recurrence",
            "a recurring task needs a due date to repeat from",
        )
    })?;
    rule.ensure_occurs(due.anchor(), due.time_zone)?;
    let name = match started_later_at {
        None => task_id.to_string(),
        Some(at) => format!("{task_id}/series/{}", at.timestamp_micros()),
    };
    Ok(Series {
        id: Uuid::new_v5(&TASKLEDGER_NAMESPACE, name.as_bytes()),
        rule: rule.clone(),
        start: due.anchor(),
        occurrence: 1,
    })
}
