//! `taskledger rebuild task-list`: the task list built again from the event
//! store beside the live one, then switched in, while queries go on.
//!
//! 1. Under a lock of its own (a second rebuild is refused), a fresh schema
//!    `taskledger_rebuild` gets empty copies of the projection's tables
//!    (`task_list` and the tables its triggers keep: `task_stats`,
//!    `tag_counts`, `task_words`) with the live triggers. The trigger
//!    functions name their tables unqualified, so in this session, whose
//!    `search_path` puts the rebuild schema first, they keep the copies.
//! 2. Every task is folded from the event store (the truth), a thousand at a
//!    time, and its final row inserted in one statement per batch.
//! 3. The switch, in one transaction: the live tables are locked against
//!    writes (readers go on), every task with an event the bulk load's
//!    snapshot did not see is folded again, the live tables move aside and
//!    the copies take their place, and the task-updates publisher's
//!    checkpoint moves to the new table's last change, so the rebuild sends
//!    nothing to `task-updates`. The live projector, blocked meanwhile, then
//!    writes to the new table; anything it applies again it recognises by
//!    version. Nothing else fires: no reminder, notification or next
//!    occurrence comes of a rebuild.
//!
//! Killed half-way, a rebuild leaves only its own schema, which the next one
//! drops and starts afresh.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use event_store::global_log::{self, StoredEvent};
use event_store::history::{fold_task, FoldedTask};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::progress::Progress;

/// The projection's tables: the list, and what its triggers keep.
const TABLES: &[&str] = &["task_list", "task_stats", "tag_counts", "task_words"];
const SCHEMA: &str = "taskledger_rebuild";
const RETIRED: &str = "taskledger_retired";
/// How many times the switch tries to get its locks.
const SWITCH_ATTEMPTS: u32 = 100;
/// How long the old tables stay after the switch.
const RETIRE_AFTER: Duration = Duration::from_secs(3);
/// Tasks folded and inserted per statement.
const BATCH: i64 = 1_000;

/// What a rebuild did.
#[derive(Debug)]
pub struct Rebuilt {
    pub tasks: u64,
    pub events: u64,
    pub caught_up: u64,
    pub elapsed: Duration,
}

pub async fn rebuild_task_list(pool: &PgPool) -> anyhow::Result<Rebuilt> {
    let started = Instant::now();
    let mut session = pool.acquire().await?.detach();
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('taskledger-rebuild:task-list'))")
            .fetch_one(&mut session)
            .await?;
    if !locked {
        bail!("another rebuild of task-list is running");
    }
    prepare(&mut session).await?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
        .fetch_one(&mut session)
        .await?;
    tracing::info!(schema = SCHEMA, "rebuilding task-list beside the live one");

    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM public.task_list")
        .fetch_one(&mut session)
        .await?;
    let progress = Progress::new("rebuilding task-list", "tasks", total.max(0) as u64);
    let (mut tasks, mut events) = (0u64, 0u64);
    let mut last = String::new();
    loop {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT aggregate_id FROM events
              WHERE aggregate_type = 'Task' AND aggregate_id > $1
              ORDER BY aggregate_id LIMIT $2",
        )
        .bind(&last)
        .bind(BATCH)
        .fetch_all(&mut session)
        .await?;
        let Some(next) = ids.last().cloned() else {
            break;
        };
        let (folded, read) = fold_all(&mut session, &ids).await?;
        events += read;
        tasks += folded.len() as u64;
        upsert(&mut session, &folded).await?;
        progress.show(tasks, started);
        last = next;
    }
    progress.finish();

    let caught_up = switch(&mut session, &snapshot).await?;
    // Queries that were waiting on the switch re-plan against the new tables
    // as they get their locks; the old ones stay until those have.
    tokio::time::sleep(RETIRE_AFTER).await;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {RETIRED} CASCADE"))
        .execute(&mut session)
        .await?;
    let _ = session.close().await;
    Ok(Rebuilt {
        tasks,
        events,
        caught_up,
        elapsed: started.elapsed(),
    })
}

/// A fresh rebuild schema with empty copies of the tables and their triggers,
/// and this session looking there first.
async fn prepare(session: &mut PgConnection) -> anyhow::Result<()> {
    for statement in [
        format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"),
        format!("DROP SCHEMA IF EXISTS {RETIRED} CASCADE"),
        format!("CREATE SCHEMA {SCHEMA}"),
    ] {
        sqlx::query(&statement).execute(&mut *session).await?;
    }
    for table in TABLES {
        sqlx::query(&format!(
            "CREATE TABLE {SCHEMA}.{table} (LIKE public.{table} INCLUDING ALL)"
        ))
        .execute(&mut *session)
        .await?;
    }
    name_indexes_as_live(session).await?;
    let triggers: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t
          WHERE t.tgrelid = 'public.task_list'::regclass AND NOT t.tgisinternal",
    )
    .fetch_all(&mut *session)
    .await?;
    for trigger in triggers {
        let copied = trigger.replacen(
            " ON public.task_list ",
            &format!(" ON {SCHEMA}.task_list "),
            1,
        );
        if copied == trigger {
            bail!("cannot copy trigger: {trigger}");
        }
        sqlx::query(&copied).execute(&mut *session).await?;
    }
    sqlx::query(&format!("SET search_path = {SCHEMA}, public"))
        .execute(&mut *session)
        .await?;
    Ok(())
}

/// Gives the copies' indexes the live ones' names (`LIKE` makes up new
/// ones), so that after the switch a migration finds them by name. The two
/// sets live in different schemas until the live ones are dropped.
async fn name_indexes_as_live(session: &mut PgConnection) -> anyhow::Result<()> {
    for table in TABLES {
        let indexes = |schema: &'static str| {
            sqlx::query_as::<_, (String, String)>(
                "SELECT c.relname::text, pg_get_indexdef(i.indexrelid)
                   FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                  WHERE i.indrelid = format('%I.%I', $1::text, $2::text)::regclass
                    AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
            )
            .bind(schema)
            .bind(*table)
        };
        let live = indexes("public").fetch_all(&mut *session).await?;
        let copies = indexes(SCHEMA).fetch_all(&mut *session).await?;
        // An index's definition after its name and table: what it indexes.
        let shape = |definition: &str| {
            let unique = definition.starts_with("CREATE UNIQUE");
            let rest = definition
                .split_once(" USING ")
                .map_or("", |(_, rest)| rest);
            (unique, rest.to_owned())
        };
        for (name, definition) in &live {
            let Some((copy, _)) = copies.iter().find(|(_, d)| shape(d) == shape(definition)) else {
                bail!("the copy of {table} lacks index {name}");
            };
            if copy != name {
                sqlx::query(&format!("ALTER INDEX {SCHEMA}.{copy} RENAME TO {name}"))
                    .execute(&mut *session)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Folds tasks `ids` from the store; also answers how many events it read.
async fn fold_all(
    session: &mut PgConnection,
    ids: &[String],
) -> anyhow::Result<(Vec<FoldedTask>, u64)> {
    let ranges: Vec<(String, i64, i64)> = ids.iter().map(|id| (id.clone(), 0, i64::MAX)).collect();
    let mut histories: HashMap<String, Vec<StoredEvent>> = HashMap::new();
    let mut read = 0;
    for event in global_log::aggregates_events(&mut *session, "Task", &ranges).await? {
        read += 1;
        histories
            .entry(event.aggregate_id.clone())
            .or_default()
            .push(event);
    }
    let mut folded = Vec::with_capacity(ids.len());
    for id in ids {
        let history = histories.remove(id).unwrap_or_default();
        match fold_task(&history) {
            Ok(Some(task)) => folded.push(task),
            Ok(None) => {}
            Err(error) => {
                tracing::error!(task = %id, %error, "a task that cannot be folded is left out")
            }
        }
    }
    Ok((folded, read))
}

/// Inserts (or, catching up, replaces) the rows of `folded` in the rebuild
/// schema's `task_list`, in one statement.
async fn upsert(session: &mut PgConnection, folded: &[FoldedTask]) -> anyhow::Result<()> {
    let mut c = Columns::default();
    for f in folded {
        let task = &f.task;
        let due = task.due();
        c.id.push(
            task.id()
                .map(|id| id.as_uuid())
                .context("a folded task has an id")?,
        );
        c.user_id.push(
            task.owner()
                .map(|o| o.as_str().to_owned())
                .unwrap_or_default(),
        );
        c.title.push(task.title().to_owned());
        c.description.push(task.description().map(str::to_owned));
        c.status.push(
            if f.completed_at.is_some() {
                "completed"
            } else {
                "open"
            }
            .to_owned(),
        );
        c.version.push(f.version);
        c.created_at.push(f.created_at);
        c.updated_at.push(f.updated_at);
        c.completed_at.push(f.completed_at);
        c.deleted_at.push(f.deleted_at);
        c.priority.push(task.priority().rank());
        c.tags.push(serde_json::json!(task.tags().to_strings()));
        c.due_at.push(due.map(|d| d.instant()));
        c.due_date.push(due.and_then(|d| d.date()));
        c.time_zone.push(due.map(|d| d.time_zone.to_string()));
        c.reminders.push(serde_json::to_value(task.reminders())?);
        c.recurrence
            .push(task.series().map(|s| s.rule.as_str().to_owned()));
        c.series_id.push(task.series().map(|s| s.id));
        c.occurrence
            .push(task.series().map(|s| s.occurrence as i32));
    }
    sqlx::query(&format!(
        "INSERT INTO {SCHEMA}.task_list (id, user_id, title, description, status, version, created_at,
                                 updated_at, completed_at, deleted_at, priority, tags, due_at,
                                 due_date, time_zone, reminders, recurrence, series_id, occurrence)
         SELECT id, user_id, title, description, status, version, created_at, updated_at,
                completed_at, deleted_at, priority, ARRAY(SELECT jsonb_array_elements_text(tags)),
                due_at, due_date, time_zone, reminders, recurrence, series_id, occurrence
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                       $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[],
                       $11::smallint[], $12::jsonb[], $13::timestamptz[], $14::date[], $15::text[],
                       $16::jsonb[], $17::text[], $18::uuid[], $19::int[])
             AS t(id, user_id, title, description, status, version, created_at, updated_at,
                  completed_at, deleted_at, priority, tags, due_at, due_date, time_zone, reminders,
                  recurrence, series_id, occurrence)
         ON CONFLICT (id) DO UPDATE SET
             user_id = EXCLUDED.user_id, title = EXCLUDED.title,
             description = EXCLUDED.description, status = EXCLUDED.status,
             version = EXCLUDED.version, created_at = EXCLUDED.created_at,
             updated_at = EXCLUDED.updated_at, completed_at = EXCLUDED.completed_at,
             deleted_at = EXCLUDED.deleted_at, priority = EXCLUDED.priority, tags = EXCLUDED.tags,
             due_at = EXCLUDED.due_at, due_date = EXCLUDED.due_date,
             time_zone = EXCLUDED.time_zone, reminders = EXCLUDED.reminders,
             recurrence = EXCLUDED.recurrence, series_id = EXCLUDED.series_id,
             occurrence = EXCLUDED.occurrence, change_seq = nextval('task_change_seq')"
    ))
    .bind(c.id)
    .bind(c.user_id)
    .bind(c.title)
    .bind(c.description)
    .bind(c.status)
    .bind(c.version)
    .bind(c.created_at)
    .bind(c.updated_at)
    .bind(c.completed_at)
    .bind(c.deleted_at)
    .bind(c.priority)
    .bind(c.tags)
    .bind(c.due_at)
    .bind(c.due_date)
    .bind(c.time_zone)
    .bind(c.reminders)
    .bind(c.recurrence)
    .bind(c.series_id)
    .bind(c.occurrence)
    .execute(&mut *session)
    .await?;
    Ok(())
}

#[derive(Default)]
struct Columns {
    id: Vec<Uuid>,
    user_id: Vec<String>,
    title: Vec<String>,
    description: Vec<Option<String>>,
    status: Vec<String>,
    version: Vec<i64>,
    created_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
    completed_at: Vec<Option<DateTime<Utc>>>,
    deleted_at: Vec<Option<DateTime<Utc>>>,
    priority: Vec<i16>,
    tags: Vec<serde_json::Value>,
    due_at: Vec<Option<DateTime<Utc>>>,
    due_date: Vec<Option<chrono::NaiveDate>>,
    time_zone: Vec<Option<String>>,
    reminders: Vec<serde_json::Value>,
    recurrence: Vec<Option<String>>,
    series_id: Vec<Option<Uuid>>,
    occurrence: Vec<Option<i32>>,
}

/// The switch: writes to the live tables stopped, the tasks changed since
/// the bulk load's snapshot folded again, the tables swapped, the
/// task-updates checkpoint moved past the new rows. Answers how many tasks
/// it caught up.
async fn switch(session: &mut PgConnection, snapshot: &str) -> anyhow::Result<u64> {
    // A query touching two of the tables could hold one and wait for the
    // other: rather than let Postgres break that deadlock by failing the
    // query, the switch gives up its locks after a moment and tries again.
    for attempt in 1.. {
        match try_switch(session, snapshot).await {
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
        .and_then(|e| e.as_database_error())
        .and_then(|e| e.code())
        .is_some_and(|code| code == "55P03")
}

async fn try_switch(session: &mut PgConnection, snapshot: &str) -> anyhow::Result<u64> {
    let mut tx = session.begin().await?;
    sqlx::query("SET LOCAL lock_timeout = '200ms'")
        .execute(&mut *tx)
        .await?;
    let live = TABLES
        .iter()
        .map(|t| format!("public.{t}"))
        .collect::<Vec<_>>()
        .join(", ");
    // Writers wait from here until the commit; readers go on until the
    // tables move (milliseconds).
    sqlx::query(&format!("LOCK TABLE {live} IN EXCLUSIVE MODE"))
        .execute(&mut *tx)
        .await?;
    let changed: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events
          WHERE aggregate_type = 'Task'
            AND transaction_id >= pg_snapshot_xmin($1::pg_snapshot)
            AND NOT pg_visible_in_snapshot(transaction_id, $1::pg_snapshot)",
    )
    .bind(snapshot)
    .fetch_all(&mut *tx)
    .await?;
    for ids in changed.chunks(BATCH as usize) {
        let (folded, _) = fold_all(&mut tx, ids).await?;
        upsert(&mut tx, &folded).await?;
    }
    sqlx::query(&format!("CREATE SCHEMA {RETIRED}"))
        .execute(&mut *tx)
        .await?;
    for table in TABLES {
        sqlx::query(&format!("ALTER TABLE public.{table} SET SCHEMA {RETIRED}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("ALTER TABLE {SCHEMA}.{table} SET SCHEMA public"))
            .execute(&mut *tx)
            .await?;
    }
    // Index names must not clash with the retired ones when they are dropped:
    // they live in different schemas, so they do not.
    sqlx::query(
        "UPDATE task_update_publishers
            SET change_seq = (SELECT coalesce(max(change_seq), 0) FROM public.task_list),
                updated_at = now()",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!("DROP SCHEMA {SCHEMA}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    sqlx::query("SET search_path = DEFAULT")
        .execute(&mut *session)
        .await?;
    Ok(changed.len() as u64)
}
