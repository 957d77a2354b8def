//! The read side's writers: a Kafka consumer runtime that stores offsets in
//! Postgres with each read-model change, and the projections it drives; and
//! a user's data exported whole (`export`).

mod consumer;
pub mod erasure;
pub mod export;
mod named_events;
mod recurrence;
pub mod reminders;
pub mod scheduler;
pub mod task_list;
pub mod task_query;
pub mod task_updates;

pub use consumer::{
    ConsumedMessage, ConsumerSettings, Outcome, Projection, ProjectionConsumer, ProjectionError,
    TaskEventMessage, DEAD_LETTER_MAX_PAYLOAD,
};
pub use recurrence::RecurrenceProcessor;
pub use reminders::{NotificationInbox, RemindersProjection};
pub use scheduler::{Scheduler, SchedulerSettings};
pub use task_list::{TaskListProjection, TaskRow};
pub use task_updates::TaskUpdatesPublisher;

use sqlx::migrate::Migrator;
use sqlx::PgPool;

/// The read models' migrations, tolerating the event store's own.
pub fn migrator() -> Migrator {
    let mut migrator: Migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// Applies the read models' migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    migrator().run(pool).await
}
