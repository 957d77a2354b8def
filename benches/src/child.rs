//! `taskledger` run by a benchmark in a process of its own, on a database
//! and topics of the run.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::{resident_kb, MemoryTrace, ScratchDatabase, Services, RUN_STARTED};

/// `taskledger all` (the release binary beside the benchmark) as a process
/// of its own on a database and topics of the run, with its resident memory
/// sampled every 100 ms.
pub struct ChildApp {
    child: tokio::process::Child,
    pub pid: u32,
    /// Where it listens, `127.0.0.1:PORT`.
    pub address: String,
    pub database: ScratchDatabase,
    pub memory: MemoryTrace,
}

impl ChildApp {
    /// Starts it on a database of the run's own and a free local port, with
    /// `env` on top of the run's settings, and waits until it is ready.
    pub async fn start(services: &Services, env: &[(&str, String)]) -> anyhow::Result<Self> {
        LazyLock::force(&RUN_STARTED);
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let address = format!("127.0.0.1:{port}");
        let database = ScratchDatabase::create(services).await?;
        match Self::spawn("all", services, &database, &address, env).await {
            Ok((child, pid)) => Ok(Self {
                child,
                pid,
                address,
                database,
                memory: MemoryTrace::start(pid, Duration::from_millis(100)),
            }),
            Err(error) => {
                database.drop(false).await?;
                Err(error)
            }
        }
    }

    /// `taskledger api` as a second process beside this one, on the same
    /// database and topics and a free local port of its own: its address,
    /// and the process (killed when dropped).
    pub async fn api_beside(
        &self,
        services: &Services,
    ) -> anyhow::Result<(String, tokio::process::Child)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let address = format!("127.0.0.1:{port}");
        let (child, _) = Self::spawn("api", services, &self.database, &address, &[]).await?;
        Ok((address, child))
    }

    pub(crate) async fn spawn(
        role: &str,
        services: &Services,
        database: &ScratchDatabase,
        address: &str,
        env: &[(&str, String)],
    ) -> anyhow::Result<(tokio::process::Child, u32)> {
        let binary = taskledger_binary()?;
        let run = &database.run;
        let child = tokio::process::Command::new(&binary)
            .arg(role)
            .env("TASKLEDGER_ENV", "local")
            .env("DATABASE_URL", &database.url)
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
            .stdout(app_log()?)
            .stderr(app_log()?)
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
        Ok((child, pid))
    }

    /// Runs `measure` against it, then stops it and drops the database, also
    /// when `measure` failed.
    pub async fn with<T>(
        self,
        measure: impl AsyncFnOnce(&Self) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let measured = measure(&self).await;
        let stopped = self.stop().await;
        let measured = measured?;
        stopped.map(|()| measured)
    }

    /// The GraphQL endpoint.
    pub fn graphql_url(&self) -> String {
        format!("http://{}/graphql", self.address)
    }

    pub fn rss_mb(&self) -> u64 {
        self.rss_kb() / 1024
    }

    /// Resident memory now, in KiB.
    pub fn rss_kb(&self) -> u64 {
        resident_kb(self.pid).unwrap_or(0)
    }

    /// SIGTERM, as an orchestrator stops it; it must stop cleanly. Then the
    /// run's database is dropped.
    async fn stop(mut self) -> anyhow::Result<()> {
        tokio::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await?;
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        self.database.drop(false).await?;
        let status = status.context("taskledger did not stop within 30 s of SIGTERM")??;
        if !status.success() {
            bail!("taskledger stopped with {status}");
        }
        Ok(())
    }
}

/// The release `taskledger` beside the benchmark (`./dev bench` builds it),
/// or the one on the `PATH`.
pub fn taskledger_binary() -> std::io::Result<std::path::PathBuf> {
    Ok(std::env::current_exe()?
        .parent()
        .map(|dir| dir.join("taskledger"))
        .filter(|path| path.exists())
        .unwrap_or_else(|| std::path::PathBuf::from("taskledger")))
}

/// Where a benchmark's own `taskledger` process logs (its standard output
/// and error): the file
/// `TASKLEDGER_BENCH_APP_LOG` names (appended to), or nowhere.
fn app_log() -> anyhow::Result<std::process::Stdio> {
    Ok(match std::env::var_os("TASKLEDGER_BENCH_APP_LOG") {
        Some(path) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.to_string_lossy()))?
            .into(),
        None => std::process::Stdio::null(),
    })
}
