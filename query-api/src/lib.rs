//! The client-facing API server: the GraphQL schema (the query root over the
//! read models and the mutation root over the command service), bearer-token
//! auth, limits, one error path, and the health and metrics endpoints.

mod app;
mod audit;
pub mod auth;
pub mod connections;
mod error;
pub mod fairness;
mod graphiql;
pub mod limits;
mod listing;
pub mod live;
mod mutation;
mod notifications;
mod query;
pub mod read_pool;
mod request;
mod server;
mod subscription;
mod ws;

pub use app::DevTokens;
pub use error::{ApiError, ErrorCode};
pub use live::{LiveHub, LiveTopics};
pub use mutation::{PriorityLevel, TaskMutation, TaskVersion};
pub use notifications::Notification;
pub use query::{ReadYourWrites, TaskQuery};
pub use server::{
    build_schema, ops_router, router, serve, serve_ops, ApiState, BrokerProbe, Ops,
    TaskledgerSchema,
};
pub use subscription::{TaskChange, TaskChangeKind};
pub use ws::{SocketCounts, MAX_SOCKETS_PER_USER, MAX_SUBSCRIPTIONS};
