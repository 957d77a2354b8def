//! The app's side of Dapr's contracts, for clusters that run a Dapr sidecar
//! beside each role: the `reminder-tick` cron input binding, which wakes the
//! reminder schedulers to look for due reminders at once (idempotent: Dapr
//! fires it on every replica, and a wake-up only makes a scheduler look).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use infra::ops::Ops;

/// The binding's routes, on the processes without the public API (the
/// binding is scoped to the scheduler).
pub fn routes() -> axum::Router<Ops> {
    axum::Router::new().route(
        REMINDER_TICK,
        axum::routing::post(reminder_tick).options(takes_binding),
    )
}

/// The binding's name: Dapr calls `POST /<name>` on each tick, and asks
/// `OPTIONS /<name>` at start whether the app takes it.
pub const REMINDER_TICK: &str = "/reminder-tick";

/// `POST /reminder-tick`: every scheduler connected to this database wakes
/// and claims what is due (`NOTIFY taskledger_reminders`, the channel they
/// already listen on). With `APP_API_TOKEN` set (Dapr's app API token), only
/// a caller that sends it in `dapr-api-token` is heard.
pub async fn reminder_tick(State(ops): State<Ops>, headers: HeaderMap) -> Response {
    if !from_sidecar(&headers, std::env::var("APP_API_TOKEN").ok().as_deref()) {
        return (StatusCode::UNAUTHORIZED, "dapr-api-token required\n").into_response();
    }
    match sqlx::query("SELECT pg_notify('taskledger_reminders', 'tick')")
        .execute(&ops.pool)
        .await
    {
        Ok(_) => Json(json!({ "woke": "schedulers" })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "reminder tick could not reach Postgres");
            // Non-2xx: Dapr logs the failed delivery; the next tick tries again.
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

/// Whether the request carries the app API token Dapr was given, when one
/// was; compared in constant time.
fn from_sidecar(headers: &HeaderMap, expected: Option<&str>) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let given = headers
        .get("dapr-api-token")
        .map_or(&[][..], |value| value.as_bytes());
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected.as_bytes())
            .fold(0, |differ, (a, b)| differ | (a ^ b))
            == 0
}

/// `OPTIONS /reminder-tick`: yes, this app takes the binding.
pub async fn takes_binding() -> StatusCode {
    StatusCode::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_an_app_token_only_the_sidecar_is_heard() {
        let mut headers = HeaderMap::new();
        assert!(from_sidecar(&headers, None));
        assert!(!from_sidecar(&headers, Some("s3cret")));
        headers.insert("dapr-api-token", "s3cre7".parse().unwrap());
        assert!(!from_sidecar(&headers, Some("s3cret")));
        headers.insert("dapr-api-token", "s3cret".parse().unwrap());
        assert!(from_sidecar(&headers, Some("s3cret")));
        headers.insert("dapr-api-token", "s3cret-and-more".parse().unwrap());
        assert!(!from_sidecar(&headers, Some("s3cret")));
    }
}
