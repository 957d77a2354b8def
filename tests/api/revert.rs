//! `revertTask` and `taskDiff`: a task brought back to an earlier version by
//! one `TaskReverted` event, previewed first, refused over a later change,
//! invisible to anyone else; the read model follows it.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{assert_no_errors, error_code, read_model_caught_up, TestApp};

const REVERT: &str = "mutation($id: ID!, $to: Int!, $expected: Int!) {
    revertTask(id: $id, toVersion: $to, expectedVersion: $expected) { taskId version } }";
const DIFF: &str = "query($id: ID!, $from: Int!, $to: Int!) {
    taskDiff(id: $id, fromVersion: $from, toVersion: $to) { field old new } }";

async fn revert(app: &TestApp, token: &str, id: &str, to: i64, expected: i64) -> Value {
    app.graphql(
        Some(token),
        REVERT,
        json!({"id": id, "to": to, "expected": expected}),
    )
    .await
}

fn changed<'a>(changes: &'a Value, field: &str) -> Option<(&'a Value, &'a Value)> {
    changes
        .as_array()?
        .iter()
        .find(|c| c["field"] == field)
        .map(|c| (&c["old"], &c["new"]))
}

#[tokio::test]
async fn a_task_goes_back_to_an_earlier_version_previewed_and_guarded() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let (id, _) = app.create_task(&alice, "draft").await;
    for mutation in [
        "mutation($id: ID!) { updateTask(input: {id: $id, title: \"final\"}) { version } }",
        "mutation($id: ID!) { setPriority(id: $id, priority: HIGH) { version } }",
        "mutation($id: ID!) { completeTask(id: $id) { version } }",
    ] {
        assert_no_errors(&app.graphql(Some(&alice), mutation, json!({"id": id})).await);
    }

    // The preview: what going from version 4 back to 1 changes.
    let body = app
        .graphql(Some(&alice), DIFF, json!({"id": id, "from": 4, "to": 1}))
        .await;
    assert_no_errors(&body);
    let diff = &body["data"]["taskDiff"];
    assert_eq!(
        changed(diff, "title"),
        Some((&json!("final"), &json!("draft")))
    );
    assert_eq!(
        changed(diff, "completed"),
        Some((&json!(true), &json!(false)))
    );
    assert!(changed(diff, "priority").is_some(), "{diff}");

    // Refused over a change made since the version the caller saw, and for
    // versions that make no sense.
    let body = revert(&app, &alice, &id, 1, 3).await;
    assert_eq!(error_code(&body), Some("CONFLICT"), "{body}");
    let body = revert(&app, &alice, &id, 4, 4).await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    let body = revert(&app, &alice, &id, 0, 4).await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    let body = app
        .graphql(Some(&alice), DIFF, json!({"id": id, "from": 4, "to": 9}))
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");

    // Someone else: as if there were no such task.
    let body = revert(&app, &bob, &id, 1, 4).await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    let body = app
        .graphql(Some(&bob), DIFF, json!({"id": id, "from": 4, "to": 1}))
        .await;
    assert_no_errors(&body);
    assert_eq!(body["data"]["taskDiff"], Value::Null);

    // The revert: one new version, the values of version 1.
    let body = revert(&app, &alice, &id, 1, 4).await;
    assert_no_errors(&body);
    assert_eq!(body["data"]["revertTask"]["version"], 5);
    let task = app.task_at_version(&alice, &id, 5).await;
    assert_eq!(task["title"], "draft");
    assert_eq!(task["status"], "OPEN");
    let body = app
        .graphql(
            Some(&alice),
            "query($id: ID!) { task(id: $id) { priority completedAt } }",
            json!({"id": id}),
        )
        .await;
    assert_no_errors(&body);
    assert_eq!(body["data"]["task"]["priority"], "NONE");
    assert_eq!(body["data"]["task"]["completedAt"], Value::Null);
    let body = app
        .graphql(
            Some(&alice),
            "query($id: ID!) { taskHistory(id: $id) { edges { node { eventType changes { field } } } } }",
            json!({"id": id}),
        )
        .await;
    assert_no_errors(&body);
    let edges = body["data"]["taskHistory"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 5, "the history keeps both");
    assert_eq!(edges[4]["node"]["eventType"], "TaskReverted");
    assert_eq!(edges[1]["node"]["eventType"], "TaskEdited");

    // Back to what it already is: nothing appended.
    let body = revert(&app, &alice, &id, 1, 5).await;
    assert_no_errors(&body);
    assert_eq!(body["data"]["revertTask"]["version"], 5);

    // A deleted task is restored before it is reverted.
    assert_no_errors(
        &app.graphql(
            Some(&alice),
            "mutation($id: ID!) { deleteTask(id: $id) { version } }",
            json!({"id": id}),
        )
        .await,
    );
    let body = revert(&app, &alice, &id, 2, 6).await;
    assert_eq!(error_code(&body), Some("CONFLICT"), "{body}");

    read_model_caught_up(&app.pool, Duration::from_secs(30), "a revert").await;
}
