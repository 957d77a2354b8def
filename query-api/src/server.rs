//! The HTTP surface: `POST /graphql` (GET opens GraphiQL), `/healthz`,
//! `/readyz` and `/metrics`. Each GraphQL error leaves with a stable
//! `extensions.code`, including those the GraphQL engine itself raises.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::{MergedObject, Schema, ServerError};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use command_api::{Actor, CommandService};
use metrics_exporter_prometheus::PrometheusHandle;
use rdkafka::producer::Producer as _;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::app::{self, DevTokens};
use crate::audit::AuditQuery;
use crate::auth::TokenVerifier;
use crate::calendar::{self, CalendarFeeds, CalendarMutation, CalendarQuery};
use crate::connections::{BoundedListener, ConnectionLimits};
use crate::dapr;
use crate::error::ErrorCode;
use crate::fairness::{Fairness, Refusal};
use crate::graphiql;
use crate::limits::DocumentLimits;
use crate::live::LiveHub;
use crate::mcp;
use crate::notifications::{NotificationMutation, NotificationQuery};
use crate::quick_add::QuickAddMutation;
use crate::subscription::TaskSubscription;
use crate::ws::{self, SocketCounts};
use crate::{ReadYourWrites, TaskMutation, TaskQuery};
use event_store::kafka::{DropOffThread, KafkaSettings};

/// Every query: tasks, notifications, audit and the calendar feed.
#[derive(MergedObject, Default)]
pub struct Query(TaskQuery, NotificationQuery, AuditQuery, CalendarQuery);

/// Every mutation: task commands, quick add, the notification inbox and the
/// calendar feed.
#[derive(MergedObject, Default)]
pub struct Mutation(
    TaskMutation,
    QuickAddMutation,
    NotificationMutation,
    CalendarMutation,
);

pub type TaskledgerSchema = Schema<Query, Mutation, TaskSubscription>;

const CORRELATION_ID: &str = "x-correlation-id";

/// The largest request body read: a document (at most 16 KiB) and variables.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// How deep and how costly one operation may be. The document limits bound
/// the real cost first; the depth allows the standard introspection query
/// (its type references nest nine deep).
const MAX_DEPTH: usize = 20;
const MAX_COMPLEXITY: usize = 10_000;

/// What the schema's resolvers work with.
pub struct SchemaServices {
    /// For queries: its statements time out.
    pub read_pool: PgPool,
    /// For mutations.
    pub commands: CommandService,
    pub read_your_writes: ReadYourWrites,
    /// For subscriptions.
    pub live: LiveHub,
    pub calendar: CalendarFeeds,
}

pub fn build_schema(services: SchemaServices) -> TaskledgerSchema {
    Schema::build(Query::default(), Mutation::default(), TaskSubscription)
        .data(services.read_pool)
        .data(services.commands)
        .data(services.read_your_writes)
        .data(services.live)
        .data(services.calendar)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

#[derive(Clone)]
pub struct ApiState {
    pub schema: TaskledgerSchema,
    pub verifier: Arc<TokenVerifier>,
    /// What one document may cost; checked before the engine runs it.
    pub limits: DocumentLimits,
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
}

/// What every process serves for operators, with or without the API:
/// `/healthz`, `/readyz` and `/metrics`.
#[derive(Clone)]
pub struct Ops {
    pub pool: PgPool,
    /// Asks the broker whether it answers, for `/readyz`.
    pub broker_probe: BrokerProbe,
    pub metrics: PrometheusHandle,
}

impl axum::extract::FromRef<ApiState> for Ops {
    fn from_ref(state: &ApiState) -> Self {
        state.ops.clone()
    }
}

pub fn router(state: ApiState) -> Router {
    let mcp = mcp::service(
        state.schema.clone(),
        state.fairness.clone(),
        state.deadline,
        state.mcp_allowed_hosts.clone(),
        state.shutdown.child_token(),
    );
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
        .route("/graphql", get(graphiql::page).post(graphql))
        .route("/graphql/ws", get(ws::upgrade))
        .route("/graphiql/{file}", get(graphiql::asset))
        .route("/calendar/{file}", get(calendar::feed))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(mcp)
}

/// The operators' endpoints alone, for a process that runs no API (a relay or
/// a projector), so it can be probed and scraped like the API.
pub fn ops_router(ops: Ops) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(ops_bindings())
        .with_state(ops)
}

/// Dapr's input bindings, on the processes without the public API (the
/// binding is scoped to the scheduler).
fn ops_bindings() -> Router<Ops> {
    Router::new().route(
        dapr::REMINDER_TICK,
        axum::routing::post(dapr::reminder_tick).options(dapr::takes_binding),
    )
}

/// Serves the operators' endpoints until `shutdown` is cancelled.
pub async fn serve_ops(
    listener: TcpListener,
    ops: Ops,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "health and metrics listening");
    let limits = ConnectionLimits {
        max_open: 64,
        idle: Duration::from_secs(30),
    };
    axum::serve(BoundedListener::new(listener, limits), ops_router(ops))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Serves until `shutdown` is cancelled, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "GraphQL API listening");
    let listener = BoundedListener::new(listener, state.connections);
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    tracing::info!("GraphQL API stopped: shutdown requested");
    Ok(())
}

/// One GraphQL request, in a span that carries its correlation id (the
/// client's `x-correlation-id`, or a new one), which the answer echoes and
/// every event it stores carries.
async fn graphql(State(state): State<ApiState>, headers: HeaderMap, body: Body) -> Response {
    let correlation_id = correlation_id(&headers);
    let span = tracing::info_span!(
        "graphql",
        correlation_id = %correlation_id,
        user_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    // A caller that traces its own requests (W3C `traceparent`) gets our
    // spans in its trace; the trace id goes into every log line of the request.
    if let Some(traceparent) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
        event_store::trace::continue_trace(&span, traceparent);
    }
    if let Some(trace_id) = event_store::trace::trace_id_of(&span) {
        span.record("trace_id", trace_id);
    }
    let mut response = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => {
            execute(&state, &headers, &body, correlation_id.clone())
                .instrument(span)
                .await
        }
        Err(_) => error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Validation,
            &format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        ),
    };
    if let Ok(value) = header::HeaderValue::from_str(&correlation_id) {
        response.headers_mut().insert(CORRELATION_ID, value);
    }
    response
}

async fn execute(
    state: &ApiState,
    headers: &HeaderMap,
    body: &Bytes,
    correlation_id: String,
) -> Response {
    let started = Instant::now();
    let token = match bearer_token(headers) {
        Ok(token) => token,
        Err(reason) => {
            return error_response(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, reason)
        }
    };
    let actor = match token {
        None => None,
        Some(token) => match state.verifier.verify(token) {
            Ok(user_id) => {
                tracing::Span::current().record("user_id", user_id.as_str());
                Some(Actor {
                    user_id,
                    correlation_id,
                })
            }
            Err(refusal) => {
                return error_response(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::Unauthenticated,
                    refusal.message(),
                )
            }
        },
    };
    let request: async_graphql::Request = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::Validation,
                &format!("the request body is not a GraphQL request in JSON: {error}"),
            )
        }
    };
    // What the document costs is known before the engine touches it.
    let cost = match state
        .limits
        .check(&request.query, request.operation_name.as_deref())
    {
        Ok(cost) => cost,
        Err(refusal) => {
            return validation_response(&refusal);
        }
    };
    let anonymous_may_ask =
        cost.is_none_or(|cost| cost.introspection_only && state.anonymous_introspection);
    // Anonymous introspection shares one budget; everyone else has their own.
    let budget = actor
        .as_ref()
        .map_or("(anonymous)", |actor| actor.user_id.as_str());
    let _running = match state.fairness.admit(budget) {
        Ok(running) => running,
        Err(refusal) => return rate_limited(refusal),
    };
    let request = match actor {
        Some(actor) => request.data(actor),
        None if anonymous_may_ask => request,
        None => {
            return error_response(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
                "a valid `Authorization: Bearer <token>` is required",
            )
        }
    };
    let Ok(mut response) =
        tokio::time::timeout(state.deadline, state.schema.execute(request)).await
    else {
        tracing::warn!(deadline = ?state.deadline, "request cut off at its deadline");
        return error_response(
            StatusCode::OK,
            ErrorCode::Timeout,
            "the request did not finish within its deadline; ask for less at once",
        );
    };
    for error in &mut response.errors {
        ensure_code(error);
    }
    let outcome = if response.errors.is_empty() {
        "ok"
    } else {
        "error"
    };
    metrics::counter!(event_store::metric::GRAPHQL_REQUESTS, "outcome" => outcome).increment(1);
    metrics::histogram!(event_store::metric::GRAPHQL_REQUEST_SECONDS)
        .record(started.elapsed().as_secs_f64());
    tracing::debug!(
        outcome,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "answered"
    );
    Json(response).into_response()
}

/// The bearer token of the request: `None` without an `Authorization`
/// header. The scheme is case-insensitive (RFC 7235); a header that is not a
/// single bearer credential is refused, so two headers never race.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, &'static str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("send one Authorization header, not several");
    }
    let text = value
        .to_str()
        .map_err(|_| "the Authorization header is not text")?;
    match text.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(Some(token.trim())),
        _ => Err("the Authorization header must be `Bearer <token>`"),
    }
}

/// Errors from parsing and validating an operation carry no code of ours;
/// they are all the client's to fix.
fn ensure_code(error: &mut ServerError) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", ErrorCode::Validation.as_str());
    }
}

/// The verified caller of a request that must carry a token (MCP), or why
/// there is none (answer it with [`unauthenticated`]).
pub(crate) fn authenticate(state: &ApiState, headers: &HeaderMap) -> Result<Actor, &'static str> {
    let token =
        bearer_token(headers)?.ok_or("a valid `Authorization: Bearer <token>` is required")?;
    let user_id = state
        .verifier
        .verify(token)
        .map_err(|refusal| refusal.message())?;
    Ok(Actor {
        user_id,
        correlation_id: correlation_id(headers),
    })
}

/// HTTP 401 with `UNAUTHENTICATED`, as GraphQL answers it.
pub(crate) fn unauthenticated(reason: &str) -> Response {
    error_response(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, reason)
}

/// The client's `x-correlation-id` if it is sensible, or a new one.
fn correlation_id(headers: &HeaderMap) -> String {
    headers
        .get(CORRELATION_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// HTTP 429 with `RATE_LIMITED`, and when to come back.
pub(crate) fn rate_limited(refusal: Refusal) -> Response {
    metrics::counter!(event_store::metric::GRAPHQL_REQUESTS, "outcome" => "rate_limited")
        .increment(1);
    let (message, retry_after) = match refusal {
        Refusal::TooFast { retry_after } => (
            "too many requests; slow down".to_owned(),
            retry_after.as_secs_f64().ceil().max(1.0) as u64,
        ),
        Refusal::TooMany => (
            "too many of your requests are running at once".to_owned(),
            1,
        ),
    };
    let body = serde_json::json!({
        "data": null,
        "errors": [{
            "message": message,
            "extensions": { "code": ErrorCode::RateLimited.as_str(), "retryAfterSeconds": retry_after },
        }],
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after));
    response
}

/// A document refused before it ran.
fn validation_response(refusal: &domain::ValidationError) -> Response {
    metrics::counter!(event_store::metric::GRAPHQL_REQUESTS, "outcome" => "refused").increment(1);
    let body = serde_json::json!({
        "data": null,
        "errors": [{
            "message": refusal.to_string(),
            "extensions": {
                "code": ErrorCode::Validation.as_str(),
                "field": refusal.field,
                "reason": refusal.reason,
            },
        }],
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    metrics::counter!(event_store::metric::GRAPHQL_REQUESTS, "outcome" => "refused").increment(1);
    let body = serde_json::json!({
        "data": null,
        "errors": [{ "message": message, "extensions": { "code": code.as_str() } }],
    });
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            "Bearer".parse().expect("static header"),
        );
    }
    response
}

/// Ready when Postgres answers: with the broker down the API still serves
/// reads and takes writes (the event store is the buffer; the relay publishes
/// when the broker is back). The body says how each dependency is, and
/// `taskledger_broker_reachable{role="api"}` records the broker's state. The
/// broker is asked at most once a second however many probes arrive.
async fn readyz(State(state): State<Ops>) -> impl IntoResponse {
    let database = sqlx::query("SELECT 1").execute(&state.pool).await.is_ok();
    let broker = state.broker_probe.reachable().await;
    let status = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({ "ready": database, "postgres": database, "broker": broker })),
    )
}

/// The broker's last known state, asked again when older than a second, by a
/// client made for the question and destroyed after it: a long-lived client
/// would know the topics and could see them come back with new ids
/// (`event_store::kafka::BrokerWatch`).
#[derive(Clone)]
pub struct BrokerProbe {
    kafka: KafkaSettings,
    last: Arc<tokio::sync::Mutex<Option<(Instant, bool)>>>,
}

impl BrokerProbe {
    pub fn new(kafka: KafkaSettings) -> Self {
        Self {
            kafka,
            last: Arc::default(),
        }
    }

    async fn reachable(&self) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, reachable)) = *last {
            if at.elapsed() < Duration::from_secs(1) {
                return reachable;
            }
        }
        let kafka = self.kafka.clone();
        let reachable = tokio::task::spawn_blocking(move || {
            let Ok(producer) = kafka.producer() else {
                return false;
            };
            let reachable = producer
                .client()
                .fetch_metadata(Some(""), Duration::from_secs(2))
                .is_ok();
            drop(DropOffThread::new(producer));
            reachable
        })
        .await
        .unwrap_or(false);
        metrics::gauge!(event_store::metric::BROKER_REACHABLE, "role" => "api").set(if reachable {
            1.0
        } else {
            0.0
        });
        *last = Some((Instant::now(), reachable));
        reachable
    }
}

async fn metrics(State(state): State<Ops>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
