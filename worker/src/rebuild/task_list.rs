//! The task list's rebuild: `task_list` and the tables its triggers keep
//! (`task_stats`, `tag_counts`, `task_words`).
//!
//! The rows go in with `COPY` through the derive trigger alone (search
//! vector and sort keys, the same function as every live write); the counts
//! and the word list are then computed over the whole table in one call of
//! the function the live triggers call per statement, and the indexes are
//! built last.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context;
use domain::list::inbox_of;
use event_store::global_log::{self, StoredEvent};
use event_store::history::{fold_task, FoldedTask};
use futures::TryStreamExt;
use infra::progress::Progress;
use projections::task_list::{reader_key, Applied, StoredStatus};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::mpsc;

use super::copy_text::CopyText;
use super::shadow::{Indexes, Shadow};
use super::{
    changed_since, histories, read_store_in_one_snapshot, Loaded, Options, Pace, Projection,
};

/// `task_list` first: it is the one loaded.
const TABLES: &[&str] = &["task_list", "task_stats", "tag_counts", "task_words"];

/// The columns a folded task fills; the rest are derived or defaulted.
const COLUMNS: &str = "id, user_id, title, description, status, version, created_at, updated_at, \
     completed_at, deleted_at, priority, tags, due_at, due_date, time_zone, reminders, recurrence, \
     series_id, occurrence, list_id, owner, assignee";

/// Rows per `COPY`.
const CHUNK_ROWS: usize = 2_000;
/// Rows counted per call of `task_list_keep`.
const KEEP_ROWS: usize = 100_000;
/// Tasks folded again per statement when catching up.
const CATCH_UP_BATCH: usize = 1_000;

/// `taskledger rebuild task-list`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TaskList;

impl Projection for TaskList {
    const NAME: &'static str = "task-list";
    const TABLES: &'static [&'static str] = TABLES;

    async fn load(
        &self,
        pool: &PgPool,
        session: &mut PgConnection,
        shadow: &Shadow,
        options: Options,
    ) -> anyhow::Result<Loaded> {
        shadow.copy_triggers(session, "task_list", true).await?;
        let started = Instant::now();
        let loaded = load_rows(pool, shadow, options).await?;
        tracing::info!(
            tasks = loaded.tasks,
            events = loaded.events,
            secs = started.elapsed().as_secs_f64(),
            "rows loaded; counting and indexing"
        );

        // The counts and the word list over every row at once, through the
        // live triggers' own function, into the copies (first in the
        // session's search path; their keys must exist for its upserts, the
        // other indexes come after), while the list's indexes build (both
        // only read the list) unless `--writers 1` asks for one at a time.
        let started = Instant::now();
        const KEPT: &[&str] = &["task_stats", "tag_counts", "task_words"];
        shadow
            .build_indexes(pool, KEPT, Indexes::Keys, options.writers)
            .await?;
        let counting = async {
            // In parts of at most KEEP_ROWS rows: one array value may not
            // pass 1 GB. The parts add up, as the live statements' do.
            let parts = (loaded.tasks as usize).div_ceil(KEEP_ROWS).max(1) as i32;
            for part in 0..parts {
                sqlx::query(
                    "SELECT task_list_keep(ARRAY(
                         SELECT ROW(user_id, status, priority, tags, deleted_at IS NOT NULL, title, 1)::task_list_change
                           FROM task_list WHERE abs(hashtext(id::text) % $1) = $2))",
                )
                .bind(parts)
                .bind(part)
                .execute(&mut *session)
                .await
                .context("counting the loaded rows")?;
            }
            // The events applied per writer, as the projection counts them
            // (docs/adr/0010): those of each row's task up to its version.
            sqlx::query(
                "INSERT INTO task_stats AS s (user_id, events)
                 SELECT e.metadata ->> 'user_id', count(*)
                   FROM task_list t
                   JOIN events e ON e.aggregate_type = 'Task' AND e.aggregate_id = t.id::text
                                       AND e.sequence <= t.version
                  GROUP BY 1 ORDER BY 1
                 ON CONFLICT (user_id) DO UPDATE SET events = s.events + EXCLUDED.events",
            )
            .execute(&mut *session)
            .await
            .context("counting the applied events")?;
            // And, as the projection counts them, the events of the tasks
            // kept by no read model (a writer of theirs was erased) up to
            // the version they went at, but those that read as erased.
            sqlx::query(
                "INSERT INTO task_stats AS s (user_id, events)
                 SELECT e.metadata ->> 'user_id', count(*)
                   FROM task_list_gone g
                   JOIN events e ON e.aggregate_type = 'Task' AND e.aggregate_id = g.id::text
                                       AND e.sequence <= g.version
                  WHERE e.metadata ->> 'user_id' IS NOT NULL
                    AND NOT event_reads_erased(e.sealed_by, e.payload, e.event_type)
                  GROUP BY 1 ORDER BY 1
                 ON CONFLICT (user_id) DO UPDATE SET events = s.events + EXCLUDED.events",
            )
            .execute(&mut *session)
            .await
            .context("counting the applied events of the tasks kept by no read model")?;
            anyhow::Ok(())
        };
        let indexing = shadow.build_indexes(pool, &["task_list"], Indexes::All, options.writers);
        if options.writers > 1 {
            tokio::try_join!(counting, indexing)?;
        } else {
            // One connection at work at a time: the gentlest rebuild.
            counting.await?;
            indexing.await?;
        }
        shadow
            .build_indexes(pool, KEPT, Indexes::Others, options.writers)
            .await?;
        tracing::info!(
            secs = started.elapsed().as_secs_f64(),
            "counted and indexed"
        );
        shadow.copy_triggers(session, "task_list", false).await?;
        Ok(loaded)
    }

    async fn catch_up(
        &self,
        tx: &mut PgConnection,
        shadow: &Shadow,
        snapshot: &str,
    ) -> anyhow::Result<u64> {
        let changed = changed_since(tx, snapshot).await?;
        for ids in changed.chunks(CATCH_UP_BATCH) {
            let (folded, applied) = fold_some(tx, shadow, ids).await?;
            upsert(tx, shadow, &folded).await?;
            // Into the copy's counts: the session reads its schema first.
            applied.write(tx).await?;
        }
        Ok(changed.len() as u64)
    }

    /// The task-updates publishers' checkpoint moves past the rebuilt rows,
    /// so the rebuild sends nothing to `task-updates`, except what the live
    /// side had not sent yet: a row the publishers had not reached, or one
    /// the catch-up folded ahead of the live projector (which will take
    /// those events as applied), gets a fresh `change_seq` past the
    /// checkpoint.
    async fn before_swap(&self, tx: &mut PgConnection, shadow: &Shadow) -> anyhow::Result<()> {
        let copy = format!("{}.task_list", shadow.schema);
        let checkpoint: Option<i64> =
            sqlx::query_scalar("SELECT min(change_seq) FROM task_update_publishers")
                .fetch_one(&mut *tx)
                .await?;
        let Some(checkpoint) = checkpoint else {
            return Ok(()); // no publisher yet: the first starts at the newest change
        };
        let rebuilt: i64 =
            sqlx::query_scalar(&format!("SELECT coalesce(max(change_seq), 0) FROM {copy}"))
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query(&format!(
            "UPDATE {copy} n SET change_seq = nextval('task_change_seq')
              WHERE NOT EXISTS (SELECT 1 FROM public.task_list l
                                 WHERE l.id = n.id AND l.version = n.version AND l.change_seq <= $1)"
        ))
        .bind(checkpoint)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE task_update_publishers SET change_seq = greatest(change_seq, $1), updated_at = now()",
        )
        .bind(rebuilt)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// Every task's row into the copy of `task_list`: one ordered read of the
/// store, folded here, written by `writers` connections with `COPY`.
async fn load_rows(pool: &PgPool, shadow: &Shadow, options: Options) -> anyhow::Result<Loaded> {
    let started = Instant::now();
    let pace = Pace::new(options);
    let copy = format!("COPY {}.task_list ({COLUMNS}) FROM STDIN", shadow.schema);
    let mut senders = Vec::new();
    let mut writing = Vec::new();
    for _ in 0..options.writers.max(1) {
        // Two chunks waiting per writer at most: memory stays bounded.
        let (sender, chunks) = mpsc::channel::<Vec<u8>>(2);
        senders.push(sender);
        writing.push(tokio::spawn(write_chunks(
            pool.clone(),
            copy.clone(),
            chunks,
        )));
    }

    let mut reader = pool.acquire().await?;
    let mut tx = reader.begin().await?;
    let (snapshot, total) = read_store_in_one_snapshot(&mut tx).await?;
    let progress = Progress::new("rebuilding task-list", "events", total);

    let (mut tasks, mut events) = (0u64, 0u64);
    let mut chunk = CopyText::default();
    let mut next = 0;
    let mut history: Vec<StoredEvent> = Vec::new();
    let mut stream = global_log::every_aggregates_events(&mut *tx, "Task");
    let mut sent_all = true;
    loop {
        let event = stream.try_next().await?;
        let task_ends = match (&event, history.first()) {
            (_, None) => false,
            (Some(event), Some(first)) => event.aggregate_id != first.aggregate_id,
            (None, Some(_)) => true,
        };
        if task_ends {
            events += history.len() as u64;
            tasks += u64::from(encode_folded(&mut chunk, &history)?);
            history.clear();
        }
        if chunk.rows() >= CHUNK_ROWS || (event.is_none() && chunk.rows() > 0) {
            let bytes = std::mem::take(&mut chunk).into_bytes();
            if senders[next % senders.len()].send(bytes).await.is_err() {
                sent_all = false; // that writer failed; its error is below
                break;
            }
            next += 1;
            progress.show(events, started);
            pace.keep(events).await;
        }
        match event {
            Some(event) => history.push(event),
            None => break,
        }
    }
    drop(stream);
    drop(senders);
    for writer in writing {
        writer.await??;
    }
    anyhow::ensure!(sent_all, "a writer stopped");
    tx.commit().await?;
    progress.finish();
    Ok(Loaded {
        snapshot,
        tasks,
        events,
    })
}

/// One writer: each chunk in a `COPY` of its own.
async fn write_chunks(
    pool: PgPool,
    copy: String,
    mut chunks: mpsc::Receiver<Vec<u8>>,
) -> anyhow::Result<()> {
    let mut connection = pool.acquire().await?;
    while let Some(chunk) = chunks.recv().await {
        let mut into = connection.copy_in_raw(&copy).await?;
        into.send(chunk).await?;
        into.finish().await?;
    }
    Ok(())
}

/// Folds one task's history into a row of `out`; answers whether there was
/// one (an erased user's task has none). A task that cannot be folded is logged and left out (verify lists it).
fn encode_folded(out: &mut CopyText, history: &[StoredEvent]) -> anyhow::Result<bool> {
    match fold_task(history) {
        Ok(Some(folded)) if !folded.erased => {
            encode(out, &folded)?;
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(error) => {
            let task = history.first().map(|e| e.aggregate_id.as_str());
            tracing::error!(task, %error, "a task that cannot be folded is left out");
            Ok(false)
        }
    }
}

/// A folded task as a row of [`COLUMNS`].
fn encode(out: &mut CopyText, folded: &FoldedTask) -> anyhow::Result<()> {
    let task = &folded.task;
    let due = task.due();
    let series = task.series();
    let owner = task.owner().context("a folded task has an owner")?;
    out.plain(task.id().context("a folded task has an id")?.as_uuid());
    out.text(&reader_key(task.list(), owner.as_str()));
    out.text(task.title());
    out.optional(task.description(), CopyText::text);
    out.text(StoredStatus::of(folded.completed_at.is_some()).as_str());
    out.plain(folded.version);
    out.timestamp(folded.created_at);
    out.timestamp(folded.updated_at);
    out.optional(folded.completed_at, CopyText::timestamp);
    out.optional(folded.deleted_at, CopyText::timestamp);
    out.plain(task.priority().rank());
    out.text_array(&task.tags().to_strings());
    out.optional(due.map(|d| d.instant()), CopyText::timestamp);
    out.optional(due.and_then(|d| d.date()), CopyText::plain);
    out.optional(due.map(|d| d.time_zone.to_string()), |o, z| o.text(&z));
    out.text(&serde_json::to_string(task.reminders())?);
    out.optional(series.map(|s| s.rule.as_str()), CopyText::text);
    out.optional(series.map(|s| s.id), CopyText::plain);
    out.optional(series.map(|s| s.occurrence), CopyText::plain);
    out.plain(task.list().unwrap_or_else(|| inbox_of(owner)));
    out.text(owner.as_str());
    out.optional(task.assignee().map(|a| a.as_str()), CopyText::text);
    out.end_row();
    Ok(())
}

/// Tasks `ids` folded from the store (the events the transaction sees), and
/// how many events of each writer they hold past the copy's rows: the
/// events this catch-up applies, which the live projector will take as
/// applied and not count (docs/adr/0010).
async fn fold_some(
    tx: &mut PgConnection,
    shadow: &Shadow,
    ids: &[String],
) -> anyhow::Result<(Vec<FoldedTask>, Applied)> {
    let held: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(&format!(
        "SELECT id::text, version FROM {}.task_list WHERE id = ANY($1::text[]::uuid[])",
        shadow.schema
    ))
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let mut folded = Vec::with_capacity(ids.len());
    let mut applied = Applied::default();
    for (id, history) in histories(tx, ids).await? {
        match fold_task(&history) {
            Ok(Some(task)) if !task.erased => {
                let from = held.get(&id).copied().unwrap_or(0);
                for event in history.iter().filter(|e| e.sequence > from) {
                    applied.count(event);
                }
                folded.push(task);
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(task = %id, %error, "a task that cannot be folded is left out")
            }
        }
    }
    Ok((folded, applied))
}

/// Inserts or replaces the rows of `folded` in the copy of `task_list`,
/// through a `COPY` into a scratch table; its triggers keep the counts.
async fn upsert(
    tx: &mut PgConnection,
    shadow: &Shadow,
    folded: &[FoldedTask],
) -> anyhow::Result<()> {
    if folded.is_empty() {
        return Ok(());
    }
    let mut rows = CopyText::default();
    for task in folded {
        encode(&mut rows, task)?;
    }
    let schema = &shadow.schema;
    sqlx::query(&format!(
        "CREATE TEMPORARY TABLE IF NOT EXISTS rebuild_caught_up ON COMMIT DELETE ROWS AS
         SELECT {COLUMNS} FROM {schema}.task_list WITH NO DATA"
    ))
    .execute(&mut *tx)
    .await?;
    let mut into = tx
        .copy_in_raw(&format!("COPY rebuild_caught_up ({COLUMNS}) FROM STDIN"))
        .await?;
    into.send(rows.into_bytes()).await?;
    into.finish().await?;
    let updates = COLUMNS
        .split(", ")
        .filter(|c| *c != "id")
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::query(&format!(
        "INSERT INTO {schema}.task_list ({COLUMNS}) SELECT {COLUMNS} FROM rebuild_caught_up
         ON CONFLICT (id) DO UPDATE SET {updates}, change_seq = nextval('task_change_seq')"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query("TRUNCATE rebuild_caught_up")
        .execute(&mut *tx)
        .await?;
    Ok(())
}
