//! Which partitions of its topic this process applies, among every process
//! that runs the same projection (docs/adr/0012).
//!
//! A process is a member of a projection while it renews its row in
//! `projection_members`; members that stop renewing for the lease's time are
//! dropped, and so are members whose Postgres session (the one they renew
//! from) has ended: a process killed without warning closes its
//! connections, and is gone at the others' next round. Each member's share
//! is every n-th partition from its place among the members sorted by id,
//! so every member computes the same split. A
//! member lets go of what is no longer its share and claims its share's
//! partitions once they are free or their holder is gone; a claim moves the
//! lease's epoch on. Postgres's clock alone decides who is gone.
//!
//! A batch commits only if its process still holds, at the epoch it claimed,
//! the lease of every partition the batch touched: [`fence`] checks it in the
//! batch's own transaction and keeps the leases from moving until the commit.

use std::collections::BTreeMap;
use std::time::Duration;

use infra::single_active;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// The partitions a process holds, each with the epoch it claimed it at.
pub(super) type Owned = BTreeMap<i32, i64>;

/// One process's membership of one projection.
#[derive(Debug, Clone)]
pub(super) struct Membership {
    pub projection: &'static str,
    pub member: Uuid,
    /// The host and process id, for operators reading `projection_members`.
    pub process: String,
    /// A member not seen for this long is gone, and its partitions free.
    pub ttl: Duration,
}

/// The partitions of `0..partitions` that `me` applies among `members`
/// (sorted): every `members.len()`-th from its place. Nothing if `me` is not
/// among them.
pub(super) fn share(partitions: i32, members: &[Uuid], me: Uuid) -> Vec<i32> {
    let Some(place) = members.iter().position(|&m| m == me) else {
        return Vec::new();
    };
    let count = members.len() as i32;
    (0..partitions)
        .filter(|partition| partition % count == place as i32)
        .collect()
}

impl Membership {
    /// One round: renews this member, drops members gone for the lease's
    /// time, lets go of partitions beyond this member's share and claims the
    /// free ones within it. Answers what this member holds now.
    pub async fn balance(
        &self,
        session: &mut PgConnection,
        partitions: i32,
    ) -> Result<Owned, sqlx::Error> {
        sqlx::query(
            "INSERT INTO projection_members
                 (projection, member, process, backend_pid, backend_started)
             SELECT $1, $2, $3, pid, backend_start
               FROM pg_stat_activity WHERE pid = pg_backend_pid()
             ON CONFLICT (projection, member) DO UPDATE
                SET seen_at = now(), backend_pid = EXCLUDED.backend_pid,
                    backend_started = EXCLUDED.backend_started",
        )
        .bind(self.projection)
        .bind(self.member)
        .bind(&self.process)
        .execute(&mut *session)
        .await?;
        // The members left, in id order, and those dropped by this round
        // (the statement's own snapshot still holds them).
        let rows: Vec<(Uuid, Option<String>, Option<bool>)> = sqlx::query_as(
            "WITH gone AS (
                 DELETE FROM projection_members AS m
                  WHERE projection = $1
                    AND (seen_at < now() - make_interval(secs => $2)
                         -- its session ended (a backend another role runs
                         -- may hide when it started: then the pid decides)
                         OR (backend_pid IS NOT NULL
                             AND NOT EXISTS (SELECT FROM pg_stat_activity AS a
                                              WHERE a.pid = m.backend_pid
                                                AND (a.backend_start = m.backend_started
                                                     OR a.backend_start IS NULL))))
                 RETURNING member, process, seen_at < now() - make_interval(secs => $2) AS lapsed
             )
             SELECT member, NULL, NULL FROM projection_members
              WHERE projection = $1 AND member NOT IN (SELECT member FROM gone)
             UNION ALL
             SELECT member, process, lapsed FROM gone
             ORDER BY 1",
        )
        .bind(self.projection)
        .bind(self.ttl.as_secs_f64())
        .fetch_all(&mut *session)
        .await?;
        let mut members = Vec::with_capacity(rows.len());
        for (member, process, lapsed) in rows {
            let Some(lapsed) = lapsed else {
                members.push(member);
                continue;
            };
            tracing::warn!(
                projection = self.projection,
                %member,
                process = process.as_deref().unwrap_or_default(),
                why = if lapsed { "its lease ran out" } else { "its Postgres session ended" },
                "a member is gone; its partitions move to the others"
            );
        }
        let mine = share(partitions, &members, self.member);
        match self.settle(session, partitions, &mine).await {
            Ok(()) => {}
            // A lease held by a batch in flight elsewhere (the claim's lock
            // timeout): claimed at the next round.
            Err(error) if single_active::lock_timed_out(&error) => {
                tracing::debug!(
                    projection = self.projection,
                    "a lease is held by a batch in flight; claiming at the next round"
                );
            }
            Err(error) => return Err(error),
        }
        self.owned(session, partitions).await
    }

    /// Lets go of what is beyond `mine` and claims what within it is free.
    async fn settle(
        &self,
        session: &mut PgConnection,
        partitions: i32,
        mine: &[i32],
    ) -> Result<(), sqlx::Error> {
        let mut tx = session.begin().await?;
        // A batch in flight elsewhere holds its leases until it commits.
        sqlx::query("SET LOCAL lock_timeout = '500ms'")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO projection_leases (projection, partition)
             SELECT $1, generate_series(0, $2 - 1)
             ON CONFLICT (projection, partition) DO NOTHING",
        )
        .bind(self.projection)
        .bind(partitions)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE projection_leases SET owner = NULL
              WHERE projection = $1 AND owner = $2 AND partition <> ALL($3)",
        )
        .bind(self.projection)
        .bind(self.member)
        .bind(mine)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE projection_leases SET owner = $2, epoch = epoch + 1
              WHERE projection = $1 AND partition = ANY($3)
                AND (owner IS NULL
                     OR owner NOT IN (SELECT member FROM projection_members
                                       WHERE projection = $1))",
        )
        .bind(self.projection)
        .bind(self.member)
        .bind(mine)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// What this member holds, below `partitions`.
    async fn owned(
        &self,
        session: &mut PgConnection,
        partitions: i32,
    ) -> Result<Owned, sqlx::Error> {
        let rows: Vec<(i32, i64)> = sqlx::query_as(
            "SELECT partition, epoch FROM projection_leases
              WHERE projection = $1 AND owner = $2 AND partition < $3",
        )
        .bind(self.projection)
        .bind(self.member)
        .bind(partitions)
        .fetch_all(&mut *session)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Lets every partition go and leaves, so that the others take them at
    /// their next round rather than after the lease's time.
    pub async fn leave(&self, session: &mut PgConnection) -> Result<(), sqlx::Error> {
        sqlx::query(
            "WITH left_members AS (
                 DELETE FROM projection_members WHERE projection = $1 AND member = $2
             )
             UPDATE projection_leases SET owner = NULL WHERE projection = $1 AND owner = $2",
        )
        .bind(self.projection)
        .bind(self.member)
        .execute(&mut *session)
        .await?;
        Ok(())
    }

    /// In a batch's transaction: locks the leases of the partitions it
    /// touched (`touched`, each with the epoch this member claimed it at)
    /// until the commit, and answers those it no longer holds: if any, the
    /// batch must not commit.
    pub async fn fence(
        &self,
        tx: &mut PgConnection,
        touched: &Owned,
    ) -> Result<Vec<i32>, sqlx::Error> {
        let (partitions, epochs): (Vec<i32>, Vec<i64>) =
            touched.iter().map(|(&p, &e)| (p, e)).unzip();
        let held: Vec<i32> = sqlx::query_scalar(
            "SELECT l.partition
               FROM projection_leases l
               JOIN unnest($3::int[], $4::bigint[]) AS t (partition, epoch)
                 ON l.partition = t.partition AND l.epoch = t.epoch
              WHERE l.projection = $1 AND l.owner = $2
                FOR SHARE OF l",
        )
        .bind(self.projection)
        .bind(self.member)
        .bind(&partitions)
        .bind(&epochs)
        .fetch_all(&mut *tx)
        .await?;
        Ok(partitions
            .into_iter()
            .filter(|partition| !held.contains(partition))
            .collect())
    }
}
