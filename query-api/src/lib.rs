//! The client-facing API server: the GraphQL schema (the query root over the
//! read models and the mutation root over the command service), bearer-token
//! auth, limits, one error path, and the health and metrics endpoints; beside
//! GraphQL, the calendar feed and the MCP endpoint for AI agents.

mod app;
mod audit;
pub mod auth;
mod calendar;
pub mod connections;
mod dapr;
mod error;
pub mod fairness;
mod graphiql;
pub mod limits;
mod listing;
pub mod live;
pub mod mcp;
mod mutation;
mod notifications;
mod query;
mod quick_add;
pub mod read_pool;
mod request;
mod server;
mod subscription;
mod ws;

pub use app::DevTokens;
pub use calendar::{CalendarFeeds, MAX_FEED_TASKS};
pub use error::{ApiError, ErrorCode};
pub use live::{LiveHub, LiveTopics};
pub use mutation::{PriorityLevel, TaskMutation, TaskVersion};
pub use notifications::Notification;
pub use query::{ReadYourWrites, TaskQuery};
pub use server::{
    build_schema, ops_router, router, serve, serve_ops, ApiState, BrokerProbe, Ops, SchemaServices,
    TaskledgerSchema,
};
pub use subscription::{TaskChange, TaskChangeKind};
pub use ws::{SocketCounts, MAX_SOCKETS_PER_USER, MAX_SUBSCRIPTIONS};

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
