//! What every tool shares: running one of our fixed GraphQL operations as
//! the caller, within the call's deadline; a tool's failure as the agent
//! reads it, built by `ApiError` like every other refusal of the API; and
//! counting each call by its outcome.

use std::sync::Arc;
use std::time::Duration;

use api_core::consistency::Session;
use api_core::fairness::Fairness;
use api_core::ApiError;
use async_graphql::{ServerError, Variables};
use axum::http::request::Parts;
use event_store::command::Actor;
use query_api::consistency::Consistency;
use rmcp::model::CallToolResult;
use serde_json::{json, Value};
use tracing::Instrument;

use crate::TaskledgerSchema;

/// The tools' handler; each family of tools (finding, adding, changing, the
/// overview) adds its own methods and router in its own file.
#[derive(Clone)]
pub struct TaskTools {
    pub(super) schema: TaskledgerSchema,
    /// Each task after the first of one `add_tasks` is a request of the
    /// caller's budget too.
    pub(super) fairness: Arc<Fairness>,
    /// How long one tool call may run, all its operations together.
    pub(super) deadline: Duration,
    /// Reads wait for the caller's own writes.
    pub(super) consistency: Consistency,
}

/// A tool's failure as the agent reads it: `ApiError`'s flat fields (`code`,
/// `message`, `field`, `reason`, …), and what the tool adds about where it
/// stopped (`failed` and `applied`, or `index` and `created`).
#[derive(Debug)]
pub(super) struct ToolError(Value);

impl From<ApiError> for ToolError {
    fn from(error: ApiError) -> Self {
        Self(error.to_flat_json())
    }
}

impl ToolError {
    /// GraphQL's refusal of one of our operations. Its `extensions` were made
    /// by `ApiError`, so laid flat beside the message they are exactly what
    /// `ApiError::to_flat_json` gives.
    pub(super) fn refused_by_graphql(tool: &'static str, error: &ServerError) -> Self {
        match error.extensions.as_ref().map(serde_json::to_value) {
            Some(Ok(Value::Object(mut fields))) if fields.contains_key("code") => {
                fields.insert("message".into(), json!(error.message));
                Self(Value::Object(fields))
            }
            // Our documents are fixed: a refusal without a code of ours is
            // our mistake, not the agent's.
            _ => ApiError::internal(format!(
                "GraphQL refused the document of MCP tool {tool}: {}",
                error.message
            ))
            .into(),
        }
    }

    /// The failure with one more thing the tool knows about it.
    pub(super) fn with(mut self, key: &str, value: Value) -> Self {
        self.0[key] = value;
        self
    }

    pub(super) fn code(&self) -> &str {
        self.0["code"].as_str().unwrap_or("INTERNAL")
    }

    pub(super) fn into_result(self) -> CallToolResult {
        CallToolResult::structured_error(self.0)
    }
}

/// The verified caller [`admit`](super::admit) put on the request.
pub(super) fn caller(parts: &Parts) -> Result<&Actor, ToolError> {
    parts
        .extensions
        .get::<Actor>()
        .ok_or_else(|| ApiError::Unauthenticated.into())
}

/// The request's session consistency, which [`admit`](super::admit) put on it.
pub(super) fn session(parts: &Parts) -> Option<&Session> {
    parts.extensions.get::<Session>()
}

/// A tool's answer, counted by outcome (`ok`, or the error's code). A tool
/// that wrote answers the token of its writes as `consistencyToken` too.
pub(super) fn counted(
    parts: &Parts,
    tool: &'static str,
    outcome: Result<Value, ToolError>,
) -> CallToolResult {
    let (label, result) = match outcome {
        Ok(mut data) => {
            let token = caller(parts)
                .ok()
                .zip(session(parts))
                .and_then(|(actor, session)| session.token(actor.user_id.as_str()));
            if let (Some(token), Some(fields)) = (token, data.as_object_mut()) {
                fields.insert("consistencyToken".into(), json!(token.to_string()));
            }
            ("ok".to_owned(), CallToolResult::structured(data))
        }
        Err(error) => (error.code().to_owned(), error.into_result()),
    };
    metrics::counter!(infra::metric::MCP_TOOL_CALLS, "tool" => tool, "outcome" => label)
        .increment(1);
    result
}

/// One write of a tool that makes several: its name in the answer, its
/// document and variables.
pub(super) struct Step {
    pub(super) name: &'static str,
    pub(super) query: &'static str,
    pub(super) variables: Value,
}

impl TaskTools {
    /// Runs one of our GraphQL operations as the request's caller, in its
    /// session: its data, or the first error with its `extensions` (code,
    /// field, reason).
    pub(super) async fn graphql(
        &self,
        parts: &Parts,
        tool: &'static str,
        query: &str,
        variables: Value,
    ) -> Result<Value, ToolError> {
        let actor = caller(parts)?;
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
        let session = session(parts);
        let afresh = session.is_some_and(|session| session.must_check(actor.user_id.as_str()));
        let mut request = async_graphql::Request::new(query)
            .variables(Variables::from_json(variables))
            .data(actor.clone())
            .data(query_api::RequestReaders::new(afresh));
        if let Some(session) = session {
            request = request.data(session.clone());
        }
        // Our documents are fixed: those that are not mutations read, and
        // first wait for the caller's own writes (docs/adr/0010).
        let reads = !query.trim_start().starts_with("mutation");
        let execution = tokio::time::timeout(self.deadline, async {
            if let (true, Some(session)) = (reads, session) {
                self.consistency
                    .settle(session, actor.user_id.as_str())
                    .await;
            }
            self.schema.execute(request).await
        });
        let Ok(response) = execution.instrument(span).await else {
            return Err(ApiError::Timeout.into());
        };
        if let Some(error) = response.errors.first() {
            return Err(ToolError::refused_by_graphql(tool, error));
        }
        response
            .data
            .into_json()
            .map_err(|error| ApiError::internal(error).into())
    }

    /// One operation as the request's caller, answered as the tool's result.
    pub(super) async fn answer(
        &self,
        parts: &Parts,
        tool: &'static str,
        query: &str,
        variables: Value,
    ) -> CallToolResult {
        counted(
            parts,
            tool,
            self.graphql(parts, tool, query, variables).await,
        )
    }

    /// The writes a tool asks for (or its refusal of them), one after another,
    /// stopping at the first refusal; what was applied before it is in the
    /// answer either way.
    pub(super) async fn run_steps(
        &self,
        parts: &Parts,
        tool: &'static str,
        steps: Result<Vec<Step>, ToolError>,
    ) -> CallToolResult {
        counted(parts, tool, self.apply(parts, tool, steps).await)
    }

    async fn apply(
        &self,
        parts: &Parts,
        tool: &'static str,
        steps: Result<Vec<Step>, ToolError>,
    ) -> Result<Value, ToolError> {
        let steps = steps?;
        let mut applied = serde_json::Map::new();
        for step in steps {
            match self.graphql(parts, tool, step.query, step.variables).await {
                Ok(data) => {
                    let result = data
                        .as_object()
                        .and_then(|d| d.values().next().cloned())
                        .unwrap_or_default();
                    applied.insert(step.name.to_owned(), result);
                }
                Err(error) => {
                    return Err(error
                        .with("failed", json!(step.name))
                        .with("applied", Value::Object(applied)))
                }
            }
        }
        Ok(Value::Object(applied))
    }
}
