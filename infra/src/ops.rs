//! What every process serves for operators, with or without the API:
//! `/healthz`, `/readyz` and `/metrics`, behind a bounded listener. A worker
//! serves them alone; the API server mounts the same handlers beside its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use rdkafka::producer::Producer as _;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::connections::{BoundedListener, ConnectionLimits};
use crate::kafka::{DropOffThread, KafkaSettings};

/// What the operators' endpoints look at.
#[derive(Clone)]
pub struct Ops {
    pub pool: PgPool,
    /// Asks the broker whether it answers, for `/readyz`.
    pub broker_probe: BrokerProbe,
    pub metrics: PrometheusHandle,
}

/// The probes and `/metrics`, for any router whose state yields [`Ops`].
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Ops: axum::extract::FromRef<S>,
{
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The operators' endpoints alone, for a process that runs no API (a relay or
/// a projector), with `extra` routes of that process (Dapr's bindings).
pub fn router(ops: Ops, extra: Router<Ops>) -> Router {
    routes::<Ops>().merge(extra).with_state(ops)
}

/// Serves [`router`] until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    ops: Ops,
    extra: Router<Ops>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "health and metrics listening");
    let limits = ConnectionLimits {
        max_open: 64,
        idle: Duration::from_secs(30),
        header_read: Duration::from_secs(10),
    };
    crate::serve::serve(
        BoundedListener::new(listener, limits),
        router(ops, extra),
        limits.header_read,
        shutdown,
    )
    .await;
    Ok(())
}

/// Ready when Postgres answers: with the broker down the API still serves
/// reads and takes writes (the event store is the buffer; the relay publishes
/// when the broker is back). The body says how each dependency is, and
/// `taskledger_broker_reachable{role}` records the broker's state. The
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

async fn metrics(State(state): State<Ops>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// The broker's last known state, asked again when older than a second, by a
/// client made for the question and destroyed after it: a long-lived client
/// would know the topics and could see them come back with new ids
/// ([`crate::kafka::BrokerWatch`]).
#[derive(Clone)]
pub struct BrokerProbe {
    kafka: KafkaSettings,
    /// The `role` label of `taskledger_broker_reachable`.
    role: &'static str,
    last: Arc<tokio::sync::Mutex<Option<(Instant, bool)>>>,
}

impl BrokerProbe {
    pub fn new(kafka: KafkaSettings, role: &'static str) -> Self {
        Self {
            kafka,
            role,
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
        metrics::gauge!(crate::metric::BROKER_REACHABLE, "role" => self.role).set(if reachable {
            1.0
        } else {
            0.0
        });
        *last = Some((Instant::now(), reachable));
        reachable
    }
}
