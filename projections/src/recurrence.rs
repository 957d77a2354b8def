//! The recurrence processor: when an occurrence of a recurring task is
//! completed, it creates the next one through the command path, exactly as the
//! completion event describes it (the aggregate decided everything). The next
//! task's id is a UUIDv5 of the series and occurrence number, so redelivery, a
//! restart half-way or two processors racing all end in exactly one next
//! task: every attempt after the first is refused as already existing.

use domain::{TaskCommand, TaskError, TaskEvent};
use event_store::command::{Actor, CommandError, CommandService};
use event_store::global_log::{self, StoredEvent};
use event_store::history::{fold_task, task_event};
use sqlx::PgConnection;

use crate::consumer::{Outcome, Projection, ProjectionError, TaskEventMessage};

pub struct RecurrenceProcessor {
    commands: CommandService,
}

impl RecurrenceProcessor {
    pub fn new(commands: CommandService) -> Self {
        Self { commands }
    }
}

impl Projection for RecurrenceProcessor {
    type Message = TaskEventMessage;

    fn name(&self) -> &'static str {
        "recurrence"
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        message: &TaskEventMessage,
    ) -> Result<Outcome, ProjectionError> {
        let data = &message.data;
        if data.event_type != "TaskCompleted" {
            return Ok(Outcome::Ignored);
        }
        // Act only on the completion as the event store holds it.
        let sequence = data.sequence;
        let stored =
            global_log::aggregate_events(&mut *tx, "Task", &data.task_id, sequence - 1, sequence)
                .await?;
        let Some(completion) = stored
            .first()
            .filter(|e| e.event_id.to_string() == message.id)
        else {
            return Err(ProjectionError::Invalid(
                "the event store holds no such event".into(),
            ));
        };
        // An erased user's series ends with them.
        if completion.erased {
            return Ok(Outcome::Ignored);
        }
        let next = if domain::upcast::legacy_next_occurrence(
            &completion.event_type,
            &completion.event_version,
            &completion.event_data(),
        ) {
            // Stored before completions carried the whole next task: ask the
            // aggregate, as it was just before this completion.
            let history =
                global_log::aggregate_events(&mut *tx, "Task", &data.task_id, 0, sequence - 1)
                    .await?;
            let source = fold_task(&history)
                .map_err(|e| ProjectionError::Invalid(e.to_string()))?
                .map(|folded| folded.task)
                .unwrap_or_default();
            source.next_occurrence().ok_or_else(|| {
                ProjectionError::Invalid(
                    "a completion named a next occurrence of a task without a series".into(),
                )
            })?
        } else {
            let TaskEvent::TaskCompleted {
                next_occurrence: Some(next),
                ..
            } = parse(completion)?
            else {
                return Ok(Outcome::Ignored);
            };
            next
        };
        let (task_id, owner, occurrence) =
            (next.task_id, next.owner.clone(), next.series.occurrence);
        let actor = Actor {
            user_id: owner,
            correlation_id: message
                .correlationid
                .clone()
                .unwrap_or_else(|| message.id.clone()),
        };
        match self
            .commands
            .execute(&actor, task_id, TaskCommand::CreateOccurrence(next), None)
            .await
        {
            Ok(_) => {
                tracing::info!(task_id = %data.task_id, next = %task_id, occurrence, "next occurrence created");
                Ok(Outcome::Applied)
            }
            Err(CommandError::Rejected(TaskError::AlreadyExists)) => Ok(Outcome::Duplicate),
            Err(CommandError::Rejected(refusal)) => {
                Err(ProjectionError::Invalid(refusal.to_string()))
            }
            Err(other) => Err(ProjectionError::Transient(other.to_string())),
        }
    }
}

/// A stored event as the current version of the domain event.
fn parse(stored: &StoredEvent) -> Result<TaskEvent, ProjectionError> {
    task_event(stored).map_err(|e| ProjectionError::Invalid(e.to_string()))
}
