//! The settings every role shares (the database, the broker, the topics, the
//! workers' tuning), filled from environment variables (or flags) with
//! documented defaults; `taskledger-worker --help` lists them all. Secrets
//! have no default outside local mode.

use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use infra::kafka::{KafkaSecurity, KafkaSettings};
use infra::telemetry::LogFormat;
use projections::{ConsumerSettings, SchedulerSettings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    /// A developer machine: fixed development secret, human-readable logs.
    Local,
    /// Anywhere else: secrets must be given, logs are JSON.
    Production,
}

impl Environment {
    pub fn log_format(self) -> LogFormat {
        match self {
            Self::Local => LogFormat::Text,
            Self::Production => LogFormat::Json,
        }
    }
}

const LOCAL_DATABASE_URL: &str = "postgres://taskledger:taskledger@127.0.0.1:5432/taskledger";

/// Deliberately not `Debug`: it holds the database URL and the Kafka password.
/// Its argument group has a name of its own: the full binary flattens it
/// beside the API's settings into a struct also called `Settings`.
#[derive(Clone, Args)]
#[group(id = "worker_settings")]
pub struct Settings {
    /// `local` or `production`.
    #[arg(
        long,
        env = "TASKLEDGER_ENV",
        value_enum,
        default_value = "production",
        global = true
    )]
    pub env: Environment,
    /// Postgres URL; required outside local mode.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Connections this process may hold.
    #[arg(
        long,
        env = "TASKLEDGER_DB_MAX_CONNECTIONS",
        default_value_t = 20,
        global = true
    )]
    pub db_max_connections: u32,
    /// Kafka bootstrap servers.
    #[arg(
        long,
        env = "KAFKA_BROKERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub kafka_brokers: String,
    /// Consumer `fetch.wait.max.ms`: the floor of consumer latency on tansu.
    #[arg(
        long,
        env = "KAFKA_FETCH_WAIT_MAX_MS",
        default_value_t = 10,
        global = true
    )]
    pub kafka_fetch_wait_max_ms: u32,
    /// Producer `linger.ms`.
    #[arg(long, env = "KAFKA_LINGER_MS", default_value_t = 1, global = true)]
    pub kafka_linger_ms: u32,
    #[arg(
        long,
        env = "TASKLEDGER_TASK_EVENTS_TOPIC",
        default_value = "task-events",
        global = true
    )]
    pub task_events_topic: String,
    /// Partitions of `task-events` and `task-updates` (and of `reminders`,
    /// when created): as many projector processes can share the work. A topic
    /// found with fewer is moved to this many by the process that publishes
    /// it (docs/adr/0012).
    #[arg(
        long,
        env = "TASKLEDGER_TASK_EVENTS_PARTITIONS",
        default_value_t = 32,
        global = true
    )]
    pub task_events_partitions: i32,
    /// Where the scheduler publishes due reminders.
    #[arg(
        long,
        env = "TASKLEDGER_REMINDERS_TOPIC",
        default_value = "reminders",
        global = true
    )]
    pub reminders_topic: String,
    /// Where the task-list projection's changes are published for live feeds.
    #[arg(
        long,
        env = "TASKLEDGER_TASK_UPDATES_TOPIC",
        default_value = "task-updates",
        global = true
    )]
    pub task_updates_topic: String,
    /// A reminder that fell due longer ago than this while nothing ran is
    /// recorded as missed instead of fired, in hours (at most a week).
    #[arg(
        long,
        env = "TASKLEDGER_REMINDER_MISSED_AFTER_HOURS",
        default_value_t = 24,
        value_parser = clap::value_parser!(u32).range(1..=168),
        global = true
    )]
    pub reminder_missed_after_hours: u32,
    /// Late reminders (after an outage) published per second at most.
    #[arg(
        long,
        env = "TASKLEDGER_REMINDER_CATCH_UP_PER_SECOND",
        default_value_t = 200,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub reminder_catch_up_per_second: u32,
    /// Prefix of consumer group names (default: `taskledger`).
    #[arg(long, env = "TASKLEDGER_CONSUMER_GROUP_PREFIX", global = true)]
    pub consumer_group_prefix: Option<String>,
    /// Names the relay's checkpoint and lock.
    #[arg(
        long,
        env = "TASKLEDGER_RELAY_NAME",
        default_value = "task-events",
        global = true
    )]
    pub relay_name: String,
    /// Where the API listens, or a worker its health and metrics endpoints.
    #[arg(
        long,
        env = "TASKLEDGER_HTTP_ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub http_addr: String,
    /// How often the relay compares the topic's messages with what it published
    /// and reports a topic that lost some, in seconds.
    #[arg(
        long,
        env = "TASKLEDGER_RELAY_TOPIC_CHECK_SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub relay_topic_check_secs: u64,
    /// Whether the relay publishes the whole log again, on its own, when it
    /// finds the topic has lost messages (otherwise it only reports them and
    /// `taskledger republish` does it).
    #[arg(
        long,
        env = "TASKLEDGER_RELAY_REPUBLISH_LOST",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub relay_republish_lost: bool,
    /// The most messages a projection applies in one transaction.
    #[arg(
        long,
        env = "TASKLEDGER_PROJECTION_BATCH_MAX",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u32).range(1..=100_000),
        global = true
    )]
    pub projection_batch_max: u32,
    /// How long a projection's batch waits to fill after its first message,
    /// in milliseconds.
    #[arg(
        long,
        env = "TASKLEDGER_PROJECTION_BATCH_WINDOW_MS",
        default_value_t = 5,
        global = true
    )]
    pub projection_batch_window_ms: u64,
    /// How long a projection may apply nothing while its partitions hold
    /// messages before it replaces its consumer, in seconds.
    #[arg(
        long,
        env = "TASKLEDGER_PROJECTION_STALL_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub projection_stall_secs: u64,
    /// A projection process that has not renewed its membership for this
    /// many seconds is gone, and the others take its partitions.
    #[arg(
        long,
        env = "TASKLEDGER_PROJECTION_LEASE_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        global = true
    )]
    pub projection_lease_secs: u64,
    /// How often, in seconds, a projection process checks its lag and
    /// renews its membership; keep it well below the lease's time, or the
    /// others take its partitions (and fence its batches) between checks.
    #[arg(
        long,
        env = "TASKLEDGER_PROJECTION_CHECK_SECS",
        default_value_t = 2,
        value_parser = clap::value_parser!(u64).range(1..=3600),
        global = true
    )]
    pub projection_check_secs: u64,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl` (a managed Kafka).
    #[arg(long, env = "KAFKA_SECURITY_PROTOCOL", global = true)]
    pub kafka_security_protocol: Option<String>,
    /// `SCRAM-SHA-256`, `SCRAM-SHA-512` or `PLAIN`, with a SASL protocol.
    #[arg(long, env = "KAFKA_SASL_MECHANISM", global = true)]
    pub kafka_sasl_mechanism: Option<String>,
    #[arg(long, env = "KAFKA_SASL_USERNAME", global = true)]
    pub kafka_sasl_username: Option<String>,
    #[arg(
        long,
        env = "KAFKA_SASL_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub kafka_sasl_password: Option<String>,
    /// A PEM file of the CA that signed the brokers' certificates.
    #[arg(long, env = "KAFKA_SSL_CA_LOCATION", global = true)]
    pub kafka_ssl_ca_location: Option<String>,
    /// The key that wraps every user's data key (32 bytes, standard base64;
    /// `openssl rand -base64 32`); required outside local mode. Losing it
    /// loses every title, description and tag. See docs/adr/0014.
    #[arg(
        long,
        env = "TASKLEDGER_MASTER_KEY",
        hide_env_values = true,
        global = true
    )]
    pub master_key: Option<String>,
    /// Where each erasure is written before its key is deleted, outside the
    /// database: a restored backup has its erasures applied again as a
    /// role starts. A file on a volume that outlives the database's backups.
    #[arg(long, env = "TASKLEDGER_ERASURE_LEDGER", global = true)]
    pub erasure_ledger: Option<std::path::PathBuf>,
    /// A Dapr secret store to read `DATABASE_URL` (key `database-url`) and
    /// `TASKLEDGER_JWT_SECRET` (key `jwt-secret`) from, through the sidecar,
    /// when they are not set.
    #[arg(long, env = "TASKLEDGER_DAPR_SECRET_STORE", global = true)]
    pub dapr_secret_store: Option<String>,
}

impl Settings {
    /// Local-mode defaults, as a role would read them from an empty environment.
    pub fn local() -> Self {
        Self {
            env: Environment::Local,
            database_url: None,
            db_max_connections: 20,
            kafka_brokers: "127.0.0.1:9092".into(),
            kafka_fetch_wait_max_ms: 10,
            kafka_linger_ms: 1,
            task_events_topic: "task-events".into(),
            // The local broker pays for every partition on every fetch (`./dev`
            // runs with 3 too); deployments take the default, 32.
            task_events_partitions: 3,
            reminders_topic: "reminders".into(),
            task_updates_topic: "task-updates".into(),
            reminder_missed_after_hours: 24,
            reminder_catch_up_per_second: 200,
            consumer_group_prefix: None,
            relay_name: "task-events".into(),
            relay_topic_check_secs: 60,
            relay_republish_lost: true,
            projection_batch_max: 1000,
            projection_batch_window_ms: 5,
            projection_stall_secs: 30,
            projection_lease_secs: 10,
            projection_check_secs: 2,
            http_addr: "127.0.0.1:8080".into(),
            kafka_security_protocol: None,
            kafka_sasl_mechanism: None,
            kafka_sasl_username: None,
            kafka_sasl_password: None,
            kafka_ssl_ca_location: None,
            master_key: None,
            erasure_ledger: None,
            dapr_secret_store: None,
        }
    }

    /// The master key as set, or local mode's own.
    pub fn master_key(&self) -> anyhow::Result<event_store::keys::MasterKey> {
        use event_store::keys::MasterKey;
        match (&self.master_key, self.env) {
            (Some(key), _) => MasterKey::from_base64(key).context("TASKLEDGER_MASTER_KEY"),
            (None, Environment::Local) => Ok(MasterKey::local_development()),
            (None, Environment::Production) => {
                bail!("TASKLEDGER_MASTER_KEY is required outside local mode (TASKLEDGER_ENV=local)")
            }
        }
    }

    /// The erasure ledger's file: as set, or local mode's under the
    /// working directory; none for a role of a deployment that does not
    /// give it one (only the API, which erases, needs it).
    pub fn erasure_ledger(&self) -> Option<std::path::PathBuf> {
        match (&self.erasure_ledger, self.env) {
            (Some(path), _) => Some(path.clone()),
            (None, Environment::Local) => Some(".taskledger/erasures.jsonl".into()),
            (None, Environment::Production) => None,
        }
    }

    pub fn database_url(&self) -> anyhow::Result<&str> {
        match (&self.database_url, self.env) {
            (Some(url), _) => Ok(url),
            (None, Environment::Local) => Ok(LOCAL_DATABASE_URL),
            (None, Environment::Production) => {
                bail!("DATABASE_URL is required outside local mode (TASKLEDGER_ENV=local)")
            }
        }
    }

    /// How each projection consumes `task-events`.
    pub fn consumers(&self) -> ConsumerSettings {
        ConsumerSettings {
            group_prefix: self.consumer_group_prefix.clone(),
            batch_max: self.projection_batch_max as usize,
            batch_window: Duration::from_millis(self.projection_batch_window_ms),
            stall_timeout: Duration::from_secs(self.projection_stall_secs),
            lease_ttl: Duration::from_secs(self.projection_lease_secs),
            check_interval: Duration::from_secs(self.projection_check_secs),
            ..ConsumerSettings::new(self.task_events_topic.clone())
        }
    }

    /// How the scheduler fires reminders.
    pub fn scheduler(&self) -> SchedulerSettings {
        SchedulerSettings {
            missed_after: chrono::Duration::hours(i64::from(self.reminder_missed_after_hours)),
            catch_up_per_second: self.reminder_catch_up_per_second,
            partitions: self.task_events_partitions,
            ..SchedulerSettings::new(self.reminders_topic.clone())
        }
    }

    pub fn kafka(&self) -> KafkaSettings {
        KafkaSettings {
            brokers: self.kafka_brokers.clone(),
            fetch_wait_max_ms: self.kafka_fetch_wait_max_ms,
            linger_ms: self.kafka_linger_ms,
            security: KafkaSecurity {
                protocol: self.kafka_security_protocol.clone(),
                sasl_mechanism: self.kafka_sasl_mechanism.clone(),
                sasl_username: self.kafka_sasl_username.clone(),
                sasl_password: self.kafka_sasl_password.clone(),
                ssl_ca_location: self.kafka_ssl_ca_location.clone(),
            },
        }
    }
}
