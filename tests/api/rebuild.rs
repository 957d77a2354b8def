//! `taskledger rebuild task-list` and `rebuild reminders`: built again from
//! the event store beside the live tables while queries and writes go on,
//! switched in, with nothing sent to task-updates and nothing else fired.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{assert_no_errors, read_topic, role_process, TestApp};

/// `taskledger rebuild task-list` on the app's database: success, stdout, stderr.
async fn rebuild(app: &TestApp) -> (bool, String, String) {
    rebuild_of(app, "task-list").await
}

/// `taskledger rebuild PROJECTION` on the app's database: success, stdout, stderr.
pub(crate) async fn rebuild_of(app: &TestApp, projection: &str) -> (bool, String, String) {
    let output = role_process(&app.settings, "rebuild")
        .arg(projection)
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
                "mutation($t: String!, $d: String, $tags: [String!]) { createTask(input: {title: $t, description: $d, tags: $tags}) { taskId version } }",
                // What the bulk load's COPY format escapes, in titles and
                // descriptions: backslashes, tabs, newlines, quotes.
                json!({
                    "t": format!("task {n} milk \\N \"oat\" {{a,b}} café"),
                    "d": (n % 4 == 0).then(|| format!("line one\n\tline two \\ {n}\r\nend")),
                    "tags": if n % 2 == 0 { json!(["home"]) } else { json!(["work/team"]) },
                }),
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
        &app.settings.common.task_updates_topic,
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
                // The data: `extensions` may say a check of alice's own
                // writes was made (the first reads after her writes).
                if body["data"] != expected["data"] {
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
    // Each writer's events counted as applied, whoever applied them (the
    // rebuild's catch-up or the live projector): what a read of one's own
    // writes waits for.
    let disagreements = crate::helpers::read_model_disagreements(&app.pool).await;
    assert!(disagreements.is_empty(), "{disagreements:?}");
    let after = app.graphql(Some(&alice), COUNTS, json!({})).await;
    assert_eq!(
        after["data"], before["data"],
        "alice's counts and tags are the same"
    );

    // Nothing was sent to task-updates for the rebuilt rows: only the
    // writer's own tasks.
    let updates = read_topic(
        &app.kafka(),
        &app.settings.common.task_updates_topic,
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
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'taskledger\\_re%'",
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
        .args(["rebuild", "notifications"])
        .env("TASKLEDGER_ENV", "local")
        .env(
            "DATABASE_URL",
            app.settings.common.database_url.as_deref().unwrap(),
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
    assert!(errors.contains("possible values: task-list"), "{errors}");
}

/// The reminders of the store as the projection holds them.
async fn reminder_rows(pool: &sqlx::PgPool) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT to_jsonb(r) - 'title' FROM (
             SELECT reminder_id, task_id, user_id, title, remind_at, status, snoozed_from, fired_at
               FROM reminders ORDER BY reminder_id) AS r",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The Axon bug, for reminders: replayed events must not fire anything.
/// Pending reminders come back the same from the store; a fired one keeps
/// its status and a snooze stays (neither is an event); one that fired and
/// was pruned is not brought back due; nothing reaches the inbox or the
/// reminders topic because of the rebuild.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminders_rebuild_keeps_what_fired_and_fires_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let create = |title: &'static str, offsets: Vec<i64>| {
        let (app, alice) = (&app, alice.clone());
        async move {
            let at: Vec<Value> = offsets
                .iter()
                .map(|s| json!({"at": (chrono::Utc::now() + chrono::Duration::seconds(*s)).to_rfc3339()}))
                .collect();
            let body = app
                .graphql(
                    Some(&alice),
                    "mutation($t: String!, $r: [ReminderInput!]) { createTask(input: {title: $t, reminders: $r}) { taskId } }",
                    json!({"t": title, "r": at}),
                )
                .await;
            assert_no_errors(&body);
            body["data"]["createTask"]["taskId"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    // The inbox holds `n` notifications (read or not); answers its newest.
    let notified = |n: usize| {
        let (app, alice) = (&app, alice.clone());
        async move {
            crate::helpers::eventually(Duration::from_secs(15), || async {
                let body = app
                    .graphql(
                        Some(&alice),
                        "{ notifications(first: 5) { edges { node { id } } } }",
                        json!({}),
                    )
                    .await;
                let edges = body["data"]["notifications"]["edges"].as_array()?;
                (edges.len() == n).then(|| edges[0]["node"]["id"].as_str().unwrap().to_owned())
            })
            .await
            .expect("the inbox reaches the count")
        }
    };

    // Fired, then snoozed for an hour.
    create("fired", vec![1]).await;
    let fired = notified(1).await;
    let body = app
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { snoozeReminder(notificationId: $id, minutes: 60) }",
            json!({"id": fired}),
        )
        .await;
    assert_no_errors(&body);
    // Fired, then pruned (as the scheduler prunes what it sent long ago).
    let pruned = create("pruned", vec![1]).await;
    notified(2).await;
    sqlx::query("DELETE FROM reminders WHERE task_id = $1::uuid")
        .bind(&pruned)
        .execute(&app.pool)
        .await
        .unwrap();
    // Pending, and one that ended with its task.
    let pending = create("pending", vec![3_600, 86_400]).await;
    let done = create("done", vec![7_200]).await;
    let body = app
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { completeTask(id: $id) { version } }",
            json!({"id": done}),
        )
        .await;
    assert_no_errors(&body);
    let before = crate::helpers::eventually(Duration::from_secs(15), || async {
        let rows = reminder_rows(&app.pool).await;
        let of = |task: &str| rows.iter().filter(|r| r["task_id"] == task).count();
        (of(&pending) == 2 && of(&done) == 0).then_some(rows)
    })
    .await
    .expect("the reminders projection settles");
    assert_eq!(
        before.len(),
        4,
        "fired, its snooze and two pending: {before:#?}"
    );
    let published_before = read_topic(
        &app.kafka(),
        &app.settings.common.reminders_topic,
        Duration::from_secs(2),
        |_| false,
    )
    .await
    .len();

    let (ok, printed, errors) = rebuild_of(&app, "reminders").await;
    assert!(ok, "{printed}\n{errors}");
    assert!(printed.contains("reminders rebuilt"), "{printed}");
    assert_eq!(
        reminder_rows(&app.pool).await,
        before,
        "the same reminders, with what happened to them"
    );

    // Long enough for the scheduler to fire anything due.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A fresh reader on a loaded machine may take seconds to reach the topic.
    let published_after = read_topic(
        &app.kafka(),
        &app.settings.common.reminders_topic,
        Duration::from_secs(5),
        |_| false,
    )
    .await
    .len();
    assert_eq!(
        published_after, published_before,
        "nothing fired because of the rebuild"
    );
    let notifications: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(notifications, 2);
}

/// A change the task-updates publisher had not sent when the rebuild
/// switched in is still sent: the switch gives it a change number past the
/// checkpoint it moves. (The publisher is held back here by lowering its
/// checkpoint below the last two changes: a running publisher keeps its own
/// place, so only the switch can send them again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_the_publisher_had_not_sent_are_sent_after_the_switch() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let mut ids = Vec::new();
    for n in 0..4 {
        let (id, _) = app.create_task(&alice, &format!("unsent {n}")).await;
        ids.push(id);
    }
    app.task_at_version(&alice, &ids[3], 1).await;
    let published = |since: usize| {
        let app = &app;
        async move {
            read_topic(
                &app.kafka(),
                &app.settings.common.task_updates_topic,
                Duration::from_secs(3),
                |_| false,
            )
            .await[since..]
                .iter()
                .map(|m| m.json()["data"]["task"]["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let before = crate::helpers::eventually(Duration::from_secs(15), || async {
        let sent = published(0).await;
        ids.iter().all(|id| sent.contains(id)).then_some(sent.len())
    })
    .await
    .expect("the four creations are published");
    // As if the publisher had not got past the first two changes (in change
    // order, which need not be creation order: the tasks are on different
    // partitions).
    let in_change_order: Vec<String> =
        sqlx::query_scalar("SELECT id::text FROM task_list ORDER BY change_seq")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(in_change_order.len(), 4);
    sqlx::query(
        "UPDATE task_update_publishers
            SET change_seq = (SELECT change_seq FROM task_list WHERE id = $1::uuid)",
    )
    .bind(&in_change_order[1])
    .execute(&app.pool)
    .await
    .unwrap();

    let (ok, printed, errors) = rebuild(&app).await;
    assert!(ok, "{printed}\n{errors}");
    let again = crate::helpers::eventually(Duration::from_secs(15), || async {
        let sent = published(before).await;
        (sent.len() >= 2).then_some(sent)
    })
    .await
    .expect("the unsent changes are sent after the switch");
    let mut again = again;
    again.sort();
    let mut expected = in_change_order[2..].to_vec();
    expected.sort();
    assert_eq!(
        again, expected,
        "exactly the two the publisher had not reached"
    );
}
