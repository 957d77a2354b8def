//! The reminder scheduler: sleeps until the next pending reminder falls due,
//! wakes early when a nearer one appears (the `reminders` table notifies
//! `taskledger_reminders`), claims what is due with `FOR UPDATE SKIP LOCKED`,
//! publishes it to `reminders` keyed by user, and marks it sent only once the
//! broker acknowledged it. A crash between the two leaves it pending, so it is
//! published again under the same `reminder_id`, which the inbox and the page
//! recognise. Any number of schedulers may run; each reminder is claimed by
//! one at a time.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::envelope::{CloudEvent, ReminderEventData, CLOUDEVENTS_CONTENT_TYPE};
use domain::values::Priority;
use event_store::cloudevents_headers;
use event_store::keys::{self, Keyring};
use infra::kafka::KafkaSettings;
use infra::metric;
use rdkafka::producer::FutureRecord;
use sqlx::postgres::PgListener;
use sqlx::{FromRow, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const REMINDER_SOURCE: &str = "taskledger/scheduler";

#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    pub topic: String,
    /// The topic's partitions, should it have to be created again (a broker
    /// that came back without it).
    pub partitions: i32,
    /// A reminder found this long after it fell due is recorded as missed
    /// instead of fired.
    pub missed_after: chrono::Duration,
    /// A reminder published this long after it fell due counts as late;
    /// late ones (a backlog after an outage) are published at most at
    /// `catch_up_per_second`, so they do not flood clients.
    pub late_after: chrono::Duration,
    pub catch_up_per_second: u32,
    /// The most reminders claimed in one transaction.
    pub batch: i64,
}

impl SchedulerSettings {
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            partitions: 3,
            missed_after: chrono::Duration::hours(24),
            late_after: chrono::Duration::seconds(2),
            catch_up_per_second: 200,
            batch: 500,
        }
    }
}

pub struct Scheduler {
    pool: PgPool,
    kafka: KafkaSettings,
    settings: SchedulerSettings,
    /// Seals each reminder's title and tags with its owner's key.
    keys: Keyring,
}

#[derive(Debug, FromRow)]
struct DueReminder {
    reminder_id: Uuid,
    task_id: Uuid,
    user_id: String,
    title: String,
    due_at: Option<DateTime<Utc>>,
    remind_at: DateTime<Utc>,
    priority: i16,
    tags: Vec<String>,
    /// Its task is in a shared list its recipient no longer belongs to.
    withheld: bool,
}

/// What one claim did.
#[derive(Debug, Default)]
struct Claimed {
    fired: usize,
    late: usize,
    missed: usize,
}

/// The longest sleep without looking again: a clock that jumped, or a
/// notification lost with a dropped connection, costs at most this.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// How often fired reminders are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Days a fired reminder is kept: longer than the longest missed window (7
/// days), matching the reminders projection's `8 days`.
pub const KEEP_FIRED_DAYS: u32 = 8;

/// How far ahead reminders are claimed: each is then published at its
/// instant, with no query in between. A reminder added meanwhile that falls
/// due within a claimed window waits for the window's end, at most this.
const LOOKAHEAD: Duration = Duration::from_millis(200);

impl Scheduler {
    pub fn new(pool: PgPool, kafka: &KafkaSettings, settings: SchedulerSettings) -> Self {
        Self {
            keys: Keyring::new(pool.clone()),
            pool,
            kafka: kafka.clone(),
            settings,
        }
    }

    /// Fires reminders until `shutdown` is cancelled, starting again after
    /// any failure (nothing is marked sent that the broker did not take).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            match self.run_connected(&shutdown).await {
                Ok(()) => break,
                Err(error) => {
                    metrics::counter!(metric::SCHEDULER_RESTARTS).increment(1);
                    tracing::error!(
                        error = %format_args!("{error:#}"),
                        "scheduler failed; starting again in 1s"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        tracing::info!("scheduler stopped: shutdown requested");
        Ok(())
    }

    async fn run_connected(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        // Listening first, so a reminder added while this looks is not missed.
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen("taskledger_reminders").await?;
        // A broker that came back empty forgot the topic; nothing else
        // creates it again.
        self.kafka
            .ensure_topics(&[(self.settings.topic.as_str(), self.settings.partitions)])
            .await?;
        let producer = self.kafka.producer()?;
        tracing::info!(topic = %self.settings.topic, "scheduler running");
        let mut last_pruned = Instant::now();
        loop {
            let claimed = self.claim_due(&producer).await?;
            if claimed.late + claimed.missed > 0 {
                tracing::info!(
                    fired = claimed.fired,
                    late = claimed.late,
                    missed = claimed.missed,
                    "catching up on reminders that fell due while nothing ran"
                );
            }
            if producer.broker_lost() {
                anyhow::bail!("lost every broker connection; replacing the producer");
            }
            if claimed.fired + claimed.missed > 0 {
                continue; // perhaps more are due right away
            }
            if last_pruned.elapsed() > PRUNE_EVERY {
                self.prune().await?;
                last_pruned = Instant::now();
            }
            // At least a moment: a due reminder that could not be claimed is
            // locked by another scheduler or by the projection changing it.
            let pause = self.until_next().await?.max(Duration::from_millis(10));
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(pause) => {}
                notification = listener.recv() => {
                    notification?;
                }
            }
        }
    }

    /// Deletes reminders sent or missed more than [`KEEP_FIRED`] ago (the
    /// projection never inserts one that old again), a bounded number at once.
    async fn prune(&self) -> Result<(), sqlx::Error> {
        let pruned = sqlx::query(
            "DELETE FROM reminders WHERE reminder_id IN (
                 SELECT reminder_id FROM reminders
                  WHERE status <> 'pending' AND remind_at < now() - $1::interval
                  LIMIT 10000)",
        )
        .bind(format!("{} days", KEEP_FIRED_DAYS))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if pruned > 0 {
            tracing::info!(pruned, "old fired reminders deleted");
        }
        Ok(())
    }

    /// How long until the next pending reminder falls due.
    async fn until_next(&self) -> Result<Duration, sqlx::Error> {
        let next: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT min(remind_at) FROM reminders WHERE status = 'pending'")
                .fetch_one(&self.pool)
                .await?;
        Ok(next.map_or(MAX_SLEEP, |next| {
            (next - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .saturating_sub(LOOKAHEAD)
                .min(MAX_SLEEP)
        }))
    }

    /// Claims the reminders due within the lookahead, publishes each at its
    /// instant, and marks them sent once the broker acknowledged them all, in
    /// one transaction: the claim holds until the broker has them. Late ones
    /// (a backlog after an outage) are paced to the catch-up rate.
    async fn claim_due(&self, producer: &infra::kafka::Producer) -> anyhow::Result<Claimed> {
        let now = Utc::now();
        let horizon = now + chrono::Duration::from_std(LOOKAHEAD).expect("a small duration");
        let mut tx = self.pool.begin().await?;
        let due: Vec<DueReminder> = sqlx::query_as(
            "SELECT reminder_id, task_id, user_id, title, due_at, remind_at, priority, tags,
                    EXISTS (SELECT 1 FROM task_list t JOIN reminder_tasks rt ON rt.task_id = t.id
                             WHERE t.id = reminders.task_id AND t.user_id <> reminders.user_id
                               AND t.version >= rt.version
                               AND NOT EXISTS (SELECT 1 FROM list_members m
                                                WHERE m.list_id = t.list_id
                                                  AND m.user_id = reminders.user_id)) AS withheld
               FROM reminders
              WHERE status = 'pending' AND remind_at <= $1
              ORDER BY remind_at >= $3 DESC, remind_at
              LIMIT $2
                FOR UPDATE SKIP LOCKED",
        )
        .bind(horizon)
        .bind(self.settings.batch)
        // On time first: a backlog of late ones does not make them late too.
        .bind(now - self.settings.late_after)
        .fetch_all(&mut *tx)
        .await?;
        if due.is_empty() {
            return Ok(Claimed::default());
        }
        // A reminder whose recipient may no longer read its task (they left
        // its shared list, or it moved into another's Inbox) is not sent;
        // judged on a task-list row at least as new as the reminder's task,
        // never on one the projection has not brought up to date yet.
        let (withheld, due): (Vec<_>, Vec<_>) = due.into_iter().partition(|r| r.withheld);
        let (mut missed, mut to_fire): (Vec<_>, Vec<_>) = due
            .into_iter()
            .partition(|r| now - r.remind_at > self.settings.missed_after);
        if !withheld.is_empty() {
            tracing::info!(
                withheld = withheld.len(),
                "reminders whose recipient left the task's list; recorded as missed"
            );
            missed.extend(withheld);
        }
        // Late ones are paced; a claim holds at most a fifth of a second of
        // them, so its locks are short and on-time ones get their turn.
        let late_per_claim = (self.settings.catch_up_per_second as usize / 5).max(1);
        let mut late_claimed = 0;
        to_fire.retain(|r| {
            if now - r.remind_at <= self.settings.late_after {
                return true;
            }
            late_claimed += 1;
            late_claimed <= late_per_claim
        });
        let pace =
            Duration::from_secs_f64(1.0 / f64::from(self.settings.catch_up_per_second.max(1)));
        let mut batch = producer.batch();
        let mut fired_at = Vec::with_capacity(to_fire.len());
        let mut late = 0;
        // Each owner's key before the instants: nothing is asked of the
        // database between a reminder's instant and its publication.
        let mut keys = std::collections::HashMap::new();
        for reminder in &to_fire {
            if !keys.contains_key(&reminder.user_id) {
                let key = self.keys.for_publishing(&reminder.user_id).await?;
                keys.insert(reminder.user_id.clone(), key);
            }
        }
        for reminder in &to_fire {
            // Sleep until the instant itself: the lookahead took the query
            // out of the way.
            if let Ok(wait) = (reminder.remind_at - Utc::now()).to_std() {
                tokio::time::sleep(wait).await;
            }
            let at = Utc::now();
            let key = keys.get(&reminder.user_id).cloned().flatten();
            let mut payload = serde_json::to_value(message(reminder, at))?;
            keys::seal_or_blank(
                &mut payload["data"],
                key.as_deref(),
                &reminder.task_id.to_string(),
            )?;
            let payload = serde_json::to_vec(&payload)?;
            batch
                .send(
                    FutureRecord::to(&self.settings.topic)
                        .key(reminder.user_id.as_str())
                        .payload(payload.as_slice())
                        .headers(cloudevents_headers()),
                )
                .await?;
            fired_at.push(at);
            if at - reminder.remind_at > self.settings.late_after {
                late += 1;
                tokio::time::sleep(pace).await;
            }
        }
        batch.acknowledged().await?;

        let fired_ids: Vec<Uuid> = to_fire.iter().map(|r| r.reminder_id).collect();
        let late_ms: Vec<i64> = to_fire
            .iter()
            .zip(&fired_at)
            .map(|(r, at)| lateness_ms(r, *at))
            .collect();
        sqlx::query(
            "UPDATE reminders SET status = 'sent', fired_at = t.fired_at, late_ms = t.late_ms
               FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[]) AS t(id, late_ms, fired_at)
              WHERE reminder_id = t.id",
        )
        .bind(&fired_ids)
        .bind(&late_ms)
        .bind(&fired_at)
        .execute(&mut *tx)
        .await?;
        let missed_ids: Vec<Uuid> = missed.iter().map(|r| r.reminder_id).collect();
        if !missed_ids.is_empty() {
            sqlx::query("UPDATE reminders SET status = 'missed' WHERE reminder_id = ANY($1)")
                .bind(&missed_ids)
                .execute(&mut *tx)
                .await?;
            tracing::warn!(
                missed = missed_ids.len(),
                "reminders fell due longer ago than the missed window; recorded as missed"
            );
        }
        tx.commit().await?;

        for late_ms in &late_ms {
            let timing = if *late_ms > self.settings.late_after.num_milliseconds() {
                "late"
            } else {
                "on_time"
            };
            metrics::counter!(metric::REMINDERS_FIRED, "timing" => timing).increment(1);
            metrics::histogram!(metric::REMINDER_LATENESS_SECONDS).record(*late_ms as f64 / 1000.0);
        }
        metrics::counter!(metric::REMINDERS_MISSED).increment(missed_ids.len() as u64);
        Ok(Claimed {
            fired: to_fire.len(),
            late,
            missed: missed_ids.len(),
        })
    }
}

fn lateness_ms(reminder: &DueReminder, fired_at: DateTime<Utc>) -> i64 {
    (fired_at - reminder.remind_at).num_milliseconds().max(0)
}

/// The `reminders` message for a reminder fired at `fired_at`; its id is the
/// reminder's, so every delivery of one reminder carries the same id.
fn message(reminder: &DueReminder, fired_at: DateTime<Utc>) -> CloudEvent<ReminderEventData> {
    CloudEvent {
        specversion: "1.0".into(),
        id: reminder.reminder_id.to_string(),
        source: REMINDER_SOURCE.into(),
        event_type: "taskledger.reminder.due.v1".into(),
        subject: reminder.task_id.to_string(),
        time: fired_at,
        datacontenttype: CLOUDEVENTS_CONTENT_TYPE.into(),
        correlationid: None,
        traceparent: None,
        data: ReminderEventData {
            reminder_id: reminder.reminder_id.to_string(),
            task_id: reminder.task_id.to_string(),
            title: reminder.title.clone(),
            sealed: None,
            due_at: reminder.due_at,
            remind_at: reminder.remind_at,
            user_id: reminder.user_id.clone(),
            priority: format!("{:?}", Priority::from_rank(reminder.priority)).to_uppercase(),
            tags: reminder.tags.clone(),
            fired_at,
            late_ms: lateness_ms(reminder, fired_at),
        },
    }
}
