//! Shared pieces of the benchmarks: starting Taskledger on a database of the
//! run's own, latency recording (whole and per second of the run), memory
//! sampling, and the charts every benchmark writes beside its tables.

mod backlog;
pub mod chart;
mod child;
mod cpu;
mod load;
pub mod statements;
pub mod store;
pub mod zipf;

pub use backlog::{
    bare_consumer_rate, preload_created_tasks, preload_mixed_tasks, publish_backlog,
    wait_for_task_list, Backlog, WITHOUT_PROJECTIONS,
};
pub use child::{taskledger_binary, ChildApp};
pub use cpu::{cpu_seconds, ms_each, postgres_cpu_seconds};
pub use load::{closed_loop, settle_task_list};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
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

/// The instant the run's time axis starts from: the first start of
/// Taskledger or of a memory sampler, whichever comes first.
pub(crate) static RUN_STARTED: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Seconds from the start of the run to `at`: the x of every chart over time.
pub fn run_seconds(at: Instant) -> f64 {
    at.saturating_duration_since(*RUN_STARTED).as_secs_f64()
}

/// A token of `user` signed with the local development secret, valid for
/// longer than any run.
pub fn bench_token(user: &str) -> anyhow::Result<String> {
    use api_core::auth::{JwtSecret, TokenVerifier};
    let user = domain::values::UserId::parse(user)?;
    Ok(
        TokenVerifier::new(&JwtSecret::local_development())
            .issue(&user, chrono::Duration::hours(4)),
    )
}

/// A database of a benchmark run's own, named after the run, dropped after.
pub struct ScratchDatabase {
    /// A short random name of the run, for topics and groups too.
    pub run: String,
    pub url: String,
    name: String,
    admin_url: String,
}

impl ScratchDatabase {
    pub async fn create(services: &Services) -> anyhow::Result<Self> {
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
            admin_url: services.admin_url.clone(),
        })
    }

    /// Drops the database, unless `keep` (then its name is printed).
    pub async fn drop(self, keep: bool) -> anyhow::Result<()> {
        use sqlx::Connection;

        if keep {
            eprintln!("kept database {}", self.name);
            return Ok(());
        }
        let mut admin = sqlx::PgConnection::connect(&self.admin_url).await?;
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // FORCE cannot end a backend of another role, such as an autovacuum
        // worker busy on the run's tables after a load: wait for it.
        let mut attempts = 0;
        loop {
            match sqlx::query(&drop).execute(&mut admin).await {
                Ok(_) => return Ok(()),
                Err(error) if attempts < 20 => {
                    attempts += 1;
                    eprintln!("dropping {} waits: {error}", self.name);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// Latencies of one kind of operation, in microseconds: all of them, for the
/// tables, and those of each second of the run, for the charts.
pub struct Latencies {
    histogram: Histogram<u64>,
    per_second: BTreeMap<u64, Histogram<u64>>,
    pub errors: u64,
}

/// The largest latency recorded, in microseconds; longer ones count as this.
const MAX_MICROS: u64 = 60_000_000;

impl Default for Latencies {
    fn default() -> Self {
        Self {
            histogram: Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid bounds"),
            per_second: BTreeMap::new(),
            errors: 0,
        }
    }
}

impl Latencies {
    /// An operation that took `elapsed` and ended now.
    pub fn record(&mut self, elapsed: Duration) {
        self.record_at(Instant::now(), elapsed);
    }

    /// An operation that took `elapsed` and ended `at`.
    pub fn record_at(&mut self, at: Instant, elapsed: Duration) {
        let micros = elapsed.as_micros().clamp(1, MAX_MICROS.into()) as u64;
        self.histogram.record(micros).expect("clamped into bounds");
        // Two significant digits are plenty for a chart and keep a second's
        // histogram at 20 KiB.
        self.per_second
            .entry(run_seconds(at) as u64)
            .or_insert_with(|| Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("valid bounds"))
            .record(micros)
            .expect("clamped into bounds");
    }

    pub fn merge(&mut self, other: &Latencies) {
        self.histogram.add(&other.histogram).expect("same bounds");
        for (second, histogram) in &other.per_second {
            match self.per_second.get_mut(second) {
                Some(mine) => mine.add(histogram).expect("same bounds"),
                None => {
                    self.per_second.insert(*second, histogram.clone());
                }
            }
        }
        self.errors += other.errors;
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The `q` quantile in milliseconds.
    pub fn millis(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1000.0
    }

    /// The `q` quantile in milliseconds of each second of the run in which an
    /// operation ended, at the middle of that second.
    pub fn per_second(&self, q: f64) -> Vec<(f64, f64)> {
        self.per_second
            .iter()
            .map(|(second, histogram)| {
                (
                    *second as f64 + 0.5,
                    histogram.value_at_quantile(q) as f64 / 1000.0,
                )
            })
            .collect()
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

/// How long after `answered` the task `id` showed in the task list, polled
/// every `poll`; `None` when it had not after `give_up`.
pub async fn visible_after(
    pool: &sqlx::PgPool,
    id: uuid::Uuid,
    answered: Instant,
    poll: Duration,
    give_up: Duration,
) -> Result<Option<Duration>, sqlx::Error> {
    loop {
        let visible: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM task_list WHERE id = $1)")
                .bind(id)
                .fetch_one(pool)
                .await?;
        if visible {
            return Ok(Some(answered.elapsed()));
        }
        if answered.elapsed() > give_up {
            return Ok(None);
        }
        tokio::time::sleep(poll).await;
    }
}

/// Taskledger started in this process on a database and topic of its own, so
/// a benchmark run neither sees nor disturbs anything else.
pub struct BenchApp {
    /// The GraphQL endpoint.
    pub url: String,
    pub pool: sqlx::PgPool,
    pub settings: taskledger::Settings,
    database: ScratchDatabase,
    shutdown: tokio_util::sync::CancellationToken,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl BenchApp {
    pub async fn start(
        services: &Services,
        roles: taskledger::Roles,
        max_connections: u32,
    ) -> anyhow::Result<Self> {
        Self::start_with(services, roles, max_connections, |_| {}).await
    }

    /// As [`BenchApp::start`], with the run's settings adjusted by `adjust`
    /// before Taskledger starts.
    pub async fn start_with(
        services: &Services,
        roles: taskledger::Roles,
        max_connections: u32,
        adjust: impl FnOnce(&mut taskledger::Settings),
    ) -> anyhow::Result<Self> {
        LazyLock::force(&RUN_STARTED);
        let database = ScratchDatabase::create(services).await?;
        let run = &database.run;
        let mut settings = taskledger::Settings::local();
        settings.common.database_url = Some(database.url.clone());
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
        adjust(&mut settings);
        let shutdown = tokio_util::sync::CancellationToken::new();
        let running = match taskledger::start(&settings, roles, shutdown.clone()).await {
            Ok(running) => running,
            Err(error) => {
                database.drop(false).await?;
                return Err(error);
            }
        };
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
            shutdown,
            running: tokio::spawn(running.wait()),
        })
    }

    /// The URL of the run's database.
    pub fn database_url(&self) -> String {
        self.database.url.clone()
    }

    /// `taskledger api` (the release binary) as a process of its own on this
    /// run's database, with `env` on top of the run's settings: its GraphQL
    /// endpoint, its pid, and the process (killed when dropped). Its CPU is
    /// then its own, apart from the load generator's.
    pub async fn api_process(
        &self,
        services: &Services,
        env: &[(&str, String)],
    ) -> anyhow::Result<(String, u32, tokio::process::Child)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let address = format!("127.0.0.1:{port}");
        let (child, pid) = ChildApp::spawn("api", services, &self.database, &address, env).await?;
        Ok((format!("http://{address}/graphql"), pid, child))
    }

    /// Stops Taskledger and drops the database, unless `keep`.
    pub async fn stop(self, keep: bool) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let _ = self.running.await;
        self.pool.close().await;
        self.database.drop(keep).await
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

/// The resident memory of a process, sampled so long as it runs: its peak
/// (for the tables) and every sample (for the charts).
#[derive(Clone)]
pub struct MemoryTrace {
    pid: u32,
    peak_kb: Arc<AtomicU64>,
    samples: Arc<Mutex<Vec<(Instant, u64)>>>,
}

impl MemoryTrace {
    /// Samples process `pid` every `every`.
    pub fn start(pid: u32, every: Duration) -> Self {
        LazyLock::force(&RUN_STARTED);
        let trace = Self {
            pid,
            peak_kb: Arc::default(),
            samples: Arc::default(),
        };
        let sampled = trace.clone();
        tokio::spawn(async move {
            while let Some(kb) = resident_kb(pid) {
                sampled.peak_kb.fetch_max(kb, Ordering::Relaxed);
                sampled.samples.lock().unwrap().push((Instant::now(), kb));
                tokio::time::sleep(every).await;
            }
        });
        trace
    }

    /// This process, every 100 ms.
    pub fn of_this_process() -> Self {
        Self::start(std::process::id(), Duration::from_millis(100))
    }

    pub fn peak_kb(&self) -> u64 {
        self.peak_kb.load(Ordering::Relaxed)
    }

    pub fn peak_mb(&self) -> u64 {
        self.peak_kb() / 1024
    }

    /// Starts a new peak from the memory resident now.
    pub fn reset_peak(&self) {
        self.peak_kb
            .store(resident_kb(self.pid).unwrap_or(0), Ordering::Relaxed);
    }

    /// Every sample: seconds of the run, MiB.
    pub fn megabytes(&self) -> Vec<(f64, f64)> {
        self.samples
            .lock()
            .unwrap()
            .iter()
            .map(|(at, kb)| (run_seconds(*at), *kb as f64 / 1024.0))
            .collect()
    }
}

/// `VmRSS` of process `pid`, in KiB (Linux).
pub fn resident_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Polls `done` every 100 ms for up to `within`, saying what it waits for
/// every few seconds.
pub async fn wait_for<F, Fut>(within: Duration, what: &str, mut done: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let started = Instant::now();
    let mut said = Instant::now();
    while !done().await? {
        if started.elapsed() > within {
            bail!("gave up waiting for {what} after {within:?}");
        }
        if said.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "waiting for {what} ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
            said = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
