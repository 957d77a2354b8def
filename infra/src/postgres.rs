//! How pools of Postgres connections are opened.
//!
//! sqlx's pool pings a connection (a `Sync` and its `ReadyForQuery`: a round
//! trip) each time it hands one out, and again each time it takes one back.
//! A request that runs one statement then costs three round trips, not one.
//!
//! - [`pool_options`]: sqlx's pool, handing out a connection unpinged when it
//!   came back less than [`PING_AFTER_IDLE`] ago. The ping on return is
//!   sqlx's own and stays: it costs both sides CPU, though no request waits
//!   on it.
//! - [`ReadyPool`]: for the statements run most (a first page, the
//!   caller's lists, a command's load and commit), a pool of our own that takes a connection back without
//!   a ping when its statement finished, and closes it when it did not.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgPoolOptions, PgSeverity};
use sqlx::{Connection, PgConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a connection may sit in a pool and be handed out unpinged.
/// Within it, a connection whose server went away (Postgres restarted just
/// then) fails the one statement sent on it and is closed, as a request in
/// flight during the restart fails.
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// How long a caller waits for a connection before it is refused.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a [`ReadyPool`] waits for a statement left running by a caller
/// that went away (a request cut off at its deadline) before it closes the
/// connection instead of reusing it.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Options for a sqlx pool of at most `max_connections`: connections pinged
/// only after [`PING_AFTER_IDLE`] in the pool.
pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
}

/// At most `max_connections` connections, opened as they are needed and
/// kept between uses, for single statements (no transaction is left open on
/// one). One handed back through [`ReadyConnection::release`] (its statement
/// finished) goes back unpinged. One dropped without it (a request cut off
/// mid-statement) keeps its place in the bound while what it left running
/// finishes, up to [`DRAIN_TIMEOUT`]: then it goes back, or is closed. One
/// that sat idle for [`PING_AFTER_IDLE`] is pinged before it is handed out,
/// within the caller's wait.
#[derive(Clone)]
pub struct ReadyPool {
    inner: Arc<Inner>,
}

struct Inner {
    options: PgConnectOptions,
    idle: Mutex<Vec<Idle>>,
    capacity: Arc<Semaphore>,
}

struct Idle {
    connection: PgConnection,
    since: Instant,
}

impl ReadyPool {
    /// A pool on `options` that opens no connection yet.
    pub fn new(options: PgConnectOptions, max_connections: u32) -> Self {
        Self {
            inner: Arc::new(Inner {
                options,
                idle: Mutex::new(Vec::new()),
                capacity: Arc::new(Semaphore::new(max_connections as usize)),
            }),
        }
    }

    /// A connection: the one last handed back, or a new one. Waits at most
    /// [`ACQUIRE_TIMEOUT`] for one to be free and for a new one to open.
    pub async fn acquire(&self) -> Result<ReadyConnection, sqlx::Error> {
        let deadline = tokio::time::Instant::now() + ACQUIRE_TIMEOUT;
        let permit = tokio::time::timeout_at(deadline, self.inner.capacity.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let connection = loop {
            let idle = self.inner.idle.lock().expect("never poisoned").pop();
            let Some(Idle {
                mut connection,
                since,
            }) = idle
            else {
                break tokio::time::timeout_at(
                    deadline,
                    PgConnection::connect_with(&self.inner.options),
                )
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??;
            };
            if since.elapsed() < PING_AFTER_IDLE
                || matches!(
                    tokio::time::timeout_at(deadline, connection.ping()).await,
                    Ok(Ok(()))
                )
            {
                break connection;
            }
        };
        Ok(ReadyConnection {
            connection: Some(connection),
            home: self.inner.clone(),
            permit: Some(permit),
        })
    }

    /// Runs `statement` on a connection of the pool, then hands the
    /// connection back or closes it by what the statement answered (see
    /// [`ReadyConnection::release_after`]).
    pub async fn run<T>(
        &self,
        statement: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        let mut connection = self.acquire().await?;
        let result = statement(&mut connection).await;
        connection.release_after(&result);
        result
    }

    /// How many connections wait in the pool.
    pub fn idle(&self) -> usize {
        self.inner.idle.lock().expect("never poisoned").len()
    }
}

impl std::fmt::Debug for ReadyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyPool")
            .field("idle", &self.idle())
            .finish_non_exhaustive()
    }
}

/// A connection of a [`ReadyPool`]; closed when dropped, unless released.
pub struct ReadyConnection {
    connection: Option<PgConnection>,
    home: Arc<Inner>,
    /// Its place in the pool's bound, given up when it is back or closed.
    permit: Option<OwnedSemaphorePermit>,
}

impl ReadyConnection {
    /// Hands the connection back for the next caller: call it once its
    /// statements have finished.
    pub fn release(mut self) {
        if let Some(connection) = self.connection.take() {
            self.home.give_back(connection);
        }
    }
}

impl ReadyConnection {
    /// Hands the connection back after `result`, its statement's outcome,
    /// unless that says the connection itself failed. A statement Postgres
    /// refused (a constraint, a timeout) leaves it ready for the next; a
    /// session ended by the server (SQLSTATE class 57P or 08) or a broken
    /// socket does not.
    pub fn release_after<T>(mut self, result: &Result<T, sqlx::Error>) {
        let usable = match result {
            Ok(_) | Err(sqlx::Error::RowNotFound) => true,
            Err(sqlx::Error::Database(error)) => {
                let ended = error
                    .try_downcast_ref::<PgDatabaseError>()
                    .is_some_and(|e| matches!(e.severity(), PgSeverity::Fatal | PgSeverity::Panic));
                !ended
                    && !error
                        .code()
                        .is_some_and(|code| code.starts_with("57P") || code.starts_with("08"))
            }
            Err(_) => false,
        };
        if usable {
            self.release();
        } else if let Some(connection) = self.connection.take() {
            // Broken: closed at once, its place in the bound given up.
            drop(connection);
        }
    }
}

impl Deref for ReadyConnection {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.connection.as_ref().expect("held until dropped")
    }
}

impl DerefMut for ReadyConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.connection.as_mut().expect("held until dropped")
    }
}

impl Drop for ReadyConnection {
    fn drop(&mut self) {
        // Not released: a statement cut off mid-way may still run on the
        // server. The connection keeps its place in the bound until that
        // is over (it is reused) or [`DRAIN_TIMEOUT`] passes (it is closed;
        // the server ends its statement by the statement timeout).
        let (Some(mut connection), permit) = (self.connection.take(), self.permit.take()) else {
            return;
        };
        let home = Arc::clone(&self.home);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Ok(Ok(())) = tokio::time::timeout(DRAIN_TIMEOUT, connection.ping()).await {
                    home.give_back(connection);
                }
                drop(permit);
            });
        }
    }
}

impl Inner {
    fn give_back(&self, connection: PgConnection) {
        self.idle.lock().expect("never poisoned").push(Idle {
            connection,
            since: Instant::now(),
        });
    }
}
