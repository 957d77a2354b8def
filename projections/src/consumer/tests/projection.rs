//! How a projection's errors are classified, and the labels of its outcomes.

use std::borrow::Cow;
use std::error::Error as StdError;

use super::{Outcome, ProjectionError};

/// A database refusal with the given SQLSTATE, as Postgres would send it.
#[derive(Debug)]
struct Refusal(Option<&'static str>);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused with {:?}", self.0)
    }
}

impl StdError for Refusal {}

impl sqlx::error::DatabaseError for Refusal {
    fn message(&self) -> &str {
        "refused"
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        self.0.map(Cow::Borrowed)
    }

    fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

fn refused(code: Option<&'static str>) -> ProjectionError {
    ProjectionError::Database(sqlx::Error::Database(Box::new(Refusal(code))))
}

#[test]
fn invalid_is_permanent_and_transient_is_not() {
    assert!(ProjectionError::Invalid("no".into()).is_permanent());
    assert!(!ProjectionError::Transient("lost a race".into()).is_permanent());
}

#[test]
fn only_data_and_constraint_refusals_of_the_database_are_permanent() {
    for code in ["22P02", "22001", "23505", "23503"] {
        assert!(refused(Some(code)).is_permanent(), "{code}");
    }
    for code in ["40001", "40P01", "57014", "08006", "53300", "2BP01"] {
        assert!(!refused(Some(code)).is_permanent(), "{code}");
    }
    assert!(!refused(None).is_permanent());
    assert!(!ProjectionError::Database(sqlx::Error::PoolTimedOut).is_permanent());
}

#[test]
fn a_dead_letter_reason_keeps_the_projections_words_and_marks_the_databases() {
    assert_eq!(
        ProjectionError::Invalid("task_id is not a UUID".into()).dead_letter_reason(),
        "task_id is not a UUID"
    );
    let reason = refused(Some("23505")).dead_letter_reason();
    assert!(
        reason.starts_with("the read model refused it: "),
        "{reason}"
    );
}

/// The `outcome` label of the messages counter, which dashboards query.
#[test]
fn outcome_labels_are_stable() {
    let labels: Vec<_> = [
        Outcome::Applied,
        Outcome::Duplicate,
        Outcome::AlreadyConsumed,
        Outcome::Ignored,
        Outcome::DeadLettered,
    ]
    .map(Outcome::as_str)
    .into();
    assert_eq!(
        labels,
        [
            "applied",
            "duplicate",
            "already_consumed",
            "ignored",
            "dead_lettered"
        ]
    );
}
