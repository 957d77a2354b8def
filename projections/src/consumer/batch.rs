//! A batch is whatever a poll returns, up to a bound in count, bytes and time,
//! applied in one transaction with the offsets of every partition it touched
//! (docs/adr/0002, "Batches"). One message that cannot be applied must not
//! hold back the rest: the batch is applied again one message at a time to
//! find it, and it is dead-lettered.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use infra::kafka::{DropOffThread, KafkaConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::Message;
use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;

use super::activation::{Activation, Clients};
use super::decode::ConsumedMessage;
use super::leases::Owned;
use super::metrics;
use super::offsets::{already_consumed, next_offsets};
use super::projection::{Outcome, Projection};
use super::projection_consumer::ProjectionConsumer;

/// The most message bytes one batch holds (beyond the first message, which
/// the fetch limit bounds to 8 MiB), however many messages the count allows.
pub(super) const BATCH_MAX_BYTES: usize = 16 * 1024 * 1024;

/// How full a batch being filled is, against its bounds in count and bytes.
#[derive(Debug)]
pub(super) struct Fill {
    messages: usize,
    bytes: usize,
    max_messages: usize,
}

impl Fill {
    pub fn new(max_messages: usize) -> Self {
        Self {
            messages: 0,
            bytes: 0,
            max_messages,
        }
    }

    pub fn add(&mut self, message: &OwnedMessage) {
        self.messages += 1;
        self.bytes += payload_len(message);
    }

    /// Whether to wait for another message. The bytes are checked before a
    /// message is taken, so the last one may carry a batch past the bound.
    pub fn has_room(&self) -> bool {
        self.messages < self.max_messages && self.bytes < BATCH_MAX_BYTES
    }
}

fn payload_len(message: &OwnedMessage) -> usize {
    message.payload().map_or(0, <[u8]>::len) + message.key().map_or(0, <[u8]>::len)
}

/// A batch sorted before it is applied: an outcome per message, the events to
/// hand the projection with the slot each came from, and the messages that
/// could not be decoded with the reason.
pub(super) struct Triage<M> {
    pub outcomes: Vec<Outcome>,
    pub events: Vec<M>,
    pub event_slots: Vec<usize>,
    pub undecodable: Vec<(usize, String)>,
}

/// Sorts `batch`: a message below where the projection stands (`stood`)
/// stays [`Outcome::AlreadyConsumed`] and is neither decoded nor applied.
pub(super) fn triage<M: ConsumedMessage>(
    batch: &[OwnedMessage],
    stood: &HashMap<i32, i64>,
) -> Triage<M> {
    let mut triage = Triage {
        outcomes: vec![Outcome::AlreadyConsumed; batch.len()],
        events: Vec::with_capacity(batch.len()),
        event_slots: Vec::with_capacity(batch.len()),
        undecodable: Vec::new(),
    };
    for (slot, message) in batch.iter().enumerate() {
        if already_consumed(stood, message) {
            continue;
        }
        match M::decode(message) {
            Ok(event) => {
                triage.events.push(event);
                triage.event_slots.push(slot);
            }
            Err(reason) => triage.undecodable.push((slot, reason)),
        }
    }
    triage
}

impl<M> Triage<M> {
    /// Puts what the projection made of its events into their messages' slots.
    pub fn record(&mut self, applied: Vec<Outcome>) {
        for (slot, outcome) in self.event_slots.iter().zip(applied) {
            self.outcomes[*slot] = outcome;
        }
    }
}

/// How often, and after what pauses, a batch that failed for a transient
/// reason is tried again on the same session before the activation ends.
#[derive(Debug)]
pub(super) struct Retries {
    attempt: u32,
    delay: Duration,
}

impl Retries {
    const ATTEMPTS: u32 = 5;

    pub fn new() -> Self {
        Self {
            attempt: 1,
            delay: Duration::from_millis(100),
        }
    }

    /// The attempt under way, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The pause before the next attempt, doubling each time; `None` once
    /// the last attempt failed.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.attempt >= Self::ATTEMPTS {
            return None;
        }
        let delay = self.delay;
        self.delay *= 2;
        self.attempt += 1;
        Some(delay)
    }
}

/// Why a batch was not applied.
pub(super) enum BatchError {
    /// Worth trying the same batch again on the same session.
    Transient(anyhow::Error),
    /// The session or the database failed: start the activation again.
    Fatal(anyhow::Error),
    /// Partitions the batch touched moved to another process: nothing of it
    /// was committed, and the share is settled again.
    Fenced(Vec<i32>),
}

fn fatal(error: sqlx::Error) -> BatchError {
    BatchError::Fatal(error.into())
}

impl<P: Projection> ProjectionConsumer<P> {
    /// Takes what else is ready, up to the batch's bounds in count, time and
    /// bytes ([`BATCH_MAX_BYTES`]).
    pub(super) async fn fill_batch(
        &self,
        consumer: &DropOffThread<KafkaConsumer>,
        first: OwnedMessage,
    ) -> Vec<OwnedMessage> {
        let mut fill = Fill::new(self.settings.batch_max);
        fill.add(&first);
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + self.settings.batch_window;
        while fill.has_room() {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(message)) => {
                    let message = message.detach();
                    fill.add(&message);
                    batch.push(message);
                }
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, "consumer error");
                    break;
                }
                Err(_) => break,
            }
        }
        batch
    }

    /// Applies the batch, retrying transient failures a few times in place
    /// before giving up on this activation; `false` if shut down first.
    pub(super) async fn apply_until_done(
        &self,
        active: &mut Activation,
        batch: &[OwnedMessage],
        shutdown: &CancellationToken,
    ) -> anyhow::Result<bool> {
        let name = self.projection.name();
        let mut retries = Retries::new();
        let Activation {
            clients,
            session,
            generation,
            owned,
            next: stood,
            ..
        } = active;
        let touched = touched_leases(batch, owned);
        loop {
            let started = Instant::now();
            match self
                .apply_batch(clients, session, batch, stood, *generation, &touched)
                .await
            {
                Ok(outcomes) => {
                    metrics::batch_applied(name, batch, started.elapsed(), &outcomes);
                    return Ok(true);
                }
                Err(BatchError::Fatal(error)) => return Err(error),
                Err(BatchError::Fenced(lost)) => {
                    metrics::fenced(name);
                    anyhow::bail!(
                        "partitions {lost:?} moved to another process while this one was \
                         applying them (paused past its lease?); the batch was not committed"
                    );
                }
                Err(BatchError::Transient(error)) => {
                    let attempt = retries.attempt();
                    let Some(delay) = retries.next_delay() else {
                        return Err(error);
                    };
                    tracing::warn!(
                        projection = name,
                        attempt,
                        messages = batch.len(),
                        error = %format_args!("{error:#}"),
                        "could not apply the batch; retrying"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(false),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// One transaction: the batch's events applied, messages that cannot be
    /// applied dead-lettered, and the next offset of every partition touched,
    /// committed only if this process still holds the leases it `touched`.
    /// `stood` is where this projection stands: what its offsets in Postgres
    /// say, kept in memory, since only a lease's holder writes them.
    #[tracing::instrument(skip_all, fields(projection = self.projection.name(), messages = batch.len()))]
    async fn apply_batch(
        &self,
        clients: &Clients,
        session: &mut PgConnection,
        batch: &[OwnedMessage],
        stood: &HashMap<i32, i64>,
        generation: i64,
        touched: &Owned,
    ) -> Result<Vec<Outcome>, BatchError> {
        let mut tx = session.begin().await.map_err(fatal)?;
        // The read model can be derived again from the event store and the
        // offsets commit with it, so this commit need not wait for the WAL to
        // reach the disk (docs/adr/0005).
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await
            .map_err(fatal)?;

        let mut triage = triage::<P::Message>(batch, stood);
        for event in &triage.events {
            if let Some(traceparent) = event.traceparent() {
                infra::trace::link_trace(&tracing::Span::current(), traceparent);
            }
        }

        sqlx::query("SAVEPOINT batch")
            .execute(&mut *tx)
            .await
            .map_err(fatal)?;
        match self.projection.apply_batch(&mut tx, &triage.events).await {
            Ok(applied) => triage.record(applied),
            Err(error) if error.is_permanent() => {
                // Find the culprit: the same events one at a time, each in a
                // savepoint of its own.
                sqlx::query("ROLLBACK TO SAVEPOINT batch")
                    .execute(&mut *tx)
                    .await
                    .map_err(fatal)?;
                for (event, &slot) in triage.events.iter().zip(&triage.event_slots) {
                    triage.outcomes[slot] = self
                        .apply_one(clients, &mut tx, event, &batch[slot])
                        .await?;
                }
            }
            Err(error) => return Err(BatchError::Transient(error.into())),
        }
        for (slot, reason) in &triage.undecodable {
            self.dead_letter(clients, &batch[*slot], reason)
                .await
                .map_err(BatchError::Transient)?;
            triage.outcomes[*slot] = Outcome::DeadLettered;
        }

        // Last, so the leases are held only until the commit.
        let lost = self
            .membership
            .fence(&mut tx, touched)
            .await
            .map_err(fatal)?;
        if !lost.is_empty() {
            return Err(BatchError::Fenced(lost));
        }
        self.offsets(generation)
            .store(&mut tx, next_offsets(batch))
            .await
            .map_err(fatal)?;
        tx.commit().await.map_err(fatal)?;
        Ok(triage.outcomes)
    }

    /// Applies one event in a savepoint; an event that can never be applied
    /// is undone and dead-lettered.
    async fn apply_one(
        &self,
        clients: &Clients,
        tx: &mut PgConnection,
        event: &P::Message,
        message: &OwnedMessage,
    ) -> Result<Outcome, BatchError> {
        sqlx::query("SAVEPOINT one")
            .execute(&mut *tx)
            .await
            .map_err(fatal)?;
        match self.projection.apply(tx, event).await {
            Ok(outcome) => {
                sqlx::query("RELEASE SAVEPOINT one")
                    .execute(&mut *tx)
                    .await
                    .map_err(fatal)?;
                Ok(outcome)
            }
            Err(error) if error.is_permanent() => {
                sqlx::query("ROLLBACK TO SAVEPOINT one")
                    .execute(&mut *tx)
                    .await
                    .map_err(fatal)?;
                self.dead_letter(clients, message, &error.dead_letter_reason())
                    .await
                    .map_err(BatchError::Transient)?;
                Ok(Outcome::DeadLettered)
            }
            Err(error) => Err(BatchError::Transient(error.into())),
        }
    }
}

/// The leases of the partitions `batch` touched, at the epochs they are held
/// at (the batch holds only partitions in `owned`).
pub(super) fn touched_leases(batch: &[OwnedMessage], owned: &Owned) -> Owned {
    batch
        .iter()
        .filter_map(|m| Some((m.partition(), *owned.get(&m.partition())?)))
        .collect()
}
