//! How Postgres pools hand out connections (`infra::postgres`): one back from
//! a request less than a second ago goes out without a ping, and one that sat
//! idle longer is checked first, so a session the server ended meanwhile
//! never reaches a request. The ready pool (the reads' kept plans) also takes
//! a connection back without a ping, and only when its statement finished.

use std::time::Duration;

use infra::postgres::{pool_options, PING_AFTER_IDLE};

use crate::helpers::fresh_settings;

/// The server process behind the connection `executor` runs on.
async fn backend<'e>(executor: impl sqlx::PgExecutor<'e>) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(executor)
        .await
        .expect("a statement")
}

/// Ends server process `pid`'s session, as a Postgres restart would.
async fn end_session(admin: &sqlx::PgPool, pid: i32) {
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(admin)
        .await
        .expect("pg_terminate_backend");
    assert!(ended, "session {pid} ended");
}

#[tokio::test]
async fn a_connection_whose_session_ended_while_idle_is_replaced_before_a_request_gets_it() {
    let settings = fresh_settings().await;
    let url = settings.common.database_url.expect("a database");
    let pool = pool_options(1).connect(&url).await.expect("the pool opens");
    let first = backend(&pool).await;

    // The server ends that session while its connection waits in the pool.
    let admin = pool_options(1).connect(&url).await.expect("another pool");
    end_session(&admin, first).await;
    tokio::time::sleep(PING_AFTER_IDLE + Duration::from_millis(300)).await;

    let second = backend(&pool).await;
    assert_ne!(second, first, "a new session replaced the one that ended");
}

mod ready_pool {
    use std::time::Duration;

    use infra::postgres::{ReadyPool, DRAIN_TIMEOUT, PING_AFTER_IDLE};
    use sqlx::postgres::PgConnectOptions;

    use super::{backend, end_session};
    use crate::helpers::fresh_settings;

    async fn pool(max_connections: u32) -> (ReadyPool, sqlx::PgPool) {
        let settings = fresh_settings().await;
        let url = settings.common.database_url.expect("a database");
        let options: PgConnectOptions = url.parse().expect("a database URL");
        let admin = sqlx::PgPool::connect(&url).await.expect("Postgres is up");
        (ReadyPool::new(options, max_connections), admin)
    }

    async fn session_is_open(admin: &sqlx::PgPool, pid: i32) -> bool {
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)")
            .bind(pid)
            .fetch_one(admin)
            .await
            .expect("pg_stat_activity")
    }

    #[tokio::test]
    async fn a_released_connection_serves_the_next_caller_and_a_dropped_one_is_checked_first() {
        let (pool, _admin) = pool(2).await;
        let mut first = pool.acquire().await.expect("a connection");
        let pid = backend(&mut *first).await;
        first.release();
        assert_eq!(pool.idle(), 1);

        let mut again = pool.acquire().await.expect("a connection");
        assert_eq!(backend(&mut *again).await, pid, "the released one, reused");
        // Dropped without a release, as by a request cut off: it goes back
        // only once a ping shows nothing was left running on it.
        drop(again);
        assert_eq!(pool.idle(), 0, "not handed back unchecked");
        let mut back = false;
        for _ in 0..50 {
            if pool.idle() == 1 {
                back = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(back, "checked and handed back");
        let mut next = pool.acquire().await.expect("a connection");
        assert_eq!(backend(&mut *next).await, pid);
    }

    #[tokio::test]
    async fn a_statement_cut_off_midway_holds_its_place_for_a_while_then_its_connection_is_closed()
    {
        let (pool, admin) = pool(1).await;
        let mut held = pool.acquire().await.expect("a connection");
        let pid = backend(&mut *held).await;
        let cut = tokio::time::timeout(
            Duration::from_millis(200),
            sqlx::query("SELECT pg_sleep(5)").execute(&mut *held),
        )
        .await;
        assert!(cut.is_err(), "the statement was cut off");
        drop(held);

        let started = std::time::Instant::now();
        let mut next = pool.acquire().await.expect("a connection");
        let waited = started.elapsed();
        assert!(
            waited >= DRAIN_TIMEOUT - Duration::from_millis(300),
            "the cut-off connection kept its place in the bound: {waited:?}"
        );
        assert!(
            waited < DRAIN_TIMEOUT + Duration::from_secs(2),
            "but no longer than the drain: {waited:?}"
        );
        assert_ne!(
            backend(&mut *next).await,
            pid,
            "a new connection, not the busy one"
        );
        assert!(
            session_is_open(&admin, pid).await,
            "the server still runs the cut-off statement (until its own timeout)"
        );
    }

    #[tokio::test]
    async fn no_more_connections_than_its_bound_are_handed_out() {
        let (pool, _admin) = pool(1).await;
        let held = pool.acquire().await.expect("a connection");
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.acquire().await.map(|c| c.release()) }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "a second caller waits for the one connection"
        );
        held.release();
        tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .expect("it is served once the first is released")
            .expect("the task ran")
            .expect("a connection");
    }

    #[tokio::test]
    async fn a_statement_postgres_refused_leaves_its_connection_in_the_pool_and_an_ended_session_does_not(
    ) {
        let (pool, admin) = pool(1).await;
        let mut conn = pool.acquire().await.expect("a connection");
        let pid = backend(&mut *conn).await;
        let refused = sqlx::query_scalar::<_, i32>("SELECT 1 / 0")
            .fetch_one(&mut *conn)
            .await;
        assert!(
            matches!(refused, Err(sqlx::Error::Database(_))),
            "{refused:?}"
        );
        conn.release_after(&refused);
        assert_eq!(
            pool.idle(),
            1,
            "a refused statement leaves the connection usable"
        );

        let mut conn = pool.acquire().await.expect("a connection");
        assert_eq!(
            backend(&mut *conn).await,
            pid,
            "the same connection, working"
        );
        end_session(&admin, pid).await;
        let failed = sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&mut *conn)
            .await;
        assert!(failed.is_err(), "a statement on an ended session fails");
        conn.release_after(&failed);
        assert_eq!(pool.idle(), 0, "an ended session is not handed out again");
        let mut next = pool.acquire().await.expect("a new connection");
        assert_ne!(backend(&mut *next).await, pid);
    }

    #[tokio::test]
    async fn a_connection_whose_session_ended_while_idle_is_replaced() {
        let (pool, admin) = pool(1).await;
        let mut first = pool.acquire().await.expect("a connection");
        let pid = backend(&mut *first).await;
        first.release();
        end_session(&admin, pid).await;
        tokio::time::sleep(PING_AFTER_IDLE + Duration::from_millis(300)).await;

        let mut second = pool.acquire().await.expect("a connection that works");
        assert_ne!(backend(&mut *second).await, pid);
    }
}

/// Sessions Postgres has opened on the test's database so far (each session
/// reports its statistics within a second).
async fn sessions_opened(pool: &sqlx::PgPool) -> i64 {
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    sqlx::query_scalar("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(pool)
        .await
        .expect("pg_stat_database")
}

#[tokio::test]
async fn commands_and_pages_reuse_their_connections() {
    let app = crate::helpers::TestApp::spawn_roles(taskledger::Roles::API).await;
    let token = app.token("pooled");
    // Pages of a user who wrote nothing: no wait for the writer's own
    // writes to reach a read model no projector runs for here.
    let reader = app.token("reading");
    // Warm: the pools open what they need.
    app.create_task(&token, "the first").await;
    let before = sessions_opened(&app.pool).await;
    for n in 0..40 {
        app.create_task(&token, &format!("task {n}")).await;
        let page = app
            .graphql(
                Some(&reader),
                "{ tasks(first: 5) { nodes { id } } }",
                serde_json::json!({}),
            )
            .await;
        crate::helpers::assert_no_errors(&page);
    }
    let opened = sessions_opened(&app.pool).await - before;
    assert!(
        opened < 10,
        "40 commands and 40 pages, one after another, opened {opened} new sessions"
    );
}
