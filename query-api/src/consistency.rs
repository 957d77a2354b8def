//! Session consistency: a read shows every write its caller committed
//! before it, without the client asking. The event store counts each user's
//! stored events (`user_events_stored`: what the relay has counted, and the
//! caller's among the few events after it) and the task list counts the
//! events it has applied for them (`task_stats.events`); a read that must see
//! the caller's writes waits, bounded, until the second reaches what the
//! first held when the read began. Reads of callers with no recent write
//! check nothing. See docs/adr/0010.

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_core::consistency::{ConsistencyToken, RecentWrites, Session};
use async_graphql::{Response, Value};
use sqlx::PgPool;

/// How often a waiting read looks again.
const POLL: Duration = Duration::from_millis(5);

/// The most events not yet counted by the relay a check looks through for
/// the caller's (a few milliseconds of work); with more, the read answers at
/// once as behind.
const UNCOUNTED_LIMIT: i32 = 2_000;

/// What settling a read came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// Every write the caller had committed when the read began is applied.
    pub caught_up: bool,
    pub waited: Duration,
}

impl Settled {
    /// As the response's `extensions.consistency` says it.
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "caughtUp": self.caught_up,
            "waitedMs": u64::try_from(self.waited.as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// The wait, shared by every door of one process.
#[derive(Clone)]
pub struct Consistency {
    pool: PgPool,
    recent: Arc<RecentWrites>,
    max_wait: Duration,
}

impl Consistency {
    /// `pool` reads both counts: the event store's and the read model's
    /// live in one database.
    pub fn new(pool: PgPool, max_wait: Duration) -> Self {
        Self {
            pool,
            recent: Arc::default(),
            max_wait,
        }
    }

    /// A request's session: what this process remembers, and the token the
    /// client carried.
    pub fn session(&self, carried: Option<ConsistencyToken>) -> Session {
        Session::new(self.recent.clone(), carried)
    }

    /// Before a read of `user`'s: nothing if the session has no reason to
    /// check; otherwise one indexed lookup, and if the read model is behind,
    /// a wait bounded by the read-your-writes wait.
    pub async fn settle(&self, session: &Session, user: &str) -> Option<Settled> {
        if !session.must_check(user) {
            return None;
        }
        let began = Instant::now();
        let as_of = ConsistencyToken::now();
        let settled = match self.wait(user, began).await {
            Ok(caught_up) => Settled {
                caught_up,
                waited: began.elapsed(),
            },
            Err(error) => {
                // The read goes on with what it has, and says so.
                tracing::warn!(%error, "checking the caller's writes were applied failed");
                Settled {
                    caught_up: false,
                    waited: began.elapsed(),
                }
            }
        };
        let outcome = if settled.caught_up {
            session.applied(user, as_of);
            if settled.waited < POLL {
                "applied"
            } else {
                "waited"
            }
        } else {
            "behind"
        };
        metrics::counter!(infra::metric::CONSISTENCY_CHECKS, "outcome" => outcome).increment(1);
        metrics::histogram!(infra::metric::CONSISTENCY_WAIT_SECONDS)
            .record(settled.waited.as_secs_f64());
        Some(settled)
    }

    async fn wait(&self, user: &str, began: Instant) -> Result<bool, sqlx::Error> {
        let (written, mut applied): (Option<i64>, i64) = sqlx::query_as(
            "SELECT user_events_stored($1, $2),
                    coalesce((SELECT events FROM task_stats WHERE user_id = $1), 0)",
        )
        .bind(user)
        .bind(UNCOUNTED_LIMIT)
        .fetch_one(&self.pool)
        .await?;
        let Some(written) = written else {
            // The relay is far behind, and so is the read model: no wait
            // would see it through.
            return Ok(false);
        };
        let deadline = began + self.max_wait;
        while applied < written {
            if Instant::now() + POLL > deadline {
                return Ok(false);
            }
            tokio::time::sleep(POLL).await;
            applied = sqlx::query_scalar("SELECT events FROM task_stats WHERE user_id = $1")
                .bind(user)
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or(0);
        }
        Ok(true)
    }
}

/// The response with what its reads' check came to, if there was one.
pub fn with_settled(response: Response, settled: Option<Settled>) -> Response {
    match settled {
        Some(settled) => response.extension("consistency", json_value(settled.to_json())),
        None => response,
    }
}

/// The response with the token of its writes, if it wrote.
pub fn with_token(response: Response, token: Option<ConsistencyToken>) -> Response {
    match token {
        Some(token) => response.extension(
            "consistency",
            json_value(serde_json::json!({ "token": token.to_string() })),
        ),
        None => response,
    }
}

fn json_value(json: serde_json::Value) -> Value {
    Value::from_json(json).unwrap_or(Value::Null)
}
