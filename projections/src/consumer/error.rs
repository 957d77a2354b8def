//! Why a projection could not apply a message, and whether trying again could
//! help: a refusal of the message itself goes to the dead letters, anything
//! else ends the activation.

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The message can never be applied; it goes to the dead-letter topic.
    #[error("{0}")]
    Invalid(String),
    /// A transient failure; the message is retried.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Another transient failure (a command that lost a race, say); retried.
    #[error("{0}")]
    Transient(String),
}

impl ProjectionError {
    /// Whether applying the same message again can only fail the same way:
    /// refused as invalid, or refused by the database for its data (SQLSTATE
    /// classes 22, data exception, and 23, integrity constraint violation).
    pub(super) fn is_permanent(&self) -> bool {
        match self {
            Self::Invalid(_) => true,
            Self::Database(error) => error
                .as_database_error()
                .and_then(|e| e.code())
                .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
            Self::Transient(_) => false,
        }
    }

    /// The `dlq-reason` of a message this error refused: a projection's own
    /// words as they are, the database's marked as such.
    pub(super) fn dead_letter_reason(self) -> String {
        match self {
            Self::Invalid(reason) => reason,
            other => format!("the read model refused it: {other}"),
        }
    }
}
