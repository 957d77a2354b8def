//! Reading the task list: sort presets each served by an index, keyset pages
//! whose cursors encode the sort key, and the plan by which a listing reaches
//! its rows. Filters, search and counts live in the submodules. SQL is built
//! with bound parameters only.

mod counts;
mod filter;
mod readers;
mod search;

pub use counts::{due_counts, stats, tags, TaskStats};
pub use filter::Filter;
pub use readers::Readers;
pub use search::{Search, SearchMode};

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::task_list::{TaskRow, COLUMNS};
use filter::push_filter;
use search::{
    may_look_nothing_up, one_plan_for_every_search, push_keyed_query, push_relevance,
    ranked_by_words, resolve, Matching,
};

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
    /// Whose tasks: the caller's Inbox and shared lists.
    pub readers: Readers,
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

/// One part of an order's sort key: the expression its index sorts by
/// (ascending) and how a listed row's value of it is read back for a cursor.
struct SortKey {
    expression: &'static str,
    read: Read,
}

#[derive(Clone, Copy)]
enum Read {
    /// An integer column of this name (`smallint` or `bigint`).
    Int(&'static str),
    Text(&'static str),
    /// A float column of this name, negated (best match first).
    NegatedFloat(&'static str),
}

const fn key(expression: &'static str, read: Read) -> SortKey {
    SortKey { expression, read }
}

const PRIORITY: SortKey = key("sort_priority", Read::Int("sort_priority"));
const DUE: SortKey = key("sort_due", Read::Int("sort_due"));
const CREATED: SortKey = key("sort_created", Read::Int("sort_created"));
const UPDATED: SortKey = key("sort_updated", Read::Int("sort_updated"));
const TITLE: SortKey = key("(lower(title) COLLATE \"C\")", Read::Text("title_key"));
const RELEVANCE: SortKey = key("(-relevance)", Read::NegatedFloat("relevance"));

impl Order {
    /// The sort key of this order, in order; `id` breaks ties. Every order's
    /// key, its cursor's length and its `ORDER BY` come from here alone.
    fn keys(self) -> &'static [SortKey] {
        match self {
            Self::Smart => &[PRIORITY, DUE, CREATED],
            Self::DueAsc => &[DUE],
            Self::PriorityDesc => &[PRIORITY, CREATED],
            Self::CreatedDesc => &[CREATED],
            Self::UpdatedDesc => &[UPDATED],
            Self::TitleAsc => &[TITLE],
            Self::Relevance => &[RELEVANCE],
        }
    }

    /// Whether `key` can be a position in this order: as many values as the
    /// order has keys, each of its key's type (text without NUL, which
    /// Postgres cannot hold). Cursors come from clients; nothing else about
    /// them is trusted either.
    pub fn accepts_key(self, key: &[KeyValue]) -> bool {
        key.len() == self.keys().len()
            && self
                .keys()
                .iter()
                .zip(key)
                .all(|(expected, value)| match (expected.read, value) {
                    (Read::Int(_), KeyValue::Int(_)) => true,
                    (Read::Text(_), KeyValue::Text(text)) => !text.contains('\0'),
                    (Read::NegatedFloat(_), KeyValue::Float(value)) => value.is_finite(),
                    _ => false,
                })
    }

    fn key_columns(self) -> impl Iterator<Item = &'static str> {
        self.keys().iter().map(|key| key.expression)
    }

    fn key_of(self, row: &PgRow) -> Result<Vec<KeyValue>, sqlx::Error> {
        self.keys()
            .iter()
            .map(|key| {
                Ok(match key.read {
                    Read::Int(name) => match row.try_get::<i64, _>(name) {
                        Ok(value) => KeyValue::Int(value),
                        Err(_) => KeyValue::Int(i64::from(row.try_get::<i16, _>(name)?)),
                    },
                    Read::Text(name) => KeyValue::Text(row.try_get(name)?),
                    Read::NegatedFloat(name) => KeyValue::Float(-row.try_get::<f64, _>(name)?),
                })
            })
            .collect()
    }
}

/// `user_id = $k` for a reader with one key (their Inbox alone: the index's
/// leading column, as before lists), `user_id = ANY($keys)` otherwise.
pub(crate) fn push_readers<'a>(sql: &mut QueryBuilder<'a, Postgres>, readers: &'a Readers) {
    match readers.keys() {
        [key] => sql.push("user_id = ").push_bind(key),
        keys => sql.push("user_id = ANY(").push_bind(keys).push(")"),
    };
}

/// Whose tasks, and the filter: what every listing and count says.
fn push_where<'a>(sql: &mut QueryBuilder<'a, Postgres>, query: &'a ListQuery) {
    sql.push(" WHERE ");
    push_readers(sql, &query.readers);
    push_filter_conditions(sql, query);
}

/// The first `limit` tasks in the order (after the query's position) of
/// each key the reader reads, as a table named `task_list`: one ordered walk
/// of the order's index per key (`UNION ALL`), which Postgres merges in order
/// and stops reading as soon as the caller's `LIMIT` is met, where `user_id =
/// ANY(…)` would read every task of every key and sort them. Each walk reads
/// the rows as it goes: reading only the index and then the winners' rows by
/// id cost four times the buffers (a second index descent per row). One
/// statement per number of keys, so its plan is kept like a one-key
/// listing's.
fn push_per_key<'a>(sql: &mut QueryBuilder<'a, Postgres>, query: &'a ListQuery) {
    sql.push("(");
    for (n, key) in query.readers.keys().iter().enumerate() {
        if n > 0 {
            sql.push(" UNION ALL ");
        }
        sql.push("(SELECT * FROM task_list WHERE user_id = ")
            .push_bind(key);
        push_filter_conditions(sql, query);
        if let Some(from) = &query.from {
            sql.push(" AND ");
            push_after(sql, query, from);
        }
        push_order_by(sql, query);
        push_limit(sql, query.limit);
        sql.push(")");
    }
    sql.push(") AS task_list");
}

/// The trash left out unless the filter names a status, and the filter.
fn push_filter_conditions<'a>(sql: &mut QueryBuilder<'a, Postgres>, query: &'a ListQuery) {
    if !query.filter.as_ref().is_some_and(Filter::mentions_status) {
        sql.push(" AND deleted_at IS NULL");
    }
    if let Some(filter) = &query.filter {
        sql.push(" AND ");
        push_filter(sql, filter);
    }
}

/// `(key…, id) > (position…)`: the rows after the query's position.
fn push_after<'a>(sql: &mut QueryBuilder<'a, Postgres>, query: &'a ListQuery, from: &'a Position) {
    sql.push("(");
    for column in query.order.key_columns() {
        sql.push(column).push(", ");
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
        sql.push(column).push(direction).push(", ");
    }
    sql.push("id").push(direction);
}

/// How a listing reaches its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// No search: the reader's tasks through the order's index (one walk
    /// per key, when they read shared lists too).
    Tasks,
    /// The reader's matches through the word index, then filtered and
    /// sorted: right when matches are few, for relevance, which no index
    /// orders, and for a reader of several keys.
    Matches,
    /// The first `WINDOW` of the reader's tasks in the order's index,
    /// searched: right when matches are common. If it fills the page, the
    /// page is exact. For a reader of one key only.
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
    push_relevance(&mut sql, query);
    sql.push(" AS relevance FROM ");
    match plan {
        Plan::Tasks if query.readers.keys().len() > 1 => push_per_key(&mut sql, query),
        Plan::Tasks => {
            sql.push("task_list");
            push_where(&mut sql, query);
        }
        Plan::Matches => push_matches(&mut sql, query, matching, ranked_by_words(query)),
        Plan::Window => {
            sql.push("(SELECT * FROM task_list");
            push_where(&mut sql, query);
            if let Some(from) = &query.from {
                sql.push(" AND ");
                push_after(&mut sql, query, from);
            }
            push_order_by(&mut sql, query);
            push_limit(&mut sql, WINDOW);
            // The keyed word query built once per execution (a subquery
            // the plan runs first), not once per row the window reads.
            sql.push(") AS task_list WHERE search @@ ");
            push_lookup_query(&mut sql, query, matching);
        }
    }
    sql.push(") AS listed");
    if let (Some(from), false) = (&query.from, plan == Plan::Window) {
        sql.push(" WHERE ");
        push_after(&mut sql, query, from);
    }
    push_order_by(&mut sql, query);
    push_limit(&mut sql, query.limit);
    sql
}

/// ` LIMIT n`, written into the statement rather than bound: a page's size
/// is one of few numbers, and with it in the text Postgres estimates a kept
/// statement's generic plan as it would a plan for the page's parameters,
/// and keeps it (see [`plan_kept`]). With the limit bound, it guessed a
/// tenth of the rows for the generic plan and planned every execution.
fn push_limit(sql: &mut QueryBuilder<'_, Postgres>, limit: i64) {
    sql.push(" LIMIT ").push(limit);
}

/// The reader's tasks with the search's words, filtered, as a table named
/// `task_list`: one lookup of the word index for the query keyed for each of
/// the reader's keys (`push_lookup_query`). If `ranked`, each row is joined to its key's own query
/// (`reader.words`), which ranks it as a reader of that key alone would rank
/// it (a query of several keys at once would rank an `a & b` as `a | b`).
fn push_matches<'a>(
    sql: &mut QueryBuilder<'a, Postgres>,
    query: &'a ListQuery,
    matching: &'a Matching,
    ranked: bool,
) {
    sql.push("(SELECT * FROM task_list WHERE search @@ ");
    push_lookup_query(sql, query, matching);
    if let Some(search) = query.search.as_ref().filter(|s| may_look_nothing_up(s)) {
        // A query with nothing to look up (`-draft`, `a or -b`) cannot use the
        // word index: it reads the reader's tasks instead of everyone's. For
        // any other query this folds away: such a statement is always planned
        // for its parameters (see `prepared`).
        sql.push(" AND (querytree(websearch_to_tsquery('english', ")
            .push_bind(&search.query)
            .push(")) <> 'T' OR ");
        push_readers(sql, &query.readers);
        sql.push(")");
    }
    // The fence keeps the planner from intersecting the word index with an
    // index over all of the reader's tasks: its statistics cannot see that
    // the keyed words imply the key, so it guesses a tenth of the matches.
    sql.push(" OFFSET 0) AS task_list");
    if !ranked {
        push_where(sql, query);
        return;
    }
    sql.push(" JOIN (VALUES ");
    for (n, key) in query.readers.keys().iter().enumerate() {
        if n > 0 {
            sql.push(", ");
        }
        // A subquery here too: Postgres folds a VALUES of one row into the
        // statement, where the call would run for every row ranked.
        sql.push("(").push_bind(key).push(", (SELECT ");
        push_keyed_query(sql, key, query, matching);
        sql.push("))");
    }
    sql.push(") AS reader (key, words) ON reader.key = task_list.user_id WHERE true");
    push_filter_conditions(sql, query);
}

/// The search keyed for each of the reader's keys, any of them (`||`), built
/// once per execution: a subquery the plan runs first, where the calls
/// themselves would run for every row a kept plan reads.
fn push_lookup_query<'a>(
    sql: &mut QueryBuilder<'a, Postgres>,
    query: &'a ListQuery,
    matching: &'a Matching,
) {
    sql.push("(SELECT ");
    for (n, key) in query.readers.keys().iter().enumerate() {
        if n > 0 {
            sql.push(" || ");
        }
        push_keyed_query(sql, key, query, matching);
    }
    sql.push(")");
}

/// One page of the listing, in the query's order (also when paging backwards).
#[tracing::instrument(skip(conn), fields(user_id = %query.readers.user(), order = ?query.order))]
pub async fn list(conn: &mut PgConnection, query: &ListQuery) -> Result<Vec<Listed>, sqlx::Error> {
    let matching = resolve(conn, query).await?;
    let rows = match matching {
        Matching::Nothing => return Ok(Vec::new()),
        Matching::Everything => fetch(conn, query, Plan::Tasks, &matching).await?,
        // The window is one index walk, exact when it fills the page; over
        // several keys' walks it would not be.
        _ if query.order == Order::Relevance || query.readers.keys().len() > 1 => {
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
    // How often searches fall back from the window shows in these counts.
    let plan_name = match plan {
        Plan::Tasks => "tasks",
        Plan::Matches => "matches",
        Plan::Window => "window",
    };
    metrics::counter!(infra::metric::LISTING_QUERIES, "plan" => plan_name).increment(1);
    listing(query, plan, matching)
        .build()
        .persistent(prepared(query))
        .fetch_all(&mut *conn)
        .await
}

/// Whether a listing has nothing to filter. A filtered listing is planned
/// for its own parameters each time: a tag on three of a user's hundred
/// thousand tasks wants a different plan than one on most of them.
fn plan_kept(query: &ListQuery) -> bool {
    query.filter.as_ref().is_none_or(Filter::asks_nothing)
}

/// Whether a listing's statement is prepared: with nothing to filter, and
/// no way around the word index (a search that may look nothing up keeps
/// one only in a plan made for what was typed; a generic plan would keep it
/// and search every user's words). A prepared statement off `KeptPlans`
/// (a fuzzy search) gets the plan Postgres chooses; any other is planned
/// for its own parameters each time.
fn prepared(query: &ListQuery) -> bool {
    plan_kept(query) && !query.search.as_ref().is_some_and(may_look_nothing_up)
}

/// Whether a listing's plan is the same for every reader whatever Postgres
/// estimates, with nothing to filter: a page, an ordered walk of the
/// order's index per key; or a search for words in the word index, whose
/// keyed query the statement builds as it runs, so no plan can know how
/// many tasks it matches (`one_plan_for_every_search`). Only such a listing
/// is prepared, and it runs where every statement keeps its plan
/// (`query_api::read_pool::KeptPlans`): planning it took longer than
/// running it, and left to choose, Postgres planned a one-key search on
/// every request.
pub fn one_plan_for_every_reader(query: &ListQuery) -> bool {
    plan_kept(query) && query.search.as_ref().is_none_or(one_plan_for_every_search)
}

/// How many tasks match, ignoring paging.
#[tracing::instrument(skip(conn), fields(user_id = %query.readers.user()))]
pub async fn count(conn: &mut PgConnection, query: &ListQuery) -> Result<i64, sqlx::Error> {
    let matching = resolve(conn, query).await?;
    let mut sql = QueryBuilder::new("SELECT count(*) FROM ");
    match matching {
        Matching::Nothing => return Ok(0),
        Matching::Everything => {
            if query.filter.as_ref().is_none_or(Filter::is_kept_count) {
                let stats = stats(conn, &query.readers).await?;
                return Ok(stats.count(query.filter.as_ref()));
            }
            sql.push("task_list");
            push_where(&mut sql, query);
        }
        _ => push_matches(&mut sql, query, &matching, false),
    }
    // Planned for its own parameters, like a filtered listing.
    sql.build_query_scalar()
        .persistent(false)
        .fetch_one(&mut *conn)
        .await
}

/// Waits, up to `timeout`, until the read model holds `task_id` at `version` or
/// later, among the tasks `readers` read; `false` if it did not get there in
/// time.
pub async fn wait_for_version(
    pool: &sqlx::PgPool,
    readers: &Readers,
    task_id: Uuid,
    version: domain::Version,
    timeout: std::time::Duration,
) -> Result<bool, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let current: Option<domain::Version> =
            sqlx::query_scalar("SELECT version FROM task_list WHERE id = $1 AND user_id = ANY($2)")
                .bind(task_id)
                .bind(readers.keys())
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

    fn query(filter: Option<Filter>) -> ListQuery {
        ListQuery {
            readers: Readers::inbox_of("ann"),
            filter,
            search: None,
            order: Order::Smart,
            from: None,
            backwards: false,
            limit: 21,
        }
    }

    /// Ann's listing searching `text` in `mode`, nothing filtered.
    fn searching(text: &str, mode: SearchMode) -> ListQuery {
        ListQuery {
            search: Some(Search {
                query: text.into(),
                mode,
            }),
            ..query(None)
        }
    }

    #[test]
    fn only_a_listing_with_nothing_to_filter_keeps_its_plan() {
        assert!(plan_kept(&query(None)));
        let lists_only = Filter::And(vec![Filter::And(vec![])]);
        assert!(plan_kept(&query(Some(lists_only))));
        let tagged = Filter::TagsContainAny(vec!["home".into()]);
        assert!(!plan_kept(&query(Some(tagged))));
        let overdue = Filter::And(vec![Filter::Overdue]);
        assert!(!plan_kept(&query(Some(overdue))));
    }

    #[test]
    fn only_an_unfiltered_page_or_word_search_has_one_plan_for_every_reader() {
        assert!(one_plan_for_every_reader(&query(None)));
        let searched = searching("milk", SearchMode::FullText);
        assert!(one_plan_for_every_reader(&searched));
        let negated = searching("-milk", SearchMode::FullText);
        assert!(!one_plan_for_every_reader(&negated));
        assert!(!prepared(&negated), "planned for what was typed");
        let fuzzy = searching("mlik", SearchMode::Fuzzy);
        assert!(!one_plan_for_every_reader(&fuzzy));
        assert!(prepared(&fuzzy), "prepared where Postgres chooses");
        let tagged = Filter::TagsContainAny(vec!["home".into()]);
        assert!(!one_plan_for_every_reader(&query(Some(tagged))));
    }

    #[test]
    fn a_search_looks_up_every_key_at_once_and_ranks_by_each_rows_own_key() {
        let searched = ListQuery {
            readers: Readers::with_lists("ann", &[Uuid::from_u128(1), Uuid::from_u128(2)]),
            search: Some(Search {
                query: "budget review".into(),
                mode: SearchMode::FullText,
            }),
            order: Order::Relevance,
            ..query(None)
        };
        let sql = listing(&searched, Plan::Matches, &Matching::WebSearch).into_sql();
        // One lookup for the three keys, built once per execution; each
        // row ranked by its own key's query, never by all three at once.
        assert_eq!(sql.matches("owner_tsquery(").count(), 6, "{sql}");
        assert_eq!(sql.matches("(SELECT owner_tsquery(").count(), 4, "{sql}");
        assert_eq!(sql.matches(" || owner_tsquery(").count(), 2, "{sql}");
        assert!(sql.contains("ts_rank(search, reader.words)"), "{sql}");
        let counted = ListQuery {
            order: Order::Smart,
            ..searched
        };
        let sql = listing(&counted, Plan::Matches, &Matching::WebSearch).into_sql();
        assert!(!sql.contains("ts_rank"), "{sql}");
    }

    #[test]
    fn the_limit_is_written_into_the_statement() {
        let sql = listing(&query(None), Plan::Tasks, &Matching::Everything).into_sql();
        assert!(sql.ends_with(" LIMIT 21"), "{sql}");
    }
}
