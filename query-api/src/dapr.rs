//! The app's side of Dapr's contracts, for clusters that run a Dapr sidecar
//! beside each role: the `reminder-tick` cron input binding, which wakes the
//! reminder schedulers to look for due reminders at once (idempotent: Dapr
//! fires it on every replica, and a wake-up only makes a scheduler look).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::server::Ops;

/// The binding's name: Dapr calls `POST /<name>` on each tick, and asks
/// `OPTIONS /<name>` at start whether the app takes it.
pub const REMINDER_TICK: &str = "/reminder-tick";

/// `POST /reminder-tick`: every scheduler connected to this database wakes
/// and claims what is due (`NOTIFY taskledger_reminders`, the channel they
/// already listen on).
pub async fn reminder_tick(State(ops): State<Ops>) -> Response {
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

/// `OPTIONS /reminder-tick`: yes, this app takes the binding.
pub async fn takes_binding() -> StatusCode {
    StatusCode::OK
}
