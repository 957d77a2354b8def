use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// Free text describing a task, at most [`TaskDescription::MAX_CHARS`] characters.
/// Newlines and tabs are kept; other control characters are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskDescription(String);

impl TaskDescription {
    pub const MAX_CHARS: usize = 10_000;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(
                "description",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if raw
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(ValidationError::new(
                "description",
                "must not contain control characters other than newlines and tabs",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_newlines() {
        assert_eq!(TaskDescription::parse("a\nb").unwrap().as_str(), "a\nb");
    }

    #[test]
    fn refuses_overlong_text() {
        let err = TaskDescription::parse(&"x".repeat(TaskDescription::MAX_CHARS + 1)).unwrap_err();
        assert_eq!(err.field, "description");
    }
}
