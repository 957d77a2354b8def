//! The GraphQL face of the domain's `Priority`, derived from it (one type,
//! not a mirror): task inputs, task answers and filters all use it.

use async_graphql::Enum;

/// How much a task matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "Priority", remote = "domain::values::Priority")]
pub enum PriorityLevel {
    None,
    Low,
    Medium,
    High,
    Urgent,
}
