//! Telemetry, set up once per process: structured logs (JSON outside local
//! mode), traces exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
//! and the Prometheus recorder behind `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written: compact text for a person at a terminal, one
/// JSON object a line for a log collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flushes the spans still waiting to be exported when dropped (at exit).
pub struct Telemetry(Option<SdkTracerProvider>);

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            if let Err(error) = provider.shutdown() {
                eprintln!("exporting the last spans failed: {error}");
            }
        }
    }
}

/// Logs for `env`, and spans to an OpenTelemetry collector when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set (OTLP over HTTP; protobuf, or JSON
/// with `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`), as service `role` unless
/// `OTEL_SERVICE_NAME` says otherwise. Keep the answer until the process ends.
/// Without `RUST_LOG`: info, and warnings from sqlx and rdkafka (a rebuild,
/// whose statements are long by design, leaves out sqlx's slow-statement
/// warnings).
pub fn init(format: LogFormat, role: &str) -> Telemetry {
    let default = if role == "rebuild" {
        "info,sqlx=error,rdkafka=warn"
    } else {
        "info,sqlx=warn,rdkafka=warn"
    };
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().compact().boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .boxed(),
    };
    let (traces, provider) = match tracer_provider(role) {
        Ok(Some(provider)) => {
            let tracer = provider.tracer("taskledger");
            let layer = tracing_opentelemetry::layer().with_tracer(tracer);
            (Some(layer.with_filter(filter())), Some(provider))
        }
        Ok(None) => (None, None),
        Err(error) => {
            eprintln!("traces are not exported: {error}");
            (None, None)
        }
    };
    tracing_subscriber::registry()
        .with(logs.with_filter(filter()))
        .with(traces)
        .init();
    Telemetry(provider)
}

fn tracer_provider(role: &str) -> anyhow::Result<Option<SdkTracerProvider>> {
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none_or(|v| v.is_empty()) {
        return Ok(None);
    }
    let protocol = match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
        Ok("http/json") => opentelemetry_otlp::Protocol::HttpJson,
        Ok("http/protobuf") | Err(_) => opentelemetry_otlp::Protocol::HttpBinary,
        Ok(other) => anyhow::bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL {other:?} is not served; use http/protobuf or http/json"
        ),
    };
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()?;
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| format!("taskledger-{role}"));
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            // A relay batch links every request it publishes for (up to 500).
            .with_max_links_per_span(512)
            .with_resource(Resource::builder().with_service_name(name).build())
            .build(),
    ))
}

/// The process-wide metrics recorder, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            crate::metric::describe();
            handle
        })
        .clone()
}
