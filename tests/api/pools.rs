//! How Postgres pools hand out connections (`infra::postgres`): one back from
//! a request less than a second ago goes out without a ping, and one that sat
//! idle longer is checked first, so a session the server ended meanwhile
//! never reaches a request.

use std::time::Duration;

use infra::postgres::{pool_options, PING_AFTER_IDLE};

use crate::helpers::fresh_settings;

async fn backend_of(pool: &sqlx::PgPool) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(pool)
        .await
}

#[tokio::test]
async fn a_connection_whose_session_ended_while_idle_is_replaced_before_a_request_gets_it() {
    let settings = fresh_settings().await;
    let url = settings.common.database_url.expect("a database");
    let pool = pool_options(1).connect(&url).await.expect("the pool opens");
    let first = backend_of(&pool).await.expect("a first statement");

    // The server ends that session while its connection waits in the pool.
    let admin = pool_options(1).connect(&url).await.expect("another pool");
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(first)
        .fetch_one(&admin)
        .await
        .expect("the session is ended");
    assert!(ended);
    tokio::time::sleep(PING_AFTER_IDLE + Duration::from_millis(300)).await;

    let second = backend_of(&pool)
        .await
        .expect("the request gets a connection that works");
    assert_ne!(second, first, "a new session replaced the one that ended");
}
