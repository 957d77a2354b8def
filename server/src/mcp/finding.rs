//! The tools that read tasks: `find_tasks` (search, filters, order, pages)
//! and `get_task` (one task with its history). Their arguments are a flat,
//! agent-sized subset of GraphQL's `tasks` and `task`, under the same enums.

use api_core::{ApiError, PriorityLevel};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use query_api::{TaskOrder, TaskSearchMode, TaskStatus};
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use super::operation::TaskTools;
use super::operation::{counted, ToolError};

/// What the read tools answer of each task.
const TASK_FIELDS: &str = "id title description status priority tags dueAt dueDate timeZone \
     recurrence version createdAt updatedAt completedAt nextReminderAt listId owner assignee \
     reminders { at minutesBefore firesAt } series { id occurrence }";

// GraphQL's `TaskFilter`, `TaskSearch` and paging laid flat: an agent names
// `tagsAll` or `dueBefore` without nesting, so the fields cannot be
// `TaskFilter`'s own (and repeat a few of its doc lines); the values (status,
// priority, mode, order) are GraphQL's own types.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FindTasks {
    /// Words to look for in titles, tags and descriptions.
    pub search: Option<String>,
    pub search_mode: Option<TaskSearchMode>,
    /// Default: open and completed (not deleted).
    pub status: Option<Vec<TaskStatus>>,
    /// Tasks with every one of these tags.
    pub tags_all: Option<Vec<String>>,
    /// Tasks with any of these tags.
    pub tags_any: Option<Vec<String>>,
    /// A tag equal to this category or under it: `work` matches `work/clients`.
    pub category: Option<String>,
    /// Tasks at least this important.
    pub min_priority: Option<PriorityLevel>,
    pub due_before: Option<DateTime<Utc>>,
    pub due_after: Option<DateTime<Utc>>,
    /// Open and past due.
    pub overdue: Option<bool>,
    /// Due today in the task's own zone.
    pub due_today: Option<bool>,
    /// Only the tasks in these lists (ids from `shared_lists`, the Inbox's
    /// among them); default: every list of the user's.
    pub list_ids: Option<Vec<String>>,
    pub order: Option<TaskOrder>,
    /// Page size, 1 to 100 (default 20).
    pub first: Option<i32>,
    /// `endCursor` of the page before.
    pub after: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetTask {
    pub id: String,
    /// How many history entries to include, oldest first (0 to 100, default 20).
    pub history: Option<i32>,
}

#[tool_router(router = finding_tools, vis = "pub(super)")]
impl TaskTools {
    #[tool(
        description = "Find the user's tasks: search words, filter by status, tags, category, priority and due date, order, and page through (first/after). Returns the tasks, the total count and the cursor of the next page.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn find_tasks(
        &self,
        Parameters(input): Parameters<FindTasks>,
        Extension(parts): Extension<Parts>,
    ) -> CallToolResult {
        let query = format!(
            "query($filter: TaskFilter, $search: TaskSearch, $order: TaskOrder, $first: Int, $after: String) {{ \
               tasks(filter: $filter, search: $search, orderBy: $order, first: $first, after: $after) {{ \
                 totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {TASK_FIELDS} }} }} }}"
        );
        self.answer(&parts, "find_tasks", &query, find_variables(input))
            .await
    }

    #[tool(
        description = "Get one of the user's tasks by id, with its history (every change: when, by whom, what changed). Another user's task, or a missing one, answers NOT_FOUND.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_task(
        &self,
        Parameters(input): Parameters<GetTask>,
        Extension(parts): Extension<Parts>,
    ) -> CallToolResult {
        let query = format!(
            "query($id: ID!, $first: Int) {{ task(id: $id) {{ {TASK_FIELDS} }} \
               taskHistory(id: $id, first: $first) {{ pageInfo {{ hasNextPage endCursor }} \
                 nodes {{ sequence eventType recordedAt actor correlationId changes {{ field old new }} }} }} }}"
        );
        let variables = json!({ "id": input.id, "first": input.history.unwrap_or(20) });
        let answer = self.graphql(&parts, "get_task", &query, variables).await;
        counted(&parts, "get_task", answer.and_then(found_task))
    }
}

/// GraphQL answers `null` for a task that is not the caller's; an agent is
/// told `NOT_FOUND`, as every write tool tells it.
fn found_task(data: Value) -> Result<Value, ToolError> {
    if data["task"].is_null() {
        return Err(ApiError::NotFound.into());
    }
    Ok(data)
}

/// The variables of GraphQL's `tasks` for a `find_tasks` call.
fn find_variables(input: FindTasks) -> Value {
    let mut filter = serde_json::Map::new();
    if let Some(status) = input.status {
        filter.insert("status".into(), json!(status));
    }
    if input.tags_all.is_some() || input.tags_any.is_some() || input.category.is_some() {
        filter.insert(
            "tags".into(),
            json!({ "containsAll": input.tags_all, "containsAny": input.tags_any, "category": input.category }),
        );
    }
    if let Some(priority) = input.min_priority {
        filter.insert("priority".into(), json!({ "gte": priority }));
    }
    if input.due_before.is_some()
        || input.due_after.is_some()
        || input.overdue.is_some()
        || input.due_today.is_some()
    {
        filter.insert(
            "due".into(),
            json!({ "before": input.due_before, "after": input.due_after, "overdue": input.overdue, "dueToday": input.due_today }),
        );
    }
    if let Some(lists) = input.list_ids {
        filter.insert("listIds".into(), json!(lists));
    }
    let search = input.search.map(|query| {
        json!({ "query": query, "mode": input.search_mode.unwrap_or(TaskSearchMode::FullText) })
    });
    json!({
        "filter": (!filter.is_empty()).then_some(Value::Object(filter)),
        "search": search,
        "order": input.order,
        "first": input.first,
        "after": input.after,
    })
}
