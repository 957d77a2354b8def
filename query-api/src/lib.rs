//! The client-facing GraphQL server: the query root over the read models, the
//! merged schema (mutations from `command-api`), bearer-token auth, limits,
//! and the health and metrics endpoints.

pub mod auth;
mod listing;
mod query;
mod server;

pub use query::{ReadYourWrites, TaskQuery};
pub use server::{build_schema, router, serve, ApiState, TaskledgerSchema};
