//! Statements Postgres ran for one database, from `pg_stat_statements`
//! (loaded by `./dev`'s Postgres and created in the admin database): read
//! before and after a phase, the difference says how many statements, and
//! which, each operation cost. Every statement is one round trip (sqlx runs
//! each as one pipelined parse, bind and execute on a prepared statement).

use std::collections::BTreeMap;

use sqlx::PgPool;

/// Calls per statement text, for one database.
#[derive(Debug, Default, Clone)]
pub struct Statements(BTreeMap<String, i64>);

impl Statements {
    /// What `pg_stat_statements` holds now for database `database`, or
    /// `None` where the extension is not loaded.
    pub async fn read(admin: &PgPool, database: &str) -> Option<Self> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT query, sum(calls)::bigint FROM pg_stat_statements
              WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)
              GROUP BY query",
        )
        .bind(database)
        .fetch_all(admin)
        .await
        .ok()?;
        Some(Self(rows.into_iter().collect()))
    }

    /// What ran between `self` and `later`: calls per statement.
    pub fn since(&self, later: &Statements) -> Vec<(String, i64)> {
        let mut ran: Vec<(String, i64)> = later
            .0
            .iter()
            .map(|(query, calls)| (query.clone(), calls - self.0.get(query).unwrap_or(&0)))
            .filter(|(_, calls)| *calls > 0)
            .collect();
        ran.sort_by_key(|(_, calls)| std::cmp::Reverse(*calls));
        ran
    }
}

/// A statement's text in one line, cut to `width` characters.
pub fn one_line(query: &str, width: usize) -> String {
    let line = query.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(width) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line,
    }
}
