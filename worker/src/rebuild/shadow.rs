//! Where a rebuild builds: a schema of its own holding empty copies of the
//! projection's tables (no indexes while the rows go in), the live tables'
//! indexes and triggers put on the copies afterwards, and the swap.

use std::time::Duration;

use anyhow::{bail, Context};
use sqlx::{PgConnection, PgPool};

/// How long the old tables stay after the swap, for queries that planned
/// against them.
const RETIRE_AFTER: Duration = Duration::from_secs(3);

/// Memory each index build may sort in.
const INDEX_MEMORY: &str = "256MB";

/// One projection's rebuild schema and the tables it copies.
pub struct Shadow {
    pub projection: &'static str,
    pub tables: &'static [&'static str],
    /// Where the copies are built.
    pub schema: String,
    /// Where the live tables go at the swap, until they are dropped.
    pub retired: String,
}

impl Shadow {
    pub fn new(projection: &'static str, tables: &'static [&'static str]) -> Self {
        let suffix = projection.replace('-', "_");
        Self {
            projection,
            tables,
            schema: format!("taskledger_rebuild_{suffix}"),
            retired: format!("taskledger_retired_{suffix}"),
        }
    }

    /// Takes the projection's rebuild lock for as long as `session` lives:
    /// a second rebuild of it is refused.
    pub async fn lock(&self, session: &mut PgConnection) -> anyhow::Result<()> {
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(format!("taskledger-rebuild:{}", self.projection))
            .fetch_one(&mut *session)
            .await?;
        if !locked {
            bail!("another rebuild of {} is running", self.projection);
        }
        Ok(())
    }

    /// A fresh schema (what a killed rebuild left is dropped) with empty
    /// copies of the tables: columns, defaults and checks, no indexes; and
    /// `session` looking there first, so that functions naming the tables
    /// unqualified (the triggers') keep the copies.
    pub async fn prepare(&self, session: &mut PgConnection) -> anyhow::Result<()> {
        let (schema, retired) = (&self.schema, &self.retired);
        for statement in [
            format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
            format!("DROP SCHEMA IF EXISTS {retired} CASCADE"),
            format!("CREATE SCHEMA {schema}"),
        ] {
            sqlx::query(&statement).execute(&mut *session).await?;
        }
        for table in self.tables {
            sqlx::query(&format!(
                "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL EXCLUDING INDEXES)"
            ))
            .execute(&mut *session)
            .await?;
        }
        sqlx::query(&format!("SET search_path = {schema}, public"))
            .execute(&mut *session)
            .await?;
        Ok(())
    }

    /// The live table's triggers, on its copy: the BEFORE ones (which derive
    /// columns of the rows loaded) or the AFTER ones (which keep other
    /// tables, and are set up once those are loaded).
    pub async fn copy_triggers(
        &self,
        session: &mut PgConnection,
        table: &str,
        before: bool,
    ) -> anyhow::Result<()> {
        let triggers: Vec<String> = sqlx::query_scalar(
            "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t
              WHERE t.tgrelid = format('public.%I', $1::text)::regclass AND NOT t.tgisinternal
                AND (t.tgtype & 2 = 2) = $2
              ORDER BY t.tgname",
        )
        .bind(table)
        .bind(before)
        .fetch_all(&mut *session)
        .await?;
        for trigger in triggers {
            let copied = on_copy(&trigger, table, &self.schema)?;
            sqlx::query(&copied).execute(&mut *session).await?;
        }
        Ok(())
    }

    /// The live tables' indexes built on the copies under the same names
    /// (a migration finds them by name after the swap), with the primary
    /// keys and unique constraints they back, `sessions` builds at once.
    pub async fn build_indexes(
        &self,
        pool: &PgPool,
        tables: &[&str],
        which: Indexes,
        sessions: usize,
    ) -> anyhow::Result<()> {
        let mut builds: Vec<String> = Vec::new();
        let mut constraints: Vec<String> = Vec::new();
        for table in tables {
            let indexes: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT c.relname::text, pg_get_indexdef(i.indexrelid), k.conname::text, k.contype::text
                   FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                   LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
                                            AND k.contype IN ('p', 'u')
                  WHERE i.indrelid = format('public.%I', $1::text)::regclass
                  -- the biggest first, so the last to finish is a small one
                  ORDER BY pg_relation_size(i.indexrelid) DESC",
            )
            .bind(*table)
            .fetch_all(pool)
            .await?;
            for (name, definition, constraint, kind) in indexes {
                let wanted = match which {
                    Indexes::All => true,
                    Indexes::Keys => constraint.is_some(),
                    Indexes::Others => constraint.is_none(),
                };
                if !wanted {
                    continue;
                }
                builds.push(on_copy(&definition, table, &self.schema)?);
                if let (Some(constraint), Some(kind)) = (constraint, kind) {
                    let kind = if kind == "p" { "PRIMARY KEY" } else { "UNIQUE" };
                    constraints.push(format!(
                        "ALTER TABLE {}.{table} ADD CONSTRAINT {constraint} {kind} USING INDEX {name}",
                        self.schema
                    ));
                }
            }
        }
        // The builds share a table's SHARE lock, so they run side by side;
        // a constraint's ALTER TABLE would wait for them all (and hold up
        // the rest), so the constraints come after, each instant.
        let sessions = sessions.clamp(1, builds.len().max(1));
        let mut shares: Vec<Vec<String>> = vec![Vec::new(); sessions];
        for (i, build) in builds.into_iter().enumerate() {
            shares[i % sessions].push(build);
        }
        futures::future::try_join_all(shares.into_iter().map(|statements| async move {
            let mut connection = pool.acquire().await?;
            sqlx::query(&format!("SET maintenance_work_mem = '{INDEX_MEMORY}'"))
                .execute(&mut *connection)
                .await?;
            for statement in statements {
                sqlx::query(&statement)
                    .execute(&mut *connection)
                    .await
                    .with_context(|| format!("building the copies' indexes: {statement}"))?;
            }
            sqlx::query("RESET maintenance_work_mem")
                .execute(&mut *connection)
                .await?;
            anyhow::Ok(())
        }))
        .await?;
        for statement in constraints {
            sqlx::query(&statement)
                .execute(pool)
                .await
                .with_context(|| format!("adding the copies' keys: {statement}"))?;
        }
        Ok(())
    }

    /// Statistics for the planner, so that the first queries after the
    /// swap plan as well as they did before it.
    pub async fn analyze(&self, session: &mut PgConnection) -> anyhow::Result<()> {
        for table in self.tables {
            sqlx::query(&format!("ANALYZE {}.{table}", self.schema))
                .execute(&mut *session)
                .await?;
        }
        Ok(())
    }

    /// Inside the switch's transaction: the live tables move aside and the
    /// copies take their place.
    pub async fn swap(&self, tx: &mut PgConnection) -> anyhow::Result<()> {
        sqlx::query(&format!("CREATE SCHEMA {}", self.retired))
            .execute(&mut *tx)
            .await?;
        for table in self.tables {
            sqlx::query(&format!(
                "ALTER TABLE public.{table} SET SCHEMA {}",
                self.retired
            ))
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "ALTER TABLE {}.{table} SET SCHEMA public",
                self.schema
            ))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(&format!("DROP SCHEMA {}", self.schema))
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// After the swap: the old tables dropped once the queries that were
    /// waiting on the switch have re-planned against the new ones.
    pub async fn retire(&self, session: &mut PgConnection) -> anyhow::Result<()> {
        sqlx::query("SET search_path = DEFAULT")
            .execute(&mut *session)
            .await?;
        tokio::time::sleep(RETIRE_AFTER).await;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.retired))
            .execute(&mut *session)
            .await?;
        Ok(())
    }
}

/// Which of a table's indexes to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexes {
    All,
    /// Those behind a primary key or unique constraint (what an upsert needs).
    Keys,
    /// The rest.
    Others,
}

/// A definition Postgres gave for `public.<table>` (an index's or a
/// trigger's), made for the copy in `schema`.
fn on_copy(definition: &str, table: &str, schema: &str) -> anyhow::Result<String> {
    let live = format!(" ON public.{table} ");
    if !definition.contains(&live) {
        bail!("cannot put on the copy of {table}: {definition}");
    }
    Ok(definition.replacen(&live, &format!(" ON {schema}.{table} "), 1))
}

#[cfg(test)]
mod tests {
    use super::on_copy;

    #[test]
    fn definitions_move_to_the_copy_and_only_once() {
        assert_eq!(
            on_copy(
                "CREATE INDEX task_list_due ON public.task_list USING btree (user_id, sort_due, id)",
                "task_list",
                "taskledger_rebuild_task_list"
            )
            .unwrap(),
            "CREATE INDEX task_list_due ON taskledger_rebuild_task_list.task_list USING btree (user_id, sort_due, id)"
        );
        assert!(on_copy(
            "CREATE INDEX x ON public.task_words USING gin (word)",
            "task_list",
            "s"
        )
        .is_err());
    }
}
