//! The HTTP server: composes the command side's and the query side's doors
//! into one router. `POST /graphql` (GET opens GraphiQL) and `/graphql/ws`
//! for GraphQL, `/mcp` for agents, `/calendar/<secret>.ics`, the page at `/`,
//! and the operators' `/healthz`, `/readyz` and `/metrics`. Every refusal
//! leaves through `api_core::ApiError` with a stable code.

mod app;
mod calendar_feed;
mod caller;
pub mod documents;
mod export;
mod graphiql;
mod graphql;
pub mod limits;
mod mcp;
mod refusal;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use api_core::auth::TokenVerifier;
use api_core::fairness::Fairness;
use axum::routing::get;
use axum::Router;
use infra::connections::{BoundedListener, ConnectionLimits};
use infra::ops::Ops;
use query_api::consistency::Consistency;
use query_api::CalendarFeeds;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use app::DevTokens;
pub use graphql::{build_schema, SchemaServices, TaskledgerSchema};
pub use ws::{SocketCounts, MAX_SOCKETS_PER_USER, MAX_SUBSCRIPTIONS, MAX_SUBSCRIPTIONS_PER_USER};

use documents::Documents;

#[derive(Clone)]
pub struct ApiState {
    pub schema: TaskledgerSchema,
    pub verifier: Arc<TokenVerifier>,
    /// What one document may cost, checked before the engine runs it; the
    /// documents accepted before, parsed.
    pub documents: Arc<Documents>,
    /// Whether callers without a token may run introspection queries.
    pub anonymous_introspection: bool,
    /// How long one request may run, all its statements together.
    pub deadline: Duration,
    /// Each user's rate and requests in flight.
    pub fairness: Arc<Fairness>,
    /// How many connections may be open, and how long one may stay silent.
    pub connections: ConnectionLimits,
    pub ops: Ops,
    /// Open WebSockets per user.
    pub sockets: SocketCounts,
    /// How long a WebSocket may take to send `connection_init`.
    pub ws_init_timeout: Duration,
    /// Ends WebSockets when the server stops (they would hold it open).
    pub shutdown: CancellationToken,
    /// Present in local mode: `POST /auth/dev-token` signs tokens.
    pub dev_tokens: Option<DevTokens>,
    /// Checks the secrets of `GET /calendar/<secret>.ics`.
    pub calendar: CalendarFeeds,
    /// The `Host` values `/mcp` answers (DNS-rebinding protection); loopback
    /// names and the public URL's host.
    pub mcp_allowed_hosts: Vec<String>,
    /// Each caller's reads show their own writes, at every door.
    pub consistency: Consistency,
    /// Users erased anywhere: their WebSockets close.
    pub erased: tokio::sync::broadcast::Sender<String>,
}

impl axum::extract::FromRef<ApiState> for Ops {
    fn from_ref(state: &ApiState) -> Self {
        state.ops.clone()
    }
}

pub fn router(state: ApiState) -> Router {
    let mcp = mcp::service(&state, state.shutdown.child_token());
    let mcp =
        Router::new()
            .nest_service("/mcp", mcp)
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                mcp::admit,
            ));
    Router::new()
        .route("/", get(app::page))
        .route("/app/{file}", get(app::asset))
        .route("/auth/dev-token", axum::routing::post(app::dev_token))
        .route("/graphql/ws", get(ws::upgrade))
        .route("/graphiql/{file}", get(graphiql::asset))
        .route("/calendar/{file}", get(calendar_feed::feed))
        .route("/export", get(export::export))
        .route("/graphql", get(graphiql::page).post(graphql::graphql))
        .merge(infra::ops::routes())
        .with_state(state)
        .merge(mcp)
}

/// Serves until `shutdown` is cancelled, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "GraphQL API listening");
    let listener = BoundedListener::new(listener, state.connections);
    let header_read = state.connections.header_read;
    infra::serve::serve(listener, router(state), header_read, shutdown).await;
    tracing::info!("GraphQL API stopped: shutdown requested");
    Ok(())
}
