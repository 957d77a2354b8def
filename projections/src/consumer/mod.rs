//! The consumer runtime every projection runs on.
//!
//! Where a projection stands is the offsets it stores in Postgres, in the same
//! transaction as its read-model changes, and nothing else (docs/adr/0002).
//! Any number of processes run a projection and share its topic's
//! partitions through leases in Postgres (docs/adr/0012): each assigns itself
//! the partitions it holds and seeks each to the stored offset, so a crash, a
//! join, a leave or a broker that forgot its committed offsets can neither
//! skip nor repeat work, and a batch commits only while its process still
//! holds every partition it touched (fencing). Offsets are also committed to
//! the broker, only so that Kafka tools can show the lag.
//!
//! Messages are applied in batches: whatever a poll returns, up to a bound in
//! count and time, in one transaction with the offsets of every partition it
//! touched. A message the projection cannot apply is isolated by applying the
//! batch again one message at a time, and goes to `<topic>.dlq` with the
//! reason; the rest of the batch is applied.
//!
//! Anything that goes wrong beyond one message (the database, the session,
//! the broker, a consumer that stops making progress while its partitions
//! hold messages) ends the activation: the runtime starts again from the
//! offsets in Postgres with a new consumer.
//!
//! Read in this order: `run` (the loop), `activation` (topic, assignment),
//! `leases` (the share and the fence), `batch` (one transaction), `offsets`, `decode`,
//! `dead_letter`, `stall` (the periodic check), `metrics`.

mod activation;
mod batch;
mod dead_letter;
mod decode;
mod error;
mod leases;
mod metrics;
mod offsets;
mod progress;
mod projection;
mod projection_consumer;
mod run;
mod settings;
mod stall;
#[cfg(test)]
mod tests;

pub use dead_letter::DEAD_LETTER_MAX_PAYLOAD;
pub(crate) use decode::task_ids;
pub use decode::{ConsumedMessage, TaskEventMessage};
pub use error::ProjectionError;
pub use projection::{Outcome, Projection};
pub use projection_consumer::ProjectionConsumer;
pub use settings::ConsumerSettings;
