//! A task's history and its state at an instant, read from the event store:
//! what auditors see through `taskHistory`, `taskAsOf` and `taskledger replay`.
//! Events are read through the upcasters, so every version reads alike.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::history::{changes, FieldChange};
use domain::{Task, TaskEvent, TaskStatus, Version};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgExecutor;

use crate::global_log::{self, StoredEvent};

/// One event of a task, as an auditor reads it.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub sequence: Version,
    pub event_type: String,
    pub event_version: String,
    pub recorded_at: DateTime<Utc>,
    /// The user whose request stored it.
    pub actor: Option<String>,
    pub correlation_id: Option<String>,
    /// What it changed in the task.
    pub changes: Vec<FieldChange>,
    /// The event's own data, upcast to its current shape.
    pub data: Value,
}

/// A task folded from its events, with what the read model would show of it.
#[derive(Debug, Clone)]
pub struct FoldedTask {
    pub task: Task,
    pub version: Version,
    /// As the creation says, like the read model.
    pub created_at: DateTime<Utc>,
    /// When its last event was stored (its creation's `created_at` until then).
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// Some of its events were sealed with a key that is gone: its owner was
    /// erased, and the read models keep nothing of it.
    pub erased: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("event {sequence} of the task cannot be read: {reason}")]
    Unreadable { sequence: Version, reason: String },
}

/// A stored event of a task as the domain's current event: read through the
/// upcasters, so every stored version reads alike.
pub fn task_event(stored: &StoredEvent) -> Result<TaskEvent, HistoryError> {
    domain::upcast::parse_stored(
        &stored.event_type,
        &stored.event_version,
        stored.event_data(),
    )
    .map_err(|e| HistoryError::Unreadable {
        sequence: stored.sequence,
        reason: format!("{} {}: {e}", stored.event_type, stored.event_version),
    })
}

/// Folds `stored` (a task's events from its first, in order); `None` for no
/// events. Every reader that needs a task's state from the store folds here.
pub fn fold_task(stored: &[StoredEvent]) -> Result<Option<FoldedTask>, HistoryError> {
    fold_task_with(stored, |_, _| {})
}

/// [`fold_task`], showing `each` every event with the task as it stands just
/// after it: for readers that need more than where the task ends (what each
/// event changed, when a reminder entered the schedule).
pub fn fold_task_with(
    stored: &[StoredEvent],
    mut each: impl FnMut(&StoredEvent, &FoldedTask),
) -> Result<Option<FoldedTask>, HistoryError> {
    let Some(first) = stored.first() else {
        return Ok(None);
    };
    let mut folded = FoldedTask {
        task: Task::default(),
        version: 0,
        created_at: first.recorded_at,
        updated_at: first.recorded_at,
        completed_at: None,
        deleted_at: None,
        erased: false,
    };
    for event in stored {
        folded.erased |= event.erased;
        apply(&mut folded, event, task_event(event)?);
        each(event, &folded);
    }
    Ok(Some(folded))
}

fn apply(folded: &mut FoldedTask, stored: &StoredEvent, event: TaskEvent) {
    folded.updated_at = stored.recorded_at;
    match &event {
        TaskEvent::TaskCreated { created_at, .. } => {
            folded.created_at = *created_at;
            folded.updated_at = *created_at;
        }
        TaskEvent::TaskCompleted { completed_at, .. } => folded.completed_at = Some(*completed_at),
        TaskEvent::TaskDeleted { deleted_at } => folded.deleted_at = Some(*deleted_at),
        TaskEvent::TaskRestored { .. } => folded.deleted_at = None,
        TaskEvent::TaskReverted {
            completed: true,
            at,
            ..
        } if folded.completed_at.is_none() => folded.completed_at = Some(*at),
        _ => {}
    }
    folded.task.apply(event);
    if folded.task.status() == TaskStatus::Open {
        folded.completed_at = None;
    }
    folded.version = stored.sequence;
}

/// Events `after + 1 ..= after + first` of task `id`, each with what it
/// changed (the task is folded from its first event to tell), and the task's
/// owner; `None` for a task the store does not hold.
pub async fn task_history<'e>(
    executor: impl PgExecutor<'e>,
    id: &str,
    after: Version,
    first: i64,
) -> Result<Option<(String, Vec<HistoryEntry>)>, HistoryError> {
    let stored = global_log::aggregate_events(executor, "Task", id, 0, after + first).await?;
    let Some(owner) = stored.first().and_then(|e| e.metadata_str("user_id")) else {
        return Ok(None);
    };
    Ok(Some((owner.to_owned(), history_entries(&stored, after)?)))
}

/// What changed between versions `from` and `to` of task `id` (either may be
/// the later), and the task's owner; `None` for a task the store does not
/// hold, and no changes when a version is past its last.
pub async fn task_diff<'e>(
    executor: impl PgExecutor<'e>,
    id: &str,
    from: Version,
    to: Version,
) -> Result<Option<(String, Option<Vec<FieldChange>>)>, HistoryError> {
    let stored = global_log::aggregate_events(executor, "Task", id, 0, from.max(to)).await?;
    let Some(owner) = stored.first().and_then(|e| e.metadata_str("user_id")) else {
        return Ok(None);
    };
    let (mut at_from, mut at_to) = (None, None);
    fold_task_with(&stored, |event, folded| {
        if event.sequence == from {
            at_from = Some(folded.task.clone());
        }
        if event.sequence == to {
            at_to = Some(folded.task.clone());
        }
    })?;
    let changes = at_from.zip(at_to).map(|(from, to)| changes(&from, &to));
    Ok(Some((owner.to_owned(), changes)))
}

/// The entries of a task's stored events (all of them, from its creation)
/// past sequence `after`.
pub fn history_entries(
    stored: &[StoredEvent],
    after: Version,
) -> Result<Vec<HistoryEntry>, HistoryError> {
    let mut before = Task::default();
    let mut entries = Vec::new();
    fold_task_with(stored, |event, folded| {
        if event.sequence > after {
            entries.push(HistoryEntry {
                sequence: event.sequence,
                event_type: event.event_type.clone(),
                event_version: event.event_version.clone(),
                recorded_at: event.recorded_at,
                actor: event.metadata_str("user_id").map(str::to_owned),
                correlation_id: event.metadata_str("correlation_id").map(str::to_owned),
                changes: changes(&before, &folded.task),
                data: domain::upcast::upcast(
                    &event.event_type,
                    &event.event_version,
                    event.event_data(),
                ),
            });
        }
        before = folded.task.clone();
    })?;
    Ok(entries)
}

/// Task `id` as it stood at `at`: folded from the events recorded up to then;
/// `None` if it did not exist yet.
pub async fn task_as_of<'e>(
    executor: impl PgExecutor<'e>,
    id: &str,
    at: DateTime<Utc>,
) -> Result<Option<FoldedTask>, HistoryError> {
    let stored = global_log::aggregate_events(executor, "Task", id, 0, i64::MAX).await?;
    let until: Vec<StoredEvent> = stored
        .into_iter()
        .take_while(|e| e.recorded_at <= at)
        .collect();
    fold_task(&until)
}
