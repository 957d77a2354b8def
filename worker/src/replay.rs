//! `taskledger replay --task ID`: a task's history in the terminal, as an
//! auditor reads it (`taskHistory` over GraphQL shows the same).

use std::io::Write;

use anyhow::Context;
use event_store::history;
use sqlx::PgPool;

/// Events read from the store per page.
const PAGE: i64 = 500;

/// Prints every event of task `id`: a table, or one JSON object per line.
pub async fn print_history(pool: &PgPool, id: uuid::Uuid, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut after = 0;
    let mut owner_line = false;
    loop {
        let Some((owner, entries)) = history::task_history(pool, &id.to_string(), after, PAGE)
            .await
            .context("reading the task's events")?
        else {
            anyhow::bail!("the event store holds no task {id}");
        };
        if !json && !owner_line {
            writeln!(out, "task {id}, owned by {owner}")?;
            writeln!(
                out,
                "{:>4}  {:<25}  {:<20}  {:<22}  changes",
                "seq", "recorded at", "by", "event"
            )?;
            owner_line = true;
        }
        let Some(last) = entries.last().map(|e| e.sequence) else {
            return Ok(());
        };
        for entry in &entries {
            if json {
                writeln!(out, "{}", serde_json::to_string(entry)?)?;
                continue;
            }
            let changes = entry
                .changes
                .iter()
                .map(|c| format!("{}: {} → {}", c.field, c.old, c.new))
                .collect::<Vec<_>>()
                .join("; ");
            writeln!(
                out,
                "{:>4}  {:<25}  {:<20}  {:<22}  {}",
                entry.sequence,
                entry.recorded_at.format("%Y-%m-%d %H:%M:%S%.3fZ"),
                entry.actor.as_deref().unwrap_or("-"),
                format!("{} v{}", entry.event_type, entry.event_version),
                changes
            )?;
        }
        if (entries.len() as i64) < PAGE {
            return Ok(());
        }
        after = last;
    }
}
