//! Why a command failed. The API maps each variant to a stable error code;
//! internal causes travel as sources, to be logged, never shown.

use domain::{TaskError, Version};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Rejected(#[from] TaskError),
    /// `expected` is the version the client sent, or the version this attempt
    /// loaded when every retry lost the race.
    #[error("the task changed concurrently: expected version {expected}, found {actual}")]
    Conflict { expected: Version, actual: Version },
    /// A list the command names (to move or add a task to) that the caller
    /// does not belong to, or that does not exist: the same to them.
    #[error("no such list")]
    NoSuchList,
    /// The caller sees the task but their role does not let them change it.
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("the list is archived: its tasks no longer change")]
    ListArchived,
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}
