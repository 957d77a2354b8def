//! Counts: those the projection keeps (by status and priority, by tag), and
//! those that depend on the clock and are counted per request.

use domain::TaskStatus;
use sqlx::{FromRow, PgConnection, QueryBuilder};

use super::{count, push_readers, Filter, ListQuery, Order, Readers};

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
    fn plus(self, other: &Self) -> Self {
        let add = |a: Vec<i64>, b: &[i64]| -> Vec<i64> {
            (0..a.len().max(b.len()))
                .map(|i| a.get(i).copied().unwrap_or(0) + b.get(i).copied().unwrap_or(0))
                .collect()
        };
        Self {
            open: self.open + other.open,
            completed: self.completed + other.completed,
            deleted: self.deleted + other.deleted,
            open_by_priority: add(self.open_by_priority, &other.open_by_priority),
            completed_by_priority: add(self.completed_by_priority, &other.completed_by_priority),
            deleted_by_priority: add(self.deleted_by_priority, &other.deleted_by_priority),
        }
    }

    /// How many tasks a filter over status and priority alone matches
    /// ([`Filter::is_kept_count`]), without counting them.
    pub fn count(&self, filter: Option<&Filter>) -> i64 {
        let with_trash = filter.is_some_and(Filter::mentions_status);
        [
            (TaskStatus::Open, &self.open_by_priority),
            (TaskStatus::Completed, &self.completed_by_priority),
            (TaskStatus::Deleted, &self.deleted_by_priority),
        ]
        .into_iter()
        .filter(|(status, _)| with_trash || *status != TaskStatus::Deleted)
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

/// The kept counts of every Inbox and list `readers` read, added up (`=`
/// for one key, so its plan is kept; `ANY` over an array is estimated for
/// ten keys and planned again each time).
pub async fn stats(conn: &mut PgConnection, readers: &Readers) -> Result<TaskStats, sqlx::Error> {
    let mut sql = QueryBuilder::new(
        "SELECT open, completed, deleted, open_by_priority, completed_by_priority, deleted_by_priority
           FROM task_stats WHERE ",
    );
    push_readers(&mut sql, readers);
    let kept: Vec<TaskStats> = sql.build_query_as().fetch_all(&mut *conn).await?;
    Ok(kept.iter().fold(TaskStats::default(), TaskStats::plus))
}

/// Open tasks past due, and tasks due today in their own zone: these depend on
/// the clock, so they are counted (over an index) rather than kept.
pub async fn due_counts(
    conn: &mut PgConnection,
    readers: &Readers,
) -> Result<(i64, i64), sqlx::Error> {
    let overdue_today = ListQuery {
        readers: readers.clone(),
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

/// The tags of the tasks `readers` read, with how many open and how many
/// tasks in all carry each.
pub async fn tags(
    conn: &mut PgConnection,
    readers: &Readers,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT tag, sum(open)::bigint, sum(total)::bigint FROM tag_counts
          WHERE user_id = ANY($1) AND total > 0 GROUP BY tag ORDER BY tag",
    )
    .bind(readers.keys())
    .fetch_all(&mut *conn)
    .await
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
            stats.count(Some(&Filter::Status(vec![TaskStatus::Deleted]))),
            1500
        );
        let open_high = Filter::And(vec![
            Filter::Status(vec![TaskStatus::Open]),
            Filter::PriorityAtLeast(3),
        ]);
        assert_eq!(stats.count(Some(&open_high)), 9);
        let not_none = Filter::Not(Box::new(Filter::PriorityIn(vec![0])));
        assert_eq!(stats.count(Some(&not_none)), 14 + 140);
        let not_open = Filter::Not(Box::new(Filter::Status(vec![TaskStatus::Open])));
        assert_eq!(stats.count(Some(&not_open)), 150 + 1500);
        let either = Filter::Or(vec![Filter::PriorityAtMost(0), Filter::PriorityIn(vec![4])]);
        assert_eq!(stats.count(Some(&either)), 1 + 5 + 10 + 50);
        assert_eq!(stats.count(Some(&Filter::And(vec![]))), 165);
        assert_eq!(stats.count(Some(&Filter::Or(vec![]))), 0);
    }

    #[test]
    fn only_status_and_priority_are_kept_counts() {
        assert!(Filter::Not(Box::new(Filter::Or(vec![
            Filter::Status(vec![TaskStatus::Open]),
            Filter::PriorityAtMost(2),
        ])))
        .is_kept_count());
        assert!(!Filter::And(vec![Filter::PriorityAtLeast(1), Filter::Overdue]).is_kept_count());
        assert!(
            !Filter::Not(Box::new(Filter::TagsContainAny(vec!["work".into()]))).is_kept_count()
        );
    }
}
