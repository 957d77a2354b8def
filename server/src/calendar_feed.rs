//! `GET /calendar/<secret>.ics`: the HTTP side of each user's calendar feed.
//! The secret is checked, the owner's feed budget spent, and the feed
//! rendered by the query side (`query_api::calendar`). A secret that is
//! unknown, rotated away or malformed gets one plain 404.

use api_core::fairness::Refusal;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use query_api::calendar::{self, Components};
use serde::Deserialize;

use crate::caller::carried_token;
use crate::ApiState;

#[derive(Debug, Deserialize)]
pub struct FeedOptions {
    /// `events` for VEVENTs; to-dos otherwise.
    components: Option<String>,
}

/// `GET /calendar/{secret}.ics`.
#[tracing::instrument(name = "calendar feed", skip_all, fields(user_id = tracing::field::Empty))]
pub async fn feed(
    State(state): State<ApiState>,
    Path(file): Path<String>,
    Query(options): Query<FeedOptions>,
    headers: HeaderMap,
) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "not found\n").into_response();
    let Some(feed_id) = file
        .strip_suffix(".ics")
        .and_then(|secret| state.calendar.verify(secret))
    else {
        return not_found();
    };
    let components = match options.components.as_deref() {
        None | Some("todos") => Components::Todos,
        Some("events") => Components::Events,
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                "components must be `todos` or `events`\n",
            )
                .into_response()
        }
    };
    let pool = &state.ops.pool;
    let owner = match calendar::owner_of(pool, feed_id).await {
        Ok(Some(owner)) => owner,
        Ok(None) => return not_found(),
        Err(error) => return internal(&error),
    };
    tracing::Span::current().record("user_id", owner.as_str());
    // Feeds have a budget of their own per owner: as limited as GraphQL,
    // but a leaked URL polled hard cannot lock the owner out of the API.
    let _running = match state.fairness.admit(&format!("calendar feed of {owner}")) {
        Ok(running) => running,
        Err(refusal) => {
            let retry_after = match refusal {
                Refusal::TooFast { retry_after } => retry_after.as_secs().max(1),
                Refusal::TooMany => 1,
            };
            let mut response =
                (StatusCode::TOO_MANY_REQUESTS, "too many requests\n").into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return response;
        }
    };
    // The owner's own changes show at once (docs/adr/0010): those made
    // through this process, and those whose token the request carries.
    let carried = match carried_token(&headers) {
        Ok(carried) => carried,
        Err(refused) => {
            return (StatusCode::BAD_REQUEST, format!("{}\n", refused.message())).into_response()
        }
    };
    let session = state.consistency.session(carried);
    state.consistency.settle(&session, owner.as_str()).await;
    let tasks = match calendar::due_tasks(pool, &owner).await {
        Ok(tasks) => tasks,
        Err(error) => return internal(&error),
    };
    let etag = calendar::etag(&tasks, components);
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag.as_bytes() == etag.as_bytes())
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    // Up to MAX_FEED_TASKS tasks and their zones' rules: off the async workers.
    let body = match tokio::task::spawn_blocking(move || calendar::render(&tasks, components)).await
    {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(error = %error, "writing a calendar feed failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
        }
    };
    (
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_owned(),
            ),
            (header::CACHE_CONTROL, "private, max-age=300".to_owned()),
            (header::ETAG, etag),
        ],
        body,
    )
        .into_response()
}

fn internal(error: &sqlx::Error) -> Response {
    tracing::error!(error = %error, source = ?std::error::Error::source(error), "calendar feed failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
}
