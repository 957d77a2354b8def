//! The write side: [`CommandService`] authorises and executes task commands
//! against the event store, and [`TaskMutation`] exposes them over GraphQL.

mod actor;
mod error;
mod mutation;
mod service;

pub use actor::Actor;
pub use error::{CommandError, ErrorCode};
pub use mutation::{PriorityLevel, TaskMutation, TaskVersion};
pub use service::{CommandOutcome, CommandService};
