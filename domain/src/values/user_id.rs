use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// The acting user, taken from a verified token's `sub` claim: 1 to
/// [`UserId::MAX_CHARS`] visible characters. No whitespace, control or
/// format characters: a right-to-left override or a zero-width joiner in an
/// id would render it as another user's name in logs and pages.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
        if raw
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || is_format(c))
        {
            return Err(ValidationError::new(
                "sub",
                "must not contain whitespace, control or format characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Unicode's format characters (general category Cf, Unicode 15.1): bidi
/// embeddings, overrides, isolates and marks, zero-width characters, the
/// byte-order mark, invisible operators, tags and the like.
fn is_format(c: char) -> bool {
    const FORMAT: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let c = c as u32;
    FORMAT
        .iter()
        .any(|&(first, last)| (first..=last).contains(&c))
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

    #[test]
    fn refuses_ids_that_render_as_someone_else() {
        // "alice" with a right-to-left override, a zero-width space, an
        // isolate, a byte-order mark, a soft hyphen and a tag character.
        for id in [
            "ecila\u{202E}",
            "al\u{200B}ice",
            "\u{2067}alice\u{2069}",
            "\u{FEFF}alice",
            "ali\u{00AD}ce",
            "alice\u{E0041}",
        ] {
            let refused = UserId::parse(id).unwrap_err();
            assert!(refused.to_string().contains("format"), "{id:?}: {refused}");
        }
        assert!(UserId::parse("zoë-müller_42@example.org").is_ok());
        assert!(UserId::parse("山田").is_ok());
    }
}
