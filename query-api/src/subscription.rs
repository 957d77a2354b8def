//! The subscription root. `taskChanges(since)` sends every task of the
//! caller changed after the cursor, read from the read model, then live
//! changes from this process's fan-out. The fan-out is joined before the
//! backlog is read and what was sent already is dropped, so nothing falls
//! between the two and nothing is sent twice. The cursor handed with each
//! change is where the client may resume without missing one: never past
//! a change not yet handed out (see `live::watermark`). A subscriber that
//! fell behind gets a `RESYNC` item and the backlog again from that cursor,
//! less what it was sent.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use async_graphql::{Context, Enum, SimpleObject, Subscription, ID};
use domain::Version;
use event_store::command::ListService;
use futures::Stream;
use projections::task_query::Readers;
use projections::TaskRow;
use sqlx::PgPool;

use crate::consistency::Consistency;
use crate::live::{LiveHub, LiveTask, Subscriber};
use crate::notifications::{name_lists, Notification};
use crate::query::Task;
use api_core::consistency::Session;
use api_core::error::{ApiError, ApiResult};
use api_core::request::{actor, service};

/// Tasks read from the read model per backlog query.
const BACKLOG_PAGE: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum TaskChangeKind {
    /// `task` changed; it is shown as it is now, at `version`.
    Changed,
    /// This subscription fell behind; what changed after `cursor` follows
    /// again. Nothing to do but keep reading.
    Resync,
    /// Task `taskId` left what you read (it moved out of a shared list you
    /// belong to, into someone's Inbox, say): drop it. Sent live by the
    /// process that handed the task out before; a backlog read after it
    /// simply no longer holds the task.
    Removed,
}

/// One change to one of your tasks, or a resync notice.
#[derive(Debug, SimpleObject)]
pub struct TaskChange {
    pub kind: TaskChangeKind,
    /// Pass the last cursor you received as `since` when you subscribe
    /// again. It never passes a change not sent yet, so it may stay behind
    /// this change's own: what comes again on resuming is a version you hold.
    pub cursor: String,
    pub task_id: Option<ID>,
    pub version: Option<Version>,
    pub task: Option<Task>,
}

impl TaskChange {
    fn changed(row: TaskRow, cursor: i64) -> Self {
        Self {
            kind: TaskChangeKind::Changed,
            cursor: cursor.to_string(),
            task_id: Some(ID(row.id.to_string())),
            version: Some(row.version),
            task: Some(Task::from(row)),
        }
    }

    fn removed(task_id: uuid::Uuid, cursor: i64) -> Self {
        Self {
            kind: TaskChangeKind::Removed,
            cursor: cursor.to_string(),
            task_id: Some(ID(task_id.to_string())),
            version: None,
            task: None,
        }
    }

    fn resync(cursor: i64) -> Self {
        Self {
            kind: TaskChangeKind::Resync,
            cursor: cursor.to_string(),
            task_id: None,
            version: None,
            task: None,
        }
    }
}

#[derive(Default)]
pub struct TaskSubscription;

#[Subscription]
impl TaskSubscription {
    /// Your tasks' changes: with `since` (a cursor from an earlier change, or
    /// "0" for everything), first every task changed after it, then changes
    /// as they happen. Without it, only changes from now on.
    async fn task_changes(
        &self,
        ctx: &Context<'_>,
        since: Option<String>,
    ) -> Result<impl Stream<Item = TaskChange>, ApiError> {
        let user = actor(ctx)?.user_id.as_str().to_owned();
        let pool = service::<PgPool>(ctx)?.clone();
        let hub = service::<LiveHub>(ctx)?.clone();
        // Joined first: a change committed while the backlog is read is seen
        // in one or the other.
        let live = hub.tasks.subscribe(&user);
        let (cursor, backlog) = match since {
            Some(since) => {
                let cursor = parse_cursor(&since)?;
                // The backlog shows the caller's own writes (docs/adr/0010).
                if let (Some(session), Ok(consistency)) =
                    (ctx.data_opt::<Session>(), service::<Consistency>(ctx))
                {
                    consistency.settle(session, &user).await;
                }
                (cursor, true)
            }
            None => (latest_cursor(&pool).await?, false),
        };
        let feed = ChangeFeed {
            user,
            pool,
            hub,
            live,
            start: cursor,
            cursor,
            backlog_after: cursor,
            backlog,
            ready: VecDeque::new(),
            sent: HashMap::new(),
        };
        Ok(futures::stream::unfold(feed, |mut feed| async move {
            feed.next().await.map(|change| (change, feed))
        }))
    }

    /// Changes to the lists you belong to, as they commit, and those about
    /// you: an invitation for you, your removal (after which nothing more
    /// of that list reaches you).
    async fn list_changes(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = ListChange>, ApiError> {
        let user = actor(ctx)?.user_id.as_str().to_owned();
        let hub = service::<LiveHub>(ctx)?.clone();
        let live = hub.lists.subscribe(&user);
        Ok(futures::stream::unfold(
            (hub, user, live),
            |(hub, user, mut live)| async move {
                let change = match live.receiver.recv().await {
                    Some(change) => ListChange {
                        kind: ListChangeKind::Changed,
                        list_id: Some(ID(change.list_id.to_string())),
                        event: Some(change.event.clone()),
                        version: Some(change.version),
                        user_id: change.user.clone(),
                    },
                    None => {
                        live = hub.lists.subscribe(&user);
                        ListChange {
                            kind: ListChangeKind::Resync,
                            list_id: None,
                            event: None,
                            version: None,
                            user_id: None,
                        }
                    }
                };
                Some((change, (hub, user, live)))
            },
        ))
    }

    /// Your reminders as they fire, and invitations to lists as they are
    /// made. Each arrives once per delivery; its `id` tells a repeat (after
    /// a crash of the scheduler) from a new one. The stream ends
    /// (`complete`) when this process may have missed some (it lost the
    /// topic or its Postgres channel, or you fell 256 behind): read
    /// `notifications`, and subscribe again.
    async fn notification_received(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Notification>, ApiError> {
        let user = actor(ctx)?.user_id.as_str().to_owned();
        let hub = service::<LiveHub>(ctx)?.clone();
        let lists = service::<ListService>(ctx)?.clone();
        let live = hub.notifications.subscribe(&user);
        let state = (lists, user, live, VecDeque::<ID>::new());
        Ok(futures::stream::unfold(
            state,
            |(lists, user, mut live, mut seen)| async move {
                loop {
                    // Fell behind, or the process lost the topic: the
                    // inbox holds what was missed, and the client is told
                    // by the stream's end to read it.
                    let arrived = live.receiver.recv().await?;
                    if seen.contains(&arrived.id) {
                        continue;
                    }
                    if seen.len() == 64 {
                        seen.pop_front();
                    }
                    seen.push_back(arrived.id.clone());
                    let mut notification = [Notification::clone(&arrived)];
                    if let Err(error) = name_lists(&lists, &user, &mut notification).await {
                        tracing::warn!(error = ?error, "could not name an invitation's list");
                    }
                    let [notification] = notification;
                    return Some((notification, (lists, user, live, seen)));
                }
            },
        ))
    }
}

/// A change to a list of yours, or one about you (an invitation, your
/// removal); `lists` and `invitations` show where things now stand.
#[derive(Debug, SimpleObject)]
pub struct ListChange {
    /// `RESYNC` when this subscription fell behind: ask `lists` and
    /// `invitations` again.
    pub kind: ListChangeKind,
    pub list_id: Option<ID>,
    /// The event's type: `ListRenamed`, `ListMemberInvited`,
    /// `ListMemberRemoved`, …
    pub event: Option<String>,
    pub version: Option<Version>,
    /// Who the change is about, if anyone.
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ListChangeKind {
    Changed,
    Resync,
}

/// The state of one `taskChanges` stream.
struct ChangeFeed {
    user: String,
    pool: PgPool,
    hub: LiveHub,
    live: Subscriber<LiveTask>,
    /// The cursor subscribed with (or the latest when subscribed without
    /// one): nothing at or before it is sent live.
    start: i64,
    /// Where the client may resume: every change of theirs at or before it
    /// was sent (or is older than `start`).
    cursor: i64,
    /// Where the backlog reads on from: the cursor subscribed with, then
    /// the last change it read; after the stream fell behind, `cursor`.
    backlog_after: i64,
    /// Whether the read model may hold changes after `backlog_after` not
    /// yet sent.
    backlog: bool,
    ready: VecDeque<TaskChange>,
    /// The newest change sent of each task lately. A reader of several keys
    /// (their Inbox, shared lists) hears each key's changes from its own
    /// partition of `task-updates`, so one key's change can arrive after a
    /// later one of another key: the cursor alone would pass it over.
    sent: HashMap<uuid::Uuid, i64>,
}

/// How many tasks' newest changes a stream remembers; past twice as many,
/// all but the newest are forgotten at once (a repeat of a forgotten one is
/// a version the client holds, which it passes over).
const MAX_SENT: usize = 4096;

impl ChangeFeed {
    async fn next(&mut self) -> Option<TaskChange> {
        loop {
            if let Some(change) = self.ready.pop_front() {
                return Some(change);
            }
            if self.backlog {
                match self.read_backlog().await {
                    Ok(()) => continue,
                    Err(error) => {
                        tracing::warn!(%error, user = %self.user, "reading a change backlog failed");
                        // The stream ends; the client subscribes again with
                        // its last cursor.
                        return None;
                    }
                }
            }
            let Some(LiveTask { row, resume, gone }) = self.live.receiver.recv().await else {
                // What was dropped with the buffer came after the cursor.
                self.live = self.hub.tasks.subscribe(&self.user);
                self.backlog = true;
                self.backlog_after = self.cursor;
                return Some(TaskChange::resync(self.cursor));
            };
            if gone {
                // Only its id: what the task holds now is not theirs.
                if row.change_seq > self.start {
                    return Some(TaskChange::removed(row.id, self.cursor));
                }
                continue;
            }
            if row.change_seq <= self.start || self.was_sent(&row) {
                continue; // from before the subscription, already sent, or a redelivery
            }
            self.note_sent(&row, resume);
            return Some(TaskChange::changed(Arc::unwrap_or_clone(row), self.cursor));
        }
    }

    /// Remembers `row`'s change as sent, and that the client may resume
    /// from `resume`.
    fn note_sent(&mut self, row: &TaskRow, resume: i64) {
        self.cursor = self.cursor.max(resume);
        self.sent.insert(row.id, row.change_seq);
        if self.sent.len() > 2 * MAX_SENT {
            // All at once, so the map is scanned once per MAX_SENT changes,
            // not on every change past the bound.
            let mut sent: Vec<i64> = self.sent.values().copied().collect();
            let at = sent.len() - MAX_SENT;
            let oldest_kept = *sent.select_nth_unstable(at).1;
            self.sent.retain(|_, sent| *sent >= oldest_kept);
        }
    }

    /// Whether `row`'s change, or a later one of its task, was sent.
    fn was_sent(&self, row: &TaskRow) -> bool {
        self.sent
            .get(&row.id)
            .is_some_and(|sent| *sent >= row.change_seq)
    }

    /// Queues the next page of changes after the cursor.
    async fn read_backlog(&mut self) -> Result<(), sqlx::Error> {
        // The lists the user belongs to as each page is read: a removed
        // member's backlog holds nothing of the list from then on.
        let readers = Readers::of(&self.pool, &self.user).await?;
        let rows: Vec<TaskRow> = sqlx::query_as(&format!(
            "SELECT {} FROM task_list WHERE user_id = ANY($1) AND change_seq > $2
              ORDER BY change_seq LIMIT $3",
            projections::task_list::COLUMNS
        ))
        .bind(readers.keys())
        .bind(self.backlog_after)
        .bind(BACKLOG_PAGE)
        .fetch_all(&self.pool)
        .await?;
        self.backlog = rows.len() as i64 == BACKLOG_PAGE;
        for row in rows {
            self.backlog_after = row.change_seq;
            // Every change before it committed before it, in the read
            // model's order: this page or an earlier one held it.
            if self.was_sent(&row) {
                self.cursor = self.cursor.max(row.change_seq);
            } else {
                self.note_sent(&row, row.change_seq);
                let cursor = self.cursor;
                self.ready.push_back(TaskChange::changed(row, cursor));
            }
        }
        Ok(())
    }
}

fn parse_cursor(raw: &str) -> ApiResult<i64> {
    raw.parse::<i64>()
        .ok()
        .filter(|cursor| *cursor >= 0)
        .ok_or_else(|| ApiError::invalid("since", "is not a cursor from taskChanges"))
}

/// Where a subscription without a cursor starts: the newest change of
/// anyone's. Changes commit in cursor order, so every later change of the
/// caller's is past it; one query, with no need of the caller's lists (a
/// thousand sockets subscribing at once make twice the queries otherwise).
async fn latest_cursor(pool: &PgPool) -> ApiResult<i64> {
    let cursor: Option<i64> = sqlx::query_scalar("SELECT max(change_seq) FROM task_list")
        .fetch_one(pool)
        .await?;
    Ok(cursor.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::SUBSCRIBER_BUFFER;

    fn row(id: u128, change_seq: i64) -> TaskRow {
        let at = chrono::Utc::now();
        TaskRow {
            id: uuid::Uuid::from_u128(id),
            user_id: "ann".into(),
            list_id: uuid::Uuid::nil(),
            owner: "ann".into(),
            assignee: None,
            title: "t".into(),
            description: None,
            status: domain::TaskStatus::Open,
            completed: false,
            version: 1,
            created_at: at,
            updated_at: at,
            completed_at: None,
            deleted_at: None,
            priority: domain::values::Priority::default(),
            tags: Vec::new(),
            due_at: None,
            due_date: None,
            time_zone: None,
            reminders: serde_json::json!([]),
            recurrence: None,
            series_id: None,
            occurrence: None,
            change_seq,
        }
    }

    fn feed(hub: &LiveHub) -> ChangeFeed {
        ChangeFeed {
            user: "ann".into(),
            pool: PgPool::connect_lazy("postgres://nowhere/none").unwrap(),
            hub: hub.clone(),
            live: hub.tasks.subscribe("ann"),
            start: 10,
            cursor: 10,
            backlog_after: 10,
            backlog: false,
            ready: VecDeque::new(),
            sent: HashMap::new(),
        }
    }

    /// Past twice its bound, a stream forgets all but the newest changes it
    /// sent, and still knows those.
    #[tokio::test]
    async fn a_stream_remembers_its_newest_changes_within_a_bound() {
        let mut feed = feed(&LiveHub::default());
        let sent = 3 * MAX_SENT as u128;
        for task in 0..sent {
            let change = 100 + task as i64;
            feed.note_sent(&row(task, change), change);
        }
        assert!(feed.sent.len() <= 2 * MAX_SENT, "{}", feed.sent.len());
        assert!(feed.sent.len() >= MAX_SENT, "{}", feed.sent.len());
        let newest = sent - 1;
        assert!(feed.was_sent(&row(newest, 100 + newest as i64)));
        assert!(!feed.was_sent(&row(0, 100)), "the oldest is forgotten");
        assert_eq!(feed.cursor, 100 + newest as i64);
    }

    /// A member hears their Inbox and a shared list from two partitions of
    /// `task-updates`: a list's change may arrive after a later change of
    /// their Inbox, and must still be sent.
    #[tokio::test]
    async fn a_change_arriving_after_a_later_one_of_another_key_is_sent() {
        let hub = LiveHub::default();
        let mut feed = feed(&hub);
        // 15 is heard before 12: until 12 is, the hub resumes from 11.
        let changes = [
            (1, 15, 11),
            (2, 12, 12),
            (1, 15, 15),
            (3, 9, 15),
            (2, 16, 16),
            (2, 14, 16),
        ];
        for (task, change, resume) in changes {
            let row = Arc::new(row(task, change));
            hub.tasks.publish("ann", &LiveTask::new(row, resume));
        }
        let mut heard = Vec::new();
        while let Ok(Some(change)) =
            tokio::time::timeout(std::time::Duration::from_millis(100), feed.next()).await
        {
            heard.push((change.task_id.map(|id| id.0), change.cursor));
        }
        let id = |n: u128| Some(uuid::Uuid::from_u128(n).to_string());
        assert_eq!(
            heard,
            [
                (id(1), "11".to_owned()),
                (id(2), "12".to_owned()),
                (id(2), "16".to_owned())
            ],
            "each task's changes once, in order; none from before the subscription"
        );
    }

    /// A change heard before an earlier one of another key reached this
    /// process carries a cursor short of its own; the cursor never goes
    /// back, and a resync after an overflow reads on from it.
    #[tokio::test]
    async fn the_cursor_handed_out_never_passes_a_change_not_yet_sent() {
        let hub = LiveHub::default();
        let mut feed = feed(&hub);
        for (task, change, resume) in [(1, 15, 11), (2, 12, 12), (3, 16, 16), (4, 17, 13)] {
            let row = Arc::new(row(task, change));
            hub.tasks.publish("ann", &LiveTask::new(row, resume));
        }
        let mut cursors = Vec::new();
        for _ in 0..4 {
            cursors.push(feed.next().await.unwrap().cursor);
        }
        assert_eq!(cursors, ["11", "12", "16", "16"]);
        // The buffer overflows: the stream resyncs from the cursor handed out.
        for task in 0..=SUBSCRIBER_BUFFER as u128 {
            let row = Arc::new(row(100 + task, 20 + task as i64));
            hub.tasks.publish("ann", &LiveTask::new(row, 18));
        }
        let mut kinds = Vec::new();
        loop {
            let change = feed.next().await.unwrap();
            if change.kind == TaskChangeKind::Resync {
                assert_eq!(change.cursor, "18");
                break;
            }
            kinds.push(change.kind);
        }
        assert_eq!(kinds.len(), SUBSCRIBER_BUFFER);
        assert_eq!(feed.backlog_after, 18);
    }
}
