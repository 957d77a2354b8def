//! Per-user isolation and token checks (DESIGN invariant 7).

use api_core::auth::{JwtSecret, TokenVerifier};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_code, TestApp};

#[tokio::test]
async fn another_user_can_neither_read_nor_change_a_task() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let bob = app.token("bob");
    let (id, _) = app.create_task(&alice, "alice's secret").await;
    app.task_at_version(&alice, &id, 1).await;

    assert!(app.task(&bob, &id).await.is_null());
    let list = app
        .graphql(Some(&bob), "{ tasks { nodes { id } } }", json!({}))
        .await;
    assert_eq!(list["data"]["tasks"]["nodes"], json!([]));

    for mutation in [
        "mutation($id: ID!) { updateTask(input: {id: $id, title: \"mine\"}) { version } }",
        "mutation($id: ID!) { completeTask(id: $id) { version } }",
        "mutation($id: ID!) { reopenTask(id: $id) { version } }",
        "mutation($id: ID!) { deleteTask(id: $id) { version } }",
    ] {
        let body = app.graphql(Some(&bob), mutation, json!({ "id": id })).await;
        assert_eq!(error_code(&body), Some("NOT_FOUND"), "{mutation}: {body}");
    }
    // A version check must not tell bob anything about alice's task either.
    let body = app
        .graphql(
            Some(&bob),
            "mutation($id: ID!) { completeTask(id: $id, expectedVersion: 999) { version } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    assert!(body["errors"][0]["extensions"]["actualVersion"].is_null());
    assert_eq!(app.event_count().await, 1, "bob's attempts stored nothing");
    assert_eq!(app.task(&alice, &id).await["title"], "alice's secret");
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let query = "{ tasks { nodes { id } } }";
    let create = "mutation { createTask(input: {title: \"x\"}) { taskId } }";

    // Missing: operations that need a user are refused.
    for operation in [query, create] {
        let body = app.graphql(None, operation, json!({})).await;
        assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{body}");
    }

    let foreign =
        TokenVerifier::new(&JwtSecret::new("another-secret-that-is-long-enough!!".into()).unwrap())
            .issue(
                &domain::values::UserId::parse("alice").unwrap(),
                chrono::Duration::minutes(5),
            );
    // header {"alg":"none"} with alice as subject and no signature
    let unsigned = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwfQ.";
    for token in [
        app.expired_token("alice"),
        "not-a-jwt".to_owned(),
        foreign,
        unsigned.to_owned(),
        String::new(),
    ] {
        for operation in [query, create] {
            let (status, body) = app
                .post_raw(Some(&token), json!({ "query": operation }).to_string())
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}: {body}");
            assert_eq!(
                error_code(&body),
                Some("UNAUTHENTICATED"),
                "{token}: {body}"
            );
        }
    }
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn moving_anothers_task_with_a_version_answers_as_for_a_missing_task() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let bob = app.token("bob");
    let (id, _) = app.create_task(&alice, "alice's secret").await;
    app.task_at_version(&alice, &id, 1).await;
    // Into a list of bob's own, which he may move his tasks to.
    let list = app.new_list(&bob, "bob's list").await;
    let events = app.event_count().await;

    let moving = "mutation($id: ID!, $list: ID!) {
        moveTask(id: $id, listId: $list, expectedVersion: 999) { version } }";
    let hidden = app
        .graphql(Some(&bob), moving, json!({ "id": id, "list": list }))
        .await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let missing = app
        .graphql(Some(&bob), moving, json!({ "id": unknown, "list": list }))
        .await;
    for body in [&hidden, &missing] {
        assert_eq!(error_code(body), Some("NOT_FOUND"), "{body}");
        let extensions = &body["errors"][0]["extensions"];
        assert!(extensions.get("actualVersion").is_none(), "{body}");
        assert!(extensions.get("expectedVersion").is_none(), "{body}");
    }
    // Alice's task and no task at all read alike.
    assert_eq!(
        hidden["errors"][0]["message"],
        missing["errors"][0]["message"]
    );
    assert_eq!(
        hidden["errors"][0]["extensions"],
        missing["errors"][0]["extensions"]
    );
    assert_eq!(hidden["data"], missing["data"]);
    assert_eq!(
        app.event_count().await,
        events,
        "bob's moves stored nothing"
    );
    let task = app.task(&alice, &id).await;
    assert_eq!(task["version"], 1);
    assert_eq!(task["title"], "alice's secret");
}
