//! Shared pieces of the benchmarks: latency recording and report formatting.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Where a benchmark finds Postgres and the broker.
#[derive(clap::Args)]
pub struct Services {
    /// A Postgres URL of a database the benchmark may create databases from.
    #[arg(
        long,
        env = "TEST_DATABASE_ADMIN_URL",
        default_value = "postgres://taskledger:taskledger@127.0.0.1:5432/postgres"
    )]
    pub admin_url: String,
    /// The Kafka-compatible broker's bootstrap address.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
}

/// Latencies of one kind of operation, in microseconds.
pub struct Latencies {
    histogram: Histogram<u64>,
    pub errors: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            histogram: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            errors: 0,
        }
    }
}

impl Latencies {
    pub fn record(&mut self, elapsed: Duration) {
        let micros = elapsed.as_micros().clamp(1, 60_000_000) as u64;
        self.histogram.record(micros).expect("clamped into bounds");
    }

    pub fn merge(&mut self, other: &Latencies) {
        self.histogram.add(&other.histogram).expect("same bounds");
        self.errors += other.errors;
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The `q` quantile in milliseconds.
    pub fn millis(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1000.0
    }
}

/// One GraphQL operation over HTTP; any error in the body counts as a failure.
pub async fn graphql(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Result<Value, String> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if body.get("errors").is_some() {
        return Err(body.to_string());
    }
    Ok(body)
}

/// Taskledger started in this process on a database and topic of its own, so
/// a benchmark run neither sees nor disturbs anything else.
pub struct BenchApp {
    /// The GraphQL endpoint.
    pub url: String,
    pub pool: sqlx::PgPool,
    pub settings: taskledger::Settings,
    database: String,
    admin_url: String,
    shutdown: tokio_util::sync::CancellationToken,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl BenchApp {
    pub async fn start(
        services: &Services,
        roles: taskledger::Roles,
        max_connections: u32,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        use sqlx::Connection;

        let run = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        let database = format!("taskledger_bench_{run}");
        let mut admin = sqlx::PgConnection::connect(&services.admin_url).await?;
        sqlx::query(&format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .await?;
        let base = services
            .admin_url
            .rsplit_once('/')
            .context("a database URL")?
            .0;
        let mut settings = taskledger::Settings::local();
        settings.database_url = Some(format!("{base}/{database}"));
        settings.db_max_connections = max_connections;
        settings.kafka_brokers = services.brokers.clone();
        settings.task_events_topic = format!("bench-task-events-{run}");
        settings.consumer_group_prefix = Some(format!("bench-{run}"));
        settings.http_addr = "127.0.0.1:0".into();
        // The benchmark is one user at full speed: no per-user limits.
        settings.user_rate_per_second = std::num::NonZeroU32::MAX;
        settings.user_rate_burst = std::num::NonZeroU32::MAX;
        settings.user_in_flight = usize::MAX;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let running = taskledger::start(&settings, roles, shutdown.clone()).await?;
        let url = format!(
            "http://{}/graphql",
            running.api_address.context("API address")?
        );
        let pool = running.pool.clone();
        Ok(Self {
            url,
            pool,
            settings,
            database,
            admin_url: services.admin_url.clone(),
            shutdown,
            running: tokio::spawn(running.wait()),
        })
    }

    /// Stops Taskledger and drops the database, unless `keep`.
    pub async fn stop(self, keep: bool) -> anyhow::Result<()> {
        use sqlx::Connection;

        self.shutdown.cancel();
        let _ = self.running.await;
        self.pool.close().await;
        if keep {
            eprintln!("kept database {}", self.database);
        } else {
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.database
            ))
            .execute(&mut sqlx::PgConnection::connect(&self.admin_url).await?)
            .await?;
        }
        Ok(())
    }
}

/// Tasks in the event store that the task list lacks or holds at an older
/// version: 0 when the read model has caught up.
pub async fn tasks_behind(pool: &sqlx::PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT aggregate_id, max(sequence) AS v FROM events GROUP BY aggregate_id) e
          LEFT JOIN task_list t ON t.id = e.aggregate_id::uuid
          WHERE t.version IS DISTINCT FROM e.v",
    )
    .fetch_one(pool)
    .await
}
