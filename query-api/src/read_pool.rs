//! The read pools: the connections that serve client queries. Each statement
//! is cut off after the read side's timeout. Statements whose best plan is
//! the same for every caller (an unfiltered page of tasks, the caller's
//! lists) run on connections that always keep a statement's plan
//! ([`KeptPlans`]); the others run where Postgres chooses, and those whose
//! plan depends on the caller are sent unprepared there, so each is planned
//! for its own parameters (`projections::task_query`).

use std::time::Duration;

use infra::postgres::ReadyPool;
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;

/// How the read pool is set up.
#[derive(Debug, Clone, Copy)]
pub struct ReadPoolSettings {
    pub max_connections: u32,
    /// Every statement a client query runs is cancelled after this.
    pub statement_timeout: Duration,
}

/// The read connections whose statements always keep their plan
/// (`plan_cache_mode = force_generic_plan`): Postgres's own choice keeps
/// planning a heavy user's page each time, whose plan it estimates cheaper
/// than the one for an average user, though both are the same walk of the
/// same index (docs/performance.md, Read path).
/// They are the statements a read runs most, so connections come back
/// without sqlx's ping (`infra::postgres::ReadyPool`).
#[derive(Clone)]
pub struct KeptPlans(pub ReadyPool);

/// Opens the read pool on `database_url`, where Postgres chooses whether a
/// statement keeps its plan.
pub async fn connect(
    database_url: &str,
    settings: ReadPoolSettings,
) -> Result<PgPool, sqlx::Error> {
    open(database_url, settings, "auto").await
}

/// Opens the pool of [`KeptPlans`] on `database_url`. It opens one
/// connection now (Postgres unreachable fails the start, as for the read
/// pool) and the others as they are needed.
pub async fn connect_kept(
    database_url: &str,
    settings: ReadPoolSettings,
) -> Result<KeptPlans, sqlx::Error> {
    let options = options(database_url, settings, "force_generic_plan")?;
    let pool = ReadyPool::new(options, settings.max_connections);
    pool.acquire().await?.release();
    Ok(KeptPlans(pool))
}

async fn open(
    database_url: &str,
    settings: ReadPoolSettings,
    plan_cache_mode: &str,
) -> Result<PgPool, sqlx::Error> {
    infra::postgres::pool_options(settings.max_connections)
        .connect_with(options(database_url, settings, plan_cache_mode)?)
        .await
}

fn options(
    database_url: &str,
    settings: ReadPoolSettings,
    plan_cache_mode: &str,
) -> Result<PgConnectOptions, sqlx::Error> {
    let options: PgConnectOptions = database_url.parse()?;
    Ok(options.options([
        (
            "statement_timeout",
            settings.statement_timeout.as_millis().to_string(),
        ),
        ("plan_cache_mode", plan_cache_mode.to_owned()),
    ]))
}
