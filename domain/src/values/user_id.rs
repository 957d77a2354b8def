use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// The acting user, taken from a verified token's `sub` claim: 1 to
/// [`UserId::MAX_CHARS`] visible characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.is_empty() || raw.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new(
                "sub",
                format!("must be 1 to {} characters", Self::MAX_CHARS),
            ));
        }
        if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ValidationError::new(
                "sub",
                "must not contain whitespace or control characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_blank_and_spaced_ids() {
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a b").is_err());
        assert!(UserId::parse("alice").is_ok());
    }
}
