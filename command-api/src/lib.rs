//! The write side's doors: the GraphQL mutation root, one field per task
//! command, and quick add (a task from a line of plain text). Inputs are
//! parsed into the domain's validated types here, and every command goes
//! through `event_store::command::CommandService`.

mod mutation;
mod quick_add;

pub use mutation::{TaskMutation, TaskVersion};
pub use quick_add::QuickAddMutation;
