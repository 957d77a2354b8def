use std::fmt;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// An IANA time zone such as `Europe/Berlin`: where "due Friday" is Friday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZone(Tz);

impl TimeZone {
    pub const UTC: Self = Self(Tz::UTC);

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        raw.trim().parse::<Tz>().map(Self).map_err(|_| {
            ValidationError::new("timeZone", format!("{raw:?} is not an IANA time zone"))
        })
    }

    pub fn tz(self) -> Tz {
        self.0
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

impl TryFrom<String> for TimeZone {
    type Error = ValidationError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl From<TimeZone> for String {
    fn from(zone: TimeZone) -> Self {
        zone.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_iana_names_only() {
        assert_eq!(
            TimeZone::parse("Europe/Berlin").unwrap().to_string(),
            "Europe/Berlin"
        );
        assert_eq!(
            TimeZone::parse("Mars/Olympus").unwrap_err().field,
            "timeZone"
        );
    }
}
