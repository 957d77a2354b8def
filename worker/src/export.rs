//! `taskledger export --user ID`: a user's data as one JSON document, written
//! to a file or standard output as it is read (`projections::export`), with
//! progress on standard error.

use std::path::Path;
use std::time::Instant;

use domain::values::UserId;
use infra::progress::Progress;
use sqlx::PgPool;
use tokio::io::AsyncWrite;

/// Writes `user`'s export to `output`, or to standard output.
pub async fn to_file_or_stdout(
    pool: &PgPool,
    user: &UserId,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            let file = tokio::fs::File::create(path).await?;
            let mut writer = tokio::io::BufWriter::new(file);
            write(pool, user, &mut writer).await
        }
        None => {
            let mut writer = tokio::io::BufWriter::new(tokio::io::stdout());
            write(pool, user, &mut writer).await
        }
    }
}

async fn write<W: AsyncWrite + Unpin>(
    pool: &PgPool,
    user: &UserId,
    out: &mut W,
) -> anyhow::Result<()> {
    let total = projections::export::task_count(pool, user.as_str()).await?;
    let progress = Progress::new("export", "tasks", total as u64);
    let started = Instant::now();
    let exported = projections::export::export_user(pool, user.as_str(), out, |done| {
        progress.show(done, started)
    })
    .await?;
    progress.finish();
    tracing::info!(
        user = %user,
        tasks = exported.tasks,
        events = exported.events,
        reminders = exported.reminders,
        notifications = exported.notifications,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "exported"
    );
    Ok(())
}
