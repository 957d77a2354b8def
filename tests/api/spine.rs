//! The happy path end to end: GraphQL mutation → event store → relay → Kafka →
//! projection → GraphQL query.

use std::time::Duration;

use serde_json::json;
use taskledger::Roles;

use crate::helpers::{assert_no_errors, eventually, text_at, TestApp};

#[tokio::test]
async fn a_created_task_appears_in_the_task_list() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");

    let (id, version) = app.create_task(&alice, "  Buy milk ").await;
    assert_eq!(version, 1);

    let task = app.task_at_version(&alice, &id, 1).await;
    assert_eq!(task["title"], "Buy milk");
    assert_eq!(task["status"], "OPEN");

    let body = app
        .graphql(
            Some(&alice),
            "{ tasks(first: 10) { edges { cursor node { id title } } pageInfo { hasNextPage } } }",
            json!({}),
        )
        .await;
    assert_no_errors(&body);
    let edges = body["data"]["tasks"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1);
    assert_eq!(edges[0]["node"]["id"], id.as_str());
    assert_eq!(body["data"]["tasks"]["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn a_task_goes_through_its_whole_lifecycle() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let (id, _) = app.create_task(&alice, "Write report").await;

    let steps = [
        (
            "mutation($id: ID!) { updateTask(input: {id: $id, title: \"Write the report\", description: \"two pages\"}) { version } }",
            "updateTask",
        ),
        ("mutation($id: ID!) { completeTask(id: $id) { version } }", "completeTask"),
        ("mutation($id: ID!) { reopenTask(id: $id) { version } }", "reopenTask"),
        ("mutation($id: ID!) { completeTask(id: $id) { version } }", "completeTask"),
    ];
    for (expected_version, (mutation, field)) in (2..).zip(steps) {
        let body = app
            .graphql(Some(&alice), mutation, json!({ "id": id }))
            .await;
        assert_no_errors(&body);
        assert_eq!(body["data"][field]["version"], expected_version, "{field}");
    }

    let task = app.task_at_version(&alice, &id, 5).await;
    assert_eq!(task["title"], "Write the report");
    assert_eq!(task["description"], "two pages");
    assert_eq!(task["status"], "COMPLETED");
    assert_eq!(task["completed"], true);

    // Completing again changes nothing and says so with an unchanged version.
    let body = app
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { completeTask(id: $id) { version } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(body["data"]["completeTask"]["version"], 5);

    let body = app
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { deleteTask(id: $id) { version } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(body["data"]["deleteTask"]["version"], 6);
    let gone = crate::helpers::eventually(std::time::Duration::from_secs(15), || async {
        app.task(&alice, &id).await.is_null().then_some(())
    })
    .await;
    assert!(gone.is_some(), "a deleted task leaves the task list");
    // In the trash it says so, and still that it was done.
    let trash = app
        .graphql(
            Some(&alice),
            "{ tasks(filter: {status: [DELETED]}) { nodes { id status completed } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        trash["data"]["tasks"]["nodes"],
        json!([{ "id": id, "status": "DELETED", "completed": true }])
    );
}

#[tokio::test]
async fn pages_follow_one_another_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let mut created = Vec::new();
    for n in 0..7 {
        created.push(app.create_task(&alice, &format!("task {n}")).await.0);
    }
    let last = created.last().unwrap().clone();
    app.task_at_version(&alice, &last, 1).await;
    // every task is projected once the newest one is, per partition order; wait for all
    for id in &created {
        app.task_at_version(&alice, id, 1).await;
    }

    let seen = app.all_task_ids(&alice, json!({}), 3, false).await;
    created.reverse(); // newest first
    assert_eq!(seen, created);
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(
        ready,
        json!({ "ready": true, "postgres": true, "broker": true })
    );

    let alice = app.token("alice");
    app.create_task(&alice, "counted").await;
    let metrics = client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("taskledger_graphql_requests_total"),
        "metrics: {metrics}"
    );
    let graphiql = client
        .get(format!("{}/graphql", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(graphiql.status(), 200);
    assert!(graphiql
        .text()
        .await
        .unwrap()
        .to_lowercase()
        .contains("graphiql"));
}

#[tokio::test]
async fn a_process_without_the_api_serves_health_readiness_and_its_metrics() {
    let app = TestApp::spawn_roles(Roles::API).await;
    let alice = app.token("alice");
    app.create_task(&alice, "relayed by a relay of its own")
        .await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let relay = taskledger::start(&app.settings, Roles::RELAY, shutdown.clone())
        .await
        .unwrap();
    let ops = format!(
        "http://{}",
        relay.ops_address.expect("ops endpoints served")
    );
    assert!(relay.api_address.is_none());
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{ops}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready: serde_json::Value = client
        .get(format!("{ops}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    // The relay's own metrics, once it has published.
    let metrics = eventually(Duration::from_secs(10), || async {
        let text = text_at(&client, &format!("{ops}/metrics")).await;
        text.contains("taskledger_relay_published_total")
            .then_some(text)
    })
    .await
    .expect("the relay's metrics are served");
    assert!(metrics.contains("taskledger_relay_lag_events"), "{metrics}");
    // No GraphQL here.
    assert_eq!(
        client
            .post(format!("{ops}/graphql"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    shutdown.cancel();
    relay.wait().await.unwrap();
}
