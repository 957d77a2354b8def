//! The read side's writers: a Kafka consumer runtime that stores offsets in
//! Postgres with each read-model change, and the projections it drives.

mod consumer;
mod recurrence;
pub mod task_list;
pub mod task_query;

pub use consumer::{
    ConsumerSettings, Outcome, Projection, ProjectionConsumer, ProjectionError,
    DEAD_LETTER_MAX_PAYLOAD,
};
pub use recurrence::RecurrenceProcessor;
pub use task_list::{TaskListProjection, TaskRow};

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
