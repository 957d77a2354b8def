//! Erasing a user (crypto-shredding, docs/adr/0014). An erasure is written
//! to the ledger, a file outside the database, first; then one transaction
//! deletes the user's data key, blanks what they typed into events stored
//! before sealing began, appends a `UserErased` event and drops every row the
//! read models derived for them. What any copy of their events says (on a
//! topic, in a dead letter, in a backup) can then be opened by no one.
//!
//! A projection that read the user's events just before the erasure
//! committed may still write a row after it: a second sweep, a few seconds
//! later, drops those, and marks the erasure completed. A database restored
//! from a backup taken before an erasure holds the key again; every role
//! applies the ledger as it starts, so the erasure holds again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

/// The confirmation `eraseMyData` asks for, typed in full.
pub const CONFIRMATION: &str = "ERASE MY DATA";
/// The event type appended for each erasure, on aggregate type `User`.
pub const USER_ERASED: &str = "UserErased";
pub use event_store::keys::ERASURES_CHANNEL;
/// How long after the erasure the second sweep runs: longer than a
/// projection's batch holds events it read.
pub const SETTLE: Duration = Duration::from_secs(3);

/// One erasure, as the ledger and the `erasures` table keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    pub erasure_id: Uuid,
    pub user_id: String,
    pub requested_at: DateTime<Utc>,
}

/// Where an erasure stands, as `erasure(id)` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureStatus {
    pub user_id: String,
    pub requested_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// The erasure ledger: one JSON line per erasure, appended and synced to
/// disk before the key is deleted.
#[derive(Debug, Clone)]
pub struct Ledger {
    path: PathBuf,
}

impl Ledger {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn append(&self, erasure: &Erasure) -> anyhow::Result<()> {
        let path = self.path.clone();
        let mut line = serde_json::to_vec(erasure)?;
        line.push(b'\n');
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            file.write_all(&line)?;
            file.sync_all()
        })
        .await?
        .with_context(|| format!("appending to the erasure ledger {}", self.path.display()))
    }

    /// The ledger's erasures, read a line at a time; `None` if it does
    /// not exist yet.
    async fn reader(
        &self,
    ) -> anyhow::Result<Option<tokio::io::Lines<tokio::io::BufReader<tokio::fs::File>>>> {
        use tokio::io::AsyncBufReadExt;
        match tokio::fs::File::open(&self.path).await {
            Ok(file) => Ok(Some(tokio::io::BufReader::new(file).lines())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error)
                .with_context(|| format!("reading the erasure ledger {}", self.path.display())),
        }
    }
}

/// Erases `user_id`: ledger first, then the key, the events' legacy plain
/// text, the `UserErased` event and the read models, in one transaction.
/// The second sweep completes it (see [`complete`]).
pub async fn erase(pool: &PgPool, ledger: &Ledger, user_id: &str) -> anyhow::Result<Erasure> {
    let erasure = Erasure {
        erasure_id: Uuid::now_v7(),
        user_id: user_id.to_owned(),
        requested_at: Utc::now(),
    };
    ledger.append(&erasure).await?;
    apply_again_if_it_lost_a_race(pool, &erasure).await?;
    leave_lists(pool, &erasure).await;
    metrics::counter!(infra::metric::ERASURES).increment(1);
    tracing::info!(erasure = %erasure.erasure_id, user_id, "user erased; completing after the settle");
    Ok(erasure)
}

/// How often the erasure's transaction is tried when Postgres broke a
/// deadlock by ending it, or refused it to keep transactions serializable.
const ATTEMPTS: u32 = 5;

/// [`apply`], tried again (a few milliseconds later, up to [`ATTEMPTS`]
/// times in all) when it lost a race: it deletes the read models' rows of
/// every task the user wrote while projections write the same users' rows
/// and counts in their own order, and Postgres may end either to break a
/// deadlock. Rolled back whole, it is simply applied again.
async fn apply_again_if_it_lost_a_race(pool: &PgPool, erasure: &Erasure) -> anyhow::Result<()> {
    let mut attempt = 1;
    loop {
        match apply(pool, erasure).await {
            Err(error) if attempt < ATTEMPTS && lost_a_race(&error) => {
                tracing::info!(erasure = %erasure.erasure_id, attempt, %error, "the erasure lost a race; applying it again");
                tokio::time::sleep(std::time::Duration::from_millis(
                    10 * u64::from(attempt) + u64::from(erasure.erasure_id.as_bytes()[15] % 10),
                ))
                .await;
                attempt += 1;
            }
            applied => return applied,
        }
    }
}

/// A deadlock broken, or a serialization failure.
fn lost_a_race(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<sqlx::Error>()
        .and_then(sqlx::Error::as_database_error)
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

/// Takes the erased user out of the lists they joined before their erasure
/// (docs/adr/0015): they leave, a list they own passes to another member or
/// is archived, their invitations are declined. After the erasure's
/// transaction, as the user's own commands: a list that refuses one is
/// logged and passed over.
async fn leave_lists(pool: &PgPool, erasure: &Erasure) {
    let Ok(user) = domain::values::UserId::parse(&erasure.user_id) else {
        return;
    };
    let lists =
        event_store::command::ListService::new(pool.clone(), domain::TaskServices::default());
    let correlation = format!("erasure-{}", erasure.erasure_id);
    match lists
        .leave_all(&user, erasure.requested_at, &correlation)
        .await
    {
        Ok(0) => {}
        Ok(let_go) => {
            tracing::info!(erasure = %erasure.erasure_id, let_go, "an erased user left their lists")
        }
        Err(error) => {
            tracing::warn!(erasure = %erasure.erasure_id, %error, "an erased user's lists were not all left")
        }
    }
}

/// The erasure's one transaction; idempotent, so a ledger applied again
/// changes nothing it already did. A key made after the erasure (the user
/// came back) is kept.
async fn apply(pool: &PgPool, erasure: &Erasure) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let recorded = sqlx::query(
        "INSERT INTO erasures (id, user_id, requested_at) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(erasure.erasure_id)
    .bind(&erasure.user_id)
    .bind(erasure.requested_at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // Applied for the first time, everything of the user's goes; applied
    // again from the ledger, only what predates the erasure (a user who came
    // back keeps their new key and tasks). Times as the database tells them.
    let before = (recorded == 0).then_some(erasure.requested_at);
    let deleted_key = sqlx::query(
        "DELETE FROM user_keys WHERE user_id = $1 AND ($2::timestamptz IS NULL OR created_at <= $2)",
    )
    .bind(&erasure.user_id)
    .bind(before)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if recorded == 0 && deleted_key == 0 {
        return Ok(());
    }
    // Events stored before sealing began hold what the user typed in the
    // clear: those are blanked where they lie, the one update the events'
    // append-only trigger lets through (event-store migration 1009).
    sqlx::query("SET LOCAL taskledger.erasure = 'on'")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE events
            SET payload = json_build_object(event_type, erased_personal_fields((payload -> event_type)::jsonb))
          WHERE aggregate_type = 'Task' AND metadata ->> 'user_id' = $1
            AND payload -> event_type -> 'sealed' IS NULL
            AND has_personal_fields((payload -> event_type)::jsonb)
            AND ($2::timestamptz IS NULL OR recorded_at <= $2)",
    )
    .bind(&erasure.user_id)
    .bind(before)
    .execute(&mut *tx)
    .await?;
    // A task's or a list's snapshot is sealed with the key of whoever's
    // commit took it: in a shared list that may be another member, holding
    // what this user typed (a title, the list's name). Snapshots are a cache
    // (the aggregate loads from its events without one), so those go with
    // the key.
    sqlx::query(
        "DELETE FROM task_snapshots s
          USING (SELECT DISTINCT aggregate_type, aggregate_id FROM events
                  WHERE sealed_by = $1) AS written
          WHERE s.aggregate_type = written.aggregate_type
            AND s.aggregate_id = written.aggregate_id
            AND s.sealed_by IS DISTINCT FROM $1",
    )
    .bind(&erasure.user_id)
    .execute(&mut *tx)
    .await?;
    if recorded == 1 {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             SELECT 'User', $1,
                    coalesce((SELECT max(sequence) FROM events WHERE aggregate_type = 'User' AND aggregate_id = $1), 0) + 1,
                    $2, '1.0', json_build_object($2::text, json_build_object('erasure_id', $3::uuid, 'requested_at', $4::timestamptz)),
                    json_build_object('user_id', $1::text, 'correlation_id', $3::text)",
        )
        .bind(&erasure.user_id)
        .bind(USER_ERASED)
        .bind(erasure.erasure_id)
        .bind(erasure.requested_at)
        .execute(&mut *tx)
        .await?;
    }
    drop_derived(&mut tx, &erasure.user_id).await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(ERASURES_CHANNEL)
        .bind(&erasure.user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes every row the read models hold for `user_id`: their tasks
/// (whose triggers take them out of the counts), search words, counts,
/// reminders, inbox, calendar feed, and the count of their writes; and the
/// rows of every other task they typed into (a title, a description, tags
/// in another member's task), which held what they typed: a task with a
/// writer's events read as erased is kept by no read model, as a rebuild
/// keeps none.
pub async fn drop_derived(tx: &mut PgConnection, user_id: &str) -> Result<(), sqlx::Error> {
    let typed_into: Vec<Uuid> = sqlx::query_scalar::<_, String>(
        "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'Task' AND sealed_by = $1",
    )
    .bind(user_id)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .filter_map(|id| Uuid::parse_str(id).ok())
    .collect();
    // Their rows, reminders and notifications, whoever owns them
    // (projections migration 2019).
    for statement in [
        "SELECT task_list_drop($1)",
        "DELETE FROM reminder_tasks WHERE task_id = ANY($1)",
        "DELETE FROM reminders WHERE task_id = ANY($1)",
        "DELETE FROM notifications WHERE task_id = ANY($1)",
    ] {
        sqlx::query(statement)
            .bind(&typed_into)
            .execute(&mut *tx)
            .await?;
    }
    for statement in [
        // Their tasks in shared lists: out of the lists' counts, then gone
        // (an erased user's task is kept by no read model).
        "SELECT task_list_keep(ARRAY(
            SELECT ROW(user_id, status, priority, tags, deleted_at IS NOT NULL, title, -1)::task_list_change
              FROM task_list WHERE owner = $1 AND user_id <> owner))",
        "DELETE FROM reminder_tasks WHERE task_id IN
            (SELECT id FROM task_list WHERE owner = $1 AND user_id <> owner)",
        "DELETE FROM task_list WHERE owner = $1 AND user_id <> owner",
        "DELETE FROM reminder_tasks WHERE task_id IN (SELECT id FROM task_list WHERE user_id = $1)",
        "DELETE FROM reminder_tasks WHERE task_id IN (SELECT task_id FROM reminders WHERE user_id = $1)",
        "DELETE FROM reminders WHERE user_id = $1",
        "DELETE FROM notifications WHERE user_id = $1",
        "DELETE FROM task_list WHERE user_id = $1",
        "DELETE FROM task_words WHERE user_id = $1",
        "DELETE FROM tag_counts WHERE user_id = $1",
        "DELETE FROM task_stats WHERE user_id = $1",
        "SELECT user_writes_forget($1)",
    ] {
        sqlx::query(statement)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
    }
    // The API's table, when this database serves one.
    let feeds: Option<String> = sqlx::query_scalar("SELECT to_regclass('calendar_feeds')::text")
        .fetch_one(&mut *tx)
        .await?;
    if feeds.is_some() {
        sqlx::query("DELETE FROM calendar_feeds WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// What a projection may have written of `user_id`'s tasks from before
/// `before` after their erasure, when they have written again since: their
/// new tasks and counts stay.
async fn drop_tasks_before(
    tx: &mut PgConnection,
    user_id: &str,
    before: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for statement in [
        "SELECT task_list_keep(ARRAY(
            SELECT ROW(user_id, status, priority, tags, deleted_at IS NOT NULL, title, -1)::task_list_change
              FROM task_list WHERE owner = $1 AND user_id <> owner AND created_at <= $2))",
        "DELETE FROM reminder_tasks WHERE task_id IN
            (SELECT id FROM task_list WHERE owner = $1 AND user_id <> owner AND created_at <= $2)",
        "DELETE FROM task_list WHERE owner = $1 AND user_id <> owner AND created_at <= $2",
        "DELETE FROM reminder_tasks WHERE task_id IN
            (SELECT id FROM task_list WHERE user_id = $1 AND created_at <= $2)",
        "DELETE FROM reminders WHERE user_id = $1 AND task_id IN
            (SELECT id FROM task_list WHERE user_id = $1 AND created_at <= $2)",
        "DELETE FROM notifications WHERE user_id = $1 AND fired_at <= $2",
        "DELETE FROM task_list WHERE user_id = $1 AND created_at <= $2",
    ] {
        sqlx::query(statement)
            .bind(user_id)
            .bind(before)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// The second sweep: after [`SETTLE`], drops what projections wrote from
/// events they read before the erasure committed, and marks it completed.
pub async fn complete(pool: &PgPool, erasure_id: Uuid) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let erasure: Option<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT user_id, requested_at FROM erasures WHERE id = $1 AND completed_at IS NULL FOR UPDATE",
    )
    .bind(erasure_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((user, requested_at)) = erasure {
        let came_back: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM user_keys WHERE user_id = $1)")
                .bind(&user)
                .fetch_one(&mut *tx)
                .await?;
        if came_back {
            drop_tasks_before(&mut tx, &user, requested_at).await?;
        } else {
            drop_derived(&mut tx, &user).await?;
        }
        sqlx::query("UPDATE erasures SET completed_at = now() WHERE id = $1")
            .bind(erasure_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Completes `erasure` after the settle, off the caller's path.
pub fn complete_later(pool: PgPool, erasure_id: Uuid) {
    tokio::spawn(async move {
        tokio::time::sleep(SETTLE).await;
        if let Err(error) = complete(&pool, erasure_id).await {
            tracing::error!(erasure = %erasure_id, error = %format_args!("{error:#}"), "completing an erasure failed; the next start completes it");
        }
    });
}

/// Ledger lines checked against the database per round trip.
const REAPPLY_CHUNK: usize = 1_000;

/// As a role starts: applies every erasure of the ledger again (a database
/// restored from a backup taken before some of them holds their keys) and
/// completes those left pending. The ledger is read a chunk at a time, two
/// queries a chunk, so memory stays flat however long it grows. Answers how
/// many were applied again.
pub async fn reapply(pool: &PgPool, ledger: &Ledger) -> anyhow::Result<usize> {
    let Some(mut lines) = ledger.reader().await? else {
        return Ok(0);
    };
    let (mut applied, mut number, mut chunk) = (0, 0_usize, Vec::with_capacity(REAPPLY_CHUNK));
    loop {
        let line = lines.next_line().await?;
        if let Some(line) = &line {
            number += 1;
            match serde_json::from_str::<Erasure>(line) {
                Ok(erasure) => chunk.push(erasure),
                // A line cut short by a crash while appending: its key was
                // never deleted.
                Err(error) => {
                    tracing::warn!(line = number, %error, "skipping an unreadable line of the erasure ledger")
                }
            }
        }
        if chunk.len() == REAPPLY_CHUNK || (line.is_none() && !chunk.is_empty()) {
            applied += reapply_chunk(pool, &chunk).await?;
            chunk.clear();
        }
        if line.is_none() {
            break;
        }
    }
    if applied > 0 {
        tracing::warn!(applied, ledger = %ledger.path().display(), "erasures applied again from the ledger: the database was restored from before them");
    }
    Ok(applied)
}

/// One chunk of the ledger: which erasures the database knows (and whether
/// completed), whose keys from before their erasure it holds; those it
/// does not know, or whose key it holds, are applied again.
async fn reapply_chunk(pool: &PgPool, chunk: &[Erasure]) -> anyhow::Result<usize> {
    let ids: Vec<Uuid> = chunk.iter().map(|e| e.erasure_id).collect();
    let users: Vec<&str> = chunk.iter().map(|e| e.user_id.as_str()).collect();
    let known: std::collections::HashMap<Uuid, Option<DateTime<Utc>>> =
        sqlx::query_as("SELECT id, completed_at FROM erasures WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let keys: std::collections::HashMap<String, DateTime<Utc>> =
        sqlx::query_as("SELECT user_id, created_at FROM user_keys WHERE user_id = ANY($1)")
            .bind(&users)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let mut applied = 0;
    for erasure in chunk {
        let known = known.get(&erasure.erasure_id);
        let key_held = keys
            .get(&erasure.user_id)
            .is_some_and(|created| *created <= erasure.requested_at);
        if known.is_none() || key_held {
            apply(pool, erasure).await?;
            leave_lists(pool, erasure).await;
            applied += 1;
        }
        if !matches!(known, Some(Some(_))) {
            complete_later(pool.clone(), erasure.erasure_id);
        }
    }
    Ok(applied)
}

/// Where erasure `id` of `user_id` stands; `None` for another user's or an
/// unknown one.
pub async fn status<'e>(
    executor: impl PgExecutor<'e>,
    user_id: &str,
    id: Uuid,
) -> Result<Option<ErasureStatus>, sqlx::Error> {
    let row: Option<(String, DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT user_id, requested_at, completed_at FROM erasures WHERE id = $1 AND user_id = $2",
    )
    .bind(id)
    .bind(user_id)
    .fetch_optional(executor)
    .await?;
    Ok(
        row.map(|(user_id, requested_at, completed_at)| ErasureStatus {
            user_id,
            requested_at,
            completed_at,
        }),
    )
}

/// Tasks `ids` are kept by no read model from versions `versions` on: the
/// task list's next batch for one reads only the events after it.
pub async fn keep_gone(
    tx: &mut PgConnection,
    ids: &[Uuid],
    versions: &[i64],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO task_list_gone (id, version)
         SELECT * FROM unnest($1::uuid[], $2::bigint[])
         ON CONFLICT (id) DO UPDATE SET version = greatest(task_list_gone.version, excluded.version)",
    )
    .bind(ids)
    .bind(versions)
    .execute(tx)
    .await?;
    Ok(())
}

/// Whether task `id` is kept by no read model: it is recorded as gone, its
/// owner was erased, or an event of it reads as erased (the key that sealed
/// it is gone).
pub async fn kept_by_no_read_model<'e>(
    executor: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM task_list_gone WHERE id = $1)
             OR EXISTS (SELECT 1 FROM erasures
                         WHERE user_id = (SELECT metadata ->> 'user_id' FROM events
                                           WHERE aggregate_type = 'Task' AND aggregate_id = $1::text
                                             AND sequence = 1))
             OR EXISTS (SELECT 1 FROM events e
                         WHERE e.aggregate_type = 'Task' AND e.aggregate_id = $1::text
                           AND event_reads_erased(e.sealed_by, e.payload, e.event_type))",
    )
    .bind(id)
    .fetch_one(executor)
    .await
}

/// Erasures as the API asks for them: the main pool (an erasure's
/// transaction may outlast a query's statement timeout) and the ledger.
#[derive(Debug, Clone)]
pub struct Eraser {
    pool: PgPool,
    ledger: Ledger,
}

impl Eraser {
    pub fn new(pool: PgPool, ledger: Ledger) -> Self {
        Self { pool, ledger }
    }

    /// Erases `user_id` and completes the erasure after the settle.
    pub async fn erase(&self, user_id: &str) -> anyhow::Result<Erasure> {
        let erasure = erase(&self.pool, &self.ledger, user_id).await?;
        complete_later(self.pool.clone(), erasure.erasure_id);
        Ok(erasure)
    }

    /// Where `user_id`'s erasure `id` stands.
    pub async fn status(
        &self,
        user_id: &str,
        id: Uuid,
    ) -> Result<Option<ErasureStatus>, sqlx::Error> {
        status(&self.pool, user_id, id).await
    }
}
