//! `taskledger rebuild PROJECTION`: a projection built again from the event
//! store (the truth) beside the live one, then switched in while queries go
//! on (docs/adr/0006).
//!
//! 1. Under a lock of the projection's own (a second rebuild of it is
//!    refused), a fresh schema gets empty copies of its tables, without
//!    indexes ([`shadow`]).
//! 2. The bulk load: every event of the store read once, as one ordered
//!    stream inside a repeatable-read snapshot; each task folded and its
//!    rows sent with `COPY` over several connections at once. Then the
//!    indexes, under the live ones' names, the triggers that keep other
//!    tables, and statistics for the planner.
//! 3. A catch-up outside any lock: every task with an event the load's
//!    snapshot did not see is folded again, under a newer snapshot.
//! 4. The switch, in one transaction: writes to the live tables wait
//!    (readers go on), the tasks changed since the last snapshot are folded
//!    again, the live tables move aside and the copies take their place. The
//!    live projector, blocked meanwhile, then writes to the new tables;
//!    anything it applies again it recognises by version.
//! 5. The old tables are dropped a moment later.
//!
//! Nothing fires: no reminder, notification, next occurrence or
//! task-updates message comes of a rebuild. Killed half-way, a rebuild
//! leaves only its own schema, which the next one drops.

mod copy_text;
mod reminders;
mod shadow;
mod task_list;

use std::future::Future;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use event_store::global_log::{self, StoredEvent};
use sqlx::{Connection, PgConnection, PgPool};

pub use reminders::Reminders;
use shadow::Shadow;
pub use task_list::TaskList;

/// How many times the switch tries to get its locks.
const SWITCH_ATTEMPTS: u32 = 100;

/// How a rebuild runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Connections writing rows (and building indexes) at once.
    pub writers: usize,
    /// The most events a second the bulk load reads (none: as fast as it
    /// can), leaving the machine's cores to live queries part of the time.
    pub max_rate: Option<NonZeroU32>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            writers: 2,
            max_rate: None,
        }
    }
}

/// Holds a bulk load to [`Options::max_rate`].
struct Pace {
    started: Instant,
    max_rate: Option<NonZeroU32>,
}

impl Pace {
    fn new(options: Options) -> Self {
        Self {
            started: Instant::now(),
            max_rate: options.max_rate,
        }
    }

    /// Waits until `done` events are due at the rate.
    async fn keep(&self, done: u64) {
        if let Some(rate) = self.max_rate {
            let due = Duration::from_secs_f64(done as f64 / f64::from(rate.get()));
            let ahead = due.saturating_sub(self.started.elapsed());
            if !ahead.is_zero() {
                tokio::time::sleep(ahead).await;
            }
        }
    }
}

/// What a rebuild did.
#[derive(Debug)]
pub struct Rebuilt {
    pub tasks: u64,
    pub events: u64,
    /// Tasks folded again after the bulk load, before and in the switch.
    pub caught_up: u64,
    /// The bulk load alone: reading, folding, writing rows.
    pub loaded_in: Duration,
    /// Up to the switch's commit (the old tables' drop comes after).
    pub elapsed: Duration,
}

/// What the bulk load read.
pub struct Loaded {
    /// The snapshot it read in, as `pg_current_snapshot()` text.
    snapshot: String,
    tasks: u64,
    events: u64,
}

/// A projection a rebuild can build.
pub trait Projection: Sync {
    const NAME: &'static str;
    /// Its tables, all swapped at once.
    const TABLES: &'static [&'static str];

    /// Step 2: every row from the store into the copies, then their indexes
    /// and triggers. `session` looks in the copies' schema first.
    fn load(
        &self,
        pool: &PgPool,
        session: &mut PgConnection,
        shadow: &Shadow,
        options: Options,
    ) -> impl Future<Output = anyhow::Result<Loaded>> + Send;

    /// Every task with an event `snapshot` did not see folded again into
    /// the copies; answers how many.
    fn catch_up(
        &self,
        tx: &mut PgConnection,
        shadow: &Shadow,
        snapshot: &str,
    ) -> impl Future<Output = anyhow::Result<u64>> + Send;

    /// In the switch's transaction, after the last catch-up and before the
    /// swap: what the projection must carry over from the live tables (in
    /// `public`, locked against writers) to the copies (in `shadow.schema`).
    fn before_swap(
        &self,
        tx: &mut PgConnection,
        shadow: &Shadow,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Rebuilds `projection` beside the live one and switches it in.
pub async fn rebuild<P: Projection>(
    pool: &PgPool,
    projection: &P,
    options: Options,
) -> anyhow::Result<Rebuilt> {
    let started = Instant::now();
    let shadow = Shadow::new(P::NAME, P::TABLES);
    let mut session = pool.acquire().await?.detach();
    shadow.lock(&mut session).await?;
    shadow.prepare(&mut session).await?;
    tracing::info!(projection = P::NAME, schema = %shadow.schema, "rebuilding beside the live tables");
    let loaded = projection
        .load(pool, &mut session, &shadow, options)
        .await?;
    let loaded_in = started.elapsed();
    shadow.analyze(&mut session).await?;
    tracing::info!(
        projection = P::NAME,
        tasks = loaded.tasks,
        events = loaded.events,
        secs = loaded_in.as_secs_f64(),
        "loaded; catching up"
    );

    let (snapshot, early) =
        catch_up_outside(&mut session, projection, &shadow, &loaded.snapshot).await?;
    let late = switch(&mut session, projection, &shadow, &snapshot).await?;
    let elapsed = started.elapsed();
    tracing::info!(projection = P::NAME, caught_up = early + late, "switched");
    shadow.retire(&mut session).await?;
    let _ = session.close().await;
    Ok(Rebuilt {
        tasks: loaded.tasks,
        events: loaded.events,
        caught_up: early + late,
        loaded_in,
        elapsed,
    })
}

/// What changed while the copies loaded, caught up without holding up any
/// writer; answers the snapshot it caught up to.
async fn catch_up_outside<P: Projection>(
    session: &mut PgConnection,
    projection: &P,
    shadow: &Shadow,
    snapshot: &str,
) -> anyhow::Result<(String, u64)> {
    let mut tx = session.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await?;
    let now: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
        .fetch_one(&mut *tx)
        .await?;
    let caught_up = projection.catch_up(&mut tx, shadow, snapshot).await?;
    tx.commit().await?;
    Ok((now, caught_up))
}

/// The switch; answers how many tasks it caught up. A query touching two
/// of the tables could hold one and wait for the other: rather than let
/// Postgres break that deadlock by failing the query, the switch gives up
/// its locks after a moment and tries again.
async fn switch<P: Projection>(
    session: &mut PgConnection,
    projection: &P,
    shadow: &Shadow,
    snapshot: &str,
) -> anyhow::Result<u64> {
    for attempt in 1.. {
        match try_switch(session, projection, shadow, snapshot).await {
            Ok(caught_up) => return Ok(caught_up),
            Err(error) if attempt < SWITCH_ATTEMPTS && is_lock_timeout(&error) => {
                tracing::info!(
                    attempt,
                    "the switch waited too long for a lock; trying again"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error),
        }
    }
    unreachable!("the loop returns")
}

fn is_lock_timeout(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<sqlx::Error>()
        .is_some_and(infra::single_active::lock_timed_out)
}

async fn try_switch<P: Projection>(
    session: &mut PgConnection,
    projection: &P,
    shadow: &Shadow,
    snapshot: &str,
) -> anyhow::Result<u64> {
    let mut tx = session.begin().await?;
    sqlx::query("SET LOCAL lock_timeout = '200ms'")
        .execute(&mut *tx)
        .await?;
    let live = P::TABLES
        .iter()
        .map(|t| format!("public.{t}"))
        .collect::<Vec<_>>()
        .join(", ");
    // Writers wait from here until the commit; readers go on until the
    // tables move (milliseconds).
    sqlx::query(&format!("LOCK TABLE {live} IN EXCLUSIVE MODE"))
        .execute(&mut *tx)
        .await?;
    let caught_up = projection.catch_up(&mut tx, shadow, snapshot).await?;
    projection.before_swap(&mut tx, shadow).await?;
    shadow.swap(&mut tx).await?;
    tx.commit().await?;
    Ok(caught_up)
}

/// Makes `tx` (just begun) a read of the whole store in one snapshot:
/// answers that snapshot, as `pg_current_snapshot()` text, and how many task
/// events it holds.
async fn read_store_in_one_snapshot(tx: &mut PgConnection) -> anyhow::Result<(String, u64)> {
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let (snapshot, total): (String, i64) = sqlx::query_as(
        "SELECT pg_current_snapshot()::text,
                (SELECT count(*) FROM events WHERE aggregate_type = 'Task')",
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok((snapshot, total.max(0) as u64))
}

/// The whole histories of tasks `ids`, as the transaction sees them, in
/// the order of `ids` (a task without events is left out).
async fn histories(
    tx: &mut PgConnection,
    ids: &[String],
) -> anyhow::Result<Vec<(String, Vec<StoredEvent>)>> {
    let ranges: Vec<(String, i64, i64)> = ids.iter().map(|id| (id.clone(), 0, i64::MAX)).collect();
    let mut by_task: HashMap<String, Vec<StoredEvent>> = HashMap::new();
    for event in global_log::aggregates_events(&mut *tx, "Task", &ranges).await? {
        by_task
            .entry(event.aggregate_id.clone())
            .or_default()
            .push(event);
    }
    Ok(ids
        .iter()
        .filter_map(|id| by_task.remove_entry(id))
        .collect())
}

/// The tasks with an event `snapshot` did not see (committed since, or
/// running then).
async fn changed_since(tx: &mut PgConnection, snapshot: &str) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events
          WHERE aggregate_type = 'Task'
            AND transaction_id >= pg_snapshot_xmin($1::pg_snapshot)
            AND NOT pg_visible_in_snapshot(transaction_id, $1::pg_snapshot)",
    )
    .bind(snapshot)
    .fetch_all(&mut *tx)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_paced_load_waits_until_its_events_are_due() {
        let pace = Pace::new(Options {
            writers: 1,
            max_rate: NonZeroU32::new(1_000),
        });
        pace.keep(100).await;
        assert!(
            pace.started.elapsed() >= Duration::from_millis(100),
            "100 events at 1,000 a second are due after 100 ms: {:?}",
            pace.started.elapsed()
        );
        // An unpaced load never waits (this would wait for ever).
        Pace::new(Options::default()).keep(u64::MAX).await;
    }
}
