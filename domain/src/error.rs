//! The domain's refusals. Each maps to one stable API error code at the boundary.

use std::borrow::Cow;

/// Input that does not make a valid value: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    pub field: &'static str,
    pub reason: Cow<'static, str>,
}

impl ValidationError {
    pub fn new(field: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Why the `Task` aggregate refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The task does not exist, or belongs to someone else: the two are
    /// indistinguishable on purpose, so ids of other users' tasks leak nothing.
    #[error("task not found")]
    NotFound,
    #[error("a task with this id already exists")]
    AlreadyExists,
    #[error("task is deleted")]
    Deleted,
}
