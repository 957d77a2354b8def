//! No lost updates (DESIGN invariant 2): racing writers either apply in turn
//! or are told `CONFLICT`.

use std::collections::BTreeSet;

use futures::future::join_all;
use serde_json::json;

use crate::helpers::{error_code, TestApp};

const UPDATE: &str = "mutation($id: ID!, $title: String!, $v: Int) {
    updateTask(input: {id: $id, title: $title, expectedVersion: $v}) { version } }";

#[tokio::test]
async fn two_updates_at_the_same_expected_version_one_wins() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let (id, version) = app.create_task(&alice, "original").await;

    let (left, right) = tokio::join!(
        app.graphql(
            Some(&alice),
            UPDATE,
            json!({ "id": id, "title": "left", "v": version })
        ),
        app.graphql(
            Some(&alice),
            UPDATE,
            json!({ "id": id, "title": "right", "v": version })
        ),
    );
    let outcomes = [&left, &right];
    let applied: Vec<_> = outcomes
        .iter()
        .filter(|b| b.get("errors").is_none())
        .collect();
    let refused: Vec<_> = outcomes
        .iter()
        .filter(|b| b.get("errors").is_some())
        .collect();
    assert_eq!(applied.len(), 1, "exactly one applies: {left} / {right}");
    assert_eq!(applied[0]["data"]["updateTask"]["version"], 2);
    assert_eq!(error_code(refused[0]), Some("CONFLICT"), "{}", refused[0]);
    assert_eq!(refused[0]["errors"][0]["extensions"]["actualVersion"], 2);
    assert_eq!(app.event_count().await, 2);

    let winner = if left.get("errors").is_none() {
        "left"
    } else {
        "right"
    };
    let task = app.task_at_version(&alice, &id, 2).await;
    assert_eq!(task["title"], winner);
}

#[tokio::test]
async fn unconditional_racing_updates_are_each_applied_or_refused_never_lost() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let (id, _) = app.create_task(&alice, "start").await;

    let writers = (0..8).map(|n| {
        let title = format!("writer {n}");
        let (app, alice, id) = (&app, &alice, &id);
        async move {
            app.graphql(
                Some(alice),
                UPDATE,
                json!({ "id": id, "title": title, "v": null }),
            )
            .await
        }
    });
    let results = join_all(writers).await;

    let mut versions = BTreeSet::new();
    for body in &results {
        match error_code(body) {
            None => {
                versions.insert(body["data"]["updateTask"]["version"].as_i64().unwrap());
            }
            Some(code) => assert_eq!(code, "CONFLICT", "{body}"),
        }
    }
    assert!(!versions.is_empty(), "at least one writer applies");
    let applied = versions.len() as i64;
    let expected: BTreeSet<i64> = (2..2 + applied).collect();
    assert_eq!(
        versions, expected,
        "each applied update got its own version"
    );
    assert_eq!(
        app.event_count().await,
        1 + applied,
        "every applied update is stored"
    );
    app.task_at_version(&alice, &id, 1 + applied).await;
}
