//! Reminders: the projection that keeps every pending reminder at the instant
//! it fires, and the inbox that keeps every reminder fired as a notification.
//!
//! The reminders projection folds each task it hears about from the event
//! store, so the schedule is always the domain's (`Task::reminder_schedule`):
//! completing, deleting or rescheduling a task moves or drops its pending
//! reminders, and a recurring task's next occurrence, a task of its own,
//! brings its own.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::envelope::ReminderMessage;
use domain::values::UserId;
use domain::{Task, TaskStatus};
use event_store::global_log::{self, StoredEvent};
use event_store::history::task_event;
use event_store::repository::OpenedSnapshot;
use rdkafka::message::OwnedMessage;
use rdkafka::Message;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::consumer::{ConsumedMessage, Outcome, Projection, ProjectionError};
use crate::named_events::{NamedEvents, PerTaskProjection, ReadFrom};

/// The `task-events` consumer that keeps the `reminders` table.
#[derive(Debug, Default, Clone, Copy)]
pub struct RemindersProjection;

impl PerTaskProjection for RemindersProjection {
    const NAME: &'static str = "reminders";
    const LOCK_VERSIONS: &'static str =
        "SELECT task_id, version FROM reminder_tasks WHERE task_id = ANY($1)
          ORDER BY task_id FOR UPDATE";
    /// Each task is folded from its snapshot, or whole: always whole once a
    /// writer of it was erased.
    const READ_FROM: ReadFrom = ReadFrom::Snapshot {
        allowed: "SELECT task_id FROM reminder_tasks WHERE task_id = ANY($1) AND NOT erased",
    };

    /// Each task a batch names is folded once, from its snapshot (or its
    /// first event) to the last one named, and its pending reminders
    /// replaced in three statements for the whole batch.
    async fn apply_named(
        &self,
        tx: &mut PgConnection,
        named: NamedEvents,
    ) -> Result<Vec<Outcome>, ProjectionError> {
        let mut folded = Vec::with_capacity(named.tasks.len());
        let mut whole = Vec::new();
        for task in named.tasks {
            match task.snapshot {
                Some(snapshot) if schedule_as_held(&task.events, snapshot.sequence) => {
                    folded.push((task.id, fold(Some(snapshot), &task.events)?));
                }
                Some(_) => whole.push((
                    task.id.to_string(),
                    0,
                    task.events.last().map_or(0, |e| e.sequence),
                )),
                None => folded.push((task.id, fold(None, &task.events)?)),
            }
        }
        // A task whose schedule may have changed between what the read
        // model holds and its snapshot is folded from its first event.
        let mut histories: HashMap<Uuid, Vec<StoredEvent>> = HashMap::new();
        for event in global_log::aggregates_events(&mut *tx, "Task", &whole).await? {
            let id = Uuid::parse_str(&event.aggregate_id)
                .map_err(|_| ProjectionError::Invalid("a stored task id is not a UUID".into()))?;
            histories.entry(id).or_default().push(event);
        }
        for (id, _, _) in &whole {
            let history = Uuid::parse_str(id)
                .ok()
                .and_then(|id| histories.remove(&id).map(|history| (id, history)));
            let Some((id, history)) = history else {
                return Err(ProjectionError::Invalid(format!(
                    "the events of task {id} are not in the event store"
                )));
            };
            folded.push((id, fold(None, &history)?));
        }
        write_reminders(tx, &folded).await?;
        Ok(named.outcomes)
    }
}

/// Event types that leave a task's reminder schedule as it was: they change
/// its text, priority or tags alone.
const SCHEDULE_ALONE: [&str; 3] = ["TaskEdited", "TaskPrioritySet", "TaskTagsChanged"];

/// Whether the task's schedule at its snapshot (event `snapshot`) is the
/// one the read model applied: `events` start after the version it holds,
/// and those up to the snapshot, if any, leave the schedule alone.
fn schedule_as_held(events: &[StoredEvent], snapshot: i64) -> bool {
    events
        .iter()
        .take_while(|e| e.sequence <= snapshot)
        .all(|e| SCHEDULE_ALONE.contains(&e.event_type.as_str()))
}

/// Replaces the pending reminders of each task (its events from the first,
/// in order) with those its folded state calls for, and records the version
/// applied, in three statements for them all: the projection's write,
/// shared with `taskledger rebuild reminders`, which runs it with its
/// copies of the tables first in the search path.
pub async fn replace_reminders(
    tx: &mut PgConnection,
    tasks: &[(Uuid, Vec<StoredEvent>)],
) -> Result<(), ProjectionError> {
    let folded = tasks
        .iter()
        .map(|(id, history)| Ok((*id, fold(None, history)?)))
        .collect::<Result<Vec<_>, ProjectionError>>()?;
    write_reminders(tx, &folded).await
}

async fn write_reminders(
    tx: &mut PgConnection,
    tasks: &[(Uuid, Folded)],
) -> Result<(), ProjectionError> {
    let mut rows = ReminderColumns::default();
    let mut task_ids = Vec::with_capacity(tasks.len());
    let mut task_versions = Vec::with_capacity(tasks.len());
    let mut task_erased = Vec::with_capacity(tasks.len());
    let mut closed = Vec::new();
    for (id, folded) in tasks {
        // An erased user's task keeps no reminder.
        if folded.erased || folded.task.status() != TaskStatus::Open {
            closed.push(*id);
        }
        if !folded.erased {
            rows.push(*id, folded);
        }
        task_ids.push(*id);
        task_versions.push(folded.version);
        task_erased.push(folded.erased);
    }
    // Pending reminders the tasks no longer call for; a snoozed one stays
    // until its task is done or in the trash.
    sqlx::query(
        "DELETE FROM reminders
          WHERE task_id = ANY($1) AND status = 'pending' AND NOT reminder_id = ANY($2)
            AND (snoozed_from IS NULL OR task_id = ANY($3))",
    )
    .bind(&task_ids)
    .bind(&rows.reminder_id)
    .bind(&closed)
    .execute(&mut *tx)
    .await?;
    // New reminders, unless they were already past when set (they never
    // fire retroactively; one whose setting is not known, being in the
    // schedule of the snapshot a fold started from, is kept only where it
    // already is); pending ones take the task's new title, priority and
    // tags.
    sqlx::query(
        "INSERT INTO reminders (reminder_id, task_id, user_id, title, due_at, remind_at,
                                priority, tags)
         SELECT t.reminder_id, t.task_id, t.user_id, t.title, t.due_at, t.remind_at,
                t.priority, ARRAY(SELECT jsonb_array_elements_text(t.tags))
           FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[],
                       $6::timestamptz[], $7::smallint[], $8::jsonb[], $9::timestamptz[])
                AS t(reminder_id, task_id, user_id, title, due_at, remind_at, priority, tags,
                     set_at)
          WHERE (t.remind_at >= t.set_at
                 OR EXISTS (SELECT 1 FROM reminders r WHERE r.reminder_id = t.reminder_id))
            -- Older than any scheduler would fire (and pruned once sent).
            AND t.remind_at > now() - interval '8 days'
         ON CONFLICT (reminder_id) DO UPDATE
            SET title = EXCLUDED.title, due_at = EXCLUDED.due_at,
                priority = EXCLUDED.priority, tags = EXCLUDED.tags, user_id = EXCLUDED.user_id
          WHERE reminders.status = 'pending'",
    )
    .bind(&rows.reminder_id)
    .bind(&rows.task_id)
    .bind(&rows.user_id)
    .bind(&rows.title)
    .bind(&rows.due_at)
    .bind(&rows.remind_at)
    .bind(&rows.priority)
    .bind(&rows.tags)
    .bind(&rows.set_at)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO reminder_tasks (task_id, version, erased)
         SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bool[])
         ON CONFLICT (task_id) DO UPDATE
            SET version = EXCLUDED.version, erased = reminder_tasks.erased OR EXCLUDED.erased",
    )
    .bind(&task_ids)
    .bind(&task_versions)
    .bind(&task_erased)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A task folded from its history, with the instant each reminder of its
/// schedule last entered it.
#[derive(Debug)]
struct Folded {
    task: Task,
    /// When each reminder of the schedule last entered it; `None` for one
    /// already in the schedule of the snapshot the fold started from.
    first_scheduled: HashMap<Uuid, Option<DateTime<Utc>>>,
    /// The version of the last event folded.
    version: i64,
    /// Some event folded reads as erased.
    erased: bool,
}

/// `history` folded onto `snapshot`, or from nothing. From a snapshot,
/// `history`'s events up to it are not applied again: they leave the
/// schedule alone ([`schedule_as_held`]).
///
/// From a snapshot, when each reminder already in its schedule entered it
/// is not known, and need not be: it was in the schedule of the version the
/// read model holds, so whether it was set in time was decided when that was
/// applied, and a pending row for it exists exactly if it was.
fn fold(
    snapshot: Option<OpenedSnapshot<Task>>,
    history: &[StoredEvent],
) -> Result<Folded, ProjectionError> {
    let (mut task, after) = snapshot.map_or((Task::default(), 0), |s| (s.state, s.sequence));
    let mut first_scheduled: HashMap<Uuid, Option<DateTime<Utc>>> = task
        .reminder_schedule()
        .into_iter()
        .map(|reminder| (reminder.reminder_id, None))
        .collect();
    for stored in history.iter().filter(|e| e.sequence > after) {
        task.apply(task_event(stored).map_err(|e| ProjectionError::Invalid(e.to_string()))?);
        // When each reminder last entered the schedule: one that left it (the
        // task completed, or its due date moved away) and came back after its
        // instant does not fire.
        let schedule = task.reminder_schedule();
        first_scheduled.retain(|id, _| schedule.iter().any(|r| r.reminder_id == *id));
        for reminder in schedule {
            first_scheduled
                .entry(reminder.reminder_id)
                .or_insert(Some(stored.recorded_at));
        }
    }
    Ok(Folded {
        task,
        first_scheduled,
        version: history.last().map_or(0, |e| e.sequence),
        erased: history.iter().any(|e| e.erased),
    })
}

/// Reminder rows as columns, for one `unnest` insert.
#[derive(Default)]
struct ReminderColumns {
    reminder_id: Vec<Uuid>,
    task_id: Vec<Uuid>,
    user_id: Vec<String>,
    title: Vec<String>,
    due_at: Vec<Option<DateTime<Utc>>>,
    remind_at: Vec<DateTime<Utc>>,
    priority: Vec<i16>,
    tags: Vec<serde_json::Value>,
    set_at: Vec<Option<DateTime<Utc>>>,
}

impl ReminderColumns {
    fn push(&mut self, id: Uuid, folded: &Folded) {
        let task = &folded.task;
        // Whoever set its reminders (its owner, or a member of its list).
        let owner = task.reminded().map(UserId::as_str).unwrap_or_default();
        for reminder in task.reminder_schedule() {
            self.reminder_id.push(reminder.reminder_id);
            self.task_id.push(id);
            self.user_id.push(owner.to_owned());
            self.title.push(task.title().to_owned());
            self.due_at.push(task.due().map(|due| due.instant()));
            self.remind_at.push(reminder.remind_at);
            self.priority.push(task.priority().rank());
            self.tags.push(serde_json::json!(task.tags().to_strings()));
            self.set_at.push(
                folded
                    .first_scheduled
                    .get(&reminder.reminder_id)
                    .copied()
                    .unwrap_or(Some(reminder.remind_at)),
            );
        }
    }
}

/// Untrusted bytes from `reminders` become a reminder, or a reason to
/// dead-letter them.
impl ConsumedMessage for ReminderMessage {
    fn decode(message: &OwnedMessage) -> Result<Self, String> {
        let payload = message.payload().ok_or("message has no payload")?;
        let event: ReminderMessage = serde_json::from_slice(payload)
            .map_err(|e| format!("not a reminder CloudEvent: {e}"))?;
        if event.specversion != "1.0" {
            return Err(format!(
                "unsupported CloudEvents specversion {}",
                event.specversion
            ));
        }
        let data = &event.data;
        UserId::parse(&data.user_id).map_err(|e| format!("user_id: {}", e.reason))?;
        if message
            .key()
            .is_some_and(|key| key != data.user_id.as_bytes())
        {
            return Err("message key is not the user id".into());
        }
        if event.id != data.reminder_id {
            return Err("id and data.reminder_id differ".into());
        }
        Uuid::parse_str(&data.reminder_id).map_err(|_| "reminder_id is not a UUID")?;
        Uuid::parse_str(&data.task_id).map_err(|_| "task_id is not a UUID")?;
        if data.title.len() > 4096 || data.tags.len() > 64 {
            return Err("title or tags beyond what a task may hold".into());
        }
        Ok(event)
    }
}

/// The `reminders` consumer that keeps each user's notification inbox: one
/// row per reminder, however often it is delivered.
#[derive(Debug, Default, Clone, Copy)]
pub struct NotificationInbox;

/// The most notifications kept per user; older ones are dropped.
pub const INBOX_KEEP: i64 = 1_000;

impl Projection for NotificationInbox {
    type Message = ReminderMessage;

    fn name(&self) -> &'static str {
        "notifications"
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        message: &ReminderMessage,
    ) -> Result<Outcome, ProjectionError> {
        let data = &message.data;
        let reminder_id = Uuid::parse_str(&data.reminder_id)
            .map_err(|_| ProjectionError::Invalid("reminder_id is not a UUID".into()))?;
        let task_id = Uuid::parse_str(&data.task_id)
            .map_err(|_| ProjectionError::Invalid("task_id is not a UUID".into()))?;
        // The message only names the reminder; what the inbox keeps is what
        // the reminders table holds for that user and task.
        let inserted = sqlx::query(
            "INSERT INTO notifications (id, user_id, task_id, title, due_at, remind_at, fired_at,
                                        late_ms, priority, tags)
             SELECT r.reminder_id, r.user_id, r.task_id, r.title, r.due_at, r.remind_at, $4,
                    greatest(0, (extract(epoch FROM $4 - r.remind_at) * 1000)::bigint),
                    r.priority, r.tags
               FROM reminders r
              WHERE r.reminder_id = $1 AND r.user_id = $2 AND r.task_id = $3
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(reminder_id)
        .bind(&data.user_id)
        .bind(task_id)
        .bind(data.fired_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            let known: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM notifications WHERE id = $1 AND user_id = $2)",
            )
            .bind(reminder_id)
            .bind(&data.user_id)
            .fetch_one(&mut *tx)
            .await?;
            if !known {
                return Err(ProjectionError::Invalid(
                    "no such reminder of this user and task".into(),
                ));
            }
        }
        if inserted == 0 {
            return Ok(Outcome::Duplicate);
        }
        sqlx::query(
            "DELETE FROM notifications
              WHERE user_id = $1
                AND seq <= (SELECT seq FROM notifications WHERE user_id = $1
                             ORDER BY seq DESC OFFSET $2 LIMIT 1)",
        )
        .bind(&data.user_id)
        .bind(INBOX_KEEP)
        .execute(&mut *tx)
        .await?;
        Ok(Outcome::Applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(sequence: i64, event_type: &str) -> StoredEvent {
        StoredEvent {
            position: event_store::LogPosition::default(),
            event_id: Uuid::nil(),
            recorded_at: Utc::now(),
            aggregate_type: "Task".into(),
            aggregate_id: Uuid::nil().to_string(),
            sequence,
            event_type: event_type.into(),
            event_version: "1.0".into(),
            payload: serde_json::json!({}),
            metadata: serde_json::json!({}),
            erased: false,
        }
    }

    #[test]
    fn a_snapshot_serves_where_the_events_up_to_it_leave_the_schedule_alone() {
        // The read model holds the snapshot's version or a later one.
        assert!(schedule_as_held(&[stored(26, "TaskCompleted")], 25));
        // It holds 23; events 24 and 25 only retitle and reprioritise.
        assert!(schedule_as_held(
            &[
                stored(24, "TaskEdited"),
                stored(25, "TaskPrioritySet"),
                stored(26, "TaskDueDateSet")
            ],
            25
        ));
        // A change of the schedule before the snapshot: folded whole.
        for changing in [
            "TaskRemindersSet",
            "TaskDueDateSet",
            "TaskCompleted",
            "TaskReverted",
        ] {
            assert!(
                !schedule_as_held(&[stored(24, changing), stored(25, "TaskEdited")], 25),
                "{changing}"
            );
        }
    }
}
