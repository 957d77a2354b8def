//! The write side's application service: [`CommandService`] loads a task,
//! lets the aggregate decide, and appends the events with optimistic
//! concurrency. Every writer goes through it: the API's mutations and the
//! recurrence processor alike. It links no GraphQL engine.

mod actor;
mod error;
mod service;

pub use actor::Actor;
pub use error::CommandError;
pub use service::{CommandOutcome, CommandService};
