//! The read pool: the connections that serve client queries. Each statement is
//! cut off after the read side's timeout.

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
    // Postgres keeps a statement's generic plan once it finds it no worse
    // than planning each execution (its default). The statements whose best
    // plan depends on the caller (a filter or a search over one user's ten
    // tasks or another's hundred thousand) are sent unprepared instead, so
    // each is planned for its own parameters (`projections::task_query`).
    let options = options.options([(
        "statement_timeout",
        settings.statement_timeout.as_millis().to_string(),
    )]);
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}
