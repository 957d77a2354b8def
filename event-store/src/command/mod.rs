//! The write side's one path for commands: [`CommandService`] loads a task,
//! lets the aggregate decide, and appends the events with optimistic
//! concurrency. Every writer goes through it: the API's mutations, the MCP
//! tools and the recurrence processor alike. It links no GraphQL engine, so
//! the worker build can use it.

mod access;
mod actor;
mod error;
mod lists;
mod service;
mod turns;
mod warm;

pub use access::may_read;
pub use actor::Actor;
pub use error::CommandError;
pub use lists::{
    ListCommandError, ListOutcome, ListService, ListView, PendingInvitation, MAX_LISTS_PER_USER,
};
pub use service::{CommandOutcome, CommandService};
pub use warm::{WarmCounts, DEFAULT_WARM_TASKS};
