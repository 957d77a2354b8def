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
    /// Whether the filter looks at status and priority alone, whose counts
    /// the projection keeps.
    pub fn is_kept_count(&self) -> bool {
        match self {
            Self::And(all) | Self::Or(all) => all.iter().all(Self::is_kept_count),
            Self::Not(inner) => inner.is_kept_count(),
            Self::Status(_)
            | Self::PriorityIn(_)
            | Self::PriorityAtLeast(_)
            | Self::PriorityAtMost(_) => true,
            _ => false,
        }
    }

    /// Whether tasks with this status and priority rank match a filter that
    /// [`is_kept_count`](Self::is_kept_count); anything else never matches.
    fn matches_counted(&self, status: Status, rank: i16) -> bool {
        match self {
            Self::And(all) => all.iter().all(|f| f.matches_counted(status, rank)),
            Self::Or(all) => all.iter().any(|f| f.matches_counted(status, rank)),
            Self::Not(inner) => !inner.matches_counted(status, rank),
            Self::Status(statuses) => statuses.contains(&status),
            Self::PriorityIn(ranks) => ranks.contains(&rank),
            Self::PriorityAtLeast(min) => rank >= *min,
            Self::PriorityAtMost(max) => rank <= *max,
            _ => false,
        }
    }

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

/// The owner, and the filter: what every listing and count says.
fn push_where<'a>(sql: &mut QueryBuilder<'a, Postgres>, query: &'a ListQuery) {
    sql.push(" WHERE user_id = ").push_bind(&query.user_id);
    if !query.filter.as_ref().is_some_and(Filter::mentions_status) {
        sql.push(" AND deleted_at IS NULL");
    }
    if let Some(filter) = &query.filter {
        sql.push(" AND ");
        push_filter(sql, filter);
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

/// The words of a search: lower-cased, anything but letters and digits dropped.
fn words_of(raw: &str) -> Vec<String> {
    raw.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// What a search selects, made ready for SQL.
#[derive(Debug, Clone, PartialEq)]
enum Matching {
    /// No search.
    Everything,
    /// A search with no words in it, or a fuzzy word like none of the user's.
    Nothing,
    /// `websearch_to_tsquery` of what was typed.
    WebSearch,
    /// A text query in tsquery syntax over normalised words: prefixes, or the
    /// user's words close to what was typed.
    Lexemes(String),
}

/// The most words of the user's a fuzzy word stands for.
const FUZZY_WORDS: i64 = 16;

async fn resolve(conn: &mut PgConnection, query: &ListQuery) -> Result<Matching, sqlx::Error> {
    let Some(search) = &query.search else {
        return Ok(Matching::Everything);
    };
    if search.mode == SearchMode::FullText {
        return Ok(Matching::WebSearch);
    }
    let typed = words_of(&search.query);
    if typed.is_empty() {
        return Ok(Matching::Nothing);
    }
    if search.mode == SearchMode::Prefix {
        // `buy mil` becomes `'buy':* & 'mil':*`
        let prefixes: Vec<String> = typed.iter().map(|w| format!("'{w}':*")).collect();
        return Ok(Matching::Lexemes(prefixes.join(" & ")));
    }
    // Each typed word stands for the user's title words at least 0.3 similar
    // to it (pg_trgm's `%`), and every typed word must be matched.
    let close: Vec<(i32, String)> = sqlx::query_as(
        "SELECT typed.n::int, close.word
           FROM unnest($2::text[]) WITH ORDINALITY AS typed (word, n),
                LATERAL (SELECT word FROM task_words
                          WHERE user_id = $1 AND tasks > 0 AND word % typed.word
                          ORDER BY similarity(word, typed.word) DESC, word
                          LIMIT $3) AS close",
    )
    .bind(&query.user_id)
    .bind(&typed)
    .bind(FUZZY_WORDS)
    .fetch_all(&mut *conn)
    .await?;
    let mut groups = Vec::with_capacity(typed.len());
    for n in 1..=typed.len() as i32 {
        let words: Vec<String> = close
            .iter()
            .filter(|(m, _)| *m == n)
            .map(|(_, word)| format!("'{}':A", word.replace('\\', "\\\\").replace('\'', "''")))
            .collect();
        if words.is_empty() {
            return Ok(Matching::Nothing);
        }
        groups.push(format!("({})", words.join(" | ")));
    }
    Ok(Matching::Lexemes(groups.join(" & ")))
}

/// The search as a text query over the owner's words (migration 2004).
fn push_text_query<'a>(
    sql: &mut QueryBuilder<'a, Postgres>,
    query: &'a ListQuery,
    matching: &'a Matching,
) {
    sql.push("owner_tsquery(")
        .push_bind(&query.user_id)
        .push(", ");
    match matching {
        Matching::Lexemes(lexemes) => {
            sql.push_bind(lexemes).push("::tsquery");
        }
        _ => {
            let typed = query.search.as_ref().map_or("", |s| s.query.as_str());
            sql.push("websearch_to_tsquery('english', ")
                .push_bind(typed)
                .push(")");
        }
    }
    sql.push(")");
}

fn push_relevance<'a>(
    sql: &mut QueryBuilder<'a, Postgres>,
    query: &'a ListQuery,
    matching: &'a Matching,
) {
    match &query.search {
        Some(search) if query.order == Order::Relevance && search.mode == SearchMode::Fuzzy => {
            sql.push("word_similarity(")
                .push_bind(&search.query)
                .push(", title)::float8");
        }
        Some(_) if query.order == Order::Relevance => {
            sql.push("ts_rank(search, ");
            push_text_query(sql, query, matching);
            sql.push(")::float8");
        }
        _ => {
            sql.push("0::float8");
        }
    }
}

/// `(key…, id) > (position…)`: the rows after the query's position.
fn push_after<'a>(sql: &mut QueryBuilder<'a, Postgres>, query: &'a ListQuery, from: &'a Position) {
    sql.push("(");
    for column in query.order.key_columns() {
        sql.push(*column).push(", ");
    }
    sql.push("id) ")
        .push(if query.backwards { "<" } else { ">" })
        .push(" (");
    for value in &from.key {
        match value {
            KeyValue::Int(v) => sql.push_bind(*v),
            KeyValue::Float(v) => sql.push_bind(*v),
            KeyValue::Text(v) => sql.push_bind(v.as_str()),
        };
        sql.push(", ");
    }
    sql.push_bind(from.id).push(")");
}

fn push_order_by(sql: &mut QueryBuilder<'_, Postgres>, query: &ListQuery) {
    let direction = if query.backwards { " DESC" } else { " ASC" };
    sql.push(" ORDER BY ");
    for column in query.order.key_columns() {
        sql.push(*column).push(direction).push(", ");
    }
    sql.push("id").push(direction);
}

/// How a listing reaches its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// No search: the user's tasks through the order's index.
    Tasks,
    /// The owner's matches through the word index, then filtered and sorted:
    /// right when matches are few, and for relevance, which no index orders.
    Matches,
    /// The first `WINDOW` of the user's tasks in the order's index, searched:
    /// right when matches are common. If it fills the page, the page is exact.
    Window,
}

/// How many of the user's tasks a search in an index order reads before it
/// turns to the word index: a bounded index walk, in which a word in more than
/// one task in fifty fills a page of 20.
const WINDOW: i64 = 1000;

fn listing<'a>(
    query: &'a ListQuery,
    plan: Plan,
    matching: &'a Matching,
) -> QueryBuilder<'a, Postgres> {
    let mut sql = QueryBuilder::new("SELECT * FROM (SELECT ");
    sql.push(COLUMNS).push(
        ", sort_priority, sort_due, sort_created, sort_updated, \
           (lower(title) COLLATE \"C\") AS title_key, ",
    );
    push_relevance(&mut sql, query, matching);
    sql.push(" AS relevance FROM ");
    match plan {
        Plan::Tasks => {
            sql.push("task_list");
            push_where(&mut sql, query);
        }
        Plan::Matches => {
            push_matches(&mut sql, query, matching);
            push_where(&mut sql, query);
        }
        Plan::Window => {
            sql.push("(SELECT * FROM task_list");
            push_where(&mut sql, query);
            if let Some(from) = &query.from {
                sql.push(" AND ");
                push_after(&mut sql, query, from);
            }
            push_order_by(&mut sql, query);
            sql.push(" LIMIT ")
                .push_bind(WINDOW)
                .push(") AS task_list WHERE search @@ ");
            push_text_query(&mut sql, query, matching);
        }
    }
    sql.push(") AS listed");
    if let (Some(from), false) = (&query.from, plan == Plan::Window) {
        sql.push(" WHERE ");
        push_after(&mut sql, query, from);
    }
    push_order_by(&mut sql, query);
    sql.push(" LIMIT ").push_bind(query.limit);
    sql
}

/// The owner's tasks with the search's words, as a table named `task_list`.
fn push_matches<'a>(
    sql: &mut QueryBuilder<'a, Postgres>,
    query: &'a ListQuery,
    matching: &'a Matching,
) {
    sql.push("(SELECT * FROM task_list WHERE search @@ ");
    push_text_query(sql, query, matching);
    // The fence keeps the planner from intersecting the word index with an
    // index over all of the user's tasks: its statistics cannot see that the
    // owner's words imply the owner, so it guesses a tenth of the matches.
    sql.push(" OFFSET 0) AS task_list");
}

/// One page of the listing, in the query's order (also when paging backwards).
#[tracing::instrument(skip(conn), fields(user_id = %query.user_id, order = ?query.order))]
pub async fn list(conn: &mut PgConnection, query: &ListQuery) -> Result<Vec<Listed>, sqlx::Error> {
    let matching = resolve(conn, query).await?;
    let rows = match matching {
        Matching::Nothing => return Ok(Vec::new()),
        Matching::Everything => fetch(conn, query, Plan::Tasks, &matching).await?,
        _ if query.order == Order::Relevance => {
            fetch(conn, query, Plan::Matches, &matching).await?
        }
        _ => {
            let rows = fetch(conn, query, Plan::Window, &matching).await?;
            if rows.len() as i64 == query.limit {
                rows
            } else {
                fetch(conn, query, Plan::Matches, &matching).await?
            }
        }
    };
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

async fn fetch(
    conn: &mut PgConnection,
    query: &ListQuery,
    plan: Plan,
    matching: &Matching,
) -> Result<Vec<PgRow>, sqlx::Error> {
    listing(query, plan, matching)
        .build()
        .fetch_all(&mut *conn)
        .await
}

/// How many tasks match, ignoring paging.
#[tracing::instrument(skip(conn), fields(user_id = %query.user_id))]
pub async fn count(conn: &mut PgConnection, query: &ListQuery) -> Result<i64, sqlx::Error> {
    let matching = resolve(conn, query).await?;
    let mut sql = QueryBuilder::new("SELECT count(*) FROM ");
    match matching {
        Matching::Nothing => return Ok(0),
        Matching::Everything => {
            if query.filter.as_ref().is_none_or(Filter::is_kept_count) {
                let stats = stats(conn, &query.user_id).await?;
                return Ok(stats.count(query.filter.as_ref()));
            }
            sql.push("task_list");
        }
        _ => push_matches(&mut sql, query, &matching),
    }
    push_where(&mut sql, query);
    sql.build_query_scalar().fetch_one(&mut *conn).await
}

/// A user's task counts, as the projection keeps them: by status, and for
/// each status by priority rank 0..4.
#[derive(Debug, Clone, FromRow)]
pub struct TaskStats {
    pub open: i64,
    pub completed: i64,
    pub deleted: i64,
    pub open_by_priority: Vec<i64>,
    pub completed_by_priority: Vec<i64>,
    pub deleted_by_priority: Vec<i64>,
}

impl Default for TaskStats {
    fn default() -> Self {
        Self {
            open: 0,
            completed: 0,
            deleted: 0,
            open_by_priority: vec![0; 5],
            completed_by_priority: vec![0; 5],
            deleted_by_priority: vec![0; 5],
        }
    }
}

impl TaskStats {
    /// How many tasks a filter over status and priority alone matches
    /// ([`Filter::is_kept_count`]), without counting them.
    pub fn count(&self, filter: Option<&Filter>) -> i64 {
        let with_trash = filter.is_some_and(Filter::mentions_status);
        [
            (Status::Open, &self.open_by_priority),
            (Status::Completed, &self.completed_by_priority),
            (Status::Deleted, &self.deleted_by_priority),
        ]
        .into_iter()
        .filter(|(status, _)| with_trash || *status != Status::Deleted)
        .flat_map(|(status, by_rank)| {
            (0..).zip(by_rank).filter_map(move |(rank, tasks)| {
                filter
                    .is_none_or(|f| f.matches_counted(status, rank))
                    .then_some(*tasks)
            })
        })
        .sum()
    }
}

pub async fn stats(conn: &mut PgConnection, user_id: &str) -> Result<TaskStats, sqlx::Error> {
    let stats: Option<TaskStats> = sqlx::query_as(
        "SELECT open, completed, deleted, open_by_priority, completed_by_priority, deleted_by_priority
           FROM task_stats WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(stats.unwrap_or_default())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> TaskStats {
        TaskStats {
            open: 15,
            completed: 150,
            deleted: 1500,
            open_by_priority: vec![1, 2, 3, 4, 5],
            completed_by_priority: vec![10, 20, 30, 40, 50],
            deleted_by_priority: vec![100, 200, 300, 400, 500],
        }
    }

    #[test]
    fn kept_counts_add_up_the_statuses_and_ranks_a_filter_selects() {
        let stats = stats();
        assert_eq!(stats.count(None), 165, "the trash only when asked for");
        assert_eq!(
            stats.count(Some(&Filter::Status(vec![Status::Deleted]))),
            1500
        );
        let open_high = Filter::And(vec![
            Filter::Status(vec![Status::Open]),
            Filter::PriorityAtLeast(3),
        ]);
        assert_eq!(stats.count(Some(&open_high)), 9);
        let not_none = Filter::Not(Box::new(Filter::PriorityIn(vec![0])));
        assert_eq!(stats.count(Some(&not_none)), 14 + 140);
        let not_open = Filter::Not(Box::new(Filter::Status(vec![Status::Open])));
        assert_eq!(stats.count(Some(&not_open)), 150 + 1500);
        let either = Filter::Or(vec![Filter::PriorityAtMost(0), Filter::PriorityIn(vec![4])]);
        assert_eq!(stats.count(Some(&either)), 1 + 5 + 10 + 50);
        assert_eq!(stats.count(Some(&Filter::And(vec![]))), 165);
        assert_eq!(stats.count(Some(&Filter::Or(vec![]))), 0);
    }

    #[test]
    fn only_status_and_priority_are_kept_counts() {
        assert!(Filter::Not(Box::new(Filter::Or(vec![
            Filter::Status(vec![Status::Open]),
            Filter::PriorityAtMost(2),
        ])))
        .is_kept_count());
        assert!(!Filter::And(vec![Filter::PriorityAtLeast(1), Filter::Overdue]).is_kept_count());
        assert!(
            !Filter::Not(Box::new(Filter::TagsContainAny(vec!["work".into()]))).is_kept_count()
        );
    }

    #[test]
    fn search_words_keep_letters_and_digits_only() {
        assert_eq!(words_of("  Buy MILK, 2x! ''"), vec!["buy", "milk", "2x"]);
        assert!(words_of("!!! ''' \\").is_empty());
    }
}
