//! Live changes in one API process: it reads `task-updates` and `reminders`
//! once and hands each message to the subscribers of its user, in memory. No
//! query runs per change per subscriber. Each subscriber has a bounded buffer;
//! one that overflows is dropped from the fan-out, and its stream tells the
//! client to resync and reads what it missed from the read model (see
//! `subscription.rs`). A slow subscriber never holds up the others.

mod channels;
mod fanout;
mod watermark;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use domain::envelope::{ReminderEventData, ReminderMessage, TaskUpdateData, TaskUpdateMessage};
use futures::FutureExt as _;
use infra::kafka::{topic_partition_count, topic_watermarks, DropOffThread, KafkaSettings};
use projections::TaskRow;

use crate::listless::ListlessUsers;

use rdkafka::consumer::Consumer;
use rdkafka::{Message, Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use channels::{ListChanged, LISTS_CHANNEL};
pub use fanout::{Fanout, Subscriber, SUBSCRIBER_BUFFER};
use watermark::{Watermark, LOOKUP_PAGE};

use crate::notifications::Notification;

/// The most live messages handed out per query.
const MAX_BATCH: usize = 500;

/// The largest live message read; a task row is far smaller.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// The feeds of one API process. A task change is handed out as the
/// read model's row, never as the message that named it.
#[derive(Clone)]
pub struct LiveHub {
    pub tasks: Arc<Fanout<LiveTask>>,
    /// Reminders that fired and invitations to lists, each to its user.
    pub notifications: Arc<Fanout<Arc<Notification>>>,
    /// List changes, handed to each member and to the user a change is
    /// about.
    pub lists: Arc<Fanout<Arc<ListChanged>>>,
    /// Users erased anywhere in the deployment, as they are: their
    /// WebSockets close.
    pub erased: broadcast::Sender<String>,
    /// Users known to be in no shared list, forgotten as lists change.
    pub listless: Arc<ListlessUsers>,
    /// Whose each task was when this process last handed it out: who read
    /// it then and cannot now is told it left them.
    last_readers: Arc<std::sync::Mutex<HashMap<uuid::Uuid, ReadBy>>>,
}

/// Who reads a task: its owner, while it is in their Inbox, or the members
/// of its shared list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ReadBy {
    Owner(String),
    List(uuid::Uuid),
}

impl ReadBy {
    fn of(row: &TaskRow) -> Self {
        if row.in_shared_list() {
            Self::List(row.list_id)
        } else {
            Self::Owner(row.owner.clone())
        }
    }

    /// The users these are, given the members of the lists at hand.
    fn readers<'a>(&'a self, members: &'a HashMap<uuid::Uuid, Vec<String>>) -> &'a [String] {
        match self {
            Self::Owner(owner) => std::slice::from_ref(owner),
            Self::List(list) => members.get(list).map_or(&[], Vec::as_slice),
        }
    }
}

/// How many tasks' readers a hub remembers; past it, it forgets them all
/// (a task that then leaves its readers is not announced to them).
const MAX_LAST_READERS: usize = 50_000;

impl Default for LiveHub {
    fn default() -> Self {
        Self {
            tasks: Fanout::new(SUBSCRIBER_BUFFER),
            notifications: Fanout::new(SUBSCRIBER_BUFFER),
            lists: Fanout::new(SUBSCRIBER_BUFFER),
            erased: broadcast::channel(1024).0,
            listless: Arc::default(),
            last_readers: Arc::default(),
        }
    }
}

/// A task's change as a hub hands it out.
#[derive(Debug, Clone)]
pub struct LiveTask {
    pub row: Arc<TaskRow>,
    /// Where a client holding this change may resume: every change at or
    /// before it was handed out with or before this one (see `watermark`).
    /// At most the row's own `change_seq`.
    pub resume: i64,
    /// The task left the subscriber's reach with this change (moved out of
    /// a list they read): they are told so, and nothing of the row.
    pub gone: bool,
}

impl LiveTask {
    /// The change of `row`, which a client holding it may resume after
    /// `resume`.
    pub fn new(row: Arc<TaskRow>, resume: i64) -> Self {
        Self {
            row,
            resume,
            gone: false,
        }
    }
}

/// The topics a hub reads.
#[derive(Debug, Clone)]
pub struct LiveTopics {
    pub task_updates: String,
    pub reminders: String,
}

impl LiveHub {
    /// Reads both topics from their ends until `shutdown`, handing each
    /// message to its user's subscribers. After a failure it starts again
    /// from the ends, and every subscriber resyncs.
    pub async fn run(
        self,
        pool: PgPool,
        kafka: KafkaSettings,
        topics: LiveTopics,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        // Whether the feed has read since the process started: from then
        // on, while it is not reading, notifications pass it by, so streams
        // end when it stops and those opened meanwhile end when it reads
        // again. What the feed lost is in each user's inbox: clients read
        // it and subscribe again.
        let mut has_read = false;
        loop {
            let result = self
                .consume(&pool, &kafka, &topics, &shutdown, &mut has_read)
                .await;
            self.tasks.resync_all();
            if has_read {
                self.notifications.resync_all();
            }
            match result {
                Ok(()) => return Ok(()),
                Err(error) => {
                    tracing::warn!(
                        error = %format_args!("{error:#}"),
                        "live feed lost its topics; subscribers resync; starting again in 1s"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    async fn consume(
        &self,
        pool: &PgPool,
        kafka: &KafkaSettings,
        topics: &LiveTopics,
        shutdown: &CancellationToken,
        has_read: &mut bool,
    ) -> anyhow::Result<()> {
        let live = [topics.task_updates.as_str(), topics.reminders.as_str()];
        if !infra::kafka::wait_while_replaced(&mut *pool.acquire().await?, &live, shutdown).await? {
            return Ok(());
        }
        // Assigned, not subscribed: every API process reads every partition,
        // and no group rebalances when processes come and go.
        let consumer = DropOffThread::new(kafka.consumer("taskledger-api-live")?);
        let mut assignment = TopicPartitionList::new();
        let mut assigned = Vec::new();
        for topic in [&topics.task_updates, &topics.reminders] {
            let handle = consumer.handle();
            let name = topic.clone();
            let watermarks = tokio::task::spawn_blocking(move || {
                topic_watermarks(handle.client(), &name, Duration::from_secs(5))
            })
            .await?
            .with_context(|| format!("reading the partitions of {topic}"))?
            .with_context(|| format!("the broker does not know {topic}"))?;
            // From each partition's end as of now: an offset fixed here, not
            // whenever the first fetch resolves "the end".
            assigned.push((topic.clone(), watermarks.len()));
            for (partition, (_, high)) in (0..).zip(watermarks) {
                assignment.add_partition_offset(topic, partition, Offset::Offset(high))?;
            }
        }
        consumer.assign(&assignment)?;
        // What the read model holds now was published before this point or
        // will be heard from here; either way, whoever subscribes from now
        // on reads it from the read model.
        let mut watermark = Watermark::new(
            sqlx::query_scalar("SELECT coalesce(max(change_seq), 0) FROM task_list")
                .fetch_one(pool)
                .await?,
        );
        // Whoever subscribed before this point may have missed what was
        // published before it: they read it from the read model, and hear
        // everything after it from here.
        self.tasks.resync_all();
        if *has_read {
            self.notifications.resync_all();
        }
        *has_read = true;
        tracing::info!(?topics, "live feed reading");
        let mut partitions_check = tokio::time::interval(PARTITIONS_CHECK);
        partitions_check.tick().await;
        loop {
            let first = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = partitions_check.tick() => {
                    if infra::kafka::being_replaced(&mut *pool.acquire().await?, &live).await? {
                        anyhow::bail!("a live topic is being replaced by one with more partitions");
                    }
                    same_partitions(&consumer, &assigned).await?;
                    continue;
                }
                message = consumer.recv() => message,
            };
            let first = match first {
                Ok(message) => message.detach(),
                Err(error) => {
                    if consumer.context().broker_lost() {
                        anyhow::bail!("lost every broker connection");
                    }
                    tracing::warn!(%error, "live feed consumer error");
                    continue;
                }
            };
            // Whatever else is waiting joins it: one query per batch.
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match consumer.recv().now_or_never() {
                    Some(Ok(message)) => batch.push(message.detach()),
                    Some(Err(_)) | None => break,
                }
            }
            let (mut updates, mut reminders) = (Vec::new(), Vec::new());
            for message in &batch {
                let Some(payload) = message.payload() else {
                    continue;
                };
                if payload.len() > MAX_MESSAGE_BYTES {
                    tracing::warn!(bytes = payload.len(), "skipping an oversized live message");
                } else if message.topic() == topics.task_updates {
                    match serde_json::from_slice::<TaskUpdateMessage>(payload) {
                        Ok(update) => updates.push(update.data),
                        Err(error) => tracing::warn!(%error, "skipping an unreadable task update"),
                    }
                } else {
                    match <ReminderMessage as projections::ConsumedMessage>::decode(message) {
                        Ok(reminder) => reminders.push(reminder.data),
                        Err(reason) => tracing::warn!(%reason, "skipping an unreadable reminder"),
                    }
                }
            }
            self.hand_out_tasks(pool, updates, &mut watermark).await?;
            self.hand_out_reminders(pool, reminders).await?;
        }
    }
}

/// How often a live feed looks for a replacement of its topics and compares
/// their partitions with those it assigned itself: a topic moved to more
/// partitions (infra::kafka's `partitions`) is let go of while it is
/// replaced, then read again from its ends, its subscribers resynced.
const PARTITIONS_CHECK: Duration = infra::kafka::REPLACEMENT_NOTICE;

/// Fails when a topic in `assigned` has a number of partitions other than
/// the one assigned; a broker that cannot be asked, or cannot describe the
/// topic, fails nothing here (the consumer notices a lost broker itself).
async fn same_partitions(
    consumer: &DropOffThread<infra::kafka::KafkaConsumer>,
    assigned: &[(String, usize)],
) -> anyhow::Result<()> {
    for (topic, count) in assigned {
        let handle = consumer.handle();
        let name = topic.clone();
        let now = tokio::task::spawn_blocking(move || {
            topic_partition_count(handle.client(), &name, Duration::from_secs(5))
        })
        .await?;
        // A broker that cannot describe the topic right now says nothing:
        // only a different count calls for a new start.
        if let Ok(Some(now)) = now {
            if now as usize != *count {
                anyhow::bail!(
                    "{topic} has {now} partitions now, not {count}; assigning them again"
                );
            }
        }
    }
    Ok(())
}

/// A message is untrusted: it only says what to look at. What a subscriber
/// is sent comes from the read model, to whoever the row says reads it (its
/// owner in an Inbox, the members of its shared list): a query or two per
/// batch of messages, none per subscriber.
impl LiveHub {
    /// Hands out each task an update names, as the read model holds it, if
    /// the update is its latest change. An older
    /// update is skipped: the newer change follows it on the topic, and
    /// sending the newer state early would put cursors out of order. Each
    /// goes out in cursor order with a resume cursor no later than
    /// `watermark`, moved past this batch first.
    async fn hand_out_tasks(
        &self,
        pool: &PgPool,
        updates: Vec<TaskUpdateData>,
        watermark: &mut Watermark,
    ) -> Result<(), sqlx::Error> {
        if updates.is_empty() {
            return Ok(());
        }
        let ids: Vec<uuid::Uuid> = updates.iter().map(|u| u.task.id).collect();
        let mut rows: HashMap<uuid::Uuid, TaskRow> = sqlx::query_as::<_, TaskRow>(&format!(
            "SELECT {} FROM task_list WHERE id = ANY($1)",
            projections::task_list::COLUMNS
        ))
        .bind(&ids)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|row| (row.id, row))
        .collect();
        let mut current = Vec::with_capacity(updates.len());
        for update in updates {
            if rows
                .get(&update.task.id)
                .is_none_or(|row| row.change_seq != update.cursor)
            {
                continue;
            }
            if let Some(row) = rows.remove(&update.task.id) {
                watermark.hear(row.change_seq);
                current.push(Arc::new(row));
            }
        }
        current.sort_unstable_by_key(|row| row.change_seq);
        settle(pool, watermark).await?;
        let passed = watermark.passed();
        // Who reads each task now, and who read it when it was last handed
        // out here, if someone else.
        let read_by: Vec<(ReadBy, Option<ReadBy>)> = {
            let mut last = self.last_readers.lock().expect("never poisoned");
            if last.len() > MAX_LAST_READERS {
                last.clear();
            }
            current
                .iter()
                .map(|row| {
                    let now = ReadBy::of(row);
                    let before = last.insert(row.id, now.clone()).filter(|b| *b != now);
                    (now, before)
                })
                .collect()
        };
        // A task in a shared list goes to every member as the membership
        // rows stand now (one query per batch): a removed member hears
        // nothing of the list from the moment the removal committed.
        let shared: Vec<uuid::Uuid> = read_by
            .iter()
            .flat_map(|(now, before)| [Some(now), before.as_ref()])
            .filter_map(|read_by| match read_by {
                Some(ReadBy::List(list)) => Some(*list),
                _ => None,
            })
            .collect();
        let mut members: HashMap<uuid::Uuid, Vec<String>> = HashMap::new();
        if !shared.is_empty() {
            let rows: Vec<(uuid::Uuid, String)> =
                sqlx::query_as("SELECT list_id, user_id FROM list_members WHERE list_id = ANY($1)")
                    .bind(&shared)
                    .fetch_all(pool)
                    .await?;
            for (list, user) in rows {
                members.entry(list).or_default().push(user);
            }
        }
        for (row, (now, before)) in current.into_iter().zip(read_by) {
            let resume = passed.min(row.change_seq);
            let now = now.readers(&members);
            let task = LiveTask::new(row, resume);
            for reader in now {
                self.tasks.publish(reader, &task);
            }
            let Some(before) = before else { continue };
            let gone = LiveTask { gone: true, ..task };
            for reader in before.readers(&members).iter().filter(|r| !now.contains(r)) {
                self.tasks.publish(reader, &gone);
            }
        }
        Ok(())
    }

    /// Hands out each reminder the reminders table holds for the named user
    /// and task, with what the table says of it.
    async fn hand_out_reminders(
        &self,
        pool: &PgPool,
        reminders: Vec<ReminderEventData>,
    ) -> Result<(), sqlx::Error> {
        if reminders.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = reminders.iter().map(|r| r.reminder_id.as_str()).collect();
        let stored: HashMap<String, StoredReminder> = sqlx::query_as::<_, StoredReminder>(
            "SELECT reminder_id::text, user_id, task_id::text, title, tags, due_at, remind_at
                   FROM reminders WHERE reminder_id = ANY($1::uuid[])",
        )
        .bind(&ids)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|stored| (stored.reminder_id.clone(), stored))
        .collect();
        for mut reminder in reminders {
            let Some(StoredReminder {
                user_id: user,
                task_id: task,
                title,
                tags,
                due_at,
                remind_at,
                ..
            }) = stored.get(&reminder.reminder_id)
            else {
                tracing::warn!(reminder = %reminder.reminder_id, "skipping a reminder the reminders table does not hold");
                continue;
            };
            if *user != reminder.user_id || *task != reminder.task_id {
                tracing::warn!(reminder = %reminder.reminder_id, "skipping a reminder of another user or task");
                continue;
            }
            // What the owner typed comes from the table: the message seals it.
            (
                reminder.title,
                reminder.tags,
                reminder.due_at,
                reminder.remind_at,
            ) = (title.clone(), tags.clone(), *due_at, *remind_at);
            reminder.sealed = None;
            self.notifications
                .publish(&reminder.user_id, &Arc::new(Notification::from(&reminder)));
        }
        Ok(())
    }
}

/// Moves `watermark` past the changes heard, as far as the read model says
/// none is missing below them.
async fn settle(pool: &PgPool, watermark: &mut Watermark) -> Result<(), sqlx::Error> {
    while let Some((after, newest)) = watermark.to_look_up(std::time::Instant::now()) {
        let held: Vec<i64> = sqlx::query_scalar(
            "SELECT change_seq FROM task_list WHERE change_seq > $1 AND change_seq <= $2
              ORDER BY change_seq LIMIT $3",
        )
        .bind(after)
        .bind(newest)
        .bind(LOOKUP_PAGE)
        .fetch_all(pool)
        .await?;
        let whole = (held.len() as i64) < LOOKUP_PAGE;
        if !watermark.settle(&held, whole, std::time::Instant::now()) {
            break;
        }
    }
    Ok(())
}

/// A reminder as the reminders table holds it.
#[derive(sqlx::FromRow)]
struct StoredReminder {
    reminder_id: String,
    user_id: String,
    task_id: String,
    title: String,
    tags: Vec<String>,
    due_at: Option<DateTime<Utc>>,
    remind_at: DateTime<Utc>,
}
