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
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}
