//! The reminders' rebuild: `reminders` and `reminder_tasks`, written by the
//! projection's own write ([`replace_reminders`]) into the copies.
//!
//! The pending reminders come from the store. What has happened comes from
//! the live table at the switch: a reminder fired or missed keeps that
//! status, and a snooze (a user's action, not an event) stays. Nothing the
//! rebuild adds is already due, so the scheduler fires nothing after the
//! switch that it would not have fired without it.

use std::time::Instant;

use event_store::global_log::{self, StoredEvent};
use futures::TryStreamExt;
use infra::progress::Progress;
use projections::reminders::replace_reminders;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use super::shadow::{Indexes, Shadow};
use super::{
    changed_since, histories, read_store_in_one_snapshot, Loaded, Options, Pace, Projection,
};

/// Tasks written per call of the projection's write.
const BATCH: usize = 1_000;

/// `taskledger rebuild reminders`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reminders;

impl Projection for Reminders {
    const NAME: &'static str = "reminders";
    /// In the order the live projector locks them.
    const TABLES: &'static [&'static str] = &["reminder_tasks", "reminders"];

    /// The projection's write looks rows up by task and upserts by key, so
    /// the copies get their indexes first; the trigger that wakes the
    /// scheduler comes after the load.
    async fn load(
        &self,
        pool: &PgPool,
        session: &mut PgConnection,
        shadow: &Shadow,
        options: Options,
    ) -> anyhow::Result<Loaded> {
        shadow
            .build_indexes(pool, Self::TABLES, Indexes::All, options.writers)
            .await?;
        let started = Instant::now();
        let pace = Pace::new(options);
        let mut reader = pool.acquire().await?;
        let mut tx = reader.begin().await?;
        let (snapshot, total) = read_store_in_one_snapshot(&mut tx).await?;
        let progress = Progress::new("rebuilding reminders", "events", total);
        let (mut tasks, mut events) = (0u64, 0u64);
        let mut batch: Vec<(Uuid, Vec<StoredEvent>)> = Vec::with_capacity(BATCH);
        let mut stream = global_log::every_aggregates_events(&mut *tx, "Task");
        while let Some(event) = stream.try_next().await? {
            events += 1;
            let id = Uuid::parse_str(&event.aggregate_id)?;
            match batch.last_mut() {
                Some((last, history)) if *last == id => history.push(event),
                _ => {
                    if batch.len() == BATCH {
                        tasks += batch.len() as u64;
                        replace_reminders(session, &batch).await?;
                        batch.clear();
                        progress.show(events, started);
                        pace.keep(events).await;
                    }
                    batch.push((id, vec![event]));
                }
            }
        }
        drop(stream);
        tasks += batch.len() as u64;
        replace_reminders(session, &batch).await?;
        tx.commit().await?;
        progress.finish();
        shadow.copy_triggers(session, "reminders", false).await?;
        Ok(Loaded {
            snapshot,
            tasks,
            events,
        })
    }

    async fn catch_up(
        &self,
        tx: &mut PgConnection,
        _shadow: &Shadow,
        snapshot: &str,
    ) -> anyhow::Result<u64> {
        let changed = changed_since(tx, snapshot).await?;
        for ids in changed.chunks(BATCH) {
            let batch = histories(tx, ids)
                .await?
                .into_iter()
                .map(|(id, history)| Ok((Uuid::parse_str(&id)?, history)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            replace_reminders(tx, &batch).await?;
        }
        Ok(changed.len() as u64)
    }

    /// What has happened, from the live tables: fired and missed reminders
    /// keep their status, snoozes stay; a pending reminder already due that
    /// the live table did not hold pending is dropped, so nothing fires
    /// because of the rebuild. A task the catch-up folded ahead of the live
    /// projector goes back to the live version, so the projector applies
    /// its newer events itself, as it would have without the rebuild.
    async fn before_swap(&self, tx: &mut PgConnection, shadow: &Shadow) -> anyhow::Result<()> {
        let copy = &shadow.schema;
        for statement in [
            format!(
                "DELETE FROM {copy}.reminders n USING public.reminders l
                  WHERE n.reminder_id = l.reminder_id
                    AND (l.status <> 'pending' OR l.snoozed_from IS NOT NULL)"
            ),
            format!(
                "INSERT INTO {copy}.reminders
                 SELECT * FROM public.reminders l WHERE l.status <> 'pending' OR l.snoozed_from IS NOT NULL"
            ),
            format!(
                "DELETE FROM {copy}.reminders n
                  WHERE n.status = 'pending' AND n.remind_at <= clock_timestamp()
                    AND NOT EXISTS (SELECT 1 FROM public.reminders l
                                     WHERE l.reminder_id = n.reminder_id AND l.status = 'pending')"
            ),
            format!(
                "UPDATE {copy}.reminder_tasks n SET version = l.version FROM public.reminder_tasks l
                  WHERE n.task_id = l.task_id AND n.version > l.version"
            ),
            format!(
                "DELETE FROM {copy}.reminder_tasks n
                  WHERE NOT EXISTS (SELECT 1 FROM public.reminder_tasks l WHERE l.task_id = n.task_id)"
            ),
        ] {
            sqlx::query(&statement).execute(&mut *tx).await?;
        }
        Ok(())
    }
}
