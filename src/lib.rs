//! Taskledger's one binary, as a library: typed settings, telemetry, and
//! [`start`], which runs any set of roles in this process.

pub mod allocator;
pub mod dapr;
pub mod dlq;
pub mod progress;
pub mod rebuild;
pub mod replay;
pub mod settings;
pub mod telemetry;
pub mod verify;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use command_api::CommandService;
use domain::TaskServices;
use event_store::kafka::dead_letter_topic;
use event_store::relay::{Relay, RelaySettings};
use projections::{
    ConsumerSettings, NotificationInbox, ProjectionConsumer, RecurrenceProcessor,
    RemindersProjection, Scheduler, TaskListProjection, TaskUpdatesPublisher,
};
use query_api::fairness::Fairness;
use query_api::limits::DocumentLimits;
use query_api::{
    ApiState, CalendarFeeds, DevTokens, LiveHub, LiveTopics, Ops, ReadYourWrites, SchemaServices,
};
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use settings::{Environment, Settings};

/// Which roles one process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub api: bool,
    pub relay: bool,
    pub project: bool,
    pub scheduler: bool,
}

impl Roles {
    const NONE: Self = Self {
        api: false,
        relay: false,
        project: false,
        scheduler: false,
    };
    pub const ALL: Self = Self {
        api: true,
        relay: true,
        project: true,
        scheduler: true,
    };
    pub const API: Self = Self {
        api: true,
        ..Self::NONE
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

/// The probes and `/metrics` on `address` for as long as this process runs:
/// how a one-off command (`rebuild`) shows its progress to Prometheus.
pub async fn serve_ops_meanwhile(
    settings: &Settings,
    pool: &PgPool,
    address: &str,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding {address}"))?;
    let ops = Ops {
        pool: pool.clone(),
        broker_probe: query_api::BrokerProbe::new(settings.kafka()),
        metrics: telemetry::metrics_handle(),
    };
    tokio::spawn(async move {
        if let Err(error) = query_api::serve_ops(listener, ops, CancellationToken::new()).await {
            tracing::warn!(%error, "the metrics listener stopped");
        }
    });
    Ok(())
}

/// The roles started by [`start`].
pub struct Running {
    /// Where the API listens, if this process runs it.
    pub api_address: Option<SocketAddr>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served when the API is not.
    pub ops_address: Option<SocketAddr>,
    pub pool: PgPool,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
    shutdown: CancellationToken,
}

impl Running {
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

/// The `Host` values `/mcp` answers: loopback names, and the host clients
/// reach the API at.
fn mcp_allowed_hosts(public_url: &str) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    let authority = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    if !authority.is_empty() {
        hosts.push(authority.to_owned());
    }
    hosts
}

/// Applies every migration and creates the topics.
pub async fn setup(settings: &Settings) -> anyhow::Result<PgPool> {
    settings
        .kafka()
        .security
        .check()
        .map_err(anyhow::Error::msg)?;
    let pool = event_store::connect(settings.database_url()?, settings.db_max_connections)
        .await
        .context("connecting to Postgres")?;
    event_store::migrate(&pool)
        .await
        .context("event store migrations")?;
    projections::migrate(&pool)
        .await
        .context("read model migrations")?;
    query_api::migrate(&pool).await.context("API migrations")?;
    let kafka = settings.kafka();
    let dlq = dead_letter_topic(&settings.task_events_topic);
    let reminders_dlq = dead_letter_topic(&settings.reminders_topic);
    let partitions = settings.task_events_partitions;
    kafka
        .ensure_topics(&[
            (settings.task_events_topic.as_str(), partitions),
            (dlq.as_str(), 1),
            (settings.reminders_topic.as_str(), partitions),
            (reminders_dlq.as_str(), 1),
            (settings.task_updates_topic.as_str(), partitions),
        ])
        .await
        .context("creating topics")?;
    Ok(pool)
}

/// Starts `roles` in this process; they run until `shutdown` is cancelled.
pub async fn start(
    settings: &Settings,
    roles: Roles,
    shutdown: CancellationToken,
) -> anyhow::Result<Running> {
    // Installed before any role records a metric.
    let metrics = telemetry::metrics_handle();
    let pool = setup(settings).await?;
    let kafka = settings.kafka();
    let mut tasks = JoinSet::new();
    let mut api_address = None;
    let mut ops_address = None;

    if roles.relay {
        let relay = Relay::new(
            pool.clone(),
            kafka.clone(),
            RelaySettings {
                name: settings.relay_name.clone(),
                topic: settings.task_events_topic.clone(),
                batch_size: 500,
                idle_poll: Duration::from_millis(500),
                partitions: settings.task_events_partitions,
                topic_check_interval: Duration::from_secs(settings.relay_topic_check_secs),
                republish_lost: settings.relay_republish_lost,
            },
        );
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            relay.run(shutdown).await;
            ("relay", Ok(()))
        });
    }

    if roles.project {
        let consumers = settings.consumers();
        let task_list =
            ProjectionConsumer::new(pool.clone(), &kafka, consumers.clone(), TaskListProjection);
        let processor = RecurrenceProcessor::new(CommandService::new(
            event_store::task_store(pool.clone()),
            TaskServices::default(),
        ));
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
        let updates =
            TaskUpdatesPublisher::new(pool.clone(), &kafka, settings.task_updates_topic.clone());
        let stop = shutdown.clone();
        tasks.spawn(async move { ("project", task_list.run(stop).await) });
        let stop = shutdown.clone();
        tasks.spawn(async move { ("recurrence", recurrence.run(stop).await) });
        let stop = shutdown.clone();
        tasks.spawn(async move { ("reminders", reminders.run(stop).await) });
        let stop = shutdown.clone();
        tasks.spawn(async move { ("notifications", inbox.run(stop).await) });
        let stop = shutdown.clone();
        tasks.spawn(async move { ("task-updates", updates.run(stop).await) });
    }

    if roles.scheduler {
        let scheduler = Scheduler::new(pool.clone(), &kafka, settings.scheduler());
        let stop = shutdown.clone();
        tasks.spawn(async move { ("scheduler", scheduler.run(stop).await) });
    }

    let ops = Ops {
        pool: pool.clone(),
        broker_probe: query_api::BrokerProbe::new(kafka.clone()),
        metrics,
    };
    // The API, or for a process without it the probes and metrics alone, on
    // one address.
    let listener = tokio::net::TcpListener::bind(&settings.http_addr)
        .await
        .with_context(|| format!("binding {}", settings.http_addr))?;
    if !roles.api {
        ops_address = Some(listener.local_addr()?);
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let result = query_api::serve_ops(listener, ops, shutdown).await;
            ("ops", result.map_err(Into::into))
        });
    } else {
        let commands = CommandService::new(
            event_store::task_store(pool.clone()),
            TaskServices::default(),
        );
        let read_pool =
            query_api::read_pool::connect(settings.database_url()?, settings.read_pool())
                .await
                .context("connecting the read pool")?;
        let read_your_writes = ReadYourWrites {
            max_wait: Duration::from_millis(settings.read_your_writes_wait_ms),
        };
        let live = LiveHub::default();
        let topics = LiveTopics {
            task_updates: settings.task_updates_topic.clone(),
            reminders: settings.reminders_topic.clone(),
        };
        let feed = live.clone();
        let (stop, feed_kafka) = (shutdown.clone(), kafka.clone());
        let feed_pool = read_pool.clone();
        tasks.spawn(async move { ("live", feed.run(feed_pool, feed_kafka, topics, stop).await) });
        let verifier = Arc::new(settings.token_verifier()?);
        let public_url = match &settings.public_url {
            Some(url) => url.clone(),
            None => {
                let listening = listener.local_addr()?;
                if listening.ip().is_unspecified() {
                    tracing::warn!(%listening, "TASKLEDGER_PUBLIC_URL is not set: calendar URLs will name an address clients cannot reach, and /mcp answers loopback hosts only");
                }
                format!("http://{listening}")
            }
        };
        let calendar = CalendarFeeds::new(&settings.jwt_secret()?, &public_url);
        let state = ApiState {
            schema: query_api::build_schema(SchemaServices {
                read_pool,
                commands,
                read_your_writes,
                live,
                calendar: calendar.clone(),
            }),
            calendar,
            mcp_allowed_hosts: mcp_allowed_hosts(&public_url),
            // Only with the built-in development secret, on a loopback
            // address: anyone who reaches it can sign in as anyone.
            dev_tokens: (settings.env == Environment::Local
                && settings.jwt_secret.is_none()
                && listener.local_addr()?.ip().is_loopback())
            .then(|| DevTokens(verifier.clone())),
            verifier,
            sockets: Default::default(),
            ws_init_timeout: Duration::from_secs(settings.ws_init_timeout_secs),
            shutdown: shutdown.clone(),
            limits: DocumentLimits::default(),
            anonymous_introspection: settings.anonymous_introspection(),
            deadline: Duration::from_millis(settings.request_deadline_ms),
            fairness: Fairness::new(settings.fairness()),
            connections: settings.connections(),
            ops,
        };
        api_address = Some(listener.local_addr()?);
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let result = query_api::serve(listener, state, shutdown).await;
            ("api", result.map_err(Into::into))
        });
    }

    Ok(Running {
        api_address,
        ops_address,
        pool,
        tasks,
        shutdown,
    })
}
