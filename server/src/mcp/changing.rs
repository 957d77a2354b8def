//! The tools that change a task: `update_task` and `schedule_task`, each a
//! few GraphQL mutations run in order, and the status changes (complete,
//! reopen, delete, restore), each one mutation.

use api_core::{ApiError, PriorityLevel};
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate, Utc};
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::operation::TaskTools;
use super::operation::{Step, ToolError};

/// One reminder: exactly one of `at` and `minutesBefore`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReminderSpec {
    /// Remind at this instant (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// Remind this many minutes before the due time; moves with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minutes_before: Option<i32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskRef {
    /// The task's id.
    pub id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTask {
    pub id: String,
    pub title: Option<String>,
    /// A new description; an empty string clears it.
    pub description: Option<String>,
    pub priority: Option<PriorityLevel>,
    pub add_tags: Option<Vec<String>>,
    pub remove_tags: Option<Vec<String>>,
    /// A new RRULE; an empty string stops the task repeating.
    pub recurrence: Option<String>,
    /// Apply only if the task is still at this version (from an earlier
    /// answer), else `CONFLICT`.
    pub expected_version: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleTask {
    pub id: String,
    /// Due at this instant (RFC 3339).
    pub due_at: Option<DateTime<Utc>>,
    /// Due by the end of this day in `timeZone` (all day).
    pub due_date: Option<NaiveDate>,
    /// IANA zone of the due date and repeats; default UTC.
    pub time_zone: Option<String>,
    /// Remove the due date (and with it reminders relative to it).
    pub clear_due: Option<bool>,
    /// Replaces the task's reminders (at most 10); `[]` removes them all.
    pub reminders: Option<Vec<ReminderSpec>>,
}

#[tool_router(router = changing_tools, vis = "pub(super)")]
impl TaskTools {
    #[tool(
        description = "Change a task's title, description, priority, tags or repeat rule. Fields left out stay as they are; with expectedVersion the change applies only if nobody changed the task since.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn update_task(
        &self,
        Parameters(input): Parameters<UpdateTask>,
        Extension(parts): Extension<Parts>,
    ) -> CallToolResult {
        self.run_steps(&parts, "update_task", update_steps(input))
            .await
    }

    #[tool(
        description = "Mark a task done. A recurring task's next occurrence is created. Completing a completed task changes nothing.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn complete_task(
        &self,
        Parameters(input): Parameters<TaskRef>,
        Extension(parts): Extension<Parts>,
    ) -> CallToolResult {
        self.status_change(&parts, "complete_task", "completeTask", input)
            .await
    }

    #[tool(
        description = "Open a completed task again.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn reopen_task(
        &self,
        Parameters(input): Parameters<TaskRef>,
        Extension(parts): Extension<Parts>,
    ) -> CallToolResult {
        self.status_change(&parts, "reopen_task", "reopenTask", input)
            .await
    }

    #[tool(
        description = "Move a task to the trash (restore_task brings it back). Its reminders stop.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn delete_task(
        &self,
        Parameters(input): Parameters<TaskRef>,
        Extension(parts): Extension<Parts>,
    ) -> CallToolResult {
        self.status_change(&parts, "delete_task", "deleteTask", input)
            .await
    }

    #[tool(
        description = "Bring a task back from the trash.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn restore_task(
        &self,
        Parameters(input): Parameters<TaskRef>,
        Extension(parts): Extension<Parts>,
    ) -> CallToolResult {
        self.status_change(&parts, "restore_task", "restoreTask", input)
            .await
    }

    #[tool(
        description = "Set or clear a task's due date (an instant, or a whole day in a time zone) and replace its reminders (at an instant, or minutes before the due time).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn schedule_task(
        &self,
        Parameters(input): Parameters<ScheduleTask>,
        Extension(parts): Extension<Parts>,
    ) -> CallToolResult {
        self.run_steps(&parts, "schedule_task", schedule_steps(input))
            .await
    }
}

impl TaskTools {
    /// One of the mutations that take a task's id alone.
    async fn status_change(
        &self,
        parts: &Parts,
        tool: &'static str,
        mutation: &str,
        task: TaskRef,
    ) -> CallToolResult {
        let query = format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ taskId version }} }}");
        self.answer(parts, tool, &query, json!({ "id": task.id }))
            .await
    }
}

/// The writes `update_task` asks for, in order.
fn update_steps(input: UpdateTask) -> Result<Vec<Step>, ToolError> {
    let id = input.id;
    let mut steps = Vec::new();
    if input.title.is_some() || input.description.is_some() {
        let mut update = json!({ "id": id, "expectedVersion": input.expected_version });
        if let Some(title) = input.title {
            update["title"] = json!(title);
        }
        if let Some(description) = input.description {
            update["description"] = json!((!description.is_empty()).then_some(description));
        }
        steps.push(Step {
            name: "update",
            query: "mutation($update: UpdateTaskInput!) { updateTask(input: $update) { taskId version } }",
            variables: json!({ "update": update }),
        });
    }
    if input.expected_version.is_some()
        && (steps.is_empty()
            || input.priority.is_some()
            || input.add_tags.is_some()
            || input.remove_tags.is_some()
            || input.recurrence.is_some())
    {
        return Err(ApiError::invalid(
            "expectedVersion",
            "guards a change of title or description alone; send other changes without it",
        )
        .into());
    }
    if let Some(priority) = input.priority {
        steps.push(Step {
            name: "priority",
            query: "mutation($id: ID!, $priority: Priority!) { setPriority(id: $id, priority: $priority) { taskId version } }",
            variables: json!({ "id": id, "priority": priority }),
        });
    }
    if let Some(tags) = input.add_tags {
        steps.push(Step {
            name: "addTags",
            query: "mutation($id: ID!, $tags: [String!]!) { addTags(id: $id, tags: $tags) { taskId version } }",
            variables: json!({ "id": id, "tags": tags }),
        });
    }
    if let Some(tags) = input.remove_tags {
        steps.push(Step {
            name: "removeTags",
            query: "mutation($id: ID!, $tags: [String!]!) { removeTags(id: $id, tags: $tags) { taskId version } }",
            variables: json!({ "id": id, "tags": tags }),
        });
    }
    match input.recurrence.as_deref() {
        Some("") => steps.push(Step {
            name: "recurrence",
            query: "mutation($id: ID!) { clearRecurrence(id: $id) { taskId version } }",
            variables: json!({ "id": id }),
        }),
        Some(rule) => steps.push(Step {
            name: "recurrence",
            query: "mutation($id: ID!, $rule: String!) { setRecurrence(id: $id, rule: $rule) { taskId version } }",
            variables: json!({ "id": id, "rule": rule }),
        }),
        None => {}
    }
    if steps.is_empty() {
        return Err(ApiError::invalid("id", "name at least one field to change").into());
    }
    Ok(steps)
}

/// The writes `schedule_task` asks for, in order.
fn schedule_steps(input: ScheduleTask) -> Result<Vec<Step>, ToolError> {
    let id = input.id;
    let mut steps = Vec::new();
    let due_given = input.due_at.is_some() || input.due_date.is_some();
    match (input.clear_due == Some(true), due_given) {
        (true, true) => {
            return Err(
                ApiError::invalid("clearDue", "give a due date or clearDue, not both").into(),
            )
        }
        (true, false) => steps.push(Step {
            name: "due",
            query: "mutation($id: ID!) { clearDueDate(id: $id) { taskId version } }",
            variables: json!({ "id": id }),
        }),
        (false, true) => steps.push(Step {
            name: "due",
            query: "mutation($id: ID!, $dueAt: DateTime, $dueDate: NaiveDate, $zone: String) { \
                    setDueDate(id: $id, dueAt: $dueAt, dueDate: $dueDate, timeZone: $zone) { taskId version } }",
            variables: json!({ "id": id, "dueAt": input.due_at, "dueDate": input.due_date, "zone": input.time_zone }),
        }),
        (false, false) => {}
    }
    if let Some(reminders) = input.reminders {
        steps.push(Step {
            name: "reminders",
            query: "mutation($id: ID!, $reminders: [ReminderInput!]!) { setReminders(id: $id, reminders: $reminders) { taskId version } }",
            variables: json!({ "id": id, "reminders": reminders }),
        });
    }
    if steps.is_empty() {
        return Err(ApiError::invalid("id", "give a due date, clearDue or reminders").into());
    }
    Ok(steps)
}
