//! The MCP endpoint at `/mcp` for AI agents: a dozen tools at the level of a
//! person's intent, each run as a fixed GraphQL operation against the same
//! schema as the API, for the caller the bearer token names. So an agent gets
//! exactly GraphQL's isolation, validation, limits and error codes; the user
//! is never a tool argument.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::Variables;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use domain::values::Priority;
use event_store::command::Actor;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResponse, CallToolResult, Implementation, ServerCapabilities, ServerConfig,
};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{schemars, tool, tool_handler, tool_router, ErrorData, ServerHandler};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use api_core::fairness::Fairness;

use crate::caller::authenticate;
use crate::refusal::refusal;
use crate::{ApiState, TaskledgerSchema};
use api_core::{ApiError, ErrorCode};

/// The most tasks one `add_tasks` call creates.
const MAX_NEW_TASKS: usize = 20;
/// The largest MCP request body.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The service nested at `/mcp`: stateless, so any API replica answers any
/// request, and the protocol revisions without a handshake need nothing more.
pub fn service(
    schema: TaskledgerSchema,
    fairness: Arc<Fairness>,
    deadline: Duration,
    allowed_hosts: Vec<String>,
    shutdown: CancellationToken,
) -> StreamableHttpService<TaskTools, NeverSessionManager> {
    let tools = TaskTools {
        schema,
        fairness,
        deadline,
    };
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_max_request_body_bytes(MAX_BODY_BYTES)
        .with_cancellation_token(shutdown);
    config = if allowed_hosts.is_empty() {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(allowed_hosts)
    };
    StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// Before the MCP service sees a request: the bearer token (the caller
/// becomes the request's [`Actor`]) and the caller's rate, as for GraphQL.
pub async fn admit(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    let actor = match authenticate(&state, request.headers()) {
        Ok(actor) => actor,
        Err(reason) => return refusal(StatusCode::UNAUTHORIZED, ApiError::TokenRefused(reason)),
    };
    let _running = match state.fairness.admit(actor.user_id.as_str()) {
        Ok(running) => running,
        Err(refused) => return refusal(StatusCode::TOO_MANY_REQUESTS, refused.into()),
    };
    request.extensions_mut().insert(actor);
    next.run(request).await.into_response()
}

#[derive(Clone)]
pub struct TaskTools {
    schema: TaskledgerSchema,
    /// Each task after the first of one `add_tasks` is a request of the
    /// caller's budget too.
    fairness: Arc<Fairness>,
    deadline: Duration,
}

/// A tool's failure as the agent reads it: GraphQL's code, message and field.
struct ToolError(Value);

impl ToolError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(json!({ "code": code.as_str(), "message": message.into() }))
    }

    fn into_result(self) -> CallToolResult {
        CallToolResult::structured_error(self.0)
    }
}

type ToolResult = Result<CallToolResult, ErrorData>;

impl TaskTools {
    /// Runs one of our GraphQL operations as `actor`; its data, or the first
    /// error with its `extensions` (code, field, reason).
    async fn graphql(
        &self,
        actor: &Actor,
        tool: &'static str,
        query: &str,
        variables: Value,
    ) -> Result<Value, ToolError> {
        let span = tracing::info_span!(
            "mcp",
            tool,
            user_id = actor.user_id.as_str(),
            correlation_id = actor.correlation_id.as_str(),
            trace_id = tracing::field::Empty,
        );
        if let Some(trace_id) = infra::trace::trace_id_of(&span) {
            span.record("trace_id", trace_id);
        }
        let request = async_graphql::Request::new(query)
            .variables(Variables::from_json(variables))
            .data(actor.clone());
        let execution = tokio::time::timeout(self.deadline, self.schema.execute(request));
        let Ok(response) = execution.instrument(span).await else {
            return Err(ToolError::new(
                ErrorCode::Timeout,
                "the call did not finish within its deadline; ask for less at once",
            ));
        };
        if let Some(error) = response.errors.first() {
            let mut body = json!({ "message": error.message });
            if let Some(Ok(Value::Object(extensions))) =
                error.extensions.as_ref().map(serde_json::to_value)
            {
                for (key, value) in extensions {
                    body[key] = value;
                }
            }
            // Our documents are fixed: a refusal without a code of ours is
            // our mistake, not the agent's.
            if body.get("code").is_none() {
                tracing::error!(tool, error = %error.message, "an MCP tool's document was refused");
                body["code"] = json!(ErrorCode::Internal.as_str());
            }
            return Err(ToolError(body));
        }
        response
            .data
            .into_json()
            .map_err(|error| ToolError::new(ErrorCode::Internal, error.to_string()))
    }

    /// One operation, answered as the tool's result.
    async fn answer(
        &self,
        parts: &Parts,
        tool: &'static str,
        query: &str,
        variables: Value,
    ) -> ToolResult {
        let Some(actor) = parts.extensions.get::<Actor>() else {
            return Ok(
                ToolError::new(ErrorCode::Unauthenticated, "no verified caller").into_result(),
            );
        };
        Ok(counted(
            tool,
            match self.graphql(actor, tool, query, variables).await {
                Ok(data) => CallToolResult::structured(data),
                Err(error) => error.into_result(),
            },
        ))
    }

    /// Writes one after another, stopping at the first refusal; what was
    /// applied before it is in the answer either way.
    async fn run_steps(&self, parts: &Parts, tool: &'static str, steps: Vec<Step>) -> ToolResult {
        let Some(actor) = parts.extensions.get::<Actor>() else {
            return Ok(
                ToolError::new(ErrorCode::Unauthenticated, "no verified caller").into_result(),
            );
        };
        let mut applied = serde_json::Map::new();
        for step in steps {
            match self.graphql(actor, tool, step.query, step.variables).await {
                Ok(data) => {
                    let result = data
                        .as_object()
                        .and_then(|d| d.values().next().cloned())
                        .unwrap_or_default();
                    applied.insert(step.name.to_owned(), result);
                }
                Err(ToolError(mut error)) => {
                    error["failed"] = json!(step.name);
                    error["applied"] = Value::Object(applied);
                    return Ok(counted(tool, ToolError(error).into_result()));
                }
            }
        }
        Ok(counted(
            tool,
            CallToolResult::structured(Value::Object(applied)),
        ))
    }
}

const TASK_FIELDS: &str = "id title description status priority tags dueAt dueDate timeZone \
     recurrence version createdAt updatedAt completedAt nextReminderAt \
     reminders { at minutesBefore firesAt } series { id occurrence }";

/// One reminder: exactly one of `at` and `minutesBefore`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReminderSpec {
    /// Remind at this instant (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// Remind this many minutes before the due time; moves with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minutes_before: Option<i32>,
}

/// A new task: either `text` as a person would type it, or `title` and
/// structured fields.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTaskSpec {
    /// Quick add: "pay rent every month on the 1st 9am #home !high". Words
    /// not understood stay in the title. Give this or `title`.
    pub text: Option<String>,
    /// The user's IANA time zone (such as `Europe/Berlin`) for `text`, `dueDate`
    /// and repeats; default UTC.
    pub time_zone: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<Priority>,
    /// Letters, digits, `-`, `_` and `/` (a category path such as `work/clients`).
    pub tags: Option<Vec<String>>,
    /// Due at this instant (RFC 3339).
    pub due_at: Option<DateTime<Utc>>,
    /// Due by the end of this day in `timeZone` (all day).
    pub due_date: Option<NaiveDate>,
    pub reminders: Option<Vec<ReminderSpec>>,
    /// An RRULE such as `FREQ=WEEKLY;BYDAY=MO,TH`; needs a due date.
    pub recurrence: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddTasks {
    /// 1 to 20 tasks.
    pub tasks: Vec<NewTaskSpec>,
    /// Makes a retried call safe: the same key (up to 90 characters) creates
    /// nothing new and answers with the tasks the first call made.
    pub idempotency_key: Option<String>,
}

/// How a search reads its words.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SearchMode {
    /// Words, "quoted phrases", -exclusions and `or`, ranked.
    FullText,
    /// Each word is the start of a word in the task.
    Prefix,
    /// Forgives typos in the title.
    Fuzzy,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Open,
    Completed,
    Deleted,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Order {
    /// Highest priority first, then soonest due, then newest.
    Smart,
    DueAsc,
    PriorityDesc,
    CreatedDesc,
    UpdatedDesc,
    TitleAsc,
    /// Best match first; only with `search`.
    Relevance,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FindTasks {
    /// Words to look for in titles, tags and descriptions.
    pub search: Option<String>,
    pub search_mode: Option<SearchMode>,
    /// Default: open and completed (not deleted).
    pub status: Option<Vec<Status>>,
    /// Tasks with every one of these tags.
    pub tags_all: Option<Vec<String>>,
    /// Tasks with any of these tags.
    pub tags_any: Option<Vec<String>>,
    /// A tag equal to this category or under it: `work` matches `work/clients`.
    pub category: Option<String>,
    /// Tasks at least this important.
    pub min_priority: Option<Priority>,
    pub due_before: Option<DateTime<Utc>>,
    pub due_after: Option<DateTime<Utc>>,
    /// Open and past due.
    pub overdue: Option<bool>,
    /// Due today in the task's own zone.
    pub due_today: Option<bool>,
    pub order: Option<Order>,
    /// Page size, 1 to 100 (default 20).
    pub first: Option<i32>,
    /// `endCursor` of the page before.
    pub after: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskRef {
    /// The task's id.
    pub id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetTask {
    pub id: String,
    /// How many history entries to include, oldest first (0 to 100, default 20).
    pub history: Option<i32>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTask {
    pub id: String,
    pub title: Option<String>,
    /// A new description; an empty string clears it.
    pub description: Option<String>,
    pub priority: Option<Priority>,
    pub add_tags: Option<Vec<String>>,
    pub remove_tags: Option<Vec<String>>,
    /// A new RRULE; an empty string stops the task repeating.
    pub recurrence: Option<String>,
    /// Apply only if the task is still at this version (from an earlier
    /// answer), else `CONFLICT`.
    pub expected_version: Option<i64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
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

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListNotifications {
    pub unread_only: Option<bool>,
    /// 1 to 100, default 20.
    pub first: Option<i32>,
    pub after: Option<String>,
}

#[tool_router]
impl TaskTools {
    #[tool(
        description = "Add one or more tasks (at most 20) for the user: each either as a line of text the way a person says it (dates, times, repeats, reminders, #tags and !priority are understood) or with a title and structured fields. Pass an idempotencyKey so a retried call never adds the tasks twice. Returns each task's id and version, and for text what was understood.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn add_tasks(
        &self,
        Parameters(input): Parameters<AddTasks>,
        Extension(parts): Extension<Parts>,
    ) -> ToolResult {
        let Some(actor) = parts.extensions.get::<Actor>() else {
            return Ok(
                ToolError::new(ErrorCode::Unauthenticated, "no verified caller").into_result(),
            );
        };
        if input.tasks.is_empty() || input.tasks.len() > MAX_NEW_TASKS {
            return Ok(validation(
                "tasks",
                format!("give 1 to {MAX_NEW_TASKS} tasks"),
            ));
        }
        if input
            .idempotency_key
            .as_ref()
            .is_some_and(|k| k.is_empty() || k.chars().count() > 90)
        {
            return Ok(validation("idempotencyKey", "must be 1 to 90 characters"));
        }
        let mut created = Vec::with_capacity(input.tasks.len());
        // One deadline for the whole call, like one GraphQL request.
        let started = tokio::time::Instant::now();
        for (index, task) in input.tasks.into_iter().enumerate() {
            let refusal = if started.elapsed() >= self.deadline {
                Some(ToolError::new(
                    ErrorCode::Timeout,
                    "the call ran out of time; retry it with the same idempotencyKey for the rest",
                ))
            } else if index > 0 {
                self.fairness.admit(actor.user_id.as_str()).err().map(|_| {
                    ToolError::new(
                        ErrorCode::RateLimited,
                        "too many requests; retry with the same idempotencyKey for the rest",
                    )
                })
            } else {
                None
            };
            if let Some(ToolError(mut error)) = refusal {
                error["index"] = json!(index);
                error["created"] = json!(created);
                return Ok(counted("add_tasks", ToolError(error).into_result()));
            }
            let key = input
                .idempotency_key
                .as_ref()
                .map(|k| format!("{k}#{index}"));
            match self.add_task(actor, task, key).await {
                Ok(task) => created.push(task),
                Err(ToolError(mut error)) => {
                    error["index"] = json!(index);
                    error["created"] = json!(created);
                    return Ok(counted("add_tasks", ToolError(error).into_result()));
                }
            }
        }
        Ok(counted(
            "add_tasks",
            CallToolResult::structured(json!({ "tasks": created })),
        ))
    }

    #[tool(
        description = "Find the user's tasks: search words, filter by status, tags, category, priority and due date, order, and page through (first/after). Returns the tasks, the total count and the cursor of the next page.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn find_tasks(
        &self,
        Parameters(input): Parameters<FindTasks>,
        Extension(parts): Extension<Parts>,
    ) -> ToolResult {
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
    ) -> ToolResult {
        let query = format!(
            "query($id: ID!, $first: Int) {{ task(id: $id) {{ {TASK_FIELDS} }} \
               taskHistory(id: $id, first: $first) {{ pageInfo {{ hasNextPage endCursor }} \
                 nodes {{ sequence eventType recordedAt actor correlationId changes {{ field old new }} }} }} }}"
        );
        let variables = json!({ "id": input.id, "first": input.history.unwrap_or(20) });
        let result = self.answer(&parts, "get_task", &query, variables).await?;
        Ok(not_found_when_null(result, "task"))
    }

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
    ) -> ToolResult {
        match update_steps(input) {
            Ok(steps) => self.run_steps(&parts, "update_task", steps).await,
            Err(refusal) => Ok(refusal),
        }
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
    ) -> ToolResult {
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
    ) -> ToolResult {
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
    ) -> ToolResult {
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
    ) -> ToolResult {
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
    ) -> ToolResult {
        match schedule_steps(input) {
            Ok(steps) => self.run_steps(&parts, "schedule_task", steps).await,
            Err(refusal) => Ok(refusal),
        }
    }

    #[tool(
        description = "The user's tags with how many open and total tasks each has, and counts of tasks: open, completed, deleted, overdue, due today, open by priority.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn task_overview(&self, Extension(parts): Extension<Parts>) -> ToolResult {
        let query =
            "{ tags { tag open total } taskStats { open completed deleted overdue dueToday \
                       openByPriority { none low medium high urgent } } }";
        self.answer(&parts, "task_overview", query, json!({})).await
    }

    #[tool(
        description = "The user's notifications (reminders that fired), newest first, and how many are unread.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_notifications(
        &self,
        Parameters(input): Parameters<ListNotifications>,
        Extension(parts): Extension<Parts>,
    ) -> ToolResult {
        let query = "query($unread: Boolean, $first: Int, $after: String) { \
                       unreadNotificationCount \
                       notifications(unreadOnly: $unread, first: $first, after: $after) { \
                         pageInfo { hasNextPage endCursor } \
                         nodes { id taskId title dueAt remindAt firedAt lateMs read } } }";
        let variables =
            json!({ "unread": input.unread_only, "first": input.first, "after": input.after });
        self.answer(&parts, "list_notifications", query, variables)
            .await
    }
}

impl TaskTools {
    async fn add_task(
        &self,
        actor: &Actor,
        task: NewTaskSpec,
        key: Option<String>,
    ) -> Result<Value, ToolError> {
        match (task.text, task.title) {
            (Some(text), None) => {
                let fields = [&task.description, &task.recurrence]
                    .iter()
                    .any(|f| f.is_some())
                    || task.priority.is_some()
                    || task.tags.is_some()
                    || task.due_at.is_some()
                    || task.due_date.is_some()
                    || task.reminders.is_some();
                if fields {
                    return Err(invalid("text", "with text, give only timeZone besides it"));
                }
                let data = self
                    .graphql(
                        actor,
                        "add_tasks",
                        "mutation($text: String!, $zone: String, $key: String) { \
                           quickAdd(text: $text, timeZone: $zone, idempotencyKey: $key) { \
                             taskId version title understood { kind text meaning } } }",
                        json!({ "text": text, "zone": task.time_zone, "key": key }),
                    )
                    .await?;
                Ok(data["quickAdd"].clone())
            }
            (None, Some(title)) => {
                let input = json!({
                    "title": title,
                    "description": task.description,
                    "priority": task.priority,
                    "tags": task.tags,
                    "dueAt": task.due_at,
                    "dueDate": task.due_date,
                    "timeZone": task.time_zone,
                    "reminders": task.reminders,
                    "recurrence": task.recurrence,
                    "idempotencyKey": key,
                });
                let data = self
                    .graphql(
                        actor,
                        "add_tasks",
                        "mutation($input: CreateTaskInput!) { createTask(input: $input) { taskId version } }",
                        json!({ "input": input }),
                    )
                    .await?;
                Ok(data["createTask"].clone())
            }
            _ => Err(invalid("text", "give either text or title")),
        }
    }

    async fn status_change(
        &self,
        parts: &Parts,
        tool: &'static str,
        mutation: &str,
        task: TaskRef,
    ) -> ToolResult {
        let query = format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ taskId version }} }}");
        self.answer(parts, tool, &query, json!({ "id": task.id }))
            .await
    }
}

#[tool_handler]
impl ServerHandler for TaskTools {
    /// The router's answer, with the SDK's own refusals (arguments that do
    /// not fit a tool's schema) given GraphQL's `VALIDATION` code like ours.
    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool: String = request.name.to_string();
        let context = ToolCallContext::new(self, request, context);
        let response = Self::tool_router().call(context).await?;
        Ok(match response {
            CallToolResponse::Complete(result)
                if result.is_error == Some(true) && result.structured_content.is_none() =>
            {
                let message: String = result
                    .content
                    .iter()
                    .filter_map(|content| content.as_text().map(|text| text.text.clone()))
                    .collect::<Vec<_>>()
                    .join("; ");
                tracing::debug!(tool, %message, "MCP arguments refused");
                ToolError(json!({
                    "code": ErrorCode::Validation.as_str(),
                    "message": message,
                    "field": "arguments",
                }))
                .into_result()
                .into()
            }
            other => other,
        })
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("taskledger", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Taskledger keeps the user's tasks. Tools act for the user the bearer token \
                 names. Errors carry a code: VALIDATION (fix the named field), NOT_FOUND, \
                 CONFLICT (someone changed the task; read it again), RATE_LIMITED, TIMEOUT.",
            )
    }
}

/// Counts a tool's answer by outcome (`ok`, or the error's code).
fn counted(tool: &'static str, result: CallToolResult) -> CallToolResult {
    let outcome = match (&result.is_error, &result.structured_content) {
        (Some(true), Some(error)) => error["code"].as_str().unwrap_or("INTERNAL").to_owned(),
        _ => "ok".to_owned(),
    };
    metrics::counter!(infra::metric::MCP_TOOL_CALLS, "tool" => tool, "outcome" => outcome)
        .increment(1);
    result
}

fn invalid(field: &str, reason: &str) -> ToolError {
    ToolError(json!({
        "code": ErrorCode::Validation.as_str(),
        "message": format!("{field}: {reason}"),
        "field": field,
        "reason": reason,
    }))
}

fn validation(field: &str, reason: impl AsRef<str>) -> CallToolResult {
    invalid(field, reason.as_ref()).into_result()
}

/// GraphQL answers `null` for a task that is not the caller's; an agent is
/// told `NOT_FOUND`, as every write tool tells it.
fn not_found_when_null(result: CallToolResult, field: &str) -> CallToolResult {
    let missing = result.is_error != Some(true)
        && result
            .structured_content
            .as_ref()
            .is_some_and(|data| data[field].is_null());
    if missing {
        ToolError::new(ErrorCode::NotFound, "no such task").into_result()
    } else {
        result
    }
}

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
    let search = input
        .search
        .map(|query| json!({ "query": query, "mode": input.search_mode.unwrap_or(SearchMode::FullText) }));
    json!({
        "filter": (!filter.is_empty()).then_some(Value::Object(filter)),
        "search": search,
        "order": input.order,
        "first": input.first,
        "after": input.after,
    })
}

/// One write of a tool that makes several: its name in the answer, its
/// document and variables.
struct Step {
    name: &'static str,
    query: &'static str,
    variables: Value,
}

/// The writes `update_task` asks for, in order.
fn update_steps(input: UpdateTask) -> Result<Vec<Step>, CallToolResult> {
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
        return Err(validation(
            "expectedVersion",
            "guards a change of title or description alone; send other changes without it",
        ));
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
        return Err(validation("id", "name at least one field to change"));
    }
    Ok(steps)
}

/// The writes `schedule_task` asks for, in order.
fn schedule_steps(input: ScheduleTask) -> Result<Vec<Step>, CallToolResult> {
    let id = input.id;
    let mut steps = Vec::new();
    let due_given = input.due_at.is_some() || input.due_date.is_some();
    match (input.clear_due == Some(true), due_given) {
        (true, true) => return Err(validation("clearDue", "give a due date or clearDue, not both")),
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
        return Err(validation("id", "give a due date, clearDue or reminders"));
    }
    Ok(steps)
}
