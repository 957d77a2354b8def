//! Audit: `taskHistory`, `taskAsOf` and `taskledger replay`, read from the
//! event store, for the task's owner alone.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use taskledger::Roles;

use crate::helpers::{assert_no_errors, TestApp};

const HISTORY: &str = "query($id: ID!, $first: Int, $after: String) {
    taskHistory(id: $id, first: $first, after: $after) {
        edges { cursor node { sequence eventType eventVersion recordedAt actor correlationId
                              changes { field old new } data } }
        pageInfo { hasNextPage endCursor } } }";

const AS_OF: &str = "query($id: ID!, $at: DateTime!) {
    taskAsOf(id: $id, at: $at) { id title status priority version completed } }";

async fn run(app: &TestApp, token: &str, mutation: &str, variables: Value) {
    let body = app.graphql(Some(token), mutation, variables).await;
    assert_no_errors(&body);
}

#[tokio::test]
async fn a_task_history_and_its_state_at_any_instant_for_its_owner_alone() {
    let app = TestApp::spawn_roles(Roles::API).await;
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let before_it = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (id, _) = app.create_task(&alice, "Buy milk").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let after_creation = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    run(
        &app,
        &alice,
        "mutation($id: ID!) { updateTask(input: {id: $id, title: \"Buy oat milk\"}) { version } }",
        json!({"id": id}),
    )
    .await;
    run(
        &app,
        &alice,
        "mutation($id: ID!) { setPriority(id: $id, priority: HIGH) { version } }",
        json!({"id": id}),
    )
    .await;
    run(
        &app,
        &alice,
        "mutation($id: ID!) { completeTask(id: $id) { version } }",
        json!({"id": id}),
    )
    .await;

    // The whole history, two at a time.
    let page = app
        .graphql(Some(&alice), HISTORY, json!({"id": id, "first": 2}))
        .await;
    assert_no_errors(&page);
    let history = &page["data"]["taskHistory"];
    let events: Vec<&Value> = history["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["sequence"], 1);
    assert_eq!(events[0]["eventType"], "TaskCreated");
    assert_eq!(events[0]["actor"], "alice");
    assert!(events[0]["correlationId"].is_string());
    assert_eq!(events[1]["eventType"], "TaskEdited");
    let title = events[1]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "title")
        .expect("the edit changed the title");
    assert_eq!(title["old"], "Buy milk");
    assert_eq!(title["new"], "Buy oat milk");
    assert_eq!(events[1]["data"]["title"], "Buy oat milk");
    assert_eq!(history["pageInfo"]["hasNextPage"], true);
    let next = app
        .graphql(
            Some(&alice),
            HISTORY,
            json!({"id": id, "first": 2, "after": history["pageInfo"]["endCursor"]}),
        )
        .await;
    let rest: Vec<&Value> = next["data"]["taskHistory"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    assert_eq!(
        rest.iter()
            .map(|e| e["eventType"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["TaskPrioritySet", "TaskCompleted"]
    );
    assert_eq!(
        next["data"]["taskHistory"]["pageInfo"]["hasNextPage"],
        false
    );
    let priority = &rest[0]["changes"][0];
    assert_eq!(priority["field"], "priority");
    assert_eq!(priority["new"], "HIGH");

    // Time travel.
    let as_of = |at: chrono::DateTime<Utc>, token: String| {
        let (app, id) = (&app, id.clone());
        async move {
            let body = app
                .graphql(
                    Some(&token),
                    AS_OF,
                    json!({"id": id, "at": at.to_rfc3339()}),
                )
                .await;
            assert_no_errors(&body);
            body["data"]["taskAsOf"].clone()
        }
    };
    assert_eq!(
        as_of(before_it, alice.clone()).await,
        Value::Null,
        "before it existed"
    );
    let then = as_of(after_creation, alice.clone()).await;
    assert_eq!(then["title"], "Buy milk");
    assert_eq!(then["version"], 1);
    assert_eq!(then["status"], "OPEN");
    let now = as_of(Utc::now(), alice.clone()).await;
    assert_eq!(now["title"], "Buy oat milk");
    assert_eq!(now["priority"], "HIGH");
    assert_eq!(now["status"], "COMPLETED");
    assert_eq!(now["version"], 4);

    // Bob sees nothing of it, as if it did not exist; nor of a made-up id.
    let body = app.graphql(Some(&bob), HISTORY, json!({"id": id})).await;
    assert_no_errors(&body);
    assert_eq!(body["data"]["taskHistory"], Value::Null);
    assert_eq!(as_of(Utc::now(), bob.clone()).await, Value::Null);
    let missing = uuid::Uuid::new_v4().to_string();
    let body = app
        .graphql(Some(&bob), HISTORY, json!({"id": missing}))
        .await;
    assert_eq!(body["data"]["taskHistory"], Value::Null);
    // Bad input: a clear refusal.
    let body = app
        .graphql(Some(&alice), HISTORY, json!({"id": id, "first": 1000}))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "VALIDATION",
        "{body}"
    );

    // The same history in the terminal.
    let replay = |json: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_taskledger"));
        command
            .args(["replay", "--task", &id])
            .env("TASKLEDGER_ENV", "local")
            .env(
                "DATABASE_URL",
                app.settings.common.database_url.as_deref().unwrap(),
            );
        if json {
            command.arg("--json");
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let table = replay(false);
    eprintln!("{table}");
    assert!(table.contains("owned by alice"), "{table}");
    assert!(table.contains("TaskEdited v2"), "{table}");
    assert!(
        table.contains("title: \"Buy milk\" → \"Buy oat milk\""),
        "{table}"
    );
    let lines: Vec<Value> = replay(true)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3]["event_type"], "TaskCompleted");
}
