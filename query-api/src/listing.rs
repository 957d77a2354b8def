//! The GraphQL inputs of the task list (filter, search, order), their limits,
//! and opaque cursors that carry the sort key and refuse to be reused with a
//! different filter, search or order.

use std::borrow::Cow;

use async_graphql::connection::CursorType;
use async_graphql::{Enum, InputObject};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::values::{Priority, Tag};
use domain::ValidationError;
use projections::task_query::{Filter, KeyValue, Order, Position, Search, SearchMode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Bounds on one filter, each refused with `VALIDATION` naming it.
pub const MAX_FILTER_DEPTH: usize = 4;
pub const MAX_PREDICATES: usize = 40;
pub const MAX_LIST: usize = 20;
pub const MAX_SEARCH_CHARS: usize = 200;

use api_core::{PriorityLevel, TaskStatus};

// Also an MCP tool's argument, under GraphQL's names (`FULL_TEXT`, …).
/// How a search reads its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize, schemars::JsonSchema)]
#[graphql(remote = "projections::task_query::SearchMode")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskSearchMode {
    /// Words, "quoted phrases", -exclusions and `or`, ranked.
    FullText,
    /// Type-ahead: each word is the start of a word in the task.
    Prefix,
    /// Forgives typos (trigram similarity to the title).
    Fuzzy,
}

// Also an MCP tool's argument, under GraphQL's names (`DUE_ASC`, …). The
// variants stand again in the read model's `Order`, which knows no GraphQL:
// the remote derive lists them, and the compiler checks both ways that the
// two agree.
/// How a listing is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize, schemars::JsonSchema)]
#[graphql(remote = "projections::task_query::Order")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskOrder {
    /// Highest priority first, then soonest due (no due date last), then newest.
    Smart,
    DueAsc,
    PriorityDesc,
    CreatedDesc,
    UpdatedDesc,
    TitleAsc,
    /// Best match first; only with `search`.
    Relevance,
}

#[derive(Debug, InputObject)]
pub struct PriorityFilter {
    pub eq: Option<PriorityLevel>,
    #[graphql(name = "in")]
    pub any_of: Option<Vec<PriorityLevel>>,
    pub gte: Option<PriorityLevel>,
    pub lte: Option<PriorityLevel>,
}

#[derive(Debug, InputObject)]
pub struct TagFilter {
    pub contains_all: Option<Vec<String>>,
    pub contains_any: Option<Vec<String>>,
    /// A tag equal to this category or under it: `work` matches `work/clients`.
    pub category: Option<String>,
}

#[derive(Debug, InputObject)]
pub struct TimeRange {
    pub after: Option<DateTime<Utc>>,
    pub before: Option<DateTime<Utc>>,
}

#[derive(Debug, InputObject)]
pub struct DueFilter {
    pub before: Option<DateTime<Utc>>,
    pub after: Option<DateTime<Utc>>,
    pub between: Option<TimeRange>,
    /// Open and past due.
    pub overdue: Option<bool>,
    /// Due today in the task's own time zone.
    pub due_today: Option<bool>,
    /// Has no due date.
    pub none: Option<bool>,
}

/// Every field given must hold (AND); combine filters with `and`, `or`, `not`.
/// Without a `status`, deleted tasks are left out.
#[derive(Debug, InputObject)]
pub struct TaskFilter {
    pub and: Option<Vec<TaskFilter>>,
    pub or: Option<Vec<TaskFilter>>,
    pub not: Option<Box<TaskFilter>>,
    pub status: Option<Vec<TaskStatus>>,
    pub priority: Option<PriorityFilter>,
    pub tags: Option<TagFilter>,
    pub due: Option<DueFilter>,
    pub has_reminders: Option<bool>,
    pub is_recurring: Option<bool>,
    pub created: Option<TimeRange>,
    pub updated: Option<TimeRange>,
    /// Only the tasks in these lists (your Inbox's id among them, as
    /// `lists` names it); lists you do not belong to match nothing. Only at
    /// the top of a filter, not inside `and`, `or` or `not`.
    pub list_ids: Option<Vec<async_graphql::ID>>,
}

#[derive(Debug, InputObject)]
pub struct TaskSearch {
    /// At most 200 characters.
    pub query: String,
    #[graphql(default_with = "TaskSearchMode::FullText")]
    pub mode: TaskSearchMode,
}

fn refuse<T>(
    field: &'static str,
    reason: impl Into<Cow<'static, str>>,
) -> Result<T, ValidationError> {
    Err(ValidationError::new(field, reason))
}

struct Budget {
    predicates: usize,
}

impl Budget {
    fn spend(&mut self) -> Result<(), ValidationError> {
        self.predicates += 1;
        if self.predicates > MAX_PREDICATES {
            return refuse("filter", format!("at most {MAX_PREDICATES} predicates"));
        }
        Ok(())
    }
}

fn rank(level: PriorityLevel) -> i16 {
    Priority::from(level).rank()
}

fn bounded<T>(field: &'static str, list: &[T]) -> Result<(), ValidationError> {
    if list.is_empty() || list.len() > MAX_LIST {
        return refuse(field, format!("must list 1 to {MAX_LIST} values"));
    }
    Ok(())
}

fn tags(field: &'static str, raw: &[String]) -> Result<Vec<String>, ValidationError> {
    bounded(field, raw)?;
    raw.iter()
        .map(|t| Tag::parse(t).map(|t| t.as_str().to_owned()))
        .collect::<Result<_, _>>()
        .or_else(|e| refuse(field, e.reason))
}

pub fn to_filter(input: &TaskFilter) -> Result<Filter, ValidationError> {
    convert(input, 1, &mut Budget { predicates: 0 })
}

fn convert(
    input: &TaskFilter,
    depth: usize,
    budget: &mut Budget,
) -> Result<Filter, ValidationError> {
    if depth > MAX_FILTER_DEPTH {
        return refuse(
            "filter",
            format!("may nest at most {MAX_FILTER_DEPTH} levels"),
        );
    }
    if depth > 1 && input.list_ids.is_some() {
        return refuse(
            "filter.listIds",
            "only at the top of a filter, not inside and, or or not",
        );
    }
    let mut all = Vec::new();
    let mut add = |filter: Filter, budget: &mut Budget| -> Result<(), ValidationError> {
        budget.spend()?;
        all.push(filter);
        Ok(())
    };
    if let Some(parts) = &input.and {
        bounded("filter.and", parts)?;
        let parts = parts
            .iter()
            .map(|p| convert(p, depth + 1, budget))
            .collect::<Result<_, _>>()?;
        add(Filter::And(parts), budget)?;
    }
    if let Some(parts) = &input.or {
        bounded("filter.or", parts)?;
        let parts = parts
            .iter()
            .map(|p| convert(p, depth + 1, budget))
            .collect::<Result<_, _>>()?;
        add(Filter::Or(parts), budget)?;
    }
    if let Some(inner) = &input.not {
        let inner = convert(inner, depth + 1, budget)?;
        add(Filter::Not(Box::new(inner)), budget)?;
    }
    if let Some(statuses) = &input.status {
        bounded("filter.status", statuses)?;
        add(
            Filter::Status(statuses.iter().copied().map(Into::into).collect()),
            budget,
        )?;
    }
    if let Some(priority) = &input.priority {
        if let Some(eq) = priority.eq {
            add(Filter::PriorityIn(vec![rank(eq)]), budget)?;
        }
        if let Some(any) = &priority.any_of {
            bounded("filter.priority.in", any)?;
            add(
                Filter::PriorityIn(any.iter().copied().map(rank).collect()),
                budget,
            )?;
        }
        if let Some(gte) = priority.gte {
            add(Filter::PriorityAtLeast(rank(gte)), budget)?;
        }
        if let Some(lte) = priority.lte {
            add(Filter::PriorityAtMost(rank(lte)), budget)?;
        }
    }
    if let Some(tag_filter) = &input.tags {
        if let Some(list) = &tag_filter.contains_all {
            add(
                Filter::TagsContainAll(tags("filter.tags.containsAll", list)?),
                budget,
            )?;
        }
        if let Some(list) = &tag_filter.contains_any {
            add(
                Filter::TagsContainAny(tags("filter.tags.containsAny", list)?),
                budget,
            )?;
        }
        if let Some(category) = &tag_filter.category {
            let category = tags("filter.tags.category", std::slice::from_ref(category))?;
            add(Filter::Category(category[0].clone()), budget)?;
        }
    }
    if let Some(due) = &input.due {
        if let Some(at) = due.before {
            add(Filter::DueBefore(at), budget)?;
        }
        if let Some(at) = due.after {
            add(Filter::DueAfter(at), budget)?;
        }
        if let Some(range) = &due.between {
            let (Some(after), Some(before)) = (range.after, range.before) else {
                return refuse("filter.due.between", "needs both after and before");
            };
            add(Filter::DueAfter(after), budget)?;
            add(Filter::DueBefore(before), budget)?;
        }
        for (flag, filter) in [
            (due.overdue, Filter::Overdue),
            (due.due_today, Filter::DueToday),
            (due.none, Filter::NoDueDate),
        ] {
            match flag {
                Some(true) => add(filter, budget)?,
                Some(false) => add(Filter::Not(Box::new(filter)), budget)?,
                None => {}
            }
        }
    }
    if let Some(has) = input.has_reminders {
        add(Filter::HasReminders(has), budget)?;
    }
    if let Some(is) = input.is_recurring {
        add(Filter::IsRecurring(is), budget)?;
    }
    for (range, after, before) in [
        (
            &input.created,
            Filter::CreatedAfter as fn(_) -> _,
            Filter::CreatedBefore as fn(_) -> _,
        ),
        (&input.updated, Filter::UpdatedAfter, Filter::UpdatedBefore),
    ] {
        if let Some(range) = range {
            if let Some(at) = range.after {
                add(after(at), budget)?;
            }
            if let Some(at) = range.before {
                add(before(at), budget)?;
            }
        }
    }
    Ok(Filter::And(all))
}

pub fn to_search(input: &TaskSearch) -> Result<Search, ValidationError> {
    let query = input.query.trim();
    if query.is_empty() || query.chars().count() > MAX_SEARCH_CHARS {
        return refuse(
            "search.query",
            format!("must be 1 to {MAX_SEARCH_CHARS} characters"),
        );
    }
    if query.chars().any(char::is_control) {
        return refuse("search.query", "must not contain control characters");
    }
    Ok(Search {
        query: query.to_owned(),
        mode: input.mode.into(),
    })
}

/// The order of a listing; without one, a full-text search lists best matches
/// first, and anything else SMART: type-ahead, and fuzzy search, whose matches
/// all hold a word close to what was typed.
pub fn to_order(
    order: Option<TaskOrder>,
    search: Option<&Search>,
) -> Result<Order, ValidationError> {
    let ranked = search.is_some_and(|s| s.mode == SearchMode::FullText);
    match order.map(Order::from) {
        None if ranked => Ok(Order::Relevance),
        None => Ok(Order::Smart),
        Some(Order::Relevance) if search.is_none() => refuse("orderBy", "RELEVANCE needs a search"),
        Some(order) => Ok(order),
    }
}

/// What a cursor is only valid for: a hash of the filter, search and order.
pub fn fingerprint(filter: &Option<Filter>, search: &Option<Search>, order: Order) -> u64 {
    let text = format!("{filter:?}|{search:?}|{order:?}");
    // FNV-1a: stable across processes and releases, unlike the std hasher.
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[derive(Serialize, Deserialize)]
struct CursorData {
    k: Vec<KeyValue>,
    i: Uuid,
    f: String,
}

/// A row's cursor, written out only where a client reads one: an edge's
/// `cursor`, or `pageInfo`'s first and last. A page read through `nodes`
/// encodes two cursors, not one per row.
pub struct TaskCursor {
    position: Position,
    fingerprint: u64,
}

impl TaskCursor {
    pub fn new(position: Position, fingerprint: u64) -> Self {
        Self {
            position,
            fingerprint,
        }
    }
}

impl CursorType for TaskCursor {
    type Error = ValidationError;

    /// A cursor's own content. The API reads a client's cursor with
    /// [`decode_cursor`], which also checks it against the request.
    fn decode_cursor(cursor: &str) -> Result<Self, ValidationError> {
        let (position, fingerprint) =
            read_cursor(cursor).ok_or_else(|| ValidationError::new("cursor", NOT_OURS))?;
        Ok(Self::new(position, fingerprint))
    }

    fn encode_cursor(&self) -> String {
        let data = CursorData {
            k: self.position.key.clone(),
            i: self.position.id,
            f: format!("{:016x}", self.fingerprint),
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&data).expect("cursor data serializes"))
    }
}

const NOT_OURS: &str = "is not a cursor this API issued";

/// A cursor's position and the fingerprint it was issued for, if it is one.
fn read_cursor(cursor: &str) -> Option<(Position, u64)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let data: CursorData = serde_json::from_slice(&bytes).ok()?;
    let fingerprint = u64::from_str_radix(&data.f, 16).ok()?;
    let position = Position {
        key: data.k,
        id: data.i,
    };
    Some((position, fingerprint))
}

/// The position a client's cursor in `field` names, refused when it is not
/// ours or was issued for another filter, search or order.
pub fn decode_cursor(
    field: &'static str,
    cursor: &str,
    fingerprint: u64,
    order: Order,
) -> Result<Position, ValidationError> {
    let (position, issued_for) =
        read_cursor(cursor).ok_or_else(|| ValidationError::new(field, NOT_OURS))?;
    if issued_for != fingerprint {
        return refuse(
            field,
            "was issued for a different filter, search or order; start again from the first page",
        );
    }
    if !order.accepts_key(&position.key) {
        return Err(ValidationError::new(field, NOT_OURS));
    }
    Ok(position)
}
