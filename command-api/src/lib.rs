//! The write side's doors: the GraphQL mutation root, one field per task
//! command, the lists people share and their members, quick add (a task from a line of plain text) and reverts to an
//! earlier version. Inputs are
//! parsed into the domain's validated types here, and every command goes
//! through `event_store::command::CommandService`.

mod erasure;
mod lists;
mod mutation;
mod quick_add;
mod revert;

pub use erasure::{ErasureMutation, ErasureReceipt};
pub use lists::{InvitationReceipt, ListMutation, ListVersion};
pub use mutation::{TaskMutation, TaskVersion};
pub use quick_add::QuickAddMutation;
pub use revert::RevertMutation;
