//! The API's face of a list member's role, derived from the domain's `Role`:
//! `OWNER`, `EDITOR`, `VIEWER` (the table in docs/api.md says what each may
//! do).

use async_graphql::Enum;

/// What a member may do in a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "ListRole", remote = "domain::list::Role")]
pub enum ListRole {
    /// Manages the list and its members; one per list.
    Owner,
    /// Changes the list's tasks and renames it.
    Editor,
    /// Reads.
    Viewer,
}
