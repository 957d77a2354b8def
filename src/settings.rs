//! The settings of the `taskledger` binary: those every role shares
//! ([`worker::Settings`], flattened) and the API's own, filled from
//! environment variables (or flags) with documented defaults; `taskledger
//! --help` lists them all. Secrets have no default outside local mode.

use std::num::NonZeroU32;
use std::time::Duration;

use anyhow::bail;
use api_core::auth::{JwtSecret, TokenScope, TokenVerifier};
use api_core::fairness::FairnessSettings;
use clap::Args;
use infra::connections::ConnectionLimits;
use query_api::read_pool::ReadPoolSettings;

pub use worker::settings::Environment;

/// Deliberately not `Debug`: it holds the database URL, the JWT secret and
/// the Kafka password.
#[derive(Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub common: worker::Settings,
    #[command(flatten)]
    pub api: ApiSettings,
}

/// What only the API reads: its limits, its tokens and where clients reach it.
#[derive(Clone, Args)]
pub struct ApiSettings {
    /// Seconds a WebSocket may take to send `connection_init` (then 4408).
    #[arg(
        long,
        env = "TASKLEDGER_WS_INIT_TIMEOUT_SECS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub ws_init_timeout_secs: u64,
    /// Longest a client query may run, in milliseconds.
    #[arg(
        long,
        env = "TASKLEDGER_READ_STATEMENT_TIMEOUT_MS",
        default_value_t = 5000,
        global = true
    )]
    pub read_statement_timeout_ms: u64,
    /// Longest a read waits for the read model to apply its caller's own
    /// writes (or a requested version).
    #[arg(
        long,
        env = "TASKLEDGER_READ_YOUR_WRITES_WAIT_MS",
        default_value_t = 2000,
        global = true
    )]
    pub read_your_writes_wait_ms: u64,
    /// Longest one GraphQL request may run, all its statements together, in
    /// milliseconds; past it the answer is `TIMEOUT`.
    #[arg(
        long,
        env = "TASKLEDGER_REQUEST_DEADLINE_MS",
        default_value_t = 10_000,
        global = true
    )]
    pub request_deadline_ms: u64,
    /// Connections the API keeps open at once; the next waits to be accepted.
    #[arg(long, env = "TASKLEDGER_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_connections: u32,
    /// Seconds a connection may stay silent (idle keep-alive, or a request sent
    /// too slowly) before it is closed.
    #[arg(long, env = "TASKLEDGER_CONNECTION_IDLE_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub connection_idle_secs: u64,
    /// Seconds a request's head (its line and headers) may take to arrive as
    /// a whole, however steadily its bytes trickle in; then the connection
    /// is closed.
    #[arg(long, env = "TASKLEDGER_HEADER_READ_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub header_read_secs: u64,
    /// GraphQL documents kept parsed and costed (0 keeps none: every request
    /// parses its document).
    #[arg(long, env = "TASKLEDGER_KEPT_DOCUMENTS", default_value_t = server::documents::KEPT_DOCUMENTS, global = true)]
    pub kept_documents: usize,
    /// Requests per second one user may make, sustained.
    #[arg(long, env = "TASKLEDGER_USER_RATE_PER_SECOND", default_value_t = NonZeroU32::new(50).unwrap(), global = true)]
    pub user_rate_per_second: NonZeroU32,
    /// Requests one user may make at once after a quiet spell.
    #[arg(long, env = "TASKLEDGER_USER_RATE_BURST", default_value_t = NonZeroU32::new(100).unwrap(), global = true)]
    pub user_rate_burst: NonZeroU32,
    /// Requests of one user that may run at the same time (each may hold a
    /// read-pool connection; keep it well below the pool size).
    #[arg(
        long,
        env = "TASKLEDGER_USER_IN_FLIGHT",
        default_value_t = 4,
        global = true
    )]
    pub user_in_flight: usize,
    /// Whether callers without a token may run introspection queries (GraphiQL,
    /// code generators); default: in local mode only.
    #[arg(
        long,
        env = "TASKLEDGER_ANONYMOUS_INTROSPECTION",
        action = clap::ArgAction::Set,
        global = true
    )]
    pub anonymous_introspection: Option<bool>,
    /// HS256 secret for bearer tokens (at least 32 bytes); required outside local mode.
    #[arg(
        long,
        env = "TASKLEDGER_JWT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub jwt_secret: Option<String>,
    /// The `aud` every token must carry (a deployment sharing an identity
    /// provider with other services); not checked when unset.
    #[arg(long, env = "TASKLEDGER_JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,
    /// The `iss` every token must carry; not checked when unset.
    #[arg(long, env = "TASKLEDGER_JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,
    /// The address clients reach the API at (behind an ingress), for the URLs
    /// the API hands out (calendar feeds); default `http://` + the address it
    /// listens on.
    #[arg(long, env = "TASKLEDGER_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
}

impl Settings {
    /// Local-mode defaults, as `taskledger` would read them from an empty environment.
    pub fn local() -> Self {
        Self {
            common: worker::Settings::local(),
            api: ApiSettings {
                ws_init_timeout_secs: 10,
                read_statement_timeout_ms: 5000,
                read_your_writes_wait_ms: 2000,
                request_deadline_ms: 10_000,
                user_rate_per_second: NonZeroU32::new(50).unwrap(),
                user_rate_burst: NonZeroU32::new(100).unwrap(),
                user_in_flight: 4,
                max_connections: 1024,
                connection_idle_secs: 30,
                header_read_secs: 10,
                kept_documents: server::documents::KEPT_DOCUMENTS,
                anonymous_introspection: None,
                jwt_secret: None,
                jwt_audience: None,
                jwt_issuer: None,
                public_url: None,
            },
        }
    }

    /// The verifier of bearer tokens, with the audience and issuer if named.
    pub fn token_verifier(&self) -> anyhow::Result<TokenVerifier> {
        Ok(TokenVerifier::scoped(
            &self.jwt_secret()?,
            TokenScope {
                audience: self.api.jwt_audience.clone(),
                issuer: self.api.jwt_issuer.clone(),
            },
        ))
    }

    pub fn jwt_secret(&self) -> anyhow::Result<JwtSecret> {
        match (&self.api.jwt_secret, self.common.env) {
            (Some(secret), _) => JwtSecret::new(secret.clone()).map_err(anyhow::Error::msg),
            (None, Environment::Local) => Ok(JwtSecret::local_development()),
            (None, Environment::Production) => {
                bail!("TASKLEDGER_JWT_SECRET is required outside local mode (TASKLEDGER_ENV=local)")
            }
        }
    }

    pub fn connections(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_open: self.api.max_connections as usize,
            idle: Duration::from_secs(self.api.connection_idle_secs),
            header_read: Duration::from_secs(self.api.header_read_secs),
        }
    }

    /// What one user may ask of the API.
    pub fn fairness(&self) -> FairnessSettings {
        FairnessSettings {
            per_second: self.api.user_rate_per_second,
            burst: self.api.user_rate_burst,
            in_flight: self.api.user_in_flight,
        }
    }

    /// Anonymous introspection: as set, or allowed in local mode only.
    pub fn anonymous_introspection(&self) -> bool {
        self.api
            .anonymous_introspection
            .unwrap_or(self.common.env == Environment::Local)
    }

    /// The pool that serves client queries, sized like the main pool.
    pub fn read_pool(&self) -> ReadPoolSettings {
        ReadPoolSettings {
            max_connections: self.common.db_max_connections,
            statement_timeout: Duration::from_millis(self.api.read_statement_timeout_ms),
        }
    }
}
