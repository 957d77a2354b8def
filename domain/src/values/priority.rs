use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// How much a task matters, lowest first, so `Ord` sorts by importance.
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Priority {
    #[default]
    None,
    Low,
    Medium,
    High,
    Urgent,
}

impl Priority {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "NONE" => Ok(Self::None),
            "LOW" => Ok(Self::Low),
            "MEDIUM" => Ok(Self::Medium),
            "HIGH" => Ok(Self::High),
            "URGENT" => Ok(Self::Urgent),
            _ => Err(ValidationError::new(
                "priority",
                "must be one of NONE, LOW, MEDIUM, HIGH, URGENT",
            )),
        }
    }

    /// 0 (none) to 4 (urgent): how the read model stores and sorts it.
    pub fn rank(self) -> i16 {
        self as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_any_case_and_orders_by_importance() {
        assert_eq!(Priority::parse("high").unwrap(), Priority::High);
        assert!(Priority::Urgent > Priority::Low);
        assert_eq!(Priority::Urgent.rank(), 4);
        assert_eq!(Priority::parse("critical").unwrap_err().field, "priority");
    }
}
