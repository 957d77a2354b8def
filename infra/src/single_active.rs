//! One active worker per name across every process: a Postgres session
//! advisory lock, held by a connection of the worker's own. The relay and the
//! task-updates publisher do all their work through that session, so if it dies (the
//! process crashed, the database restarted) the lock and the work end
//! together, and a standby takes over.

use std::time::Duration;

use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;

/// Waits until `session` holds the lock named `key`; `false` if shut down first.
/// `who` names the worker in the log line a standby writes.
pub async fn wait_for_lock(
    session: &mut PgConnection,
    key: &str,
    who: &str,
    shutdown: &CancellationToken,
) -> Result<bool, sqlx::Error> {
    let mut announced = false;
    loop {
        if try_lock(session, key).await? {
            return Ok(true);
        }
        if !announced {
            tracing::info!(
                worker = who,
                "another process holds this worker's lock; standing by"
            );
            announced = true;
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(false),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Takes the lock named `key` if it is free.
pub async fn try_lock(session: &mut PgConnection, key: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
        .bind(key)
        .fetch_one(&mut *session)
        .await
}

/// Releases the lock named `key`.
pub async fn unlock(session: &mut PgConnection, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(key)
        .execute(&mut *session)
        .await?;
    Ok(())
}

/// The topic's generation: 0 for its first life, raised each time the relay
/// starts publishing the log to it again from the beginning.
pub async fn topic_generation(session: &mut PgConnection, topic: &str) -> Result<i64, sqlx::Error> {
    Ok(
        sqlx::query_scalar("SELECT generation FROM topic_generations WHERE topic = $1")
            .bind(topic)
            .fetch_optional(&mut *session)
            .await?
            .unwrap_or(0),
    )
}

/// Whether a statement gave up waiting for a lock (`lock_timeout`, SQLSTATE
/// 55P03): the holder is busy, and the statement is worth trying later.
pub fn lock_timed_out(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "55P03")
}
