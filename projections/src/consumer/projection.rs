//! What a read model gives the runtime: how it applies events, and what became
//! of each. Errors are classified here once, so the runtime knows whether to
//! retry a batch or dead-letter one message (ADR 0002, "Batches").

use std::future::Future;

use sqlx::PgConnection;

use super::decode::ConsumedMessage;
use super::error::ProjectionError;

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
