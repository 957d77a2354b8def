//! `GET /export`: the caller's data as one JSON document
//! (`projections::export`, docs/schemas/export.v1.schema.json), streamed as
//! it is read, for an account of any size. The bearer token says whose; the
//! caller's request budget admits it (one at a time, as any request), and
//! their own latest writes show in it.

use api_core::fairness::Refusal;
use api_core::ApiError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;

use crate::caller::{authenticate, carried_token};
use crate::refusal::refusal;
use crate::ApiState;

/// Bytes written ahead of what the client has read.
const BUFFERED: usize = 64 * 1024;

/// `GET /export`.
#[tracing::instrument(name = "export", skip_all, fields(user_id = tracing::field::Empty))]
pub async fn export(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let actor = match authenticate(&state, &headers) {
        Ok(actor) => actor,
        Err(reason) => return refusal(StatusCode::UNAUTHORIZED, ApiError::TokenRefused(reason)),
    };
    let user = actor.user_id.as_str().to_owned();
    tracing::Span::current().record("user_id", user.as_str());
    let running = match state.fairness.admit(&user) {
        Ok(running) => running,
        Err(refused) => {
            let (error, retry_after) = match refused {
                Refusal::TooFast { retry_after } => {
                    let seconds = retry_after.as_secs().max(1);
                    let error = ApiError::RateLimited {
                        retry_after_seconds: seconds,
                    };
                    (error, seconds)
                }
                Refusal::TooMany => (ApiError::TooManyInFlight, 1),
            };
            let mut response = refusal(StatusCode::TOO_MANY_REQUESTS, error);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return response;
        }
    };
    let carried = match carried_token(&headers) {
        Ok(carried) => carried,
        Err(refused) => return refusal(StatusCode::BAD_REQUEST, refused),
    };
    let session = state.consistency.session(carried);
    state.consistency.settle(&session, &user).await;
    let (mut writer, reader) = tokio::io::duplex(BUFFERED);
    let pool = state.ops.pool.clone();
    tokio::spawn(async move {
        let _running = running;
        match query_api::export::export_user(&pool, &user, &mut writer, |_| {}).await {
            Ok(exported) => tracing::info!(
                user_id = %user,
                tasks = exported.tasks,
                events = exported.events,
                "exported"
            ),
            // A client that went away, or a failure: the document stops short
            // and does not parse, which the client sees.
            Err(error) => tracing::warn!(
                user_id = %user,
                error = %format_args!("{error:#}"),
                "export cut short"
            ),
        }
    });
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"taskledger-export.json\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(ReaderStream::new(reader)),
    )
        .into_response()
}
