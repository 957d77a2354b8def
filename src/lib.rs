//! Taskledger's full binary, as a library: its settings (the workers' and
//! the API's), and [`start`], which runs any set of roles in this process,
//! the API among them.

pub mod dapr;
pub mod settings;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use api_core::fairness::Fairness;
use domain::TaskServices;
use event_store::command::{CommandService, ListService};
use projections::erasure::Eraser;
use query_api::consistency::Consistency;
use query_api::{CalendarFeeds, LiveHub, LiveTopics, ReadYourWrites};
use server::documents::Documents;
use server::limits::DocumentLimits;
use server::{ApiState, DevTokens, SchemaServices};
use sqlx::PgPool;
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
    pub const ALL: Self = Self::with(true, worker::Roles::ALL);
    pub const API: Self = Self::with(true, worker::Roles::NONE);
    pub const RELAY: Self = Self::with(false, worker::Roles::RELAY);
    pub const PROJECT: Self = Self::with(false, worker::Roles::PROJECT);
    pub const SCHEDULER: Self = Self::with(false, worker::Roles::SCHEDULER);

    /// The worker roles alone, without the API.
    pub const fn workers(workers: worker::Roles) -> Self {
        Self::with(false, workers)
    }

    const fn with(api: bool, workers: worker::Roles) -> Self {
        Self {
            api,
            relay: workers.relay,
            project: workers.project,
            scheduler: workers.scheduler,
        }
    }

    fn worker_roles(self) -> worker::Roles {
        worker::Roles {
            relay: self.relay,
            project: self.project,
            scheduler: self.scheduler,
        }
    }
}

/// The roles started by [`start`].
pub struct Running {
    /// Where the API listens, if this process runs it.
    pub api_address: Option<SocketAddr>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served when the API is not.
    pub ops_address: Option<SocketAddr>,
    pub pool: PgPool,
    roles: worker::Running,
}

impl Running {
    /// Waits for every role to stop. If one stops with an error, the others are
    /// asked to stop too and the first error is returned.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.roles.wait().await
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

/// Connections the live feed of an API process holds, apart from the read
/// pool: it runs one query at a time (the tasks a batch names, their lists'
/// members, its watermark, reminders).
const LIVE_FEED_CONNECTIONS: u32 = 2;

/// Applies every migration (the API's too) and creates the topics.
pub async fn setup(settings: &Settings) -> anyhow::Result<PgPool> {
    let pool = migrate(settings).await?;
    worker::create_topics(&settings.common).await?;
    Ok(pool)
}

/// Applies every migration: the event store's, the read models' and the API's.
async fn migrate(settings: &Settings) -> anyhow::Result<PgPool> {
    let pool = worker::migrate(&settings.common).await?;
    query_api::migrate(&pool).await.context("API migrations")?;
    Ok(pool)
}

/// Starts `roles` in this process; they run until `shutdown` is cancelled.
pub async fn start(
    settings: &Settings,
    roles: Roles,
    shutdown: CancellationToken,
) -> anyhow::Result<Running> {
    if !roles.api {
        let workers = worker::start(&settings.common, roles.worker_roles(), shutdown).await?;
        return Ok(Running {
            api_address: None,
            ops_address: workers.ops_address,
            pool: workers.pool.clone(),
            roles: workers,
        });
    }
    // Installed before any role records a metric.
    infra::telemetry::metrics_handle();
    let pool = migrate(settings).await?;
    let mut running = worker::Running::new(pool.clone(), shutdown.clone());
    let topics = worker::Topics::create_in_background(&settings.common, &mut running);
    worker::spawn(
        &settings.common,
        roles.worker_roles(),
        &topics,
        &mut running,
    );
    let kafka = settings.common.kafka();
    let ops = worker::ops(&settings.common, &pool, "api");
    let listener = tokio::net::TcpListener::bind(&settings.common.http_addr)
        .await
        .with_context(|| format!("binding {}", settings.common.http_addr))?;
    let commands = CommandService::new(pool.clone(), TaskServices::default());
    let read_pool =
        query_api::read_pool::connect(settings.common.database_url()?, settings.read_pool())
            .await
            .context("connecting the read pool")?;
    let kept_plans =
        query_api::read_pool::connect_kept(settings.common.database_url()?, settings.read_pool())
            .await
            .context("connecting the read pool that keeps plans")?;
    let read_your_writes = ReadYourWrites {
        max_wait: Duration::from_millis(settings.api.read_your_writes_wait_ms),
    };
    let consistency = Consistency::new(read_pool.clone(), read_your_writes.max_wait);
    let live = LiveHub::default();
    let live_topics = LiveTopics {
        task_updates: settings.common.task_updates_topic.clone(),
        reminders: settings.common.reminders_topic.clone(),
    };
    let feed = live.clone();
    let (stop, feed_kafka) = (shutdown.clone(), kafka.clone());
    // A pool of its own: a burst of requests (thousands of sockets
    // subscribing at once) waiting for the read pool must not make the feed
    // time out, drop its topics and resync every subscriber into the burst.
    let feed_pool = event_store::connect(settings.common.database_url()?, LIVE_FEED_CONNECTIONS)
        .await
        .context("connecting the live feed's pool")?;
    let live_feed = feed.run(feed_pool, feed_kafka, live_topics, stop);
    running.spawn("live", topics.then(&shutdown, live_feed));
    running.spawn(
        "erasures",
        live.clone().hear_erasures(pool.clone(), shutdown.clone()),
    );
    running.spawn(
        "warm-tasks",
        commands.forgetting_erasures(pool.clone(), shutdown.clone()),
    );
    running.spawn(
        "lists",
        live.clone().hear_lists(pool.clone(), shutdown.clone()),
    );
    let verifier = Arc::new(settings.token_verifier()?);
    let public_url = match &settings.api.public_url {
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
        schema: server::build_schema(SchemaServices {
            read_pool,
            kept_plans,
            commands,
            lists: ListService::new(pool.clone(), TaskServices::default()),
            read_your_writes,
            consistency: consistency.clone(),
            live: live.clone(),
            calendar: calendar.clone(),
            eraser: Eraser::new(pool.clone(), worker::ledger(&settings.common)?),
        }),
        calendar,
        consistency,
        erased: live.erased.clone(),
        mcp_allowed_hosts: mcp_allowed_hosts(&public_url),
        // Only with the built-in development secret, on a loopback
        // address: anyone who reaches it can sign in as anyone.
        dev_tokens: (settings.common.env == Environment::Local
            && settings.api.jwt_secret.is_none()
            && listener.local_addr()?.ip().is_loopback())
        .then(|| DevTokens(verifier.clone())),
        verifier,
        sockets: Default::default(),
        ws_init_timeout: Duration::from_secs(settings.api.ws_init_timeout_secs),
        shutdown: shutdown.clone(),
        documents: Arc::new(Documents::new(
            DocumentLimits::default(),
            settings.api.kept_documents,
        )),
        anonymous_introspection: settings.anonymous_introspection(),
        deadline: Duration::from_millis(settings.api.request_deadline_ms),
        fairness: Fairness::new(settings.fairness()),
        connections: settings.connections(),
        ops,
    };
    let api_address = Some(listener.local_addr()?);
    running.spawn("api", async move {
        server::serve(listener, state, shutdown)
            .await
            .map_err(Into::into)
    });
    Ok(Running {
        api_address,
        ops_address: None,
        pool,
        roles: running,
    })
}
