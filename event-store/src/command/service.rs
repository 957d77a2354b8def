//! Executes one command against one task: load, decide, append with the loaded
//! sequence as the expected version. A lost race is retried on fresh state a
//! bounded number of times, unless the client pinned the version it saw.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::repository::{EventRepository, NotAllowedInList, CHECKED_LISTS};
use crate::TaskStore;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::EventStoreAggregateContext;
use cqrs_es::{Aggregate, AggregateError, EventStore};
use domain::values::TaskId;
use domain::{Task, TaskCommand, TaskServices, Version};

use super::turns::{Turns, TURNS};
use super::warm::{Warm, WarmCounts, WarmTask, DEFAULT_WARM_TASKS};
use super::{access, Actor, CommandError};

/// What a successful command leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandOutcome {
    pub task_id: TaskId,
    /// The task's version after the command: the sequence of its last event.
    pub version: Version,
}

pub struct CommandService {
    /// Commits (cqrs-es over `repository`).
    store: TaskStore,
    /// Loads a task in one statement.
    repository: EventRepository,
    services: TaskServices,
    max_attempts: u32,
    /// Tasks this process holds folded, so a command on one loads nothing.
    warm: Arc<Warm>,
    /// Commands on one task take turns here rather than race to the store.
    turns: Turns,
    /// Reads who belongs to which list, when a commit cannot say why.
    pool: sqlx::PgPool,
}

impl CommandService {
    pub fn new(pool: sqlx::PgPool, services: TaskServices) -> Self {
        let repository = EventRepository::new(pool.clone()).with_ready_pool();
        Self {
            pool,
            store: crate::task_store(repository.clone()),
            repository,
            services,
            max_attempts: 5,
            warm: Arc::new(Warm::new(DEFAULT_WARM_TASKS)),
            turns: Turns::new(TURNS),
        }
    }

    /// Keeps at most `tasks` tasks warm (0: loads every task per command).
    pub fn with_warm_tasks(mut self, tasks: usize) -> Self {
        self.warm = Arc::new(Warm::new(tasks));
        self
    }

    /// Forgets every task kept warm: a user was erased, and what they typed
    /// must not be decided on again (see [`Self::forgetting_erasures`]).
    pub fn forget_warm_tasks(&self) {
        self.warm.clear();
    }

    /// Forgets every task kept warm whenever a user is erased, in whichever
    /// process, until `shutdown`: run it beside the service.
    pub fn forgetting_erasures(
        &self,
        pool: sqlx::PgPool,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static {
        super::warm::forget_on_erasures(Arc::clone(&self.warm), pool, shutdown)
    }

    /// What the warm tasks' cache did so far.
    pub fn warm_counts(&self) -> WarmCounts {
        self.warm.counts()
    }

    /// Runs `command` on task `task_id` for `actor`. With `expected_version`,
    /// the command applies only if the task is still at that version.
    ///
    /// A warm task is decided on as held here; the commit's primary key
    /// proves it was current. What the commit cannot prove, a decision that
    /// appends nothing, a refusal or a version that differs from the
    /// client's, is decided again on the task loaded from the store.
    #[tracing::instrument(skip(self, command, actor), fields(task_id = %task_id, user_id = %actor.user_id, correlation_id = %actor.correlation_id))]
    pub async fn execute(
        &self,
        actor: &Actor,
        task_id: TaskId,
        command: TaskCommand,
        expected_version: Option<Version>,
    ) -> Result<CommandOutcome, CommandError> {
        debug_assert_eq!(command.actor(), &actor.user_id);
        let aggregate_id = task_id.to_string();
        let _turn = self.turns.take(&aggregate_id).await;
        let mut attempt = 1;
        let mut trust_warm = true;
        loop {
            let (held, warm) = match trust_warm.then(|| self.warm.get(&aggregate_id)).flatten() {
                Some(held) => (held, true),
                // A new task is assumed not to exist, which the commit proves
                // (its first event's sequence is taken, or not): one round
                // trip, like a warm task's.
                None if trust_warm && creates(&command) => (WarmTask::default(), true),
                None => (self.load(&aggregate_id).await?, false),
            };
            let loaded = version_of(held.sequence);
            // The shared lists whose membership the commit checks; what
            // the commit cannot prove (a refusal, nothing to append, a
            // version compared) is checked against the same rows first.
            let checked = held.task.lists_to_check(&command);
            let current_list = held.task.list();
            if let Some(expected) = expected_version {
                // Theirs, or in a shared list (whose membership is checked
                // next); not someone else's Inbox task, whatever list the
                // command names.
                let owned = held.task.owner() == Some(&actor.user_id) || held.task.list().is_some();
                if warm && (!owned || expected != loaded) {
                    trust_warm = false;
                    continue;
                }
                // Someone else's task answers as a missing one, before any
                // version is compared and reported.
                if !owned {
                    return Err(CommandError::Rejected(domain::TaskError::NotFound));
                }
                access::may_write(&self.pool, &actor.user_id, current_list, &checked).await?;
                if expected != loaded {
                    return Err(CommandError::Conflict {
                        expected,
                        actual: loaded,
                    });
                }
            }
            // An assignee in a shared list must be a member of it (read
            // before deciding; a removal at the same instant may leave the
            // task given to someone who just left).
            if let (
                TaskCommand::Assign {
                    assignee: Some(who),
                    ..
                },
                Some(list),
            ) = (&command, current_list)
            {
                if !access::is_member(&self.pool, who, list).await? {
                    access::may_write(&self.pool, &actor.user_id, current_list, &checked).await?;
                    return Err(CommandError::Rejected(
                        domain::ValidationError::new(
                            "userId",
                            "must be a member of the task's list",
                        )
                        .into(),
                    ));
                }
            }
            let sink = EventSink::default();
            // The sink applies each event it is given to the task deciding,
            // which becomes the task after the command; the commit (and a
            // snapshot it takes) starts from the task as held.
            let mut after = held.task.clone();
            let decided = after.handle(command.clone(), &self.services, &sink).await;
            let events = sink.collect().await;
            if warm && (decided.is_err() || events.is_empty()) {
                trust_warm = false;
                continue;
            }
            if decided.is_err() || events.is_empty() {
                access::may_write(&self.pool, &actor.user_id, current_list, &checked).await?;
            }
            decided?;
            if events.is_empty() {
                return Ok(CommandOutcome {
                    task_id,
                    version: loaded,
                });
            }
            let appended = events.len();
            let context = EventStoreAggregateContext {
                aggregate_id: aggregate_id.clone(),
                aggregate: held.task,
                current_sequence: held.sequence,
                current_snapshot: None,
            };
            match self
                .store
                .commit(events, context, metadata(actor, &checked))
                .await
            {
                Ok(_) => {
                    metrics::counter!(infra::metric::COMMANDS, "outcome" => "applied").increment(1);
                    let sequence = held.sequence + appended;
                    self.warm.put(
                        &aggregate_id,
                        WarmTask {
                            task: after,
                            sequence,
                        },
                    );
                    return Ok(CommandOutcome {
                        task_id,
                        version: version_of(sequence),
                    });
                }
                Err(AggregateError::AggregateConflict) => {
                    metrics::counter!(infra::metric::COMMAND_CONFLICTS).increment(1);
                    self.warm.forget(&aggregate_id);
                    trust_warm = false;
                    if expected_version.is_some() || attempt >= self.max_attempts {
                        let actual = self.current_version(&aggregate_id).await?;
                        return Err(CommandError::Conflict {
                            expected: expected_version.unwrap_or(loaded),
                            actual,
                        });
                    }
                    tracing::debug!(attempt, "lost a race for the task; retrying on fresh state");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                Err(AggregateError::UnexpectedError(cause)) if cause.is::<NotAllowedInList>() => {
                    access::may_write(&self.pool, &actor.user_id, current_list, &checked).await?;
                    // Allowed now: the membership changed since the commit
                    // read it. Decided again, within the same budget.
                    if attempt >= self.max_attempts {
                        return Err(CommandError::Rejected(domain::TaskError::NotFound));
                    }
                    attempt += 1;
                }
                Err(other) => {
                    self.warm.forget(&aggregate_id);
                    return Err(internal(other));
                }
            }
        }
    }

    /// The task as the store holds it, kept warm from now on.
    async fn load(&self, aggregate_id: &str) -> Result<WarmTask, CommandError> {
        let held = self.load_cold(aggregate_id).await?;
        self.warm.put(aggregate_id, held.clone());
        Ok(held)
    }

    /// The task as the store holds it: its snapshot and the events after it.
    async fn load_cold(&self, aggregate_id: &str) -> Result<WarmTask, CommandError> {
        let (task, sequence) = self
            .repository
            .load::<Task>(aggregate_id)
            .await
            .map_err(|e| internal(e.into()))?;
        Ok(WarmTask { task, sequence })
    }

    /// The version of task `task_id` if `actor` may read it, or `None`
    /// (someone else's answers as missing).
    pub async fn version_of_own(
        &self,
        actor: &Actor,
        task_id: TaskId,
    ) -> Result<Option<Version>, CommandError> {
        let held = self.load_cold(&task_id.to_string()).await?;
        let readable = access::may_read(&self.pool, &actor.user_id, &held.task).await?;
        Ok(readable.then(|| version_of(held.sequence)))
    }

    async fn current_version(&self, aggregate_id: &str) -> Result<Version, CommandError> {
        Ok(version_of(self.load_cold(aggregate_id).await?.sequence))
    }
}

/// Whether `command` starts a task.
fn creates(command: &TaskCommand) -> bool {
    matches!(
        command,
        TaskCommand::Create { .. } | TaskCommand::CreateOccurrence(_)
    )
}

/// cqrs-es counts in `usize`; a task never has more than `i64::MAX` events.
fn version_of(count: usize) -> Version {
    Version::try_from(count).unwrap_or(Version::MAX)
}

/// Who did it and on behalf of which request, stored with every event; and
/// the shared lists the commit checks they may change (see
/// [`CHECKED_LISTS`]).
fn metadata(actor: &Actor, checked: &[uuid::Uuid]) -> HashMap<String, String> {
    let mut metadata = HashMap::from([
        ("user_id".to_owned(), actor.user_id.to_string()),
        ("correlation_id".to_owned(), actor.correlation_id.clone()),
    ]);
    if !checked.is_empty() {
        let lists: Vec<String> = checked.iter().map(uuid::Uuid::to_string).collect();
        metadata.insert(CHECKED_LISTS.to_owned(), lists.join(" "));
    }
    // The command's own span, inside the request's: where the relay and the
    // projections pick the trace up again.
    if let Some(traceparent) = infra::trace::traceparent_of(&tracing::Span::current()) {
        metadata.insert("traceparent".to_owned(), traceparent);
    }
    metadata
}

/// A short, jittered pause so racing writers do not collide again in lockstep.
fn backoff(attempt: u32) -> Duration {
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 8);
    Duration::from_millis(u64::from(attempt) * 5 + jitter)
}

fn internal(error: AggregateError<domain::TaskError>) -> CommandError {
    match error {
        AggregateError::UserError(rejection) => CommandError::Rejected(rejection),
        AggregateError::AggregateConflict => CommandError::Internal("unexpected conflict".into()),
        AggregateError::DatabaseConnectionError(cause)
        | AggregateError::DeserializationError(cause)
        | AggregateError::UnexpectedError(cause) => CommandError::Internal(cause),
    }
}

impl From<AggregateError<domain::TaskError>> for CommandError {
    fn from(error: AggregateError<domain::TaskError>) -> Self {
        internal(error)
    }
}
