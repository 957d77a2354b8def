//! Folded rows written to `task_list` in one statement each way, every column
//! an array: new tasks inserted, changed tasks updated. Tags (arrays of
//! varying length, which Postgres arrays cannot nest) travel as JSON.

use chrono::{DateTime, NaiveDate, Utc};
use domain::Version;
use sqlx::PgConnection;
use uuid::Uuid;

use super::fold::Fields;
use crate::consumer::ProjectionError;

/// The rows as one `unnest` of arrays, `$1` to `$22`.
const ROWS: &str =
    "unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::bigint[],
                   $7::timestamptz[], $8::timestamptz[], $9::timestamptz[], $10::timestamptz[],
                   $11::smallint[], $12::jsonb[], $13::timestamptz[], $14::date[], $15::text[],
                   $16::jsonb[], $17::text[], $18::uuid[], $19::int[], $20::uuid[], $21::text[],
                   $22::text[])
      AS r (id, user_id, title, description, completed, version, created_at, updated_at,
            completed_at, deleted_at, priority, tags, due_at, due_date, time_zone, reminders,
            recurrence, series_id, occurrence, list_id, owner, assignee)";

/// Inserts tasks new to the read model.
pub(super) async fn insert(
    tx: &mut PgConnection,
    rows: Vec<Fields>,
) -> Result<(), ProjectionError> {
    let sql = format!(
        "INSERT INTO task_list (id, user_id, title, description, status, version, created_at,
                                updated_at, completed_at, deleted_at, priority, tags, due_at,
                                due_date, time_zone, reminders, recurrence, series_id, occurrence,
                                list_id, owner, assignee)
         SELECT id, user_id, title, description, {STATUS}, version, created_at, updated_at,
                completed_at, deleted_at, priority, {TAGS}, due_at, due_date, time_zone,
                reminders, recurrence, series_id, occurrence, list_id, owner, assignee
           FROM {ROWS}"
    );
    let count = rows.len();
    let written = Columns::of(rows)
        .bind(sqlx::query(&sql))
        .execute(&mut *tx)
        .await?;
    expect_all(written.rows_affected(), count, "inserted")
}

/// Updates tasks the read model holds (locked by the batch).
pub(super) async fn update(
    tx: &mut PgConnection,
    rows: Vec<Fields>,
) -> Result<(), ProjectionError> {
    let sql = format!(
        "UPDATE task_list AS t
            SET title = r.title, description = r.description, status = {STATUS},
                version = r.version, updated_at = r.updated_at, completed_at = r.completed_at,
                deleted_at = r.deleted_at, priority = r.priority, tags = {TAGS},
                due_at = r.due_at, due_date = r.due_date, time_zone = r.time_zone,
                reminders = r.reminders, recurrence = r.recurrence, series_id = r.series_id,
                occurrence = r.occurrence, user_id = r.user_id, list_id = r.list_id,
                owner = r.owner, assignee = r.assignee, change_seq = nextval('task_change_seq')
           FROM {ROWS}
          WHERE t.id = r.id"
    );
    let count = rows.len();
    let written = Columns::of(rows)
        .bind(sqlx::query(&sql))
        .execute(&mut *tx)
        .await?;
    expect_all(written.rows_affected(), count, "updated")
}

const STATUS: &str = "CASE WHEN r.completed THEN 'completed' ELSE 'open' END";
const TAGS: &str = "ARRAY(SELECT jsonb_array_elements_text(r.tags))";

fn expect_all(written: u64, rows: usize, what: &str) -> Result<(), ProjectionError> {
    if written as usize != rows {
        return Err(ProjectionError::Invalid(format!(
            "{written} of {rows} tasks were {what}"
        )));
    }
    Ok(())
}

/// [`Fields`] as columns, in `ROWS`' order.
#[derive(Default)]
struct Columns {
    id: Vec<Uuid>,
    user_id: Vec<String>,
    title: Vec<String>,
    description: Vec<Option<String>>,
    completed: Vec<bool>,
    version: Vec<Version>,
    created_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
    completed_at: Vec<Option<DateTime<Utc>>>,
    deleted_at: Vec<Option<DateTime<Utc>>>,
    priority: Vec<i16>,
    tags: Vec<serde_json::Value>,
    due_at: Vec<Option<DateTime<Utc>>>,
    due_date: Vec<Option<NaiveDate>>,
    time_zone: Vec<Option<String>>,
    reminders: Vec<serde_json::Value>,
    recurrence: Vec<Option<String>>,
    series_id: Vec<Option<Uuid>>,
    occurrence: Vec<Option<i32>>,
    list_id: Vec<Uuid>,
    owner: Vec<String>,
    assignee: Vec<Option<String>>,
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

impl Columns {
    fn of(rows: Vec<Fields>) -> Self {
        let mut columns = Self::default();
        for row in rows {
            columns.id.push(row.id);
            columns.user_id.push(row.user_id);
            columns.title.push(row.title);
            columns.description.push(row.description);
            columns.completed.push(row.completed);
            columns.version.push(row.version);
            columns.created_at.push(row.created_at);
            columns.updated_at.push(row.updated_at);
            columns.completed_at.push(row.completed_at);
            columns.deleted_at.push(row.deleted_at);
            columns.priority.push(row.priority);
            columns.tags.push(serde_json::Value::from(row.tags));
            columns.due_at.push(row.due_at);
            columns.due_date.push(row.due_date);
            columns.time_zone.push(row.time_zone);
            columns.reminders.push(row.reminders);
            columns.recurrence.push(row.recurrence);
            columns.series_id.push(row.series_id);
            columns.occurrence.push(row.occurrence);
            columns.list_id.push(row.list_id);
            columns.owner.push(row.owner);
            columns.assignee.push(row.assignee);
        }
        columns
    }

    fn bind(self, query: Query<'_>) -> Query<'_> {
        query
            .bind(self.id)
            .bind(self.user_id)
            .bind(self.title)
            .bind(self.description)
            .bind(self.completed)
            .bind(self.version)
            .bind(self.created_at)
            .bind(self.updated_at)
            .bind(self.completed_at)
            .bind(self.deleted_at)
            .bind(self.priority)
            .bind(self.tags)
            .bind(self.due_at)
            .bind(self.due_date)
            .bind(self.time_zone)
            .bind(self.reminders)
            .bind(self.recurrence)
            .bind(self.series_id)
            .bind(self.occurrence)
            .bind(self.list_id)
            .bind(self.owner)
            .bind(self.assignee)
    }
}
