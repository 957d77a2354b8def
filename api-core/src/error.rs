//! The API's one error path: resolvers of both sides return [`ApiError`] with
//! `?`, and each variant knows the stable `extensions.code` it leaves with
//! (DESIGN invariant 8). Every refusal of input is a [`ValidationError`], so a
//! client finds `code`, `field` and `reason` in the same places whether a query
//! or a mutation refused it. Internal causes are logged with their chain here
//! and never sent to clients.

use std::sync::Arc;

use async_graphql::ErrorExtensions;
use domain::list::ListError;
use domain::{TaskError, ValidationError, Version};
use event_store::command::{CommandError, ListCommandError, MAX_LISTS_PER_USER};

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
    /// A token that was sent and refused (expired, forged, for another
    /// audience), or an `Authorization` header of the wrong shape: why.
    TokenRefused(&'static str),
    /// The caller's budget is spent; come back after `retry_after_seconds`.
    RateLimited {
        retry_after_seconds: u64,
    },
    /// Too many of the caller's requests are running at once.
    TooManyInFlight,
    /// The request ran past its deadline.
    Timeout,
    /// A path or file the server does not have (`what` names it).
    NoSuchResource(&'static str),
    /// A WebSocket already carries `limit` subscriptions.
    TooManySubscriptions {
        limit: usize,
        /// `connection`, or `user` (across this process's connections).
        per: &'static str,
    },
    /// The request body is larger than `limit_bytes`.
    TooLarge {
        limit_bytes: usize,
    },
    /// The caller may see this but their role does not let them change it
    /// (why).
    Forbidden(&'static str),
    /// A rule of the thing refused the change as it stands (`reason` is a
    /// stable name of the rule, `message` says it in words).
    Refused {
        reason: &'static str,
        message: String,
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
            Self::TokenRefused(reason) => (*reason).to_owned(),
            Self::RateLimited { .. } => "too many requests; slow down".to_owned(),
            Self::TooManyInFlight => "too many of your requests are running at once".to_owned(),
            Self::Timeout => {
                "the request did not finish within its deadline; ask for less at once".to_owned()
            }
            Self::TooLarge { limit_bytes } => {
                format!("the request body is larger than {limit_bytes} bytes")
            }
            Self::NoSuchResource(what) => format!("no such {what}"),
            Self::TooManySubscriptions { limit, per } => {
                format!("at most {limit} subscriptions per {per}")
            }
            Self::Forbidden(why) => (*why).to_owned(),
            Self::Refused { message, .. } => message.clone(),
            Self::Internal(_) => "internal error".to_owned(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation(_) => ErrorCode::Validation,
            Self::Unauthenticated | Self::TokenRefused(_) => ErrorCode::Unauthenticated,
            Self::NotFound | Self::NoSuchResource(_) => ErrorCode::NotFound,
            Self::AlreadyExists | Self::Deleted | Self::Conflict { .. } | Self::Refused { .. } => {
                ErrorCode::Conflict
            }
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::RateLimited { .. }
            | Self::TooManyInFlight
            | Self::TooManySubscriptions { .. } => ErrorCode::RateLimited,
            Self::Timeout => ErrorCode::Timeout,
            Self::TooLarge { .. } => ErrorCode::Validation,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Seconds the caller should wait before asking again, for a refusal of
    /// its budget.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            Self::RateLimited {
                retry_after_seconds,
            } => Some(*retry_after_seconds),
            Self::TooManyInFlight => Some(1),
            _ => None,
        }
    }

    /// The fields beside `code` that say more: `field` and `reason` of a
    /// refused input, the versions of a conflict, when to come back.
    fn details(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let mut details = serde_json::Map::new();
        match self {
            Self::Validation(invalid) => {
                details.insert("field".into(), json!(invalid.field));
                details.insert("reason".into(), json!(invalid.reason.as_ref()));
            }
            Self::Deleted => {
                details.insert("reason".into(), json!("TASK_DELETED"));
            }
            Self::Refused { reason, .. } => {
                details.insert("reason".into(), json!(reason));
            }
            Self::Conflict { expected, actual } => {
                details.insert("expectedVersion".into(), json!(expected));
                details.insert("actualVersion".into(), json!(actual));
            }
            Self::TooLarge { limit_bytes } => {
                details.insert("field".into(), json!("body"));
                details.insert("reason".into(), json!("TOO_LARGE"));
                details.insert("limitBytes".into(), json!(limit_bytes));
            }
            _ => {}
        }
        if let Some(seconds) = self.retry_after_seconds() {
            details.insert("retryAfterSeconds".into(), json!(seconds));
        }
        details
    }

    /// The error as GraphQL's response format lays it out, the one shape
    /// every door sends (HTTP bodies, WebSocket `error` payloads):
    /// `{"message", "extensions": {"code", ...details}}`. An internal cause
    /// is logged here, once, and never sent.
    pub fn to_json(&self) -> serde_json::Value {
        self.log_cause();
        let mut extensions = self.details();
        extensions.insert("code".into(), self.code().as_str().into());
        serde_json::json!({ "message": self.message(), "extensions": extensions })
    }

    /// The same fields laid flat, as an MCP tool's structured error carries
    /// them: `{"code", "message", ...details}`.
    pub fn to_flat_json(&self) -> serde_json::Value {
        self.log_cause();
        let mut flat = self.details();
        flat.insert("code".into(), self.code().as_str().into());
        flat.insert("message".into(), self.message().into());
        serde_json::Value::Object(flat)
    }

    fn log_cause(&self) {
        if let Self::Internal(cause) = self {
            tracing::error!(error = ?cause, "request failed");
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
            CommandError::NoSuchList => Self::NoSuchResource("list"),
            CommandError::Forbidden(why) => Self::Forbidden(why),
            CommandError::ListArchived => Self::Refused {
                reason: "LIST_ARCHIVED",
                message: error.to_string(),
            },
            CommandError::Internal(cause) => Self::Internal(cause.into()),
        }
    }
}

impl From<ListCommandError> for ApiError {
    fn from(error: ListCommandError) -> Self {
        let refused = |reason, message: String| Self::Refused { reason, message };
        match error {
            ListCommandError::Rejected(rejection) => match rejection {
                ListError::Validation(invalid) => Self::Validation(invalid),
                ListError::NotFound => Self::NoSuchResource("list"),
                ListError::InvitationNotFound => Self::NoSuchResource("invitation"),
                ListError::Forbidden(why) => Self::Forbidden(why),
                ListError::AlreadyExists => refused("LIST_EXISTS", rejection.to_string()),
                ListError::Refused(why) => refused("LIST_RULE", why.to_owned()),
                ListError::TooManyMembers => refused("TOO_MANY_MEMBERS", rejection.to_string()),
                ListError::Archived => refused("LIST_ARCHIVED", rejection.to_string()),
            },
            ListCommandError::TooManyLists => refused(
                "TOO_MANY_LISTS",
                format!("you belong to {MAX_LISTS_PER_USER} lists already; leave one first"),
            ),
            ListCommandError::Conflict => refused("LIST_BUSY", error.to_string()),
            ListCommandError::Internal(cause) => Self::Internal(cause.into()),
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
        error.log_cause();
        let details = error.details();
        async_graphql::Error::new(error.message()).extend_with(|_, e| {
            e.set("code", error.code().as_str());
            for (key, value) in details {
                if let Ok(value) = async_graphql::Value::from_json(value) {
                    e.set(key, value);
                }
            }
        })
    }
}

/// What resolvers return.
pub type ApiResult<T> = Result<T, ApiError>;
