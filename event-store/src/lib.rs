//! The event store: migrations, the cqrs-es repository over Postgres (one
//! statement per command), the
//! command service that appends to it, commit-safe reading of the global log,
//! and the relay that publishes it to Kafka.

pub mod command;
pub mod global_log;
pub mod history;
pub mod keys;
pub mod relay;
pub mod repository;

use cqrs_es::persist::{EventUpcaster, PersistedEventStore, SerializedEvent};
use domain::Task;
use serde_json::Value;
use sqlx::migrate::Migrator;
use sqlx::PgPool;

pub use global_log::{LogPosition, StoredEvent};

/// The cqrs-es event store for tasks, backed by the `events` table.
pub type TaskStore = PersistedEventStore<repository::EventRepository, Task>;

/// The headers of a CloudEvents message in structured mode, as every
/// producer of ours (the relay, the scheduler, the task-updates publisher)
/// sends them.
pub fn cloudevents_headers() -> rdkafka::message::OwnedHeaders {
    rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
        key: "content-type",
        value: Some(domain::envelope::CLOUDEVENTS_CONTENT_TYPE),
    })
}

/// Applies the event store's migrations. Other crates keep their own migrations
/// in the same database, so migrations this crate does not know are tolerated.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    migrator().run(pool).await
}

/// The event store's migrations (the read models' share the database and
/// its migration table).
pub fn migrator() -> Migrator {
    let mut migrator: Migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// Opens a connection pool; `max_connections` bounds what this process may hold.
pub async fn connect(database_url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    infra::postgres::pool_options(max_connections)
        .connect(database_url)
        .await
}

/// The task event store over `repository`, reading older event versions
/// through the domain's upcasters, and taking a snapshot of a task every
/// `SNAPSHOT_EVERY` events.
pub fn task_store(repository: repository::EventRepository) -> TaskStore {
    PersistedEventStore::new_snapshot_store(repository, repository::SNAPSHOT_EVERY)
        .with_upcasters(vec![Box::new(TaskUpcaster)])
}

/// An event's payload (`{"<type>": {fields}}`) in the current version of its
/// type.
pub(crate) fn upcast(event_type: &str, event_version: &str, mut payload: Value) -> Value {
    if domain::upcast::needs_upcast(event_type, event_version) {
        if let Some(data) = payload.get_mut(event_type) {
            *data = domain::upcast::upcast(event_type, event_version, data.take());
        }
    }
    payload
}

/// Plugs `domain::upcast` into cqrs-es.
struct TaskUpcaster;

impl EventUpcaster for TaskUpcaster {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        domain::upcast::needs_upcast(event_type, event_version)
    }

    fn upcast(&self, mut event: SerializedEvent) -> SerializedEvent {
        event.payload = upcast(&event.event_type, &event.event_version, event.payload);
        event.event_version = domain::upcast::current_version(&event.event_type).to_owned();
        event
    }
}
