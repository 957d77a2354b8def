//! Recurring tasks end to end: completing an occurrence creates exactly one
//! next occurrence, at the right local time, whatever is redelivered.

use std::time::Duration;

use serde_json::{json, Value};
use taskledger::Roles;
use tokio_util::sync::CancellationToken;

use crate::helpers::{assert_no_errors, error_code, eventually, TestApp};

const CREATE: &str =
    "mutation($input: CreateTaskInput!) { createTask(input: $input) { taskId version } }";
const COMPLETE: &str = "mutation($id: ID!) { completeTask(id: $id) { version } }";
const LIST: &str = "{ tasks(first: 100) { nodes { id title priority tags dueAt timeZone recurrence
    completed nextReminderAt reminders { minutesBefore firesAt } series { id occurrence } } } }";

async fn all_tasks(app: &TestApp, token: &str) -> Vec<Value> {
    let body = app.graphql(Some(token), LIST, json!({})).await;
    assert_no_errors(&body);
    body["data"]["tasks"]["nodes"].as_array().unwrap().clone()
}

/// Waits until the list holds `count` tasks and returns them, oldest occurrence first.
async fn occurrences(app: &TestApp, token: &str, count: usize) -> Vec<Value> {
    let mut tasks = eventually(Duration::from_secs(20), || async {
        let tasks = all_tasks(app, token).await;
        (tasks.len() >= count).then_some(tasks)
    })
    .await
    .unwrap_or_else(|| panic!("never saw {count} occurrences"));
    tasks.sort_by_key(|t| t["series"]["occurrence"].as_i64());
    tasks
}

async fn create_daily_standup(app: &TestApp, token: &str) -> String {
    // 26 March 2027 is a Friday; Berlin moves its clocks forward on the 28th.
    let body = app
        .graphql(
            Some(token),
            CREATE,
            json!({ "input": {
                "title": "Stand-up", "description": "15 minutes", "priority": "HIGH",
                "tags": ["Work/Team", "daily"], "dueAt": "2027-03-26T08:00:00Z",
                "timeZone": "Europe/Berlin", "reminders": [{ "minutesBefore": 30 }],
                "recurrence": "FREQ=DAILY",
            }}),
        )
        .await;
    assert_no_errors(&body);
    body["data"]["createTask"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_daily_task_completed_three_times_yields_three_further_occurrences() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let first = create_daily_standup(&app, &alice).await;
    app.task_at_version(&alice, &first, 1).await;

    let mut current = first;
    for done in 1..=3 {
        let body = app
            .graphql(Some(&alice), COMPLETE, json!({ "id": current }))
            .await;
        assert_no_errors(&body);
        let tasks = occurrences(&app, &alice, done + 1).await;
        assert_eq!(tasks.len(), done + 1, "one new occurrence per completion");
        current = tasks[done]["id"].as_str().unwrap().to_owned();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tasks = occurrences(&app, &alice, 4).await;
    assert_eq!(tasks.len(), 4, "exactly three further occurrences");

    // 09:00 in Berlin every day: 08:00 UTC before the change, 07:00 UTC after.
    let due: Vec<_> = tasks
        .iter()
        .map(|t| t["dueAt"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        due,
        [
            "2027-03-26T08:00:00+00:00",
            "2027-03-27T08:00:00+00:00",
            "2027-03-28T07:00:00+00:00",
            "2027-03-29T07:00:00+00:00",
        ]
    );
    let series = &tasks[0]["series"]["id"];
    for (n, task) in tasks.iter().enumerate() {
        assert_eq!(task["title"], "Stand-up");
        assert_eq!(task["priority"], "HIGH");
        assert_eq!(task["tags"], json!(["daily", "work/team"]));
        assert_eq!(task["timeZone"], "Europe/Berlin");
        assert_eq!(task["recurrence"], "FREQ=DAILY");
        assert_eq!(&task["series"]["id"], series);
        assert_eq!(task["series"]["occurrence"], n as i64 + 1);
        assert_eq!(task["completed"], n < 3);
        assert_eq!(task["reminders"][0]["minutesBefore"], 30);
    }
    // The open occurrence reminds 30 minutes before it is due.
    assert_eq!(tasks[3]["nextReminderAt"], "2027-03-29T06:30:00+00:00");
}

#[tokio::test]
async fn redelivered_completions_and_re_completions_start_one_next_occurrence() {
    let mut app = TestApp::spawn().await;
    let alice = app.token("alice");
    let first = create_daily_standup(&app, &alice).await;
    app.graphql(Some(&alice), COMPLETE, json!({ "id": first }))
        .await;
    assert_eq!(occurrences(&app, &alice, 2).await.len(), 2);

    // Reopening and completing the same occurrence again starts nothing new.
    for mutation in [
        "mutation($id: ID!) { reopenTask(id: $id) { version } }",
        COMPLETE,
    ] {
        assert_no_errors(
            &app.graphql(Some(&alice), mutation, json!({ "id": first }))
                .await,
        );
    }

    // A processor that died after creating the next task but before recording
    // its offset: its offsets are gone, so the next processor to start reads
    // every completion again from the beginning of the topic.
    let events = app.event_count().await;
    eventually(Duration::from_secs(20), || async {
        let relayed =
            event_store::relay::checkpoint::load(&app.pool, &app.settings.common.relay_name)
                .await
                .unwrap();
        (relayed.published >= events).then_some(())
    })
    .await
    .expect("the relay publishes every event");
    app.stop().await;
    sqlx::query("DELETE FROM projection_offsets WHERE projection = 'recurrence'")
        .execute(&app.pool)
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let second = taskledger::start(&app.settings, Roles::PROJECT, shutdown.clone())
        .await
        .unwrap();
    let completions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'TaskCompleted'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(completions, 2);
    // Both completions were read again once the offsets are back past them.
    let caught_up = eventually(Duration::from_secs(20), || async {
        let consumed: Option<i64> = sqlx::query_scalar(
            "SELECT sum(next_offset)::bigint FROM projection_offsets WHERE projection = 'recurrence'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&app.pool).await.unwrap();
        (consumed.unwrap_or(0) >= messages).then_some(())
    })
    .await;
    assert!(
        caught_up.is_some(),
        "the restarted processor re-read the topic"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    second.wait().await.unwrap();

    let created: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'TaskCreated'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(created, 2, "exactly one next occurrence");
}

#[tokio::test]
async fn complete_and_stop_repeating_ends_the_series() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let first = create_daily_standup(&app, &alice).await;
    let body = app
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { completeTask(id: $id, stopRepeating: true) { version } }",
            json!({ "id": first }),
        )
        .await;
    assert_no_errors(&body);
    let task = app.task_at_version(&alice, &first, 2).await;
    assert_eq!(task["completed"], true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(all_tasks(&app, &alice).await.len(), 1);
}

#[tokio::test]
async fn every_field_can_be_set_and_cleared_after_creation() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let (id, _) = app.create_task(&alice, "plain").await;
    let steps = [
        ("mutation($id: ID!) { setPriority(id: $id, priority: URGENT) { version } }", "setPriority"),
        ("mutation($id: ID!) { addTags(id: $id, tags: [\"home\", \"errands/shop\"]) { version } }", "addTags"),
        ("mutation($id: ID!) { removeTags(id: $id, tags: [\"HOME\"]) { version } }", "removeTags"),
        ("mutation($id: ID!) { setDueDate(id: $id, dueDate: \"2031-07-04\", timeZone: \"America/New_York\") { version } }", "setDueDate"),
        ("mutation($id: ID!) { setReminders(id: $id, reminders: [{minutesBefore: 60}, {at: \"2031-07-01T12:00:00Z\"}]) { version } }", "setReminders"),
        ("mutation($id: ID!) { setRecurrence(id: $id, rule: \"FREQ=YEARLY\") { version } }", "setRecurrence"),
        ("mutation($id: ID!) { clearRecurrence(id: $id) { version } }", "clearRecurrence"),
        ("mutation($id: ID!) { setReminders(id: $id, reminders: []) { version } }", "setReminders"),
        ("mutation($id: ID!) { clearDueDate(id: $id) { version } }", "clearDueDate"),
        ("mutation($id: ID!) { deleteTask(id: $id) { version } }", "deleteTask"),
        ("mutation($id: ID!) { restoreTask(id: $id) { version } }", "restoreTask"),
    ];
    for (version, (mutation, field)) in (2..).zip(steps) {
        let body = app
            .graphql(Some(&alice), mutation, json!({ "id": id }))
            .await;
        assert_no_errors(&body);
        assert_eq!(body["data"][field]["version"], version, "{field}");
        if field == "setReminders" && version == 6 {
            let task = app.task_at_version(&alice, &id, 6).await;
            assert_eq!(task["title"], "plain");
            let full = app
                .graphql(
                    Some(&alice),
                    "query($id: ID!) { task(id: $id) { priority tags dueAt dueDate timeZone nextReminderAt } }",
                    json!({ "id": id }),
                )
                .await;
            let task = &full["data"]["task"];
            assert_eq!(task["priority"], "URGENT");
            assert_eq!(task["tags"], json!(["errands/shop"]));
            assert_eq!(task["dueDate"], "2031-07-04");
            // The end of 4 July in New York (UTC-4).
            assert_eq!(task["dueAt"], "2031-07-05T04:00:00+00:00");
            assert_eq!(task["timeZone"], "America/New_York");
            assert_eq!(task["nextReminderAt"], "2031-07-01T12:00:00+00:00");
        }
    }
    let task = app.task_at_version(&alice, &id, 12).await;
    assert_eq!(task["title"], "plain");
}

#[tokio::test]
async fn invalid_domain_input_is_refused_with_the_field_and_reason() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let due = json!("2030-01-01T09:00:00Z");
    let twenty_one: Vec<String> = (0..21).map(|n| format!("t{n}")).collect();
    let cases = [
        (
            json!({ "title": "x", "dueAt": due, "recurrence": "FREQ=SOMETIMES" }),
            "recurrence",
        ),
        (
            json!({ "title": "x", "dueAt": due, "recurrence": "FREQ=DAILY;BYHOUR=3" }),
            "recurrence",
        ),
        (
            json!({ "title": "x", "dueAt": due, "timeZone": "Mars/Olympus" }),
            "timeZone",
        ),
        (
            json!({ "title": "x", "reminders": [{ "minutesBefore": 30 }] }),
            "reminders",
        ),
        (
            json!({ "title": "x", "reminders": [{ "minutesBefore": 30, "at": due }] }),
            "reminders",
        ),
        (json!({ "title": "x", "tags": twenty_one }), "tags"),
        (json!({ "title": "x", "tags": ["two words"] }), "tags"),
        (
            json!({ "title": "x", "dueAt": due, "recurrence": "FREQ=DAILY;COUNT=0" }),
            "recurrence",
        ),
        (
            json!({ "title": "x", "dueAt": due, "recurrence": "FREQ=DAILY;UNTIL=20291231T000000Z" }),
            "recurrence",
        ),
        (
            json!({ "title": "x", "recurrence": "FREQ=DAILY" }),
            "recurrence",
        ),
        (
            json!({ "title": "x", "dueAt": due, "dueDate": "2030-01-01" }),
            "due",
        ),
        (json!({ "title": "x", "dueDate": "0000-12-31" }), "dueDate"),
        (
            json!({ "title": "x", "reminders": [{ "minutesBefore": -5 }] }),
            "reminders",
        ),
    ];
    for (input, field) in cases {
        let body = app
            .graphql(Some(&alice), CREATE, json!({ "input": input }))
            .await;
        assert_eq!(error_code(&body), Some("VALIDATION"), "{input}: {body}");
        assert_eq!(
            body["errors"][0]["extensions"]["field"], field,
            "{input}: {body}"
        );
        assert!(
            body["errors"][0]["extensions"]["reason"].is_string(),
            "{body}"
        );
    }
    assert_eq!(app.event_count().await, 0, "nothing stored");

    let twenty: Vec<String> = (0..20).map(|n| format!("t{n}")).collect();
    let body = app
        .graphql(
            Some(&alice),
            CREATE,
            json!({ "input": { "title": "full", "tags": twenty } }),
        )
        .await;
    assert_no_errors(&body);
    let id = body["data"]["createTask"]["taskId"].as_str().unwrap();
    let body = app
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { addTags(id: $id, tags: [\"one-more\"]) { version } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "tags");
    assert_eq!(app.event_count().await, 1, "the 21st tag stored nothing");
}
