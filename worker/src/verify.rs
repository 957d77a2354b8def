//! `taskledger verify`: folds every task from the event store (the truth)
//! and compares it with its task-list row, field by field, through a
//! checksum per row. Lists every row that differs (or is missing, or has no
//! events) and fails if any does. Progress goes to the terminal as a line
//! with a rate and ETA, or to the log without one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use domain::list::inbox_of;
use event_store::global_log::{self, StoredEvent};
use event_store::history::{fold_task, FoldedTask};
use futures::TryStreamExt;
use projections::task_list::reader_key;
use projections::TaskRow;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use infra::progress::Progress;

/// Tasks folded and compared per round trip.
const BATCH: usize = 1_000;

/// What `verify` found.
#[derive(Debug, Default)]
pub struct Report {
    pub tasks: u64,
    pub events: u64,
    pub differences: Vec<String>,
    pub elapsed: Duration,
}

/// The fields the task list must hold for a task, as the store says.
fn expected(folded: &FoldedTask) -> Value {
    let task = &folded.task;
    let due = task.due();
    let owner = task.owner().map(|o| o.as_str()).unwrap_or_default();
    json!({
        "user_id": reader_key(task.list(), owner),
        "list_id": task.list().or_else(|| task.owner().map(inbox_of)),
        "owner": owner,
        "assignee": task.assignee().map(|a| a.as_str()),
        "title": task.title(),
        "description": task.description(),
        "completed": folded.completed_at.is_some(),
        "deleted": task.is_deleted(),
        "priority": task.priority().rank(),
        "tags": task.tags().to_strings(),
        "due_at": due.map(|d| d.instant().timestamp_micros()),
        "due_date": due.and_then(|d| d.date()),
        "time_zone": due.map(|d| d.time_zone.to_string()),
        "reminders": serde_json::to_value(task.reminders()).unwrap_or_default(),
        "recurrence": task.series().map(|s| s.rule.as_str()),
        "series_id": task.series().map(|s| s.id),
        "occurrence": task.series().map(|s| s.occurrence as i32),
        "version": folded.version,
    })
}

/// The same fields as the task list holds them.
fn actual(row: &TaskRow) -> Value {
    json!({
        "user_id": row.user_id,
        "list_id": row.list_id,
        "owner": row.owner,
        "assignee": row.assignee,
        "title": row.title,
        "description": row.description,
        "completed": row.completed,
        "deleted": row.deleted_at.is_some(),
        "priority": row.priority.rank(),
        "tags": row.tags,
        "due_at": row.due_at.map(|d| d.timestamp_micros()),
        "due_date": row.due_date,
        "time_zone": row.time_zone,
        "reminders": row.reminders,
        "recurrence": row.recurrence,
        "series_id": row.series_id,
        "occurrence": row.occurrence,
        "version": row.version,
    })
}

fn checksum(value: &Value) -> [u8; 32] {
    Sha256::digest(value.to_string().as_bytes()).into()
}

/// What differs between two rows' fields, readably.
fn describe(id: Uuid, expected: &Value, actual: &Value) -> String {
    let fields = expected
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(field, value)| actual.get(field.as_str()) != Some(value))
        .map(|(field, value)| {
            format!(
                "{field}: store {value}, read model {}",
                actual[field.as_str()]
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    format!("task {id}: {fields}")
}

/// Compares every task in the store with the task list: the store read
/// once, in task order, in a repeatable-read snapshot that the row lookups
/// (a thousand tasks at a time, on a second connection) share.
pub async fn verify(pool: &PgPool) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut report = Report::default();
    let mut reading = pool.acquire().await?;
    let mut events = reading.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *events)
        .await?;
    let (snapshot, total): (String, i64) = sqlx::query_as(
        "SELECT pg_export_snapshot(),
                (SELECT count(*) FROM events WHERE aggregate_type = 'Task')",
    )
    .fetch_one(&mut *events)
    .await?;
    let mut looking_up = pool.acquire().await?;
    let mut rows = looking_up.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *rows)
        .await?;
    // An exported snapshot's name is Postgres's own (hex digits and dashes).
    anyhow::ensure!(
        snapshot.chars().all(|c| c.is_ascii_hexdigit() || c == '-'),
        "unexpected snapshot name {snapshot:?}"
    );
    sqlx::query(&format!("SET TRANSACTION SNAPSHOT '{snapshot}'"))
        .execute(&mut *rows)
        .await?;

    let progress = Progress::new("verifying", "events", total.max(0) as u64);
    let mut batch: Vec<(String, Vec<StoredEvent>)> = Vec::with_capacity(BATCH);
    let mut stream = global_log::every_aggregates_events(&mut *events, "Task");
    loop {
        let event = stream.try_next().await.context("reading the event store")?;
        let full = batch.len() == BATCH
            && event
                .as_ref()
                .is_none_or(|e| batch.last().is_some_and(|(id, _)| *id != e.aggregate_id));
        if full || (event.is_none() && !batch.is_empty()) {
            compare(&mut rows, &mut report, std::mem::take(&mut batch)).await?;
            progress.show(report.events, started);
        }
        let Some(event) = event else { break };
        report.events += 1;
        match batch.last_mut() {
            Some((id, history)) if *id == event.aggregate_id => history.push(event),
            _ => batch.push((event.aggregate_id.clone(), vec![event])),
        }
    }
    drop(stream);
    events.commit().await?;
    let orphans: Vec<Uuid> = sqlx::query_scalar(
        "SELECT t.id FROM task_list t
          WHERE NOT EXISTS (SELECT 1 FROM events e
                             WHERE e.aggregate_type = 'Task' AND e.aggregate_id = t.id::text)
          LIMIT 1000",
    )
    .fetch_all(&mut *rows)
    .await?;
    rows.commit().await?;
    report.differences.extend(orphans.into_iter().map(|id| {
        format!("task {id}: in the read model, but the event store holds no events of it")
    }));
    report.elapsed = started.elapsed();
    progress.finish();
    Ok(report)
}

/// Folds each task of `batch` and compares it with its row.
async fn compare(
    rows: &mut PgConnection,
    report: &mut Report,
    batch: Vec<(String, Vec<StoredEvent>)>,
) -> anyhow::Result<()> {
    let uuids: Vec<Uuid> = batch
        .iter()
        .filter_map(|(id, _)| Uuid::parse_str(id).ok())
        .collect();
    let held: HashMap<Uuid, TaskRow> = sqlx::query_as::<_, TaskRow>(&format!(
        "SELECT {} FROM task_list WHERE id = ANY($1)",
        projections::task_list::COLUMNS
    ))
    .bind(&uuids)
    .fetch_all(&mut *rows)
    .await?
    .into_iter()
    .map(|row| (row.id, row))
    .collect();
    for (id, history) in batch {
        report.tasks += 1;
        let Ok(uuid) = Uuid::parse_str(&id) else {
            report
                .differences
                .push(format!("task {id}: its id is not a UUID"));
            continue;
        };
        let folded = match fold_task(&history) {
            Ok(Some(folded)) if folded.erased => {
                if held.contains_key(&uuid) {
                    report.differences.push(format!(
                        "task {id}: a writer of it was erased, yet the read model keeps it"
                    ));
                }
                continue;
            }
            Ok(Some(folded)) => folded,
            Ok(None) => continue,
            Err(error) => {
                report.differences.push(format!("task {id}: {error}"));
                continue;
            }
        };
        let expected = expected(&folded);
        match held.get(&uuid) {
            None => report.differences.push(format!(
                "task {id}: in the event store, missing from the read model"
            )),
            Some(row) => {
                let actual = actual(row);
                if checksum(&expected) != checksum(&actual) {
                    report.differences.push(describe(uuid, &expected, &actual));
                }
            }
        }
    }
    Ok(())
}
