//! The API's face of the domain's `Priority`, derived from it (one type, not
//! a mirror): GraphQL's task inputs, answers and filters, and the MCP tools'
//! arguments, under the same names on both (`NONE` … `URGENT`).

use async_graphql::Enum;
use serde::{Deserialize, Serialize};

/// How much a task matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize, schemars::JsonSchema)]
#[graphql(name = "Priority", remote = "domain::values::Priority")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[schemars(rename = "Priority")]
pub enum PriorityLevel {
    None,
    Low,
    Medium,
    High,
    Urgent,
}
