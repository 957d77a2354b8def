//! A `task_list` row as the rest of the read side reads it: typed with the
//! domain's `TaskStatus` and `Priority`, converted once from the columns as
//! stored, here and nowhere else.

use chrono::{DateTime, NaiveDate, Utc};
use domain::values::{Due, Priority, Reminders, TimeZone};
use domain::{TaskStatus, Version};
use serde::Deserialize;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgRow, PgTypeInfo, PgValueRef};
use sqlx::{FromRow, Postgres};
use uuid::Uuid;

/// The columns a [`TaskRow`] is read from.
pub const COLUMNS: &str =
    "id, user_id, list_id, owner, assignee, title, description, status, version, created_at, updated_at, \
     completed_at, deleted_at, priority, tags, due_at, due_date, time_zone, reminders, recurrence, \
     series_id, occurrence, change_seq";

/// A task as the read model holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub id: Uuid,
    /// The key it is read under: its owner's id in their Inbox, `list <id>`
    /// in a shared list ([`crate::task_list::reader_key`]).
    pub user_id: String,
    /// Its list: a shared one, or its owner's Inbox.
    pub list_id: Uuid,
    pub owner: String,
    /// The member it is given to, if any.
    pub assignee: Option<String>,
    pub title: String,
    pub description: Option<String>,
    /// Where the task stands: the trash overrides whether it was done.
    pub status: TaskStatus,
    /// Whether it is done, in the trash or not.
    pub completed: bool,
    pub version: Version,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub due_date: Option<NaiveDate>,
    pub time_zone: Option<String>,
    pub reminders: serde_json::Value,
    pub recurrence: Option<String>,
    pub series_id: Option<Uuid>,
    pub occurrence: Option<i32>,
    /// The number of the last change: the owner's change cursor.
    pub change_seq: i64,
}

impl TaskRow {
    /// Whether it is in a shared list (read under the list's key), not in
    /// its owner's Inbox.
    pub fn in_shared_list(&self) -> bool {
        self.user_id != self.owner
    }

    /// The due date as the domain knows it.
    pub fn due(&self) -> Option<Due> {
        let zone = self
            .time_zone
            .as_deref()
            .and_then(|z| TimeZone::parse(z).ok())
            .unwrap_or(TimeZone::UTC);
        match (self.due_date, self.due_at) {
            (Some(date), _) => Some(Due::all_day(date, zone)),
            (None, Some(at)) => Some(Due::at(at, zone)),
            (None, None) => None,
        }
    }

    pub fn reminders(&self) -> Reminders {
        Reminders::deserialize(&self.reminders).unwrap_or_default()
    }
}

/// What the `status` column holds: whether the task is done. The trash is
/// `deleted_at`, so a task in it keeps the status it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredStatus {
    Open,
    Completed,
}

impl StoredStatus {
    pub fn of(completed: bool) -> Self {
        if completed {
            Self::Completed
        } else {
            Self::Open
        }
    }

    /// The column's text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Completed => "completed",
        }
    }
}

impl sqlx::Type<Postgres> for StoredStatus {
    fn type_info() -> PgTypeInfo {
        <str as sqlx::Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <str as sqlx::Type<Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for StoredStatus {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as sqlx::Decode<'r, Postgres>>::decode(value)?;
        [Self::Open, Self::Completed]
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| format!("{text:?} is not a task status").into())
    }
}

/// [`COLUMNS`] as stored.
#[derive(FromRow)]
struct StoredTask {
    id: Uuid,
    user_id: String,
    list_id: Uuid,
    owner: String,
    assignee: Option<String>,
    title: String,
    description: Option<String>,
    status: StoredStatus,
    version: Version,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    /// [`Priority::rank`].
    priority: i16,
    tags: Vec<String>,
    due_at: Option<DateTime<Utc>>,
    due_date: Option<NaiveDate>,
    time_zone: Option<String>,
    reminders: serde_json::Value,
    recurrence: Option<String>,
    series_id: Option<Uuid>,
    occurrence: Option<i32>,
    change_seq: i64,
}

impl TryFrom<StoredTask> for TaskRow {
    type Error = sqlx::Error;

    fn try_from(stored: StoredTask) -> Result<Self, Self::Error> {
        let priority = Priority::from_rank(stored.priority);
        if priority.rank() != stored.priority {
            return Err(sqlx::Error::ColumnDecode {
                index: "priority".into(),
                source: format!("{} is not a priority rank", stored.priority).into(),
            });
        }
        let completed = stored.status == StoredStatus::Completed;
        let status = match (stored.deleted_at, completed) {
            (Some(_), _) => TaskStatus::Deleted,
            (None, true) => TaskStatus::Completed,
            (None, false) => TaskStatus::Open,
        };
        Ok(Self {
            id: stored.id,
            user_id: stored.user_id,
            list_id: stored.list_id,
            owner: stored.owner,
            assignee: stored.assignee,
            title: stored.title,
            description: stored.description,
            status,
            completed,
            version: stored.version,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
            completed_at: stored.completed_at,
            deleted_at: stored.deleted_at,
            priority,
            tags: stored.tags,
            due_at: stored.due_at,
            due_date: stored.due_date,
            time_zone: stored.time_zone,
            reminders: stored.reminders,
            recurrence: stored.recurrence,
            series_id: stored.series_id,
            occurrence: stored.occurrence,
            change_seq: stored.change_seq,
        })
    }
}

/// Any query that selects [`COLUMNS`] reads its rows as `TaskRow`s.
impl<'r> FromRow<'r, PgRow> for TaskRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        StoredTask::from_row(row)?.try_into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(status: StoredStatus, deleted: bool, priority: i16) -> StoredTask {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        StoredTask {
            id: Uuid::nil(),
            user_id: "alice".into(),
            list_id: Uuid::nil(),
            owner: "alice".into(),
            assignee: None,
            title: "t".into(),
            description: None,
            status,
            version: 1,
            created_at: at,
            updated_at: at,
            completed_at: (status == StoredStatus::Completed).then_some(at),
            deleted_at: deleted.then_some(at),
            priority,
            tags: Vec::new(),
            due_at: None,
            due_date: None,
            time_zone: None,
            reminders: serde_json::json!([]),
            recurrence: None,
            series_id: None,
            occurrence: None,
            change_seq: 1,
        }
    }

    #[test]
    fn the_trash_overrides_whether_a_task_was_done() {
        for (status, deleted, expected, completed) in [
            (StoredStatus::Open, false, TaskStatus::Open, false),
            (StoredStatus::Completed, false, TaskStatus::Completed, true),
            (StoredStatus::Open, true, TaskStatus::Deleted, false),
            (StoredStatus::Completed, true, TaskStatus::Deleted, true),
        ] {
            let row = TaskRow::try_from(stored(status, deleted, 0)).unwrap();
            assert_eq!((row.status, row.completed), (expected, completed));
        }
    }

    #[test]
    fn a_priority_is_read_by_its_rank_and_only_a_rank_reads() {
        let row = TaskRow::try_from(stored(StoredStatus::Open, false, 3)).unwrap();
        assert_eq!(row.priority, Priority::High);
        assert!(TaskRow::try_from(stored(StoredStatus::Open, false, 5)).is_err());
    }

    #[test]
    fn a_stored_status_is_its_column_text() {
        assert_eq!(StoredStatus::of(true).as_str(), "completed");
        assert_eq!(StoredStatus::of(false).as_str(), "open");
    }
}
