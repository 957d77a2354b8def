//! The change feed's publisher: every change the task-list projection commits
//! goes to `task-updates`, keyed by user, with the task's new state, version
//! and change cursor. It reads the read model itself from a checkpoint in
//! Postgres (`task_update_publishers`), so a change committed just before a
//! crash is published after it: nothing sits between the commit and the topic.
//! It follows a commit within milliseconds: the task list notifies
//! `taskledger_task_changes` on each statement.
//!
//! What it publishes is the wire type `domain::envelope::TaskUpdateMessage`,
//! filled from the row in [`message`] alone: the read model's row is not the
//! contract.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::envelope::{
    CloudEvent, TaskUpdateData, TaskUpdateMessage, TaskUpdateStatus, TaskUpdateTask,
    CLOUDEVENTS_CONTENT_TYPE, TASK_UPDATE_SOURCE, TASK_UPDATE_TYPE,
};
use event_store::cloudevents_headers;
use event_store::keys::{self, DataKey, Keyring};
use infra::kafka::KafkaSettings;
use infra::{metric, single_active};
use rdkafka::producer::FutureRecord;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::task_list::{TaskRow, COLUMNS};

/// Changes published per transaction of the checkpoint.
const BATCH: i64 = 500;

pub struct TaskUpdatesPublisher {
    pool: PgPool,
    kafka: KafkaSettings,
    topic: String,
    /// The topic's partitions: created with them, or moved to them when it
    /// has fewer.
    partitions: i32,
    /// Seals what each task's owner typed.
    keys: Keyring,
}

impl TaskUpdatesPublisher {
    pub fn new(
        pool: PgPool,
        kafka: &KafkaSettings,
        topic: impl Into<String>,
        partitions: i32,
    ) -> Self {
        Self {
            keys: Keyring::new(pool.clone()),
            pool,
            kafka: kafka.clone(),
            topic: topic.into(),
            partitions,
        }
    }

    /// Publishes until `shutdown` is cancelled, starting again from the
    /// checkpoint after any failure.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            match self.run_while_active(&shutdown).await {
                Ok(()) => break,
                Err(error) => {
                    metrics::counter!(metric::TASK_UPDATES_RESTARTS).increment(1);
                    tracing::error!(
                        error = %format_args!("{error:#}"),
                        "task-updates publisher failed; starting again from its checkpoint in 1s"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        tracing::info!("task-updates publisher stopped: shutdown requested");
        Ok(())
    }

    async fn run_while_active(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let mut session = self.pool.acquire().await?.detach();
        let key = format!("taskledger-task-updates:{}", self.topic);
        if !single_active::wait_for_lock(&mut session, &key, "task-updates", shutdown).await? {
            return Ok(());
        }
        // A broker that came back empty forgot the topic; nothing else
        // creates it again. One with fewer partitions than configured is
        // replaced: live changes are not kept, and the live feeds notice the
        // new partitions and resync their subscribers.
        self.kafka
            .grow_partitions(&mut session, &self.topic, self.partitions)
            .await?;
        infra::kafka::replacement_done(&mut session, &self.topic).await?;
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen("taskledger_task_changes").await?;
        let producer = self.kafka.producer()?;
        let mut checkpoint = load_checkpoint(&mut session, &self.topic).await?;
        tracing::info!(topic = %self.topic, from = checkpoint, "task-updates publisher running");
        loop {
            // The checkpoint is read in the same statement as the rows: a
            // rebuild swaps the table and moves the checkpoint at once, and
            // this sees both or neither.
            let rows: Vec<TaskRow> = sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM task_list
                  WHERE change_seq > greatest($1, (SELECT change_seq FROM task_update_publishers
                                                  WHERE name = $3))
                  ORDER BY change_seq LIMIT $2"
            ))
            .bind(checkpoint)
            .bind(BATCH)
            .bind(&self.topic)
            .fetch_all(&mut session)
            .await?;
            let Some(last) = rows.last().map(|row| row.change_seq) else {
                if producer.broker_lost() {
                    anyhow::bail!("lost every broker connection; replacing the producer");
                }
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    notification = listener.recv() => { notification?; }
                    // A notification lost with a dropped connection costs this.
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
                continue;
            };
            let mut payloads = Vec::with_capacity(rows.len());
            for row in &rows {
                // Sealed with the owner's key; a shared list has none.
                let key = self.keys.for_publishing(&row.owner).await?;
                payloads.push(sealed_message(row, Utc::now(), key.as_deref())?);
            }
            let records: Vec<_> = rows
                .iter()
                .zip(&payloads)
                .map(|(row, payload)| {
                    FutureRecord::to(&self.topic)
                        .key(row.user_id.as_str())
                        .payload(payload.as_slice())
                        .headers(cloudevents_headers())
                        .timestamp(row.updated_at.timestamp_millis())
                })
                .collect();
            producer.send_all(records).await?;
            // Never backwards: a rebuild may have moved it past these rows.
            sqlx::query(
                "UPDATE task_update_publishers
                    SET change_seq = greatest(change_seq, $2), updated_at = now()
                  WHERE name = $1",
            )
            .bind(&self.topic)
            .bind(last)
            .execute(&mut session)
            .await?;
            metrics::counter!(metric::TASK_UPDATES_PUBLISHED).increment(rows.len() as u64);
            checkpoint = last;
        }
    }
}

/// Where the publisher of `topic` stands. A new publisher starts at the
/// newest change: the feed is for what changes from now on, and subscribers
/// read older changes from the read model.
async fn load_checkpoint(session: &mut PgConnection, topic: &str) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO task_update_publishers (name, change_seq)
         SELECT $1, coalesce(max(change_seq), 0) FROM task_list
         ON CONFLICT DO NOTHING",
    )
    .bind(topic)
    .execute(&mut *session)
    .await?;
    sqlx::query_scalar("SELECT change_seq FROM task_update_publishers WHERE name = $1")
        .bind(topic)
        .fetch_one(&mut *session)
        .await
}

/// The message for one changed row, sent at `now`, what its owner typed
/// sealed with `key` (or blank: they were erased).
fn sealed_message(
    row: &TaskRow,
    now: DateTime<Utc>,
    key: Option<&DataKey>,
) -> anyhow::Result<Vec<u8>> {
    let mut message = serde_json::to_value(message(row, now))?;
    keys::seal_or_blank(&mut message["data"]["task"], key, &row.id.to_string())?;
    Ok(serde_json::to_vec(&message)?)
}

/// The message for one changed row, sent at `now`.
fn message(row: &TaskRow, now: DateTime<Utc>) -> TaskUpdateMessage {
    CloudEvent {
        specversion: "1.0".into(),
        id: format!("{}/{}", row.id, row.version),
        source: TASK_UPDATE_SOURCE.into(),
        event_type: TASK_UPDATE_TYPE.into(),
        subject: row.id.to_string(),
        time: now,
        datacontenttype: CLOUDEVENTS_CONTENT_TYPE.into(),
        correlationid: None,
        traceparent: None,
        data: TaskUpdateData {
            cursor: row.change_seq,
            user_id: row.owner.clone(),
            list_id: Some(row.list_id),
            version: row.version,
            task: TaskUpdateTask {
                id: row.id,
                user_id: row.owner.clone(),
                assignee: row.assignee.clone(),
                title: row.title.clone(),
                description: row.description.clone(),
                sealed: None,
                status: if row.completed {
                    TaskUpdateStatus::Completed
                } else {
                    TaskUpdateStatus::Open
                },
                version: row.version,
                created_at: row.created_at,
                updated_at: row.updated_at,
                completed_at: row.completed_at,
                deleted_at: row.deleted_at,
                priority: row.priority.rank(),
                tags: row.tags.clone(),
                due_at: row.due_at,
                due_date: row.due_date,
                time_zone: row.time_zone.clone(),
                reminders: row.reminders.clone(),
                recurrence: row.recurrence.clone(),
                series_id: row.series_id,
                occurrence: row.occurrence,
                change_seq: row.change_seq,
            },
        },
    }
}

#[cfg(test)]
mod tests;
