//! How every pool of Postgres connections is opened. sqlx pings a
//! connection (a `Sync` and its `ReadyForQuery`: a round trip) each time the
//! pool hands it out, on top of the ping it sends when the connection is
//! given back. A request that runs one statement then waits on two round
//! trips, not one. A connection given back after a ping that succeeded less
//! than [`PING_AFTER_IDLE`] ago is handed out without another: under load
//! connections come back within milliseconds, so no request waits on a ping,
//! and one that sat idle longer is still checked first.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::Connection;

/// How long a connection may sit in the pool and be handed out unpinged.
/// Within it, a connection whose server went away (Postgres restarted just
/// then) fails the one statement sent on it and is closed, as a request in
/// flight during the restart fails.
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// How long a caller waits for a connection before it is refused.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Options for a pool of at most `max_connections`: connections pinged only
/// after [`PING_AFTER_IDLE`] in the pool.
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
