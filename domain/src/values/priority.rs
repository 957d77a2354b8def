use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// How much a task matters, lowest first, so `Ord` sorts by importance.
#[derive(
    Debug,
    Default,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
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

    /// The priority of a stored rank; anything out of range reads as `None`.
    pub fn from_rank(rank: i16) -> Self {
        match rank {
            1 => Self::Low,
            2 => Self::Medium,
            3 => Self::High,
            4 => Self::Urgent,
            _ => Self::None,
        }
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
        for priority in [
            Priority::None,
            Priority::Low,
            Priority::Medium,
            Priority::High,
            Priority::Urgent,
        ] {
            assert_eq!(Priority::from_rank(priority.rank()), priority);
        }
        assert_eq!(Priority::parse("critical").unwrap_err().field, "priority");
    }
}
