//! Infrastructure every role shares, none of it about tasks: the Kafka
//! clients and their settings, the catalogue of metrics, telemetry (logs,
//! traces, the Prometheus recorder), W3C trace context through the pipeline,
//! single-active locks, how Postgres pools are opened, progress of long
//! work, and the operators' endpoints behind a bounded listener.

pub mod connections;
pub mod kafka;
pub mod listen;
pub mod metric;
pub mod ops;
pub mod postgres;
pub mod progress;
pub mod serve;
pub mod single_active;
pub mod telemetry;
pub mod tls;
pub mod trace;
