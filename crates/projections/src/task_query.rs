//! Reading the task list: composable filters, search (full text, prefix,
//! fuzzy), sort presets each served by an index, and keyset pages whose
//! cursors encode the sort key. SQL is built with bound parameters only.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::task_list::{TaskRow, COLUMNS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Open,
    Completed,
    /// In the trash.
    Deleted,
}

/// One predicate over the task list, or a combination of them.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Status(Vec<Status>),
    /// Priority ranks 0 (none) to 4 (urgent).
    PriorityIn(Vec<i16>),
    PriorityAtLeast(i16),
    PriorityAtMost(i16),
    TagsContainAll(Vec<String>),
    TagsContainAny(Vec<String>),
    /// A tag equal to the category or under it (`work` matches `work/clients`).
    Category(String),
    DueBefore(DateTime<Utc>),
    DueAfter(DateTime<Utc>),
    /// Open, and due before now.
    Overdue,
    /// Due on today's date in the task's own time zone.
    DueToday,
    NoDueDate,
    HasReminders(bool),
    IsRecurring(bool),
    CreatedAfter(DateTime<Utc>),
    CreatedBefore(DateTime<Utc>),
    UpdatedAfter(DateTime<Utc>),
    UpdatedBefore(DateTime<Utc>),
}

impl Filter {
    fn mentions_status(&self) -> bool {
        match self {
            Self::Status(_) => true,
            Self::And(all) | Self::Or(all) => all.iter().any(Self::mentions_status),
            Self::Not(inner) => inner.mentions_status(),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    /// `websearch_to_tsquery`: quotes, `-exclude`, `or`; ranked.
    FullText,
    /// Type-ahead: every word is a prefix of a word in the task.
    Prefix,
    /// Trigram similarity to the title; forgives typos.
    Fuzzy,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub query: String,
    pub mode: SearchMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Priority (highest first), due (soonest first, none last), newest first.
    Smart,
    DueAsc,
    PriorityDesc,
    CreatedDesc,
    UpdatedDesc,
    TitleAsc,
    /// Best match first; only with a search.
    Relevance,
}

/// A row's position in an order: its sort key, then its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub key: Vec<KeyValue>,
    pub id: Uuid,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum KeyValue {
    Int(i64),
    Float(f64),
    Text(String),
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub user_id: String,
    pub filter: Option<Filter>,
    pub search: Option<Search>,
    pub order: Order,
    /// Rows strictly after this position (or before it, when `backwards`).
    pub from: Option<Position>,
    pub backwards: bool,
    pub limit: i64,
}

/// A task with its position in the order it was listed in.
#[derive(Debug, Clone)]
pub struct Listed {
    pub task: TaskRow,
    pub position: Position,
}

impl Order {
    /// The sort key expressions, all ascending, then `id`.
    fn key_columns(self) -> &'static [&'static str] {
        match self {
            Self::Smart => &["sort_priority", "sort_due", "sort_created"],
            Self::DueAsc => &["sort_due"],
            Self::PriorityDesc => &["sort_priority", "sort_created"],
            Self::CreatedDesc => &["sort_created"],
            Self::UpdatedDesc => &["sort_updated"],
            Self::TitleAsc => &["(lower(title) COLLATE \"C\")"],
            Self::Relevance => &["(-relevance)"],
        }
    }

    fn key_of(self, row: &PgRow) -> Result<Vec<KeyValue>, sqlx::Error> {
        let int = |name: &str| -> Result<KeyValue, sqlx::Error> {
            Ok(match row.try_get::<i64, _>(name) {
                Ok(value) => KeyValue::Int(value),
                Err(_) => KeyValue::Int(i64::from(row.try_get::<i16, _>(name)?)),
            })
        };
        Ok(match self {
            Self::Smart => vec![
                int("sort_priority")?,
                int("sort_due")?,
                int("sort_created")?,
            ],
            Self::DueAsc => vec![int("sort_due")?],
            Self::PriorityDesc => vec![int("sort_priority")?, int("sort_created")?],
            Self::CreatedDesc => vec![int("sort_created")?],
            Self::UpdatedDesc => vec![int("sort_updated")?],
            Self::TitleAsc => vec![KeyValue::Text(row.try_get("title_key")?)],
            Self::Relevance => vec![KeyValue::Float(-row.try_get::<f64, _>("relevance")?)],
        })
    }
}

/// Builds the shared `FROM … WHERE …` of a listing and of its count.
fn push_where<'a>(sql: &mut QueryBuilder<'a, Postgres>, query: &'a ListQuery) {
    sql.push(" WHERE user_id = ").push_bind(&query.user_id);
    if !query.filter.as_ref().is_some_and(Filter::mentions_status) {
        sql.push(" AND deleted_at IS NULL");
    }
    if let Some(filter) = &query.filter {
        sql.push(" AND ");
        push_filter(sql, filter);
    }
    if let Some(search) = &query.search {
        sql.push(" AND ");
        if search.mode == SearchMode::Fuzzy {
            sql.push("(").push_bind(&search.query).push(" <% title)");
        } else {
            sql.push("search @@ ");
            push_tsquery(sql, search);
        }
    }
}

fn push_filter<'a>(sql: &mut QueryBuilder<'a, Postgres>, filter: &'a Filter) {
    let combine =
        |sql: &mut QueryBuilder<'a, Postgres>, parts: &'a [Filter], joiner: &str, empty: &str| {
            if parts.is_empty() {
                sql.push(empty);
                return;
            }
            sql.push("(");
            for (n, part) in parts.iter().enumerate() {
                if n > 0 {
                    sql.push(joiner);
                }
                push_filter(sql, part);
            }
            sql.push(")");
        };
    match filter {
        Filter::And(parts) => combine(sql, parts, " AND ", "TRUE"),
        Filter::Or(parts) => combine(sql, parts, " OR ", "FALSE"),
        Filter::Not(inner) => {
            sql.push("NOT coalesce(");
            push_filter(sql, inner);
            sql.push(", FALSE)");
        }
        Filter::Status(statuses) => {
            sql.push("(FALSE");
            for status in statuses {
                sql.push(match status {
                    Status::Open => " OR (deleted_at IS NULL AND status = 'open')",
                    Status::Completed => " OR (deleted_at IS NULL AND status = 'completed')",
                    Status::Deleted => " OR deleted_at IS NOT NULL",
                });
            }
            sql.push(")");
        }
        Filter::PriorityIn(ranks) => {
            sql.push("priority = ANY(")
                .push_bind(ranks.clone())
                .push(")");
        }
        Filter::PriorityAtLeast(rank) => {
            sql.push("priority >= ").push_bind(*rank);
        }
        Filter::PriorityAtMost(rank) => {
            sql.push("priority <= ").push_bind(*rank);
        }
        Filter::TagsContainAll(tags) => {
            sql.push("tags @> ").push_bind(tags.clone());
        }
        Filter::TagsContainAny(tags) => {
            sql.push("tags && ").push_bind(tags.clone());
        }
        Filter::Category(category) => {
            sql.push("EXISTS (SELECT 1 FROM unnest(tags) AS tag WHERE tag = ")
                .push_bind(category)
                .push(" OR starts_with(tag, ")
                .push_bind(format!("{category}/"))
                .push("))");
        }
        Filter::DueBefore(at) => {
            sql.push("due_at < ").push_bind(*at);
        }
        Filter::DueAfter(at) => {
            sql.push("due_at > ").push_bind(*at);
        }
        Filter::Overdue => {
            sql.push("(status = 'open' AND due_at < now())");
        }
        Filter::DueToday => {
            sql.push(
                "(CASE WHEN due_date IS NOT NULL THEN due_date \
                       ELSE (due_at AT TIME ZONE coalesce(time_zone, 'UTC'))::date END \
                  = (now() AT TIME ZONE coalesce(time_zone, 'UTC'))::date)",
            );
        }
        Filter::NoDueDate => {
            sql.push("due_at IS NULL");
        }
        Filter::HasReminders(has) => {
            sql.push(if *has {
                "reminders <> '[]'::jsonb"
            } else {
                "reminders = '[]'::jsonb"
            });
        }
        Filter::IsRecurring(is) => {
            sql.push(if *is {
                "recurrence IS NOT NULL"
            } else {
                "recurrence IS NULL"
            });
        }
        Filter::CreatedAfter(at) => {
            sql.push("created_at > ").push_bind(*at);
        }
        Filter::CreatedBefore(at) => {
            sql.push("created_at < ").push_bind(*at);
        }
        Filter::UpdatedAfter(at) => {
            sql.push("updated_at > ").push_bind(*at);
        }
        Filter::UpdatedBefore(at) => {
            sql.push("updated_at < ").push_bind(*at);
        }
    }
}

/// `buy mil` becomes `buy:* & mil:*`; anything but letters and digits is dropped.
fn prefix_query(raw: &str) -> String {
    let words: Vec<String> = raw
        .split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .map(|w| format!("{w}:*"))
        .collect();
    if words.is_empty() {
        // Matches nothing, rather than everything.
        "''".to_owned()
    } else {
        words.join(" & ")
    }
}

/// The text query of a full-text or prefix search.
fn push_tsquery<'a>(sql: &mut QueryBuilder<'a, Postgres>, search: &'a Search) {
    if search.mode == SearchMode::Prefix {
        sql.push("to_tsquery('simple', ")
            .push_bind(prefix_query(&search.query))
            .push(")");
    } else {
        sql.push("websearch_to_tsquery('english', ")
            .push_bind(&search.query)
            .push(")");
    }
}

fn push_relevance<'a>(sql: &mut QueryBuilder<'a, Postgres>, search: Option<&'a Search>) {
    match search {
        None => {
            sql.push("0::float8");
        }
        Some(search) if search.mode == SearchMode::Fuzzy => {
            sql.push("word_similarity(")
                .push_bind(&search.query)
                .push(", title)::float8");
        }
        Some(search) => {
            sql.push("ts_rank(search, ");
            push_tsquery(sql, search);
            sql.push(")::float8");
        }
    }
}

/// Fuzzy search matches words at least 0.3 similar (pg_trgm's default of 0.6
/// misses most typos); the setting lasts for the caller's transaction.
async fn prepare_search(conn: &mut PgConnection, query: &ListQuery) -> Result<(), sqlx::Error> {
    if query
        .search
        .as_ref()
        .is_some_and(|s| s.mode == SearchMode::Fuzzy)
    {
        sqlx::query("SET LOCAL pg_trgm.word_similarity_threshold = 0.3")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// One page of the listing, in the query's order (also when paging backwards).
#[tracing::instrument(skip(conn), fields(user_id = %query.user_id, order = ?query.order))]
pub async fn list(conn: &mut PgConnection, query: &ListQuery) -> Result<Vec<Listed>, sqlx::Error> {
    let columns = query.order.key_columns();
    let mut sql = QueryBuilder::new("SELECT * FROM (SELECT ");
    sql.push(COLUMNS).push(
        ", sort_priority, sort_due, sort_created, sort_updated, \
           (lower(title) COLLATE \"C\") AS title_key, ",
    );
    push_relevance(&mut sql, query.search.as_ref());
    sql.push(" AS relevance FROM task_list");
    push_where(&mut sql, query);
    sql.push(") AS listed");
    if let Some(from) = &query.from {
        sql.push(" WHERE (");
        for column in columns {
            sql.push(*column).push(", ");
        }
        sql.push("id) ")
            .push(if query.backwards { "<" } else { ">" })
            .push(" (");
        for value in &from.key {
            match value {
                KeyValue::Int(v) => sql.push_bind(*v),
                KeyValue::Float(v) => sql.push_bind(*v),
                KeyValue::Text(v) => sql.push_bind(v.clone()),
            };
            sql.push(", ");
        }
        sql.push_bind(from.id).push(")");
    }
    let direction = if query.backwards { " DESC" } else { " ASC" };
    sql.push(" ORDER BY ");
    for column in columns {
        sql.push(*column).push(direction).push(", ");
    }
    sql.push("id").push(direction);
    sql.push(" LIMIT ").push_bind(query.limit);

    prepare_search(conn, query).await?;
    let rows = sql.build().fetch_all(&mut *conn).await?;
    let mut listed = rows
        .iter()
        .map(|row| {
            Ok(Listed {
                task: TaskRow::from_row(row)?,
                position: Position {
                    key: query.order.key_of(row)?,
                    id: row.try_get("id")?,
                },
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    if query.backwards {
        listed.reverse();
    }
    Ok(listed)
}

/// How many tasks match, ignoring paging.
#[tracing::instrument(skip(conn), fields(user_id = %query.user_id))]
pub async fn count(conn: &mut PgConnection, query: &ListQuery) -> Result<i64, sqlx::Error> {
    let mut sql = QueryBuilder::new("SELECT count(*) FROM task_list");
    push_where(&mut sql, query);
    prepare_search(conn, query).await?;
    sql.build_query_scalar().fetch_one(&mut *conn).await
}

/// A user's task counts, as the projection keeps them.
#[derive(Debug, Clone, Default, FromRow)]
pub struct TaskStats {
    pub open: i64,
    pub completed: i64,
    pub deleted: i64,
    pub open_by_priority: Vec<i64>,
}

pub async fn stats(conn: &mut PgConnection, user_id: &str) -> Result<TaskStats, sqlx::Error> {
    let stats: Option<TaskStats> = sqlx::query_as(
        "SELECT open, completed, deleted, open_by_priority FROM task_stats WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(stats.unwrap_or_else(|| TaskStats {
        open_by_priority: vec![0; 5],
        ..TaskStats::default()
    }))
}

/// Open tasks past due, and tasks due today in their own zone: these depend on
/// the clock, so they are counted (over an index) rather than kept.
pub async fn due_counts(conn: &mut PgConnection, user_id: &str) -> Result<(i64, i64), sqlx::Error> {
    let overdue_today = ListQuery {
        user_id: user_id.to_owned(),
        filter: None,
        search: None,
        order: Order::DueAsc,
        from: None,
        backwards: false,
        limit: 0,
    };
    let overdue = count(
        conn,
        &ListQuery {
            filter: Some(Filter::Overdue),
            ..overdue_today.clone()
        },
    )
    .await?;
    let today = count(
        conn,
        &ListQuery {
            filter: Some(Filter::DueToday),
            ..overdue_today
        },
    )
    .await?;
    Ok((overdue, today))
}

/// A user's tags with how many open and how many tasks in all carry each.
pub async fn tags(
    conn: &mut PgConnection,
    user_id: &str,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT tag, open, total FROM tag_counts WHERE user_id = $1 AND total > 0 ORDER BY tag",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await
}

/// Waits, up to `timeout`, until the read model holds `task_id` at `version` or
/// later; `false` if it did not get there in time.
pub async fn wait_for_version(
    pool: &sqlx::PgPool,
    task_id: Uuid,
    version: i64,
    timeout: std::time::Duration,
) -> Result<bool, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let current: Option<i64> =
            sqlx::query_scalar("SELECT version FROM task_list WHERE id = $1")
                .bind(task_id)
                .fetch_optional(pool)
                .await?;
        if current.is_some_and(|v| v >= version) {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
