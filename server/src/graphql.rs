//! The GraphQL schema, composed from both sides' roots, and `POST /graphql`:
//! the token checked, the document's cost known and the caller's budget spent
//! before the engine runs it, the whole request bounded by a deadline.

use std::time::Instant;

use api_core::ApiError;
use async_graphql::{MergedObject, Schema, ServerError};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use command_api::{ErasureMutation, ListMutation, QuickAddMutation, RevertMutation, TaskMutation};
use event_store::command::{Actor, CommandService, ListService};
use projections::erasure::Eraser;
use query_api::consistency::{self, Consistency};
use query_api::{
    read_pool::KeptPlans, AuditQuery, CalendarFeeds, CalendarMutation, CalendarQuery, ErasureQuery,
    ExportQuery, ListQuery, LiveHub, NotificationMutation, NotificationQuery, ReadYourWrites,
    TaskQuery, TaskSubscription,
};
use sqlx::PgPool;
use tracing::Instrument;

use crate::caller::{bearer_token, carried_token, correlation_id, token_header, CORRELATION_ID};
use crate::refusal::refusal;
use crate::ApiState;

/// Every query: tasks, lists, notifications, audit, the calendar feed and
/// the caller's data export.
#[derive(MergedObject, Default)]
pub struct Query(
    TaskQuery,
    ListQuery,
    NotificationQuery,
    AuditQuery,
    CalendarQuery,
    ExportQuery,
    ErasureQuery,
);

/// Every mutation: task commands, lists and their members, quick add,
/// reverts, the notification inbox and the calendar feed.
#[derive(MergedObject, Default)]
pub struct Mutation(
    TaskMutation,
    ListMutation,
    QuickAddMutation,
    RevertMutation,
    NotificationMutation,
    CalendarMutation,
    ErasureMutation,
);

pub type TaskledgerSchema = Schema<Query, Mutation, TaskSubscription>;

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
    /// For the queries whose plan is the same for every caller.
    pub kept_plans: KeptPlans,
    /// For mutations.
    pub commands: CommandService,
    /// For lists and their members, both ways.
    pub lists: ListService,
    pub read_your_writes: ReadYourWrites,
    /// Each caller's reads show their own writes (docs/adr/0010).
    pub consistency: Consistency,
    /// For subscriptions.
    pub live: LiveHub,
    pub calendar: CalendarFeeds,
    /// For `eraseMyData` and `erasure(id)`.
    pub eraser: Eraser,
}

pub fn build_schema(services: SchemaServices) -> TaskledgerSchema {
    Schema::build(Query::default(), Mutation::default(), TaskSubscription)
        .data(services.read_pool)
        .data(services.kept_plans)
        .data(services.commands)
        .data(services.lists)
        .data(services.read_your_writes)
        .data(services.live)
        .data(services.calendar)
        .data(services.consistency)
        .data(services.eraser)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// One GraphQL request, in a span that carries its correlation id (the
/// client's `x-correlation-id`, or a new one), which the answer echoes and
/// every event it stores carries.
pub(crate) async fn graphql(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
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
        infra::trace::continue_trace(&span, traceparent);
    }
    if let Some(trace_id) = infra::trace::trace_id_of(&span) {
        span.record("trace_id", trace_id);
    }
    let mut response = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => {
            execute(&state, &headers, &body, correlation_id.clone())
                .instrument(span)
                .await
        }
        Err(_) => refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooLarge {
                limit_bytes: MAX_BODY_BYTES,
            },
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
        Err(reason) => return refusal(StatusCode::UNAUTHORIZED, ApiError::TokenRefused(reason)),
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
            Err(refused) => {
                return refusal(
                    StatusCode::UNAUTHORIZED,
                    ApiError::TokenRefused(refused.message()),
                )
            }
        },
    };
    let mut request: async_graphql::Request = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                ApiError::invalid(
                    "body",
                    format!("the request body is not a GraphQL request in JSON: {error}"),
                ),
            )
        }
    };
    // What the document costs is known before the engine touches it; the
    // engine gets the document parsed (once, when it was seen before).
    let cost = match state
        .documents
        .check(&request.query, request.operation_name.as_deref())
    {
        Ok(checked) => {
            if let Some(document) = &checked.document {
                request.set_parsed_query(document.clone());
            }
            checked.cost
        }
        Err(refused) => return refusal(StatusCode::BAD_REQUEST, refused.into()),
    };
    let anonymous_may_ask =
        cost.is_none_or(|cost| cost.introspection_only && state.anonymous_introspection);
    // Anonymous introspection shares one budget; everyone else has their own.
    let budget = actor
        .as_ref()
        .map_or("(anonymous)", |actor| actor.user_id.as_str());
    let _running = match state.fairness.admit(budget) {
        Ok(running) => running,
        Err(refused) => return refusal(StatusCode::TOO_MANY_REQUESTS, refused.into()),
    };
    let carried = match carried_token(headers) {
        Ok(carried) => carried,
        Err(refused) => return refusal(StatusCode::BAD_REQUEST, refused),
    };
    let session = state.consistency.session(carried);
    let user = actor.as_ref().map(|actor| actor.user_id.clone());
    let afresh = user
        .as_ref()
        .is_some_and(|user| session.must_check(user.as_str()));
    let request = match actor {
        // The caller's lists are read once for the whole request.
        Some(actor) => request
            .data(actor)
            .data(session.clone())
            .data(query_api::RequestReaders::new(afresh)),
        None if anonymous_may_ask => request,
        None => return refusal(StatusCode::UNAUTHORIZED, ApiError::Unauthenticated),
    };
    // A query waits for the caller's own writes first (docs/adr/0010); a
    // mutation answers the token of its writes.
    let is_query = cost.is_some_and(|cost| cost.is_query);
    let running = async {
        let settled = match &user {
            Some(user) if is_query => state.consistency.settle(&session, user.as_str()).await,
            _ => None,
        };
        let response = consistency::with_settled(state.schema.execute(request).await, settled);
        let token = user.as_ref().and_then(|user| session.token(user.as_str()));
        (consistency::with_token(response, token), token)
    };
    let Ok((mut response, token)) = tokio::time::timeout(state.deadline, running).await else {
        tracing::warn!(deadline = ?state.deadline, "request cut off at its deadline");
        return refusal(StatusCode::OK, ApiError::Timeout);
    };
    for error in &mut response.errors {
        ensure_code(error);
    }
    let outcome = if response.errors.is_empty() {
        "ok"
    } else {
        "error"
    };
    metrics::counter!(infra::metric::GRAPHQL_REQUESTS, "outcome" => outcome).increment(1);
    metrics::histogram!(infra::metric::GRAPHQL_REQUEST_SECONDS)
        .record(started.elapsed().as_secs_f64());
    tracing::debug!(
        outcome,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "answered"
    );
    let mut answer = Json(response).into_response();
    token_header(&mut answer, token);
    answer
}

/// Errors from parsing and validating an operation carry no code of ours;
/// they are all the client's to fix.
fn ensure_code(error: &mut ServerError) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", api_core::ErrorCode::Validation.as_str());
    }
}
