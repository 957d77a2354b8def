//! The task list read model: one row per task, kept at the version of the last
//! event applied. Each batch reads back the events it names (and any its
//! messages skipped) from the event store, folds each task's events into its
//! row in memory (`fold`), and writes each row once (`write`).

mod fold;
mod row;
mod write;

use std::collections::HashMap;

use domain::TaskEvent;
use event_store::global_log::StoredEvent;
use event_store::history::task_event;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::consumer::{Outcome, ProjectionError};
use crate::erasure;
use crate::named_events::{NamedEvents, PerTaskProjection, ReadFrom};
pub use fold::{list_reader_key, reader_key};
use fold::{Fields, FIELDS};

pub use row::{StoredStatus, TaskRow, COLUMNS};

#[derive(Debug, Default, Clone, Copy)]
pub struct TaskListProjection;

impl PerTaskProjection for TaskListProjection {
    const NAME: &'static str = "task-list";
    /// A task kept by no read model holds the version its rows had when
    /// they went (`task_list_gone`).
    const LOCK_VERSIONS: &'static str =
        "WITH locked AS (SELECT id, version FROM task_list WHERE id = ANY($1) ORDER BY id FOR UPDATE),
              gone AS (SELECT id, version FROM task_list_gone WHERE id = ANY($1) ORDER BY id FOR UPDATE)
         SELECT id, version FROM locked
          UNION ALL
         SELECT id, version FROM gone WHERE id NOT IN (SELECT id FROM locked)";
    /// The events the rows lack.
    const READ_FROM: ReadFrom = ReadFrom::HeldVersion;

    /// Folds each task's events into its row in memory and writes every row
    /// once: new tasks in one statement (a task's creation is its first
    /// event), the others in another. Events of a task the messages skipped
    /// (a gap) are applied on the way.
    async fn apply_named(
        &self,
        tx: &mut PgConnection,
        named: NamedEvents,
    ) -> Result<Vec<Outcome>, ProjectionError> {
        let gap = named.gap_events();
        let mut created = Vec::new();
        let mut changed = Vec::new();
        // Tasks kept by no read model, and the version they are gone at.
        let mut erased = Vec::new();
        let mut gone_at = Vec::new();
        // The events applied per writer (docs/adr/0010): a read that must
        // show a user's own writes waits for their count.
        let mut applied = Applied::default();
        for task in named.tasks {
            // An erased user's task is kept by no read model; the others'
            // events on it count as applied all the same.
            if task.events.iter().any(|e| e.erased) {
                for event in task.events.iter().filter(|e| !e.erased) {
                    applied.count(event);
                }
                erased.push(task.id);
                gone_at.push(task.events.last().map_or(0, |e| e.sequence));
                continue;
            }
            let mut events = task.events.into_iter();
            let Some(first) = events.next() else { continue };
            let parsed = parse(&first)?;
            if matches!(parsed, TaskEvent::TaskCreated { .. }) {
                applied.count(&first);
                let mut row = Fields::created(task.id, first.sequence, parsed)?;
                for event in events {
                    applied.count(&event);
                    row.apply(event.sequence, event.recorded_at, parse(&event)?)?;
                }
                created.push(row);
            } else {
                let mut later = vec![(first.sequence, first.recorded_at, parsed, writer(&first))];
                for event in events {
                    later.push((
                        event.sequence,
                        event.recorded_at,
                        parse(&event)?,
                        writer(&event),
                    ));
                }
                changed.push((task.id, later));
            }
        }
        // Rows take their `change_seq` as they are written, and the
        // task-updates publisher reads them in that order past a checkpoint:
        // two processes' batches must commit in the order they took their
        // numbers, or a number taken first and committed last is passed
        // over. So the writes of every batch, in whichever process, run one
        // at a time, from here to the commit (docs/adr/0012).
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('taskledger-task-list-changes'))")
            .execute(&mut *tx)
            .await?;
        if !created.is_empty() {
            write::insert(tx, created).await?;
        }
        if !changed.is_empty() {
            let ids: Vec<Uuid> = changed.iter().map(|(id, _)| *id).collect();
            let mut rows: HashMap<Uuid, Fields> = sqlx::query_as::<_, Fields>(&format!(
                "SELECT {FIELDS} FROM task_list WHERE id = ANY($1)"
            ))
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|row| (row.id, row))
            .collect();
            let mut updated = Vec::with_capacity(changed.len());
            for (id, events) in changed {
                let Some(mut row) = rows.remove(&id) else {
                    if erasure::kept_by_no_read_model(&mut *tx, id).await? {
                        gone_at.push(events.last().map_or(0, |(sequence, ..)| *sequence));
                        erased.push(id);
                        for (_, _, _, writer) in events {
                            applied.add(writer);
                        }
                        continue;
                    }
                    let first = events.first().map_or(0, |(sequence, ..)| *sequence);
                    return Err(ProjectionError::Invalid(format!(
                        "event {first} of task {id} has no task to apply to"
                    )));
                };
                for (sequence, at, event, writer) in events {
                    applied.add(writer);
                    row.apply(sequence, at, event)?;
                }
                updated.push(row);
            }
            write::update(tx, updated).await?;
        }
        applied.write(tx).await?;
        if !erased.is_empty() {
            sqlx::query("SELECT task_list_drop($1)")
                .bind(&erased)
                .execute(&mut *tx)
                .await?;
            erasure::keep_gone(&mut *tx, &erased, &gone_at).await?;
        }
        if gap > 0 {
            metrics::counter!(infra::metric::PROJECTION_GAPS_HEALED).increment(gap as u64);
        }
        Ok(named.outcomes)
    }
}

/// How many events of each writer were applied to the task list (by a
/// batch, or a rebuild's catch-up): what a read of one's own writes waits
/// for (docs/adr/0010).
#[derive(Default)]
pub struct Applied(HashMap<String, i64>);

impl Applied {
    pub fn count(&mut self, event: &StoredEvent) {
        self.add(writer(event));
    }

    fn add(&mut self, writer: String) {
        *self.0.entry(writer).or_default() += 1;
    }

    /// Adds the counts to each writer's `task_stats.events`.
    pub async fn write(self, tx: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.0.is_empty() {
            return Ok(());
        }
        let (writers, counts): (Vec<String>, Vec<i64>) = self.0.into_iter().unzip();
        sqlx::query("SELECT task_stats_add_events($1, $2)")
            .bind(writers)
            .bind(counts)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

/// Whose request wrote `event`.
fn writer(event: &StoredEvent) -> String {
    event.metadata_str("user_id").unwrap_or_default().to_owned()
}

fn parse(event: &StoredEvent) -> Result<TaskEvent, ProjectionError> {
    task_event(event).map_err(|e| ProjectionError::Invalid(e.to_string()))
}

/// One of the tasks `readers` read that is not deleted.
#[tracing::instrument(skip(executor, readers), fields(user_id = %readers.user()))]
pub async fn find<'e>(
    executor: impl PgExecutor<'e>,
    readers: &crate::task_query::Readers,
    id: Uuid,
) -> Result<Option<TaskRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM task_list WHERE id = $1 AND user_id = ANY($2) AND deleted_at IS NULL"
    ))
    .bind(id)
    .bind(readers.keys())
    .fetch_optional(executor)
    .await
}
