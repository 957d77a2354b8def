use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A task's title: trimmed, 1 to [`TaskTitle::MAX_CHARS`] characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskTitle(String);

impl TaskTitle {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ValidationError::new("title", "must not be empty"));
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(
                "title",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "title",
                "must not contain control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TaskTitle {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_surrounding_whitespace() {
        assert_eq!(
            TaskTitle::parse("  buy milk ").unwrap().as_str(),
            "buy milk"
        );
    }

    #[test]
    fn refuses_empty_and_blank_titles() {
        for raw in ["", "   ", "\t\n"] {
            let err = TaskTitle::parse(raw).unwrap_err();
            assert_eq!(err.field, "title");
        }
    }

    #[test]
    fn counts_characters_not_bytes() {
        let at_limit = "é".repeat(TaskTitle::MAX_CHARS);
        assert!(TaskTitle::parse(&at_limit).is_ok());
        assert!(TaskTitle::parse(&format!("{at_limit}é")).is_err());
    }

    #[test]
    fn refuses_control_characters() {
        assert!(TaskTitle::parse("a\u{0}b").is_err());
    }
}
