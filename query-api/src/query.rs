//! The GraphQL query root over the task list read model. Every query is scoped
//! to the verified caller.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::{DateTime, NaiveDate, Utc};
use domain::list::inbox_of;
use domain::values::{Due, Reminder, Reminders};
use domain::Version;
use projections::task_list;
use projections::task_query::{self, ListQuery, Readers};
use projections::TaskRow;
use sqlx::PgPool;
use uuid::Uuid;

use crate::listing::{
    decode_cursor, fingerprint, to_filter, to_order, to_search, TaskCursor, TaskFilter, TaskOrder,
    TaskSearch,
};
use crate::listless::ListlessUsers;
use crate::read_pool::KeptPlans;
use crate::LiveHub;
use api_core::error::{ApiError, ApiResult};
use api_core::request::{actor, service};
use api_core::{PriorityLevel, TaskStatus};

/// Page size when `first` is not given, and the most one page may hold.
const DEFAULT_PAGE: i64 = 20;
const MAX_PAGE: i64 = 100;

/// A recurring task's place in its series.
#[derive(Debug, SimpleObject)]
pub struct SeriesInfo {
    /// Shared by every occurrence of the series.
    pub id: ID,
    /// 1 for the first occurrence.
    pub occurrence: i32,
}

/// A reminder: at an instant, or some minutes before the due time.
#[derive(Debug, SimpleObject)]
pub struct ReminderInfo {
    pub at: Option<DateTime<Utc>>,
    pub minutes_before: Option<i32>,
    /// When it fires for the current due date.
    pub fires_at: Option<DateTime<Utc>>,
}

/// A task as the read model holds it.
#[derive(Debug, SimpleObject)]
pub struct Task {
    pub id: ID,
    pub title: String,
    pub description: Option<String>,
    pub status: TaskStatus,
    /// Whether it is done, in the trash or not (`status` says `DELETED` there).
    pub completed: bool,
    pub priority: PriorityLevel,
    /// Normalised to lower case, sorted.
    pub tags: Vec<String>,
    /// The instant the task falls due (for an all-day task, the end of its day).
    pub due_at: Option<DateTime<Utc>>,
    /// Set for all-day tasks.
    pub due_date: Option<NaiveDate>,
    /// The IANA zone of the due date and recurrence.
    pub time_zone: Option<String>,
    pub reminders: Vec<ReminderInfo>,
    /// The next reminder that will fire, if any.
    pub next_reminder_at: Option<DateTime<Utc>>,
    /// The repeat rule as RRULE text.
    pub recurrence: Option<String>,
    pub series: Option<SeriesInfo>,
    /// The version of the last event the read model has applied.
    pub version: Version,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The list it is in: a shared list, or its owner's Inbox.
    pub list_id: ID,
    /// The user it belongs to: who created it, or moved it to their Inbox.
    pub owner: String,
    /// The member it is given to, if any.
    pub assignee: Option<String>,
}

impl From<TaskRow> for Task {
    fn from(row: TaskRow) -> Self {
        let due = row.due();
        let schedule = row.reminders();
        let reminders = reminder_infos(&schedule, due.as_ref());
        Self {
            id: ID(row.id.to_string()),
            next_reminder_at: schedule.next_after(Utc::now(), due.as_ref()),
            title: row.title,
            description: row.description,
            status: row.status.into(),
            completed: row.completed,
            priority: row.priority.into(),
            tags: row.tags,
            due_at: row.due_at,
            due_date: row.due_date,
            time_zone: row.time_zone,
            reminders,
            recurrence: row.recurrence,
            series: row.series_id.map(|id| SeriesInfo {
                id: ID(id.to_string()),
                occurrence: row.occurrence.unwrap_or(1),
            }),
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            completed_at: row.completed_at,
            list_id: ID(row.list_id.to_string()),
            owner: row.owner,
            assignee: row.assignee,
        }
    }
}

/// Each reminder as the API shows it, for a task due at `due`.
pub(crate) fn reminder_infos(reminders: &Reminders, due: Option<&Due>) -> Vec<ReminderInfo> {
    reminders
        .as_slice()
        .iter()
        .map(|reminder| ReminderInfo {
            at: match reminder {
                Reminder::At(at) => Some(*at),
                Reminder::MinutesBefore(_) => None,
            },
            minutes_before: match reminder {
                Reminder::MinutesBefore(minutes) => i32::try_from(*minutes).ok(),
                Reminder::At(_) => None,
            },
            fires_at: reminder.fires_at(due),
        })
        .collect()
}

/// A task folded from the event store (time travel), shown like one from
/// the read model.
impl From<event_store::history::FoldedTask> for Task {
    fn from(folded: event_store::history::FoldedTask) -> Self {
        let task = &folded.task;
        let due = task.due();
        Self {
            id: ID(task.id().map(|id| id.to_string()).unwrap_or_default()),
            title: task.title().to_owned(),
            description: task.description().map(str::to_owned),
            status: task.status().into(),
            completed: folded.completed_at.is_some(),
            priority: task.priority().into(),
            tags: task.tags().to_strings(),
            due_at: due.map(Due::instant),
            due_date: due.and_then(Due::date),
            time_zone: due.map(|due| due.time_zone.to_string()),
            reminders: reminder_infos(task.reminders(), due),
            next_reminder_at: task.reminders().next_after(Utc::now(), due),
            recurrence: task.series().map(|s| s.rule.as_str().to_owned()),
            series: task.series().map(|s| SeriesInfo {
                id: ID(s.id.to_string()),
                occurrence: s.occurrence as i32,
            }),
            version: folded.version,
            created_at: folded.created_at,
            updated_at: folded.updated_at,
            completed_at: folded.completed_at,
            list_id: ID(task
                .list()
                .or_else(|| task.owner().map(domain::list::inbox_of))
                .unwrap_or_default()
                .to_string()),
            owner: task
                .owner()
                .map(|o| o.as_str().to_owned())
                .unwrap_or_default(),
            assignee: task.assignee().map(|a| a.as_str().to_owned()),
        }
    }
}

#[derive(Default)]
pub struct TaskQuery;

#[Object]
impl TaskQuery {
    /// One of your tasks, or `null` if there is no such task of yours. With
    /// `minVersion` (a mutation's `version`), waits up to the read-your-writes
    /// bound for the read model to catch up; compare `version` to tell.
    async fn task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        min_version: Option<Version>,
    ) -> ApiResult<Option<Task>> {
        let id = parse_uuid("id", &id)?;
        if let Some(version) = min_version {
            wait_for(ctx, id, version).await?;
        }
        let row = task_list::find(pool(ctx)?, &readers(ctx).await?, id).await?;
        Ok(row.map(Task::from))
    }

    /// Your tasks as a Relay connection: filtered, searched, ordered, paged.
    /// Pages hold 20 tasks unless `first`/`last` say otherwise (at most 100).
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        complexity = "(first.unwrap_or(20).max(last.unwrap_or(0)).clamp(1, 100) as usize) * child_complexity + 1"
    )]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        filter: Option<TaskFilter>,
        search: Option<TaskSearch>,
        order_by: Option<TaskOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        #[graphql(desc = "Wait (bounded) until the read model holds this task at this version.")]
        wait_for_task: Option<ID>,
        wait_for_version: Option<Version>,
    ) -> ApiResult<Connection<TaskCursor, Task, TaskConnectionExtra>> {
        let actor = actor(ctx)?;
        let mut readers = readers(ctx).await?;
        if let Some(lists) = filter.as_ref().and_then(|f| f.list_ids.as_ref()) {
            readers = readers.only(&parse_list_ids(lists)?, inbox_of(&actor.user_id));
        }
        let filter = filter.as_ref().map(to_filter).transpose()?;
        let search = search.as_ref().map(to_search).transpose()?;
        let order = to_order(order_by, search.as_ref())?;
        let fingerprint = fingerprint(&filter, &search, order);
        let (limit, backwards, cursor) = match (first, last) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid("last", "give first or last, not both"))
            }
            (_, Some(n)) => (
                page_size("last", Some(n))?,
                true,
                before.as_deref().map(|c| ("before", c)),
            ),
            (n, None) => (
                page_size("first", n)?,
                false,
                after.as_deref().map(|c| ("after", c)),
            ),
        };
        let from = cursor
            .map(|(field, c)| decode_cursor(field, c, fingerprint, order))
            .transpose()?;
        let stale = match (wait_for_task, wait_for_version) {
            (Some(id), Some(version)) => {
                !wait_for(ctx, parse_uuid("waitForTask", &id)?, version).await?
            }
            _ => false,
        };
        let query = ListQuery {
            readers,
            filter,
            search,
            order,
            from,
            backwards,
            limit: limit + 1,
        };
        // A query for `totalCount` alone reads no page.
        let selection = ctx.look_ahead();
        let mut rows = if ["edges", "nodes", "pageInfo"]
            .iter()
            .any(|field| selection.field(field).exists())
        {
            if task_query::one_plan_for_every_reader(&query) {
                let kept = &service::<KeptPlans>(ctx)?.0;
                kept.run(async |conn| task_query::list(conn, &query).await)
                    .await?
            } else {
                task_query::list(&mut *pool(ctx)?.acquire().await?, &query).await?
            }
        } else {
            Vec::new()
        };
        let more = rows.len() as i64 > limit;
        if more {
            if backwards {
                rows.remove(0);
            } else {
                rows.truncate(limit as usize);
            }
        }
        let (has_previous, has_next) = if backwards {
            (more, query.from.is_some())
        } else {
            (query.from.is_some(), more)
        };
        let mut connection = Connection::with_additional_fields(
            has_previous,
            has_next,
            TaskConnectionExtra { query, stale },
        );
        connection.edges.extend(rows.into_iter().map(|listed| {
            Edge::new(
                TaskCursor::new(listed.position, fingerprint),
                Task::from(listed.task),
            )
        }));
        Ok(connection)
    }

    /// Your tags with how many open and how many tasks in all carry each.
    async fn tags(&self, ctx: &Context<'_>) -> ApiResult<Vec<TagCount>> {
        let readers = readers(ctx).await?;
        let mut conn = pool(ctx)?.acquire().await?;
        let tags = task_query::tags(&mut conn, &readers).await?;
        Ok(tags
            .into_iter()
            .map(|(tag, open, total)| TagCount { tag, open, total })
            .collect())
    }

    /// Your task counts: kept by the projection, except the two that depend on
    /// the clock (overdue, due today).
    async fn task_stats(&self, ctx: &Context<'_>) -> ApiResult<TaskStats> {
        let readers = readers(ctx).await?;
        let mut tx = pool(ctx)?.begin().await?;
        let stats = task_query::stats(&mut tx, &readers).await?;
        let (overdue, due_today) = task_query::due_counts(&mut tx, &readers).await?;
        let by = |rank: usize| stats.open_by_priority.get(rank).copied().unwrap_or(0);
        Ok(TaskStats {
            open: stats.open,
            completed: stats.completed,
            deleted: stats.deleted,
            overdue,
            due_today,
            open_by_priority: OpenByPriority {
                none: by(0),
                low: by(1),
                medium: by(2),
                high: by(3),
                urgent: by(4),
            },
        })
    }
}

/// Fields of the task connection beside `edges`, `nodes` and `pageInfo`.
pub struct TaskConnectionExtra {
    query: ListQuery,
    stale: bool,
}

#[Object]
impl TaskConnectionExtra {
    /// How many tasks match, across all pages; counted only when asked for.
    async fn total_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        let mut conn = pool(ctx)?.acquire().await?;
        Ok(task_query::count(&mut conn, &self.query).await?)
    }

    /// True when `waitForTask`/`waitForVersion` were given and the read model
    /// had not caught up within the bound: the page may not show that change yet.
    async fn stale(&self) -> bool {
        self.stale
    }
}

#[derive(Debug, SimpleObject)]
pub struct TagCount {
    pub tag: String,
    pub open: i64,
    pub total: i64,
}

#[derive(Debug, SimpleObject)]
pub struct OpenByPriority {
    pub none: i64,
    pub low: i64,
    pub medium: i64,
    pub high: i64,
    pub urgent: i64,
}

#[derive(Debug, SimpleObject)]
pub struct TaskStats {
    pub open: i64,
    pub completed: i64,
    /// In the trash.
    pub deleted: i64,
    pub overdue: i64,
    pub due_today: i64,
    pub open_by_priority: OpenByPriority,
}

/// How long a query may wait for the read model to catch up.
#[derive(Debug, Clone, Copy)]
pub struct ReadYourWrites {
    pub max_wait: std::time::Duration,
}

/// Waits, bounded, until the caller's task `id` reaches `version`. Another
/// user's task is waited on exactly like a missing one: in answer and in time.
/// The caller's task `id` once the read model holds `version` of it (waits a
/// bounded time; `None` if it has not caught up, or the task is not theirs).
pub async fn task_at(ctx: &Context<'_>, id: Uuid, version: Version) -> ApiResult<Option<Task>> {
    if !wait_for(ctx, id, version).await? {
        return Ok(None);
    }
    let row = task_list::find(pool(ctx)?, &readers(ctx).await?, id).await?;
    Ok(row.map(Task::from))
}

pub(crate) async fn wait_for(ctx: &Context<'_>, id: Uuid, version: Version) -> ApiResult<bool> {
    let max_wait = ctx
        .data_opt::<ReadYourWrites>()
        .map_or(std::time::Duration::from_secs(2), |r| r.max_wait);
    let readers = readers(ctx).await?;
    Ok(task_query::wait_for_version(pool(ctx)?, &readers, id, version, max_wait).await?)
}

/// The keys of the tasks the caller reads (their Inbox and every shared
/// list they belong to), read once per request over HTTP: a request sees the
/// membership as it stood when it began, and a removal from the moment it
/// committed (docs/adr/0016). A caller this process knows to be in no
/// shared list reads their Inbox without a look-up (`listless`).
pub async fn readers(ctx: &Context<'_>) -> ApiResult<Readers> {
    let user = actor(ctx)?.user_id.as_str();
    let request = ctx.data_opt::<RequestReaders>();
    let listless = ctx.data_opt::<LiveHub>().map(|hub| hub.listless.as_ref());
    if !request.is_some_and(|r| r.afresh) && listless.is_some_and(|l| l.knows(user)) {
        metrics::counter!(infra::metric::READERS_LOOKUPS, "outcome" => "kept").increment(1);
        return Ok(Readers::inbox_of(user));
    }
    let read = || async {
        let began = listless.map(ListlessUsers::look_up);
        // One plan for every caller: where plans are kept.
        let kept = &service::<KeptPlans>(ctx)?.0;
        let readers = kept
            .run(async |conn| Readers::of(conn, user).await)
            .await
            .map_err(ApiError::from)?;
        metrics::counter!(infra::metric::READERS_LOOKUPS, "outcome" => "read").increment(1);
        if let (Some(listless), Some(began), false) = (listless, began, readers.has_lists()) {
            listless.found_listless(user, began);
        }
        Ok(readers)
    };
    match request {
        Some(request) => Ok(request.cell.get_or_try_init(read).await?.clone()),
        None => read().await,
    }
}

/// The caller's readers, kept for one request (put in each HTTP request's
/// data; a WebSocket's operations read them each time).
#[derive(Default)]
pub struct RequestReaders {
    cell: tokio::sync::OnceCell<Readers>,
    /// Looked up even for a caller known to be in no list: one whose own
    /// writes the request waits for (a list they just joined shows).
    afresh: bool,
}

impl RequestReaders {
    /// For a request that waits for the caller's own writes when `afresh`.
    pub fn new(afresh: bool) -> Self {
        Self {
            cell: tokio::sync::OnceCell::new(),
            afresh,
        }
    }
}

/// `listIds` as list ids, at most `MAX_LIST`.
pub(crate) fn parse_list_ids(lists: &[ID]) -> ApiResult<Vec<Uuid>> {
    if lists.len() > crate::listing::MAX_LIST {
        return Err(ApiError::invalid(
            "listIds",
            format!("at most {} lists", crate::listing::MAX_LIST),
        ));
    }
    lists.iter().map(|id| parse_uuid("listIds", id)).collect()
}

fn page_size(field: &'static str, requested: Option<i32>) -> ApiResult<i64> {
    match requested {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (0..=MAX_PAGE as i32).contains(&n) => Ok(i64::from(n)),
        Some(_) => Err(ApiError::invalid(
            field,
            format!("must be between 0 and {MAX_PAGE}"),
        )),
    }
}

fn parse_uuid(field: &'static str, id: &ID) -> ApiResult<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| ApiError::invalid(field, "must be a UUID"))
}

/// The read pool: every statement on it is cut off by the read side's timeout.
pub(crate) fn pool<'a>(ctx: &Context<'a>) -> ApiResult<&'a PgPool> {
    service::<PgPool>(ctx)
}
