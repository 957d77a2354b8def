//! The tools that look across the user's tasks rather than at one:
//! `task_overview` (tags and counts), `list_notifications` (the reminders
//! that fired and the invitations to lists) and `shared_lists` (the lists they belong to and the
//! invitations waiting for them).

use axum::http::request::Parts;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::operation::TaskTools;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListNotifications {
    pub unread_only: Option<bool>,
    /// 1 to 100, default 20.
    pub first: Option<i32>,
    pub after: Option<String>,
}

#[tool_router(router = overview_tools, vis = "pub(super)")]
impl TaskTools {
    #[tool(
        description = "The user's tags with how many open and total tasks each has, and counts of tasks: open, completed, deleted, overdue, due today, open by priority.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn task_overview(&self, Extension(parts): Extension<Parts>) -> CallToolResult {
        let query =
            "{ tags { tag open total } taskStats { open completed deleted overdue dueToday \
                       openByPriority { none low medium high urgent } } }";
        self.answer(&parts, "task_overview", query, json!({})).await
    }

    #[tool(
        description = "The user's notifications (reminders that fired, and invitations to lists: kind INVITATION, with the list, role and inviter), newest first, and how many are unread.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_notifications(
        &self,
        Parameters(input): Parameters<ListNotifications>,
        Extension(parts): Extension<Parts>,
    ) -> CallToolResult {
        let query = "query($unread: Boolean, $first: Int, $after: String) { \
                       unreadNotificationCount \
                       notifications(unreadOnly: $unread, first: $first, after: $after) { \
                         pageInfo { hasNextPage endCursor } \
                         nodes { id kind taskId title dueAt remindAt firedAt lateMs read \
                                 invitation { listId listName role from } } } }";
        let variables =
            json!({ "unread": input.unread_only, "first": input.first, "after": input.after });
        self.answer(&parts, "list_notifications", query, variables)
            .await
    }

    #[tool(
        description = "The user's Inbox id and the shared lists they belong to, with their role and every member's (add_tasks takes a list's id to add to it), and the invitations to lists waiting for the user's answer (which the user gives themselves).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn shared_lists(&self, Extension(parts): Extension<Parts>) -> CallToolResult {
        let query = "{ inboxId lists { id name role archived members { userId role } } \
                       invitations { id listId listName role from invitedAt } }";
        self.answer(&parts, "shared_lists", query, json!({})).await
    }
}
