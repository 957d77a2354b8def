//! What a read model gives the runtime: how it applies events, and what became
//! of each. Errors are classified here once, so the runtime knows whether to
//! retry a batch or dead-letter one message (ADR 0002, "Batches").

use std::future::Future;

use sqlx::PgConnection;

use super::decode::ConsumedMessage;

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// The read model already reflects this event (a redelivery).
    Duplicate,
    /// Behind this projection's stored offset: already handled.
    AlreadyConsumed,
    /// Nothing for this projection to do with this event.
    Ignored,
    DeadLettered,
}

impl Outcome {
    /// The `outcome` label of the messages counter; dashboards depend on it.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::AlreadyConsumed => "already_consumed",
            Self::Ignored => "ignored",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The message can never be applied; it goes to the dead-letter topic.
    #[error("{0}")]
    Invalid(String),
    /// A transient failure; the message is retried.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Another transient failure (a command that lost a race, say); retried.
    #[error("{0}")]
    Transient(String),
}

impl ProjectionError {
    /// Whether applying the same message again can only fail the same way:
    /// refused as invalid, or refused by the database for its data (SQLSTATE
    /// classes 22, data exception, and 23, integrity constraint violation).
    pub(super) fn is_permanent(&self) -> bool {
        match self {
            Self::Invalid(_) => true,
            Self::Database(error) => error
                .as_database_error()
                .and_then(|e| e.code())
                .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
            Self::Transient(_) => false,
        }
    }

    /// The `dlq-reason` of a message this error refused: a projection's own
    /// words as they are, the database's marked as such.
    pub(super) fn dead_letter_reason(self) -> String {
        match self {
            Self::Invalid(reason) => reason,
            other => format!("the read model refused it: {other}"),
        }
    }
}

/// A read model fed by one topic.
pub trait Projection: Send + Sync + 'static {
    type Message: ConsumedMessage;

    /// Names the lock, the consumer group and this projection's offset rows.
    fn name(&self) -> &'static str;

    /// Applies one event inside the transaction that will also record its offset.
    fn apply(
        &self,
        tx: &mut PgConnection,
        event: &Self::Message,
    ) -> impl Future<Output = Result<Outcome, ProjectionError>> + Send;

    /// Applies a batch in order, one outcome per event. A projection that can
    /// do a batch in fewer statements overrides this. If any event fails, the
    /// runtime undoes the whole call and applies the events one at a time.
    fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[Self::Message],
    ) -> impl Future<Output = Result<Vec<Outcome>, ProjectionError>> + Send {
        async move {
            let mut outcomes = Vec::with_capacity(events.len());
            for event in events {
                outcomes.push(self.apply(tx, event).await?);
            }
            Ok(outcomes)
        }
    }
}
