//! Bad input gets a stable error code and stores nothing (DESIGN invariant 8).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_code, TestApp};

#[tokio::test]
async fn invalid_titles_are_refused_with_the_field_named() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    for title in [String::new(), "   ".into(), "x".repeat(201)] {
        let body = app
            .graphql(
                Some(&alice),
                "mutation($t: String!) { createTask(input: {title: $t}) { taskId } }",
                json!({ "t": title }),
            )
            .await;
        assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "title");
    }
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_refused() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let unknown = uuid::Uuid::new_v4().to_string();
    let body = app
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { completeTask(id: $id) { version } }",
            json!({ "id": unknown }),
        )
        .await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");

    let body = app
        .graphql(
            Some(&alice),
            "mutation { completeTask(id: \"42\") { version } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");

    let body = app
        .graphql(Some(&alice), "{ task(id: \"nope\") { id } }", json!({}))
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn malformed_requests_are_refused_and_the_server_keeps_serving() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");

    let (status, body) = app.post_raw(Some(&alice), "{not json".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");

    for query in [
        "{ tasks { nodes { id }",             // syntax error
        "{ tasks { nodes { nonsense } } }",   // unknown field
        "mutation { createTask { taskId } }", // missing argument
        "{ tasks(first: 1000) { nodes { id } } }",
        "{ tasks(after: \"garbage\") { nodes { id } } }",
        "mutation { completeTask(id: \"0192f0c1-0000-7000-8000-000000000001\", expectedVersion: -1) { version } }",
    ] {
        let body = app.graphql(Some(&alice), query, json!({})).await;
        assert_eq!(error_code(&body), Some("VALIDATION"), "{query}: {body}");
    }

    let description = "d".repeat(10_001);
    let body = app
        .graphql(
            Some(&alice),
            "mutation($d: String) { createTask(input: {title: \"t\", description: $d}) { taskId } }",
            json!({ "d": description }),
        )
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "description");

    assert_eq!(app.event_count().await, 0, "refusals stored nothing");
    let (id, _) = app.create_task(&alice, "still serving").await;
    app.task_at_version(&alice, &id, 1).await;
}

#[tokio::test]
async fn introspection_beyond_the_depth_limit_is_refused() {
    let app = TestApp::spawn().await;
    let mut query = String::from("{ __schema { types { ");
    for _ in 0..12 {
        query.push_str("ofType { ");
    }
    query.push_str("name");
    for _ in 0..14 {
        query.push_str(" }");
    }
    let body = app.graphql(None, &query, json!({})).await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
}

#[tokio::test]
async fn a_query_asking_for_too_much_at_once_is_refused() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    // Each connection costs per requested node: eight full pages of twenty
    // fields go over the limit, one does not.
    let page = "tasks(first: 100) { nodes { id title description status completed priority tags
        dueAt dueDate timeZone nextReminderAt recurrence version createdAt updatedAt completedAt
        reminders { at minutesBefore firesAt } series { id occurrence } } }";
    let body = app
        .graphql(Some(&alice), &format!("{{ {page} }}"), json!({}))
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let many: String = (0..8).map(|n| format!("p{n}: {page} ")).collect();
    let body = app
        .graphql(Some(&alice), &format!("{{ {many} }}"), json!({}))
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
}
