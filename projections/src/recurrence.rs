//! The recurrence processor: when an occurrence of a recurring task is
//! completed, it creates the next one through the command path. The completion
//! event names the next task's id (a UUIDv5 of the series and occurrence
//! number), so redelivery, a restart half-way or two processors racing all end
//! in exactly one next task: every attempt after the first is refused as
//! already existing.

use command_api::{Actor, CommandError, CommandService};
use cqrs_es::Aggregate;
use domain::values::TaskTitle;
use domain::{NewTask, Series, Task, TaskCommand, TaskError, TaskEvent};
use event_store::global_log;
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
        let sequence = i64::try_from(data.sequence)
            .map_err(|_| ProjectionError::Invalid("sequence out of range".into()))?;
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
        let event = domain::upcast::parse_stored(
            &completion.event_type,
            &completion.event_version,
            completion.event_data(),
        )
        .map_err(|e| ProjectionError::Invalid(e.to_string()))?;
        let TaskEvent::TaskCompleted {
            next_occurrence: Some(next),
            ..
        } = event
        else {
            return Ok(Outcome::Ignored);
        };

        // The task as it was at this completion, not as it is now: later
        // edits, a new due date or a cleared recurrence do not change what
        // this completion called for.
        let history =
            global_log::aggregate_events(&mut *tx, "Task", &data.task_id, 0, sequence).await?;
        let mut source = Task::default();
        for stored in history {
            let event = domain::upcast::parse_stored(
                &stored.event_type,
                &stored.event_version,
                stored.event_data(),
            )
            .map_err(|e| ProjectionError::Invalid(e.to_string()))?;
            source.apply(event);
        }
        let (Some(owner), Some(series), Some(due)) =
            (source.owner(), source.series(), source.due())
        else {
            return Err(ProjectionError::Invalid(
                "a completion named a next occurrence of a task without a series".into(),
            ));
        };
        let title = TaskTitle::parse(source.title())
            .map_err(|e| ProjectionError::Invalid(e.to_string()))?;
        let shift = next.due.instant() - due.instant();
        let command = TaskCommand::CreateOccurrence {
            task_id: next.task_id,
            owner: owner.clone(),
            title,
            details: NewTask {
                description: source
                    .description()
                    .map(domain::values::TaskDescription::parse)
                    .transpose()
                    .map_err(|e| ProjectionError::Invalid(e.to_string()))?,
                priority: source.priority(),
                tags: source.tags().clone(),
                due: Some(next.due),
                reminders: source.reminders().shifted(shift).as_slice().to_vec(),
                recurrence: None,
            },
            series: Series {
                occurrence: next.occurrence,
                ..series.clone()
            },
        };
        let actor = Actor {
            user_id: owner.clone(),
            correlation_id: message
                .correlationid
                .clone()
                .unwrap_or_else(|| message.id.clone()),
        };
        match self
            .commands
            .execute(&actor, next.task_id, command, None)
            .await
        {
            Ok(_) => {
                tracing::info!(task_id = %data.task_id, next = %next.task_id, occurrence = next.occurrence, "next occurrence created");
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
