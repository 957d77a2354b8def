//! `taskledger rebuild task-list`: built again from the event store beside
//! the live table while queries and writes go on, switched in, with nothing
//! sent to task-updates and nothing else fired.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{assert_no_errors, read_topic, role_process, TestApp};

/// `taskledger rebuild task-list` on the app's database: success, stdout, stderr.
async fn rebuild(app: &TestApp) -> (bool, String, String) {
    let output = role_process(&app.settings, "rebuild")
        .arg("task-list")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const COUNTS: &str = "{ tasks(first: 5) { totalCount } taskStats { open completed deleted } tags { tag open total } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_switches_in_a_faithful_table_while_queries_and_writes_go_on() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let mut last = (String::new(), 0);
    for n in 0..120 {
        let token = if n % 3 == 0 { &bob } else { &alice };
        let body = app
            .graphql(
                Some(token),
                "mutation($t: String!, $tags: [String!]) { createTask(input: {title: $t, tags: $tags}) { taskId version } }",
                json!({"t": format!("task {n} milk"), "tags": if n % 2 == 0 { json!(["home"]) } else { json!(["work/team"]) }}),
            )
            .await;
        assert_no_errors(&body);
        let id = body["data"]["createTask"]["taskId"]
            .as_str()
            .unwrap()
            .to_owned();
        last = (id.clone(), 1);
        let change = match n % 5 {
            0 => Some("completeTask"),
            1 => Some("deleteTask"),
            _ => None,
        };
        if let Some(mutation) = change {
            let body = app
                .graphql(
                    Some(token),
                    &format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ version }} }}"),
                    json!({"id": id}),
                )
                .await;
            assert_no_errors(&body);
            last = (id, 2);
        }
    }
    let token_of_last = if 119 % 3 == 0 { &bob } else { &alice };
    app.task_at_version(token_of_last, &last.0, last.1).await;
    crate::helpers::eventually(Duration::from_secs(15), || async {
        crate::helpers::read_model_disagreements(&app.pool)
            .await
            .is_empty()
            .then_some(())
    })
    .await
    .expect("the read model catches up");
    let before = app.graphql(Some(&alice), COUNTS, json!({})).await;
    assert_no_errors(&before);
    // Everything so far is on task-updates before counting.
    crate::helpers::eventually(Duration::from_secs(15), || async {
        let behind: bool = sqlx::query_scalar(
            "SELECT (SELECT max(change_seq) FROM task_list) >
                    (SELECT coalesce(max(change_seq), 0) FROM task_update_publishers)",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (!behind).then_some(())
    })
    .await
    .expect("the publisher catches up");
    let updates_before = read_topic(
        &app.kafka(),
        &app.settings.task_updates_topic,
        Duration::from_secs(3),
        |_| false,
    )
    .await
    .len();

    let side_effects = |pool: sqlx::PgPool| async move {
        sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM reminders),
                    (SELECT count(*) FROM notifications)",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let (events_before, reminders_before, notifications_before) =
        side_effects(app.pool.clone()).await;
    let indexes = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, String>(
            "SELECT indexname::text FROM pg_indexes
              WHERE schemaname = 'public'
                AND tablename IN ('task_list', 'task_stats', 'tag_counts', 'task_words')
              ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let indexes_before = indexes(app.pool.clone()).await;

    // Readers and a writer throughout the rebuild.
    let stop = Arc::new(AtomicBool::new(false));
    let (reads, wrong) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let reader = {
        let (client, address, token) = (app.client.clone(), app.address.clone(), alice.clone());
        let (stop, reads, wrong, expected) =
            (stop.clone(), reads.clone(), wrong.clone(), before.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let body: Value = client
                    .post(format!("{address}/graphql"))
                    .bearer_auth(&token)
                    .json(&json!({"query": COUNTS}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                reads.fetch_add(1, Ordering::Relaxed);
                if body != expected {
                    wrong.fetch_add(1, Ordering::Relaxed);
                    eprintln!("a read during the rebuild: {body}");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let writer = {
        let (client, address, token) = (app.client.clone(), app.address.clone(), bob.clone());
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut written = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let body: Value = client
                    .post(format!("{address}/graphql"))
                    .bearer_auth(&token)
                    .json(&json!({"query": "mutation { createTask(input: {title: \"during\"}) { taskId } }"}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                written.push(
                    body["data"]["createTask"]["taskId"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            written
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (ok, printed, errors) = rebuild(&app).await;
    stop.store(true, Ordering::Relaxed);
    reader.await.unwrap();
    let written = writer.await.unwrap();
    assert!(ok, "{printed}\n{errors}");
    assert!(printed.contains("task-list rebuilt"), "{printed}");
    eprintln!("{printed}");
    assert!(
        reads.load(Ordering::Relaxed) > 5,
        "queries ran during the rebuild"
    );
    assert_eq!(
        wrong.load(Ordering::Relaxed),
        0,
        "every read during the rebuild was right"
    );

    // Every write made during the rebuild is in the new table, and the new
    // table agrees with the store field by field.
    for id in &written {
        app.task_at_version(&bob, id, 1).await;
    }
    let (passed, report) = crate::verify::run_verify(&app.settings);
    assert!(passed, "{report}");
    let after = app.graphql(Some(&alice), COUNTS, json!({})).await;
    assert_eq!(after, before, "alice's counts and tags are the same");

    // Nothing was sent to task-updates for the rebuilt rows: only the
    // writer's own tasks.
    let updates = read_topic(
        &app.kafka(),
        &app.settings.task_updates_topic,
        Duration::from_secs(3),
        |_| false,
    )
    .await;
    let since: Vec<String> = updates[updates_before..]
        .iter()
        .map(|m| m.json()["data"]["task"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        since.iter().all(|id| written.contains(id)),
        "task-updates carried rebuilt rows: {} messages for {} writes",
        since.len(),
        written.len()
    );
    // Nothing else fired: no event but the writer's creations (no next
    // occurrence), no reminder, no notification.
    let (events_after, reminders_after, notifications_after) = side_effects(app.pool.clone()).await;
    assert_eq!(events_after - events_before, written.len() as i64);
    assert_eq!(reminders_after, reminders_before);
    assert_eq!(notifications_after, notifications_before);
    assert_eq!(
        indexes(app.pool.clone()).await,
        indexes_before,
        "the new tables' indexes have the names migrations know"
    );
    let retired: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_namespace WHERE nspname IN ('taskledger_rebuild', 'taskledger_retired')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(retired, 0, "the old tables are gone");
}

#[tokio::test]
async fn a_second_rebuild_is_refused_and_a_killed_one_leaves_the_next_to_start_afresh() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let (id, _) = app.create_task(&alice, "kept").await;
    app.task_at_version(&alice, &id, 1).await;

    let mut holder = app.pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(hashtext('taskledger-rebuild:task-list'))")
        .execute(&mut *holder)
        .await
        .unwrap();
    let (ok, _, errors) = rebuild(&app).await;
    assert!(!ok);
    assert!(
        errors.contains("another rebuild of task-list is running"),
        "{errors}"
    );
    sqlx::query("SELECT pg_advisory_unlock(hashtext('taskledger-rebuild:task-list'))")
        .execute(&mut *holder)
        .await
        .unwrap();
    drop(holder);

    // Killed half-way (whenever the kill lands), then run again.
    let mut killed = role_process(&app.settings, "rebuild")
        .arg("task-list")
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    killed.start_kill().unwrap();
    killed.wait().await.unwrap();
    let (ok, printed, errors) = rebuild(&app).await;
    assert!(ok, "{printed}\n{errors}");
    assert_eq!(app.task(&alice, &id).await["title"], "kept");
    let (passed, report) = crate::verify::run_verify(&app.settings);
    assert!(passed, "{report}");
    let (ok, _, errors) = std::process::Command::new(env!("CARGO_BIN_EXE_taskledger"))
        .args(["rebuild", "reminders"])
        .env("TASKLEDGER_ENV", "local")
        .env(
            "DATABASE_URL",
            app.settings.database_url.as_deref().unwrap(),
        )
        .output()
        .map(|o| {
            (
                o.status.success(),
                (),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert!(!ok);
    assert!(errors.contains("rebuild knows task-list"), "{errors}");
}
