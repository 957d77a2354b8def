//! The GraphQL query root over the task list read model. Every query is scoped
//! to the verified caller.

use async_graphql::connection::{Connection, CursorType, Edge};
use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use command_api::{Actor, ErrorCode, PriorityLevel};
use domain::values::{Priority, Reminder};
use projections::task_list::{self, CreatedKey};
use projections::TaskRow;
use sqlx::PgPool;
use uuid::Uuid;

/// Page size when `first` is not given, and the most one page may hold.
const DEFAULT_PAGE: i64 = 20;
const MAX_PAGE: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum TaskStatus {
    Open,
    Completed,
}

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
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<TaskRow> for Task {
    fn from(row: TaskRow) -> Self {
        let status = if row.status == "completed" {
            TaskStatus::Completed
        } else {
            TaskStatus::Open
        };
        let due = row.due();
        let reminders = row
            .reminders()
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
                fires_at: reminder.fires_at(due.as_ref()),
            })
            .collect();
        let priority = match row.priority {
            1 => Priority::Low,
            2 => Priority::Medium,
            3 => Priority::High,
            4 => Priority::Urgent,
            _ => Priority::None,
        };
        Self {
            id: ID(row.id.to_string()),
            next_reminder_at: row.next_reminder_at(Utc::now()),
            title: row.title,
            description: row.description,
            status,
            completed: status == TaskStatus::Completed,
            priority: priority.into(),
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
        }
    }
}

/// An opaque cursor: the row's position in the newest-first order.
struct TaskCursor(CreatedKey);

impl CursorType for TaskCursor {
    type Error = &'static str;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        const INVALID: &str = "the cursor is not one this API issued";
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| INVALID)?;
        let text = String::from_utf8(bytes).map_err(|_| INVALID)?;
        let (micros, id) = text.split_once('|').ok_or(INVALID)?;
        let created_at = micros
            .parse()
            .ok()
            .and_then(DateTime::<Utc>::from_timestamp_micros)
            .ok_or(INVALID)?;
        let id = Uuid::parse_str(id).map_err(|_| INVALID)?;
        Ok(Self(CreatedKey { created_at, id }))
    }

    fn encode_cursor(&self) -> String {
        let text = format!("{}|{}", self.0.created_at.timestamp_micros(), self.0.id);
        URL_SAFE_NO_PAD.encode(text)
    }
}

#[derive(Default)]
pub struct TaskQuery;

#[Object]
impl TaskQuery {
    /// One of your tasks, or `null` if there is no such task of yours.
    async fn task(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Task>> {
        let actor = Actor::from_context(ctx)?;
        let Ok(id) = Uuid::parse_str(id.as_str()) else {
            return Err(ErrorCode::Validation
                .error("id: must be a UUID")
                .extend_with_field("id"));
        };
        let row = task_list::find(pool(ctx)?, actor.user_id.as_str(), id)
            .await
            .map_err(database_error)?;
        Ok(row.map(Task::from))
    }

    /// Your tasks, newest first, as a Relay connection.
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: default 20, at most 100.")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page's `pageInfo.endCursor`.")] after: Option<
            String,
        >,
    ) -> async_graphql::Result<Connection<String, Task>> {
        let actor = Actor::from_context(ctx)?;
        let limit = match first {
            None => DEFAULT_PAGE,
            Some(n) if (0..=MAX_PAGE as i32).contains(&n) => i64::from(n),
            Some(_) => {
                return Err(ErrorCode::Validation
                    .error(format!("first: must be between 0 and {MAX_PAGE}"))
                    .extend_with_field("first"))
            }
        };
        let after = after
            .as_deref()
            .map(TaskCursor::decode_cursor)
            .transpose()
            .map_err(|reason| {
                ErrorCode::Validation
                    .error(format!("after: {reason}"))
                    .extend_with_field("after")
            })?;
        let mut rows = task_list::newest_first(
            pool(ctx)?,
            actor.user_id.as_str(),
            after.as_ref().map(|c| c.0),
            limit + 1,
        )
        .await
        .map_err(database_error)?;
        let has_next = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let mut connection = Connection::new(after.is_some(), has_next);
        connection.edges.extend(rows.into_iter().map(|row| {
            let cursor = TaskCursor(CreatedKey {
                created_at: row.created_at,
                id: row.id,
            });
            Edge::new(cursor.encode_cursor(), Task::from(row))
        }));
        Ok(connection)
    }
}

trait WithField {
    fn extend_with_field(self, field: &'static str) -> Self;
}

impl WithField for async_graphql::Error {
    fn extend_with_field(self, field: &'static str) -> Self {
        use async_graphql::ErrorExtensions;
        self.extend_with(|_, e| e.set("field", field))
    }
}

fn pool<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a PgPool> {
    ctx.data::<PgPool>()
        .map_err(|_| ErrorCode::Internal.error("internal error"))
}

fn database_error(error: sqlx::Error) -> async_graphql::Error {
    tracing::error!(error = ?error, "read model query failed");
    ErrorCode::Internal.error("internal error")
}
