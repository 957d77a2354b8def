//! Shared pieces of the benchmarks: latency recording and report formatting.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// A database of a benchmark run's own, named after the run, dropped after.
pub struct ScratchDatabase {
    /// A short random name of the run, for topics and groups too.
    pub run: String,
    pub url: String,
    name: String,
}

impl ScratchDatabase {
    pub async fn create(services: &Services) -> anyhow::Result<Self> {
        use anyhow::Context;
        use sqlx::Connection;

        let run = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
        let name = format!("taskledger_bench_{run}");
        let mut admin = sqlx::PgConnection::connect(&services.admin_url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let base = services
            .admin_url
            .rsplit_once('/')
            .context("a database URL")?
            .0;
        Ok(Self {
            url: format!("{base}/{name}"),
            run,
            name,
        })
    }

    pub async fn drop(self, services: &Services) -> anyhow::Result<()> {
        use sqlx::Connection;

        let mut admin = sqlx::PgConnection::connect(&services.admin_url).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin)
        .await?;
        Ok(())
    }
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
        settings.common.database_url = Some(format!("{base}/{database}"));
        settings.common.db_max_connections = max_connections;
        settings.common.kafka_brokers = services.brokers.clone();
        settings.common.task_events_topic = format!("bench-task-events-{run}");
        settings.common.reminders_topic = format!("bench-reminders-{run}");
        settings.common.task_updates_topic = format!("bench-task-updates-{run}");
        settings.common.consumer_group_prefix = Some(format!("bench-{run}"));
        settings.common.http_addr = "127.0.0.1:0".into();
        // The benchmark is one user at full speed: no per-user limits.
        settings.api.user_rate_per_second = std::num::NonZeroU32::MAX;
        settings.api.user_rate_burst = std::num::NonZeroU32::MAX;
        settings.api.user_in_flight = usize::MAX;
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
    /// The URL of the run's database.
    pub fn database_url(&self) -> String {
        self.settings
            .common
            .database_url
            .clone()
            .unwrap_or_default()
    }

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

/// `taskledger all` (the release binary beside the benchmark) as a process
/// of its own on a database and topics of the run, with its resident memory
/// sampled every 100 ms.
pub struct ChildApp {
    child: tokio::process::Child,
    pub pid: u32,
    peak_kb: Arc<AtomicU64>,
}

impl ChildApp {
    /// Starts it on `address` with `env` on top of the run's settings, and
    /// waits until it is ready.
    pub async fn start(
        services: &Services,
        run: &str,
        database_url: &str,
        address: &str,
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        use anyhow::{bail, Context};
        let binary = taskledger_binary()?;
        let child = tokio::process::Command::new(&binary)
            .arg("all")
            .env("TASKLEDGER_ENV", "local")
            .env("DATABASE_URL", database_url)
            .env("KAFKA_BROKERS", &services.brokers)
            .env("TASKLEDGER_HTTP_ADDR", address)
            .env(
                "TASKLEDGER_TASK_EVENTS_TOPIC",
                format!("bench-events-{run}"),
            )
            .env(
                "TASKLEDGER_REMINDERS_TOPIC",
                format!("bench-reminders-{run}"),
            )
            .env(
                "TASKLEDGER_TASK_UPDATES_TOPIC",
                format!("bench-updates-{run}"),
            )
            .env("TASKLEDGER_CONSUMER_GROUP_PREFIX", format!("bench-{run}"))
            .env("TASKLEDGER_USER_RATE_PER_SECOND", "1000000")
            .env("TASKLEDGER_USER_RATE_BURST", "1000000")
            .env("TASKLEDGER_USER_IN_FLIGHT", "1000000")
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(key, value)| (*key, value.as_str())))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("a pid")?;
        let ready = format!("http://{address}/readyz");
        let started = Instant::now();
        while !reqwest::get(&ready)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("taskledger did not become ready within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let peak_kb = sample_peak_kb(pid, Duration::from_millis(100));
        Ok(Self {
            child,
            pid,
            peak_kb,
        })
    }

    pub fn rss_mb(&self) -> u64 {
        resident_kb(self.pid).unwrap_or(0) / 1024
    }

    pub fn peak_mb(&self) -> u64 {
        self.peak_kb.load(Ordering::Relaxed) / 1024
    }

    pub fn reset_peak(&self) {
        self.peak_kb
            .store(resident_kb(self.pid).unwrap_or(0), Ordering::Relaxed);
    }

    /// SIGTERM, as an orchestrator stops it; it must stop cleanly.
    /// Resident memory now, in KiB.
    pub fn rss_kb(&self) -> u64 {
        resident_kb(self.pid).unwrap_or(0)
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        use anyhow::{bail, Context};
        tokio::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await?;
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("taskledger did not stop within 30 s of SIGTERM")??;
        if !status.success() {
            bail!("taskledger stopped with {status}");
        }
        Ok(())
    }
}

/// `VmRSS` of process `pid`, in KiB (Linux).
/// The release `taskledger` beside the benchmark (`./dev bench` builds it),
/// or the one on the `PATH`.
pub fn taskledger_binary() -> std::io::Result<std::path::PathBuf> {
    Ok(std::env::current_exe()?
        .parent()
        .map(|dir| dir.join("taskledger"))
        .filter(|path| path.exists())
        .unwrap_or_else(|| std::path::PathBuf::from("taskledger")))
}

/// The highest resident memory of process `pid` (kB), sampled `every` so
/// long as it runs.
pub fn sample_peak_kb(pid: u32, every: Duration) -> Arc<AtomicU64> {
    let peak = Arc::new(AtomicU64::new(0));
    let sampled = peak.clone();
    tokio::spawn(async move {
        while let Some(kb) = resident_kb(pid) {
            sampled.fetch_max(kb, Ordering::Relaxed);
            tokio::time::sleep(every).await;
        }
    });
    peak
}

pub fn resident_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
