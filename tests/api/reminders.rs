//! Reminders end to end on the real services: a reminder fires on its second
//! to the owner's WebSocket and inbox (and nobody else's), moves with its
//! task, fires once however many schedulers run, fires late once after an
//! outage or is recorded missed past the window, and snoozes once.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use taskledger::Roles;
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    assert_no_errors, counter_at, error_code, eventually, fresh_settings, read_topic, TestApp,
};
use crate::ws_client::GqlSocket;

const NOTIFICATIONS: &str = "subscription { notificationReceived {
    id taskId title dueAt remindAt firedAt lateMs priority tags read } }";

/// Creates a task of `token`'s user with one reminder at `at`.
async fn task_reminded_at(app: &TestApp, token: &str, title: &str, at: DateTime<Utc>) -> String {
    let body = app
        .graphql(
            Some(token),
            "mutation($title: String!, $at: DateTime!) {
                createTask(input: {title: $title, priority: HIGH, tags: [\"home\"],
                                   reminders: [{at: $at}]}) { taskId } }",
            json!({"title": title, "at": at.to_rfc3339()}),
        )
        .await;
    assert_no_errors(&body);
    body["data"]["createTask"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The pending reminders of `task` as (remind_at, status), once `ready` holds.
async fn reminders_of(
    app: &TestApp,
    task: &str,
    ready: impl Fn(&[(DateTime<Utc>, String)]) -> bool,
) -> Vec<(DateTime<Utc>, String)> {
    eventually(Duration::from_secs(15), || async {
        let rows: Vec<(DateTime<Utc>, String)> = sqlx::query_as(
            "SELECT remind_at, status FROM reminders WHERE task_id = $1::uuid ORDER BY remind_at",
        )
        .bind(task)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        ready(&rows).then_some(rows)
    })
    .await
    .expect("the reminders projection reaches the expected state")
}

#[tokio::test]
async fn a_reminder_fires_on_its_second_to_its_owner_alone_and_lands_in_the_inbox() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let mut alice_socket = GqlSocket::connect(&app.address, &alice).await;
    alice_socket.subscribe("n", NOTIFICATIONS, json!({})).await;
    let mut bob_socket = GqlSocket::connect(&app.address, &bob).await;
    bob_socket.subscribe("n", NOTIFICATIONS, json!({})).await;

    // Far enough ahead that the reminders projection holds it before its
    // instant even when a full test run loads the two cores: what is tested
    // is the scheduler firing on the second, not the projection's lag.
    let at = Utc::now() + chrono::Duration::seconds(4);
    let task = task_reminded_at(&app, &alice, "water the plants", at).await;
    let payload = alice_socket
        .next_payload("n", Duration::from_secs(10))
        .await
        .expect("the notification arrives");
    let received = Utc::now();
    let notification = &payload["data"]["notificationReceived"];
    assert_eq!(notification["title"], "water the plants");
    assert_eq!(notification["taskId"], task.as_str());
    assert_eq!(notification["priority"], "HIGH");
    assert_eq!(notification["tags"], json!(["home"]));
    let late = received - at;
    eprintln!(
        "reminder received {} ms after its instant",
        late.num_milliseconds()
    );
    assert!(
        late >= chrono::Duration::zero() && late < chrono::Duration::seconds(1),
        "received {} ms after its instant",
        late.num_milliseconds()
    );
    assert_eq!(
        bob_socket.next(Duration::from_secs(1)).await,
        None,
        "bob is not told of alice's reminder"
    );

    // The inbox, for alice alone.
    let id = notification["id"].as_str().unwrap().to_owned();
    let inbox = |token: String| {
        let app = &app;
        async move {
            app.graphql(
                Some(&token),
                "{ unreadNotificationCount notifications(first: 10) { edges { node { id read title } } } }",
                json!({}),
            )
            .await
        }
    };
    let body = eventually(Duration::from_secs(10), || async {
        let body = inbox(alice.clone()).await;
        (body["data"]["unreadNotificationCount"] == 1).then_some(body)
    })
    .await
    .expect("the inbox holds the notification");
    assert_eq!(
        body["data"]["notifications"]["edges"][0]["node"]["id"],
        id.as_str()
    );
    let bobs = inbox(bob.clone()).await;
    assert_eq!(bobs["data"]["unreadNotificationCount"], 0);
    assert_eq!(bobs["data"]["notifications"]["edges"], json!([]));

    // Bob cannot read, mark or snooze alice's notification.
    let mark = "mutation($ids: [ID!]!) { markNotificationsRead(ids: $ids) }";
    let body = app.graphql(Some(&bob), mark, json!({"ids": [id]})).await;
    assert_eq!(body["data"]["markNotificationsRead"], 0);
    let snooze = "mutation($id: ID!) { snoozeReminder(notificationId: $id, minutes: 5) }";
    let body = app.graphql(Some(&bob), snooze, json!({"id": id})).await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    assert_eq!(
        inbox(alice.clone()).await["data"]["unreadNotificationCount"],
        1
    );

    let body = app.graphql(Some(&alice), mark, json!({"ids": [id]})).await;
    assert_eq!(body["data"]["markNotificationsRead"], 1);
    assert_eq!(
        inbox(alice.clone()).await["data"]["unreadNotificationCount"],
        0
    );

    // Bad input is refused with a field.
    let body = app
        .graphql(
            Some(&alice),
            snooze.replace("5", "0").as_str(),
            json!({"id": id}),
        )
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    let body = app
        .graphql(Some(&alice), mark, json!({"ids": ["nope"]}))
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
}

#[tokio::test]
async fn pending_reminders_move_with_their_task_and_end_with_it() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let due = Utc::now() + chrono::Duration::hours(2);
    let body = app
        .graphql(
            Some(&alice),
            "mutation($due: DateTime!) { createTask(input: {title: \"report\", dueAt: $due,
                reminders: [{minutesBefore: 30}]}) { taskId } }",
            json!({"due": due.to_rfc3339()}),
        )
        .await;
    assert_no_errors(&body);
    let task = body["data"]["createTask"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected = due - chrono::Duration::minutes(30);
    let pending = |at: DateTime<Utc>| {
        move |rows: &[(DateTime<Utc>, String)]| {
            rows.len() == 1
                && rows[0].1 == "pending"
                && (rows[0].0 - at).num_milliseconds().abs() < 1000
        }
    };
    reminders_of(&app, &task, pending(expected)).await;

    // Rescheduled: the reminder moves.
    let later = due + chrono::Duration::hours(1);
    let body = app
        .graphql(
            Some(&alice),
            "mutation($id: ID!, $due: DateTime!) { setDueDate(id: $id, dueAt: $due) { version } }",
            json!({"id": task, "due": later.to_rfc3339()}),
        )
        .await;
    assert_no_errors(&body);
    reminders_of(&app, &task, pending(later - chrono::Duration::minutes(30))).await;

    // Completed: gone; reopened: back; deleted: gone.
    on_task(&app, &alice, "completeTask", &task).await;
    reminders_of(&app, &task, |rows| rows.is_empty()).await;
    on_task(&app, &alice, "reopenTask", &task).await;
    reminders_of(&app, &task, pending(later - chrono::Duration::minutes(30))).await;
    on_task(&app, &alice, "deleteTask", &task).await;
    reminders_of(&app, &task, |rows| rows.is_empty()).await;
}

#[tokio::test]
async fn several_schedulers_fire_each_reminder_exactly_once() {
    let settings = fresh_settings().await;
    let app = TestApp::spawn_with(settings.clone(), Roles::ALL).await;
    let shutdown = CancellationToken::new();
    let mut others = Vec::new();
    for _ in 0..2 {
        others.push(
            taskledger::start(&settings, Roles::SCHEDULER, shutdown.clone())
                .await
                .unwrap(),
        );
    }
    let alice = app.token("alice");
    let at = Utc::now() + chrono::Duration::seconds(3);
    let mut tasks = HashSet::new();
    for n in 0..40 {
        tasks.insert(task_reminded_at(&app, &alice, &format!("r{n}"), at).await);
    }
    let received = read_topic(
        &app.kafka(),
        &settings.common.reminders_topic,
        Duration::from_secs(20),
        |r| r.len() >= 40,
    )
    .await;
    // A little longer, for any duplicate to show up.
    let again = read_topic(
        &app.kafka(),
        &settings.common.reminders_topic,
        Duration::from_secs(2),
        |_| false,
    )
    .await;
    assert_eq!(received.len(), 40);
    assert_eq!(again.len(), 40, "no reminder was published twice");
    let ids: HashSet<String> = again
        .iter()
        .map(|m| m.json()["data"]["reminder_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 40);
    let fired: HashSet<String> = again
        .iter()
        .map(|m| m.json()["data"]["task_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fired, tasks);
    assert!(again.iter().all(|m| m.key.as_deref() == Some("alice")));
    shutdown.cancel();
}

#[tokio::test]
async fn after_an_outage_a_due_reminder_fires_once_late_and_one_past_the_window_is_missed() {
    let mut settings = fresh_settings().await;
    settings.common.reminder_missed_after_hours = 1;
    let without_scheduler = Roles {
        scheduler: false,
        ..Roles::ALL
    };
    let app = TestApp::spawn_with(settings.clone(), without_scheduler).await;
    let alice = app.token("alice");
    let at = Utc::now() + chrono::Duration::seconds(1);
    let late = task_reminded_at(&app, &alice, "fell due while down", at).await;
    let missed = task_reminded_at(&app, &alice, "long past", at).await;
    reminders_of(&app, &late, |rows| rows.len() == 1).await;
    reminders_of(&app, &missed, |rows| rows.len() == 1).await;
    // The second fell due two hours ago, as if the outage had lasted that long.
    sqlx::query(
        "UPDATE reminders SET remind_at = now() - interval '2 hours' WHERE task_id = $1::uuid",
    )
    .bind(&missed)
    .execute(&app.pool)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let shutdown = CancellationToken::new();
    let _scheduler = taskledger::start(&settings, Roles::SCHEDULER, shutdown.clone())
        .await
        .unwrap();
    let received = read_topic(
        &app.kafka(),
        &settings.common.reminders_topic,
        Duration::from_secs(10),
        |r| !r.is_empty(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A fresh consumer on a loaded machine may take a while to reach the
    // topic: read it for long enough to see the one message surely.
    let all = read_topic(
        &app.kafka(),
        &settings.common.reminders_topic,
        Duration::from_secs(5),
        |_| false,
    )
    .await;
    assert_eq!(received.len(), 1);
    assert_eq!(all.len(), 1, "fired once, and the missed one not at all");
    let data = all[0].json()["data"].clone();
    assert_eq!(data["task_id"], late.as_str());
    assert!(
        data["late_ms"].as_i64().unwrap() >= 1000,
        "flagged late: {data}"
    );
    reminders_of(&app, &missed, |rows| {
        rows.len() == 1 && rows[0].1 == "missed"
    })
    .await;
    reminders_of(&app, &late, |rows| rows.len() == 1 && rows[0].1 == "sent").await;
    shutdown.cancel();
}

#[tokio::test]
async fn a_snoozed_reminder_fires_again_once() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let mut socket = GqlSocket::connect(&app.address, &alice).await;
    socket.subscribe("n", NOTIFICATIONS, json!({})).await;
    let at = Utc::now() + chrono::Duration::seconds(1);
    task_reminded_at(&app, &alice, "stretch", at).await;
    let first = socket
        .next_payload("n", Duration::from_secs(10))
        .await
        .expect("the first notification");
    let id = first["data"]["notificationReceived"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The inbox must hold it before it can be snoozed.
    eventually(Duration::from_secs(10), || async {
        let body = app
            .graphql(Some(&alice), "{ unreadNotificationCount }", json!({}))
            .await;
        (body["data"]["unreadNotificationCount"] == 1).then_some(())
    })
    .await
    .unwrap();
    let snooze = "mutation($id: ID!) { snoozeReminder(notificationId: $id, minutes: 1) }";
    for _ in 0..2 {
        let body = app.graphql(Some(&alice), snooze, json!({"id": id})).await;
        assert_no_errors(&body);
    }
    let snoozed: Vec<(DateTime<Utc>, Value)> = sqlx::query_as(
        "SELECT remind_at, to_jsonb(snoozed_from) FROM reminders WHERE snoozed_from IS NOT NULL",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(snoozed.len(), 1, "snoozing twice moves one reminder");
    let wait = snoozed[0].0 - Utc::now();
    assert!(
        wait > chrono::Duration::seconds(50),
        "a minute ahead: {wait}"
    );
    // Rather than wait the minute: bring it forward.
    sqlx::query("UPDATE reminders SET remind_at = now() + interval '1 second' WHERE snoozed_from IS NOT NULL")
        .execute(&app.pool)
        .await
        .unwrap();
    let again = socket
        .next_payload("n", Duration::from_secs(10))
        .await
        .expect("the snoozed reminder fires again");
    let again = &again["data"]["notificationReceived"];
    assert_eq!(again["title"], "stretch");
    assert_ne!(again["id"], id.as_str(), "a notification of its own");
    assert_eq!(socket.next(Duration::from_secs(2)).await, None, "once");
    let body = app.graphql(Some(&alice), snooze, json!({"id": id})).await;
    assert_eq!(
        error_code(&body),
        Some("VALIDATION"),
        "fired already: {body}"
    );
}

/// Runs `mutation(id: task)` as `token`'s user, failing on any error.
async fn on_task(app: &TestApp, token: &str, mutation: &str, task: &str) {
    let body = app
        .graphql(
            Some(token),
            &format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ version }} }}"),
            json!({ "id": task }),
        )
        .await;
    assert_no_errors(&body);
}

#[tokio::test]
async fn a_reminder_that_passed_while_its_task_was_done_does_not_fire_when_it_reopens() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let mut socket = GqlSocket::connect(&app.address, &alice).await;
    socket.subscribe("n", NOTIFICATIONS, json!({})).await;
    // Far enough ahead that the completion is applied before it falls due,
    // on a machine busy with other tests (4 s was not, once).
    let at = Utc::now() + chrono::Duration::seconds(8);
    let task = task_reminded_at(&app, &alice, "done early", at).await;
    reminders_of(&app, &task, |rows| rows.len() == 1).await;
    on_task(&app, &alice, "completeTask", &task).await;
    reminders_of(&app, &task, |rows| rows.is_empty()).await;
    let past = (at - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(500);
    tokio::time::sleep(past).await;
    on_task(&app, &alice, "reopenTask", &task).await;
    // Reopened after its instant: the reminder stays in the past.
    assert_eq!(
        socket.next(Duration::from_secs(3)).await,
        None,
        "nothing fires"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM reminders WHERE task_id = $1::uuid")
        .bind(&task)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn a_notification_of_a_finished_task_cannot_be_snoozed() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let at = Utc::now() + chrono::Duration::seconds(1);
    let task = task_reminded_at(&app, &alice, "finished", at).await;
    let id: String = eventually(Duration::from_secs(10), || async {
        sqlx::query_scalar("SELECT id::text FROM notifications WHERE task_id = $1::uuid")
            .bind(&task)
            .fetch_optional(&app.pool)
            .await
            .unwrap()
    })
    .await
    .expect("the reminder reaches the inbox");
    on_task(&app, &alice, "completeTask", &task).await;
    // The task list follows on its own: it may not hold the task yet.
    eventually(Duration::from_secs(10), || async {
        let completed: Option<bool> =
            sqlx::query_scalar("SELECT status = 'completed' FROM task_list WHERE id = $1::uuid")
                .bind(&task)
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        (completed == Some(true)).then_some(())
    })
    .await
    .unwrap();
    let body = app
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { snoozeReminder(notificationId: $id, minutes: 5) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
}

#[tokio::test]
async fn a_recurring_tasks_next_occurrence_brings_its_own_reminder() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let due = Utc::now() + chrono::Duration::hours(3);
    let body = app
        .graphql(
            Some(&alice),
            "mutation($due: DateTime!) { createTask(input: {title: \"stand-up\", dueAt: $due,
                timeZone: \"Europe/Berlin\", recurrence: \"FREQ=DAILY\",
                reminders: [{minutesBefore: 15}]}) { taskId } }",
            json!({"due": due.to_rfc3339()}),
        )
        .await;
    assert_no_errors(&body);
    let first = body["data"]["createTask"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    reminders_of(&app, &first, |rows| rows.len() == 1).await;
    on_task(&app, &alice, "completeTask", &first).await;
    reminders_of(&app, &first, |rows| rows.is_empty()).await;
    // The next occurrence, a day later, with its reminder 15 minutes before.
    let (next, remind_at): (String, DateTime<Utc>) =
        eventually(Duration::from_secs(15), || async {
            sqlx::query_as(
                "SELECT task_id::text, remind_at FROM reminders
              WHERE status = 'pending' AND task_id <> $1::uuid",
            )
            .bind(&first)
            .fetch_optional(&app.pool)
            .await
            .unwrap()
        })
        .await
        .expect("the next occurrence has a pending reminder");
    assert_ne!(next, first);
    let expected = due + chrono::Duration::days(1) - chrono::Duration::minutes(15);
    assert!(
        (remind_at - expected).num_seconds().abs() <= 1,
        "{remind_at} vs {expected}"
    );
}

#[tokio::test]
async fn a_backlog_of_late_reminders_is_paced_to_the_catch_up_rate() {
    let mut settings = fresh_settings().await;
    settings.common.reminder_catch_up_per_second = 5;
    let without_scheduler = Roles {
        scheduler: false,
        ..Roles::ALL
    };
    let app = TestApp::spawn_with(settings.clone(), without_scheduler).await;
    let alice = app.token("alice");
    let at = Utc::now() + chrono::Duration::seconds(1);
    let mut tasks = Vec::new();
    for n in 0..10 {
        tasks.push(task_reminded_at(&app, &alice, &format!("late {n}"), at).await);
    }
    for task in &tasks {
        reminders_of(&app, task, |rows| rows.len() == 1).await;
    }
    // All ten fall due while no scheduler runs, and are late (> 2 s) when it starts.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let shutdown = CancellationToken::new();
    let _scheduler = taskledger::start(&settings, Roles::SCHEDULER, shutdown.clone())
        .await
        .unwrap();
    let fired: Vec<DateTime<Utc>> = eventually(Duration::from_secs(20), || async {
        let fired: Vec<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT fired_at FROM reminders WHERE status = 'sent' ORDER BY fired_at",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap();
        (fired.len() == 10).then_some(fired)
    })
    .await
    .expect("all ten fire");
    let span = fired[9] - fired[0];
    // Five a second: the ten take at least 1.8 s (nine gaps of 0.2 s).
    assert!(
        span >= chrono::Duration::milliseconds(1700),
        "ten late reminders fired within {span}"
    );
    shutdown.cancel();
}

/// What the reminders projection read back from the store so far.
async fn reminders_events_read(app: &TestApp) -> u64 {
    counter_at(
        &app.client,
        &app.address,
        "taskledger_projection_events_read_total{projection=\"reminders\"}",
    )
    .await
}

/// Waits until the reminders projection holds `task` at `version`.
async fn reminders_at_version(app: &TestApp, task: &str, version: i64) {
    eventually(Duration::from_secs(15), || async {
        let held: Option<i64> =
            sqlx::query_scalar("SELECT version FROM reminder_tasks WHERE task_id = $1::uuid")
                .bind(task)
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        (held == Some(version)).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the reminders projection never held {task} at {version}"));
}

/// Each task's reminders as (id, remind_at, title, status).
async fn reminder_rows(
    app: &TestApp,
    tasks: &[&str],
) -> Vec<(String, DateTime<Utc>, String, String)> {
    sqlx::query_as(
        "SELECT reminder_id::text, remind_at, title, status FROM reminders
          WHERE task_id::text = ANY($1) ORDER BY reminder_id",
    )
    .bind(tasks)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_long_historys_reminders_are_folded_from_its_snapshot_as_from_every_event() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let ahead = task_reminded_at(
        &app,
        &alice,
        "ahead",
        Utc::now() + chrono::Duration::hours(2),
    )
    .await;
    // Past when set: it never fires, however long the task's history grows.
    let passed = task_reminded_at(
        &app,
        &alice,
        "passed",
        Utc::now() - chrono::Duration::minutes(5),
    )
    .await;
    let retitle = |task: String, title: String| {
        let (app, alice) = (&app, &alice);
        async move {
            let body = app
                .graphql(
                    Some(alice),
                    "mutation($id: ID!, $title: String!) { updateTask(input: {id: $id, title: $title}) { version } }",
                    json!({ "id": task, "title": title }),
                )
                .await;
            assert_no_errors(&body);
        }
    };
    // 31 events each: a snapshot at the 25th.
    for n in 1..=30 {
        for task in [&ahead, &passed] {
            retitle(task.clone(), format!("edit {n}")).await;
        }
    }
    for task in [&ahead, &passed] {
        reminders_at_version(&app, task, 31).await;
    }

    // One more edit of each is folded from the snapshot: events 26 to 32,
    // not all 32.
    let read_before = reminders_events_read(&app).await;
    for task in [&ahead, &passed] {
        retitle(task.clone(), "the last title".into()).await;
        reminders_at_version(&app, task, 32).await;
    }
    let read = reminders_events_read(&app).await - read_before;
    assert!((2..=14).contains(&read), "{read} events read for two edits");
    let rows = reminder_rows(&app, &[&ahead, &passed]).await;
    assert_eq!(
        rows.len(),
        1,
        "only the reminder ahead is pending: {rows:?}"
    );
    assert_eq!(
        (rows[0].2.as_str(), rows[0].3.as_str()),
        ("the last title", "pending")
    );

    // Done, it goes; reopened, it is back (set again before its instant).
    on_task(&app, &alice, "completeTask", &ahead).await;
    reminders_at_version(&app, &ahead, 33).await;
    assert_eq!(reminder_rows(&app, &[&ahead]).await, vec![]);
    on_task(&app, &alice, "reopenTask", &ahead).await;
    reminders_at_version(&app, &ahead, 34).await;
    let folded = reminder_rows(&app, &[&ahead, &passed]).await;
    assert_eq!(folded, rows);

    // A rebuild, which folds every event of each task, finds the same.
    let (done, _, stderr) = crate::rebuild::rebuild_of(&app, "reminders").await;
    assert!(done, "rebuild reminders: {stderr}");
    assert_eq!(reminder_rows(&app, &[&ahead, &passed]).await, folded);
}
