//! An [`ApiError`] as an HTTP answer: GraphQL's response shape
//! (`{"data": null, "errors": [...]}`) with the status and the headers the
//! refusal calls for (`WWW-Authenticate`, `Retry-After`), counted by outcome.

use api_core::{ApiError, ErrorCode};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// `error` sent with `status`, counted in `taskledger_graphql_requests_total`
/// as `rate_limited` or `refused`.
pub(crate) fn refusal(status: StatusCode, error: ApiError) -> Response {
    let outcome = if error.code() == ErrorCode::RateLimited {
        "rate_limited"
    } else {
        "refused"
    };
    metrics::counter!(infra::metric::GRAPHQL_REQUESTS, "outcome" => outcome).increment(1);
    let body = serde_json::json!({ "data": null, "errors": [error.to_json()] });
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    if let Some(seconds) = error.retry_after_seconds() {
        headers.insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    }
    response
}
