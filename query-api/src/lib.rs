//! The read side's doors: the GraphQL query roots over the read models (the
//! task list with search, filters and counts; the notification inbox; the
//! audit trail and time travel from the event store; calendar feeds), the
//! `taskChanges` and notification subscriptions fed by the live hub, and the
//! wait that gives a caller their own writes (read-your-writes).

mod audit;
pub mod calendar;
pub mod consistency;
mod erasure;
pub mod export;
mod listing;
mod lists;
pub mod live;
mod notifications;
mod paging;
mod query;
pub mod read_pool;
mod subscription;

pub use api_core::TaskStatus;
pub use audit::AuditQuery;
pub use calendar::{CalendarFeeds, CalendarMutation, CalendarQuery, MAX_FEED_TASKS};
pub use erasure::{Erasure, ErasureQuery, ErasureState};
pub use export::{ExportQuery, INLINE_TASKS as EXPORT_INLINE_TASKS};
pub use listing::{TaskOrder, TaskSearchMode};
pub use lists::{ListInvitation, ListMember, ListQuery, SharedList};
pub use live::{LiveHub, LiveTopics};
pub use notifications::{Notification, NotificationMutation, NotificationQuery};
pub use query::{task_at, ReadYourWrites, RequestReaders, Task, TaskQuery};
pub mod listless;
pub use subscription::{TaskChange, TaskChangeKind, TaskSubscription};

/// The API's own tables (calendar feeds), beside the event store's and the
/// read models'.
pub fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// Applies the API's migrations.
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    migrator().run(pool).await
}
