//! The write side's errors and the stable codes every GraphQL error carries in
//! `extensions.code`. Internal causes are logged, never sent to clients.

use async_graphql::ErrorExtensions;
use domain::{TaskError, ValidationError};

/// The stable `extensions.code` values (DESIGN invariant 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Validation,
    NotFound,
    Conflict,
    Unauthenticated,
    Forbidden,
    RateLimited,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validation => "VALIDATION",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::RateLimited => "RATE_LIMITED",
            Self::Internal => "INTERNAL",
        }
    }

    /// A GraphQL error with this code.
    pub fn error(self, message: impl Into<String>) -> async_graphql::Error {
        async_graphql::Error::new(message).extend_with(|_, e| e.set("code", self.as_str()))
    }
}

/// A validation failure as a GraphQL error naming the field.
pub fn validation_error(error: &ValidationError) -> async_graphql::Error {
    async_graphql::Error::new(error.to_string()).extend_with(|_, e| {
        e.set("code", ErrorCode::Validation.as_str());
        e.set("field", error.field);
        e.set("reason", error.reason.as_ref());
    })
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Rejected(#[from] TaskError),
    /// `expected` is the version the client sent, or the version this attempt
    /// loaded when every retry lost the race.
    #[error("the task changed concurrently: expected version {expected}, found {actual}")]
    Conflict { expected: u64, actual: u64 },
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl CommandError {
    /// The client's view of this error; internal causes are logged here.
    pub fn into_graphql(self) -> async_graphql::Error {
        let error = self;
        match &error {
            CommandError::Rejected(TaskError::Validation(invalid)) => validation_error(invalid),
            CommandError::Rejected(TaskError::NotFound) => {
                ErrorCode::NotFound.error("task not found")
            }
            CommandError::Rejected(TaskError::AlreadyExists) => {
                ErrorCode::Conflict.error("a task with this id already exists")
            }
            CommandError::Rejected(TaskError::Deleted) => ErrorCode::Conflict
                .error("the task is deleted")
                .extend_with(|_, e| e.set("reason", "TASK_DELETED")),
            CommandError::Conflict { expected, actual } => ErrorCode::Conflict
                .error(error.to_string())
                .extend_with(|_, e| {
                    e.set("expectedVersion", *expected);
                    e.set("actualVersion", *actual);
                }),
            CommandError::Internal(cause) => {
                tracing::error!(error = ?cause, "command failed");
                ErrorCode::Internal.error("internal error")
            }
        }
    }
}
