//! The events a batch of `task-events` messages names, read back from the
//! event store: how every projection kept per task at a version (the task
//! list, the reminders) opens a batch. A message only says which event
//! happened; what the event says is read from the store, so a forged or
//! stale message cannot put anything into a read model that the store does
//! not hold. Messages arrive at least once and possibly with gaps: a
//! duplicate is skipped, and a gap is filled on the way.

use std::collections::HashMap;
use std::future::Future;

use domain::{Task, Version};
use event_store::global_log::{self, StoredEvent};
use event_store::repository::{self, OpenedSnapshot, SNAPSHOT_EVERY};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::consumer::{task_ids, Outcome, Projection, ProjectionError, TaskEventMessage};

/// A read model kept per task at the version of the last event it applied.
/// It says where its versions are and what it makes of the events read
/// back; opening a batch is [`read_named_events`], the same for each.
pub(crate) trait PerTaskProjection: Send + Sync + 'static {
    /// Names the lock, the consumer group and the offset rows.
    const NAME: &'static str;
    /// Selects `(task id, version)` of the read model's tasks whose ids are
    /// in `$1`, `ORDER BY` the id `FOR UPDATE`: locked in id order, two
    /// writers of overlapping batches cannot deadlock.
    const LOCK_VERSIONS: &'static str;
    const READ_FROM: ReadFrom;

    /// Writes what the batch's tasks call for, and answers its outcomes;
    /// called only when the batch moves some task forward.
    fn apply_named(
        &self,
        tx: &mut PgConnection,
        named: NamedEvents,
    ) -> impl Future<Output = Result<Vec<Outcome>, ProjectionError>> + Send;
}

impl<P: PerTaskProjection> Projection for P {
    type Message = TaskEventMessage;

    fn name(&self) -> &'static str {
        P::NAME
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        message: &TaskEventMessage,
    ) -> Result<Outcome, ProjectionError> {
        let outcomes = self.apply_batch(tx, std::slice::from_ref(message)).await?;
        Ok(outcomes[0])
    }

    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        messages: &[TaskEventMessage],
    ) -> Result<Vec<Outcome>, ProjectionError> {
        // A user's erasure names no task (the erasure itself dropped what
        // the read models held of them), nor does a list's event.
        if !messages.iter().any(names_no_task) {
            return apply_tasks(self, tx, messages).await;
        }
        let tasks: Vec<TaskEventMessage> = messages
            .iter()
            .filter(|m| !names_no_task(m))
            .cloned()
            .collect();
        let mut applied = apply_tasks(self, tx, &tasks).await?.into_iter();
        Ok(messages
            .iter()
            .map(|m| {
                if names_no_task(m) {
                    Outcome::Ignored
                } else {
                    applied.next().unwrap_or(Outcome::Ignored)
                }
            })
            .collect())
    }
}

/// A batch of messages that each name a task.
async fn apply_tasks<P: PerTaskProjection>(
    projection: &P,
    tx: &mut PgConnection,
    messages: &[TaskEventMessage],
) -> Result<Vec<Outcome>, ProjectionError> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let named = read_named_events(tx, messages, P::LOCK_VERSIONS, P::READ_FROM).await?;
    let read: usize = named.tasks.iter().map(|task| task.events.len()).sum();
    metrics::counter!(infra::metric::PROJECTION_EVENTS_READ, "projection" => P::NAME)
        .increment(read as u64);
    if named.tasks.is_empty() {
        return Ok(named.outcomes);
    }
    projection.apply_named(tx, named).await
}

/// A message that names no task: a user's erasure, or a list's event (every
/// list event type starts with `List`; docs/adr/0015).
fn names_no_task(message: &TaskEventMessage) -> bool {
    let event_type = message.data.event_type.as_str();
    event_type == crate::erasure::USER_ERASED || event_type.starts_with("List")
}

/// Where a projection needs each task's events to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadFrom {
    /// After the version the read model holds: the events it lacks.
    HeldVersion,
    /// The task's snapshot in the store (`NamedTask::snapshot`) with the
    /// events after it, or after the version the read model holds if that
    /// is older (the events between are the projection's to judge), where
    /// the batch reaches the snapshot and `allowed` (a statement selecting
    /// those of the task ids in `$1` whose rows let a fold start from a
    /// snapshot) names the task; else every event from the first, to fold.
    /// A fold that starts at a snapshot reads a long history's last events,
    /// not all of them.
    Snapshot { allowed: &'static str },
}

/// One task a batch moves forward.
#[derive(Debug)]
pub(crate) struct NamedTask {
    pub id: Uuid,
    /// Where its events start, with [`ReadFrom::Snapshot`]: the task as its
    /// snapshot holds it.
    pub snapshot: Option<OpenedSnapshot<Task>>,
    /// Its events from where the projection reads to the last one the batch
    /// names, in order, none missing.
    pub events: Vec<StoredEvent>,
}

/// A batch read back: what becomes of each message, and the tasks it moves
/// forward, in the order the batch first names them.
#[derive(Debug)]
pub(crate) struct NamedEvents {
    pub outcomes: Vec<Outcome>,
    pub tasks: Vec<NamedTask>,
}

impl NamedEvents {
    /// Events read for no message of the batch: a gap, filled from the store.
    pub fn gap_events(&self) -> usize {
        let read: usize = self.tasks.iter().map(|task| task.events.len()).sum();
        let applied = self
            .outcomes
            .iter()
            .filter(|o| **o == Outcome::Applied)
            .count();
        read.saturating_sub(applied)
    }
}

/// Locks the batch's tasks in the read model (`lock_versions`, as
/// [`PerTaskProjection::LOCK_VERSIONS`]), tells each message applied or a
/// duplicate of what the read model holds, reads every event the tasks need
/// in one query, and checks that each message names an event the store holds.
pub(crate) async fn read_named_events(
    tx: &mut PgConnection,
    messages: &[TaskEventMessage],
    lock_versions: &str,
    from: ReadFrom,
) -> Result<NamedEvents, ProjectionError> {
    let (ids, unique) = task_ids(messages)?;
    let held: HashMap<Uuid, Version> = sqlx::query_as(lock_versions)
        .bind(&unique)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
    let held_of = |id: &Uuid| held.get(id).copied().unwrap_or(0);

    // Each task is brought up to the highest sequence a message names;
    // `order` keeps the tasks in the order they first appear.
    let mut up_to: HashMap<Uuid, Version> = HashMap::new();
    let mut order = Vec::new();
    let mut outcomes = Vec::with_capacity(messages.len());
    for (id, message) in ids.iter().zip(messages) {
        let reached = up_to.get(id).copied().unwrap_or_else(|| held_of(id));
        if message.data.sequence <= reached {
            outcomes.push(Outcome::Duplicate);
            continue;
        }
        if !up_to.contains_key(id) {
            order.push(*id);
        }
        up_to.insert(*id, message.data.sequence);
        outcomes.push(Outcome::Applied);
    }
    if order.is_empty() {
        return Ok(NamedEvents {
            outcomes,
            tasks: Vec::new(),
        });
    }

    let mut snapshots = match from {
        ReadFrom::Snapshot { allowed } => {
            usable_snapshots(tx, &order, (&held, &up_to), allowed).await?
        }
        ReadFrom::HeldVersion => HashMap::new(),
    };
    let start_of = |id: &Uuid| match from {
        ReadFrom::HeldVersion => held_of(id),
        ReadFrom::Snapshot { .. } => snapshots.get(id).map_or(0, |s| s.sequence.min(held_of(id))),
    };
    let ranges: Vec<(String, Version, Version)> = order
        .iter()
        .map(|id| (id.to_string(), start_of(id), up_to[id]))
        .collect();
    let mut stored: HashMap<Uuid, Vec<StoredEvent>> = HashMap::with_capacity(order.len());
    for event in global_log::aggregates_events(&mut *tx, "Task", &ranges).await? {
        let id = Uuid::parse_str(&event.aggregate_id)
            .map_err(|_| ProjectionError::Invalid("a stored task id is not a UUID".into()))?;
        stored.entry(id).or_default().push(event);
    }

    // Every message beyond what the read model held names an event now read.
    for (id, message) in ids.iter().zip(messages) {
        let sequence = message.data.sequence;
        if sequence <= held_of(id) {
            continue;
        }
        let events = stored.get(id).map(Vec::as_slice).unwrap_or_default();
        let named = events.get((sequence - start_of(id) - 1) as usize);
        if !named.is_some_and(|e| e.sequence == sequence && e.event_id.to_string() == message.id) {
            return Err(ProjectionError::Invalid(
                "the event store holds no such event".into(),
            ));
        }
    }

    let starts: Vec<Version> = order.iter().map(start_of).collect();
    let mut tasks = Vec::with_capacity(order.len());
    for (id, start) in order.into_iter().zip(starts) {
        let target = up_to[&id];
        let events = stored.remove(&id).unwrap_or_default();
        if events.len() as i64 != target - start {
            return Err(ProjectionError::Invalid(format!(
                "events {} to {target} of task {id} are not all in the event store",
                start + 1
            )));
        }
        let snapshot = snapshots.remove(&id);
        tasks.push(NamedTask {
            id,
            snapshot,
            events,
        });
    }
    Ok(NamedEvents { outcomes, tasks })
}

/// The snapshots a fold of `tasks` may start from: those at or before the
/// last event the batch names of each (`up_to`), of tasks the read model
/// holds (`held`) and `allowed` names. None is looked for below the first
/// version a snapshot is taken at, so a batch of young tasks costs no query.
async fn usable_snapshots(
    tx: &mut PgConnection,
    tasks: &[Uuid],
    (held, up_to): (&HashMap<Uuid, Version>, &HashMap<Uuid, Version>),
    allowed: &str,
) -> Result<HashMap<Uuid, OpenedSnapshot<Task>>, ProjectionError> {
    let old_enough: Vec<Uuid> = tasks
        .iter()
        .filter(|id| {
            held.contains_key(id)
                && up_to
                    .get(id)
                    .is_some_and(|v| *v >= SNAPSHOT_EVERY as Version)
        })
        .copied()
        .collect();
    if old_enough.is_empty() {
        return Ok(HashMap::new());
    }
    let allowed: Vec<String> = sqlx::query_scalar::<_, Uuid>(allowed)
        .bind(&old_enough)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(Uuid::to_string)
        .collect();
    if allowed.is_empty() {
        return Ok(HashMap::new());
    }
    let opened = repository::opened_snapshots::<Task>(&mut *tx, &allowed).await?;
    Ok(opened
        .into_iter()
        .filter_map(|(id, snapshot)| {
            let id = Uuid::parse_str(&id).ok()?;
            (up_to.get(&id).is_some_and(|v| *v >= snapshot.sequence)).then_some((id, snapshot))
        })
        .collect())
}
