//! The worker roles, in a build that links no GraphQL engine and no MCP
//! server: the relay, the projections (with the recurrence processor and the
//! task-updates publisher), the reminder scheduler, and the operators'
//! commands (`setup`, `verify`, `rebuild`, `replay`, `dlq`). The
//! `taskledger-worker` binary runs them; the full `taskledger` binary adds
//! the API beside them.

pub mod allocator;
pub mod cli;
pub mod dlq;
pub mod export;
pub mod rebuild;
pub mod reminder_tick;
pub mod replay;
pub mod secrets;
pub mod settings;
pub mod verify;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use domain::TaskServices;
use event_store::command::CommandService;
use event_store::relay::{Relay, RelaySettings};
use infra::kafka::dead_letter_topic;
use infra::ops::{BrokerProbe, Ops};
use projections::erasure::Ledger;
use projections::{
    ConsumerSettings, NotificationInbox, ProjectionConsumer, RecurrenceProcessor,
    RemindersProjection, Scheduler, TaskListProjection, TaskUpdatesPublisher,
};
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use settings::{Environment, Settings};

/// Which worker roles one process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub relay: bool,
    pub project: bool,
    pub scheduler: bool,
}

/// The roles running in this process, each a task that ends with its result.
pub struct Running {
    /// Where `/healthz`, `/readyz` and `/metrics` are served, when this
    /// process serves them alone (no API).
    pub ops_address: Option<SocketAddr>,
    pub pool: PgPool,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
    shutdown: CancellationToken,
}

impl Running {
    /// Nothing running yet: roles are added with [`Running::spawn`].
    pub fn new(pool: PgPool, shutdown: CancellationToken) -> Self {
        Self {
            ops_address: None,
            pool,
            tasks: JoinSet::new(),
            shutdown,
        }
    }

    /// Runs `role` until it ends or shutdown asks it to.
    pub fn spawn<F>(&mut self, name: &'static str, role: F)
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.tasks.spawn(async move { (name, role.await) });
    }

    /// Waits for every role to stop. If one stops with an error, the others are
    /// asked to stop too and the first error is returned.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let (role, result) = joined.context("a role panicked")?;
            match result {
                Ok(()) => tracing::info!(role, "role stopped"),
                Err(error) => {
                    tracing::error!(role, error = %format_args!("{error:#}"), "role failed; stopping the others");
                    self.shutdown.cancel();
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Applies the event store's and the read models' migrations and creates the
/// topics: for one-off commands (`setup`, `rebuild`, `republish`), which fail
/// if the broker refuses them.
pub async fn setup(settings: &Settings) -> anyhow::Result<PgPool> {
    let pool = migrate(settings).await?;
    create_topics(settings).await?;
    Ok(pool)
}

/// Connects to Postgres with at most `max_connections`, with the master key
/// set up for sealing and opening what users typed.
pub async fn connect(settings: &Settings, max_connections: u32) -> anyhow::Result<PgPool> {
    event_store::keys::install_master_key(settings.master_key()?)?;
    event_store::connect(settings.database_url()?, max_connections)
        .await
        .context("connecting to Postgres")
}

/// The deployment's erasure ledger, which erasing needs.
pub fn ledger(settings: &Settings) -> anyhow::Result<Ledger> {
    settings.erasure_ledger().map(Ledger::new).context(
        "TASKLEDGER_ERASURE_LEDGER is required to erase outside local mode (TASKLEDGER_ENV=local)",
    )
}

/// Connects to Postgres and applies the event store's and the read models'
/// migrations, and the erasure ledger.
pub async fn migrate(settings: &Settings) -> anyhow::Result<PgPool> {
    settings
        .kafka()
        .security
        .check()
        .map_err(anyhow::Error::msg)?;
    let pool = connect(settings, settings.db_max_connections).await?;
    event_store::migrate(&pool)
        .await
        .context("event store migrations")?;
    projections::migrate(&pool)
        .await
        .context("read model migrations")?;
    // A database restored from before some erasures holds their keys again.
    if let Some(path) = settings.erasure_ledger() {
        projections::erasure::reapply(&pool, &Ledger::new(path))
            .await
            .context("applying the erasure ledger")?;
    }
    Ok(pool)
}

/// Creates the topics every role uses, where missing.
pub async fn create_topics(settings: &Settings) -> anyhow::Result<()> {
    let dlq = dead_letter_topic(&settings.task_events_topic);
    let reminders_dlq = dead_letter_topic(&settings.reminders_topic);
    let partitions = settings.task_events_partitions;
    settings
        .kafka()
        .ensure_topics(&[
            (settings.task_events_topic.as_str(), partitions),
            (dlq.as_str(), 1),
            (settings.reminders_topic.as_str(), partitions),
            (reminders_dlq.as_str(), 1),
            (settings.task_updates_topic.as_str(), partitions),
        ])
        .await
}

/// How long a process waits between attempts to create its topics while the
/// broker is away or refuses it.
const TOPICS_RETRY: Duration = Duration::from_secs(5);

/// Whether this process's topics exist: roles that read or write them wait
/// for it, while the probes and the API answer from the start.
#[derive(Clone)]
pub struct Topics(tokio::sync::watch::Receiver<bool>);

impl Topics {
    /// Creates the topics in the background, trying again every few seconds
    /// (each failure is one log line saying which setting to check), so a
    /// process started with the wrong credentials comes up, says why on
    /// `/readyz` and in its log, and carries on by itself once the broker
    /// accepts it.
    pub fn create_in_background(settings: &Settings, running: &mut Running) -> Self {
        let (ready, topics) = tokio::sync::watch::channel(false);
        let settings = settings.clone();
        let shutdown = running.shutdown.clone();
        running.spawn("topics", async move {
            loop {
                match create_topics(&settings).await {
                    Ok(()) => {
                        ready.send_replace(true);
                        return Ok(());
                    }
                    Err(error) => tracing::error!(
                        error = %format_args!("{error:#}"),
                        retry_in = ?TOPICS_RETRY,
                        "cannot create the topics; the roles that use them wait"
                    ),
                }
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(TOPICS_RETRY) => {}
                }
            }
        });
        Self(topics)
    }

    /// Runs `role` once the topics exist; nothing if shutdown comes first.
    pub fn then<F>(
        &self,
        shutdown: &CancellationToken,
        role: F,
    ) -> impl Future<Output = anyhow::Result<()>>
    where
        F: Future<Output = anyhow::Result<()>>,
    {
        let mut topics = self.0.clone();
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                ready = topics.wait_for(|ready| *ready) => {
                    if ready.is_err() {
                        return Ok(());
                    }
                }
                () = shutdown.cancelled() => return Ok(()),
            }
            role.await
        }
    }
}

/// What `/readyz` and `/metrics` of this process look at; `role` labels its
/// `taskledger_broker_reachable`.
pub fn ops(settings: &Settings, pool: &PgPool, role: &'static str) -> Ops {
    Ops {
        pool: pool.clone(),
        broker_probe: BrokerProbe::new(settings.kafka(), role),
        metrics: infra::telemetry::metrics_handle(),
    }
}

/// Applies the migrations, serves the operators' endpoints (with Dapr's
/// reminder-tick binding) on `settings.http_addr` at once, creates the topics
/// in the background and starts `roles` once they exist; all run until
/// `shutdown` is cancelled.
pub async fn start(
    settings: &Settings,
    roles: Roles,
    shutdown: CancellationToken,
) -> anyhow::Result<Running> {
    // Installed before any role records a metric.
    infra::telemetry::metrics_handle();
    let pool = migrate(settings).await?;
    let mut running = Running::new(pool.clone(), shutdown.clone());
    let listener = tokio::net::TcpListener::bind(&settings.http_addr)
        .await
        .with_context(|| format!("binding {}", settings.http_addr))?;
    running.ops_address = Some(listener.local_addr()?);
    let ops = ops(settings, &pool, roles.name());
    running.spawn("ops", async move {
        infra::ops::serve(listener, ops, reminder_tick::routes(), shutdown)
            .await
            .map_err(Into::into)
    });
    let topics = Topics::create_in_background(settings, &mut running);
    spawn(settings, roles, &topics, &mut running);
    Ok(running)
}

/// Serves the probes and `/metrics` on `address` for as long as this process
/// runs: how a one-off command (`rebuild`) shows its progress to Prometheus.
pub async fn serve_ops_meanwhile(
    settings: &Settings,
    pool: &PgPool,
    address: &str,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address}"))?;
    let ops = ops(settings, pool, "rebuild");
    tokio::spawn(async move {
        let served =
            infra::ops::serve(listener, ops, axum::Router::new(), CancellationToken::new());
        if let Err(error) = served.await {
            tracing::warn!(%error, "the metrics listener stopped");
        }
    });
    Ok(())
}

/// Adds the worker `roles` to `running`, each starting once `topics` exist.
pub fn spawn(settings: &Settings, roles: Roles, topics: &Topics, running: &mut Running) {
    let pool = running.pool.clone();
    let shutdown = running.shutdown.clone();
    let kafka = settings.kafka();
    if roles.relay {
        let relay = Relay::new(
            pool.clone(),
            kafka.clone(),
            RelaySettings {
                name: settings.relay_name.clone(),
                topic: settings.task_events_topic.clone(),
                batch_size: 500,
                // Within a few milliseconds of a commit: a look that finds
                // nothing is one index probe (about 200 a second when idle).
                idle_poll: Duration::from_millis(5),
                partitions: settings.task_events_partitions,
                topic_check_interval: Duration::from_secs(settings.relay_topic_check_secs),
                republish_lost: settings.relay_republish_lost,
            },
        );
        let stop = shutdown.clone();
        running.spawn(
            "relay",
            topics.then(&shutdown, async move {
                relay.run(stop).await;
                Ok(())
            }),
        );
    }

    if roles.project {
        let consumers = settings.consumers();
        let task_list =
            ProjectionConsumer::new(pool.clone(), &kafka, consumers.clone(), TaskListProjection);
        let commands = CommandService::new(pool.clone(), TaskServices::default());
        running.spawn(
            "warm-tasks",
            commands.forgetting_erasures(pool.clone(), shutdown.clone()),
        );
        let processor = RecurrenceProcessor::new(commands);
        let recurrence =
            ProjectionConsumer::new(pool.clone(), &kafka, consumers.clone(), processor);
        let reminders =
            ProjectionConsumer::new(pool.clone(), &kafka, consumers.clone(), RemindersProjection);
        let inbox = ProjectionConsumer::new(
            pool.clone(),
            &kafka,
            ConsumerSettings {
                topic: settings.reminders_topic.clone(),
                ..consumers
            },
            NotificationInbox,
        );
        let updates = TaskUpdatesPublisher::new(
            pool.clone(),
            &kafka,
            settings.task_updates_topic.clone(),
            settings.task_events_partitions,
        );
        let stop = &shutdown;
        running.spawn("project", topics.then(stop, task_list.run(stop.clone())));
        running.spawn(
            "recurrence",
            topics.then(stop, recurrence.run(stop.clone())),
        );
        running.spawn("reminders", topics.then(stop, reminders.run(stop.clone())));
        running.spawn("notifications", topics.then(stop, inbox.run(stop.clone())));
        running.spawn("task-updates", topics.then(stop, updates.run(stop.clone())));
    }

    if roles.scheduler {
        let scheduler = Scheduler::new(pool.clone(), &kafka, settings.scheduler());
        running.spawn(
            "scheduler",
            topics.then(&shutdown, scheduler.run(shutdown.clone())),
        );
    }
}

impl Roles {
    /// Names the process in its metrics: the one role it runs, or `workers`.
    pub fn name(self) -> &'static str {
        match (self.relay, self.project, self.scheduler) {
            (true, false, false) => "relay",
            (false, true, false) => "project",
            (false, false, true) => "scheduler",
            _ => "workers",
        }
    }

    pub const NONE: Self = Self {
        relay: false,
        project: false,
        scheduler: false,
    };
    pub const ALL: Self = Self {
        relay: true,
        project: true,
        scheduler: true,
    };
    pub const RELAY: Self = Self {
        relay: true,
        ..Self::NONE
    };
    pub const PROJECT: Self = Self {
        project: true,
        ..Self::NONE
    };
    pub const SCHEDULER: Self = Self {
        scheduler: true,
        ..Self::NONE
    };
}
