//! The MCP service itself: the streamable-HTTP transport nested at `/mcp`,
//! the middleware that admits a request (bearer token and rate, as for
//! GraphQL), and the protocol handler that serves every tool family's tools.

use std::sync::Arc;

use api_core::ApiError;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{tool_handler, ErrorData, RoleServer, ServerHandler};
use tokio_util::sync::CancellationToken;

use super::operation::{TaskTools, ToolError};
use crate::caller::{authenticate, carried_token, token_header};
use crate::refusal::refusal;
use crate::ApiState;

/// The largest MCP request body.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The service nested at `/mcp`: stateless, so any API replica answers any
/// request, and the protocol revisions without a handshake need nothing more.
pub fn service(
    state: &ApiState,
    shutdown: CancellationToken,
) -> StreamableHttpService<TaskTools, NeverSessionManager> {
    let tools = TaskTools {
        schema: state.schema.clone(),
        fairness: state.fairness.clone(),
        deadline: state.deadline,
        consistency: state.consistency.clone(),
    };
    let allowed_hosts = state.mcp_allowed_hosts.clone();
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
/// becomes the request's [`Actor`](event_store::command::Actor)) and the caller's rate, as for GraphQL.
pub async fn admit(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    let actor = match authenticate(&state, request.headers()) {
        Ok(actor) => actor,
        Err(reason) => return refusal(StatusCode::UNAUTHORIZED, ApiError::TokenRefused(reason)),
    };
    let _running = match state.fairness.admit(actor.user_id.as_str()) {
        Ok(running) => running,
        Err(refused) => return refusal(StatusCode::TOO_MANY_REQUESTS, refused.into()),
    };
    let carried = match carried_token(request.headers()) {
        Ok(carried) => carried,
        Err(refused) => return refusal(StatusCode::BAD_REQUEST, refused),
    };
    // The endpoint is stateless and agents send no token: every read checks
    // the caller's writes (one indexed lookup when they are applied).
    let session = state.consistency.session(carried).checking_always();
    let user = actor.user_id.clone();
    request.extensions_mut().insert(actor);
    request.extensions_mut().insert(session.clone());
    let mut response = next.run(request).await.into_response();
    token_header(&mut response, session.token(user.as_str()));
    response
}

impl TaskTools {
    /// Every tool the endpoint serves.
    pub(super) fn tools() -> ToolRouter<Self> {
        Self::finding_tools()
            + Self::adding_tools()
            + Self::changing_tools()
            + Self::overview_tools()
    }
}

#[tool_handler(router = Self::tools())]
impl ServerHandler for TaskTools {
    /// The router's answer, with the SDK's own refusals (arguments that do
    /// not fit a tool's schema) given GraphQL's `VALIDATION` code like ours.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool: String = request.name.to_string();
        let context = ToolCallContext::new(self, request, context);
        let response = Self::tools().call(context).await?;
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
                ToolError::from(ApiError::invalid("arguments", message))
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
