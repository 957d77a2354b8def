//! The API's face of the domain's `TaskStatus`, derived from it: a task's
//! answer, the listing filter and the MCP tools' arguments, under the same
//! names on both (`OPEN`, `COMPLETED`, `DELETED`).

use async_graphql::Enum;
use serde::{Deserialize, Serialize};

/// Where a task stands: open, done, or in the trash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize, schemars::JsonSchema)]
#[graphql(remote = "domain::TaskStatus")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Open,
    Completed,
    /// In the trash.
    Deleted,
}
