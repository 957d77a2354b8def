//! The read pool: the connections that serve client queries. Each statement is
//! cut off after the read side's timeout, and planned for its own parameters.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// How the read pool is set up.
#[derive(Debug, Clone, Copy)]
pub struct ReadPoolSettings {
    pub max_connections: u32,
    /// Every statement a client query runs is cancelled after this.
    pub statement_timeout: Duration,
}

/// Opens the read pool on `database_url`.
pub async fn connect(
    database_url: &str,
    settings: ReadPoolSettings,
) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = database_url.parse()?;
    // Client queries are built per request and their best plan depends on the
    // user (one with ten tasks, one with a hundred thousand): plan each
    // execution for its own parameters rather than reuse a generic plan.
    let options = options.options([
        (
            "statement_timeout",
            settings.statement_timeout.as_millis().to_string(),
        ),
        ("plan_cache_mode", "force_custom_plan".to_owned()),
    ]);
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}
