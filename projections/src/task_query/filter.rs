//! The task list's filters: predicates over status, priority, tags, due dates
//! and times, combined with and/or/not, written as SQL with bound parameters.

use chrono::{DateTime, Utc};
use domain::TaskStatus;
use sqlx::{Postgres, QueryBuilder};

/// One predicate over the task list, or a combination of them.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Status(Vec<TaskStatus>),
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
    /// Whether the filter asks nothing of a task (`filter: {}`, or one that
    /// names only `listIds`, which choose whose tasks are read).
    pub fn asks_nothing(&self) -> bool {
        matches!(self, Self::And(all) if all.iter().all(Self::asks_nothing))
    }

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
    pub(super) fn matches_counted(&self, status: TaskStatus, rank: i16) -> bool {
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

    pub(super) fn mentions_status(&self) -> bool {
        match self {
            Self::Status(_) => true,
            Self::And(all) | Self::Or(all) => all.iter().any(Self::mentions_status),
            Self::Not(inner) => inner.mentions_status(),
            _ => false,
        }
    }
}

pub(super) fn push_filter<'a>(sql: &mut QueryBuilder<'a, Postgres>, filter: &'a Filter) {
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
                    TaskStatus::Open => " OR (deleted_at IS NULL AND status = 'open')",
                    TaskStatus::Completed => " OR (deleted_at IS NULL AND status = 'completed')",
                    TaskStatus::Deleted => " OR deleted_at IS NOT NULL",
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
