//! The API's one error path: resolvers of both sides return [`ApiError`] with
//! `?`, and each variant knows the stable `extensions.code` it leaves with
//! (DESIGN invariant 8). Every refusal of input is a [`ValidationError`], so a
//! client finds `code`, `field` and `reason` in the same places whether a query
//! or a mutation refused it. Internal causes are logged with their chain here
//! and never sent to clients.

use std::sync::Arc;

use async_graphql::ErrorExtensions;
use command_api::CommandError;
use domain::{TaskError, ValidationError, Version};

/// The stable `extensions.code` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Validation,
    NotFound,
    Conflict,
    Unauthenticated,
    Forbidden,
    RateLimited,
    /// The request ran past its deadline.
    Timeout,
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
            Self::Timeout => "TIMEOUT",
            Self::Internal => "INTERNAL",
        }
    }
}

/// Why a request failed, as its client learns it. Deliberately not `Display`:
/// async-graphql turns anything displayable into an error without extensions,
/// so the only way out of a resolver is the conversion below, which keeps them.
#[derive(Debug, Clone)]
pub enum ApiError {
    Validation(ValidationError),
    Unauthenticated,
    NotFound,
    AlreadyExists,
    Deleted,
    /// `expected` is the version the client sent, or the version the last
    /// attempt loaded when every retry lost the race.
    Conflict {
        expected: Version,
        actual: Version,
    },
    /// The cause is logged when the error leaves for the client, never sent.
    Internal(Arc<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// A refusal of `field` for `reason`.
    pub fn invalid(field: &'static str, reason: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self::Validation(ValidationError::new(field, reason))
    }

    /// An internal failure: `cause` is logged, never shown.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(Arc::from(cause.into()))
    }

    /// What the client reads in `message`.
    pub fn message(&self) -> String {
        match self {
            Self::Validation(invalid) => invalid.to_string(),
            Self::Unauthenticated => {
                "a valid `Authorization: Bearer <token>` is required".to_owned()
            }
            Self::NotFound => "task not found".to_owned(),
            Self::AlreadyExists => "a task with this id already exists".to_owned(),
            Self::Deleted => "the task is deleted".to_owned(),
            Self::Conflict { expected, actual } => format!(
                "the task changed concurrently: expected version {expected}, found {actual}"
            ),
            Self::Internal(_) => "internal error".to_owned(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation(_) => ErrorCode::Validation,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::NotFound => ErrorCode::NotFound,
            Self::AlreadyExists | Self::Deleted | Self::Conflict { .. } => ErrorCode::Conflict,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Rejected(TaskError::Validation(invalid)) => Self::Validation(invalid),
            CommandError::Rejected(TaskError::NotFound) => Self::NotFound,
            CommandError::Rejected(TaskError::AlreadyExists) => Self::AlreadyExists,
            CommandError::Rejected(TaskError::Deleted) => Self::Deleted,
            CommandError::Conflict { expected, actual } => Self::Conflict { expected, actual },
            CommandError::Internal(cause) => Self::Internal(cause.into()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(Arc::new(error))
    }
}

impl From<ValidationError> for ApiError {
    fn from(invalid: ValidationError) -> Self {
        Self::Validation(invalid)
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        if let ApiError::Internal(cause) = &error {
            tracing::error!(error = ?cause, "request failed");
        }
        async_graphql::Error::new(error.message()).extend_with(|_, e| {
            e.set("code", error.code().as_str());
            match &error {
                ApiError::Validation(invalid) => {
                    e.set("field", invalid.field);
                    e.set("reason", invalid.reason.as_ref());
                }
                ApiError::Deleted => e.set("reason", "TASK_DELETED"),
                ApiError::Conflict { expected, actual } => {
                    e.set("expectedVersion", *expected);
                    e.set("actualVersion", *actual);
                }
                _ => {}
            }
        })
    }
}

/// What resolvers return.
pub type ApiResult<T> = Result<T, ApiError>;
