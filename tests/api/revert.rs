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

/// A GraphQL request sent with `x-correlation-id: correlation`.
async fn request_as(app: &TestApp, token: &str, correlation: &str, query: &str) -> Value {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .header("x-correlation-id", correlation)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

async fn undo(app: &TestApp, token: &str, correlation: &str) -> Value {
    app.graphql(
        Some(token),
        "mutation($c: String!) { undo(correlationId: $c) { taskId version } }",
        json!({ "c": correlation }),
    )
    .await
}

#[tokio::test]
async fn undo_takes_back_one_request_on_every_task_it_changed_or_nothing() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let (x, _) = app.create_task(&alice, "x").await;
    let (y, _) = app.create_task(&alice, "y").await;

    // One request renames both; undoing it renames both back.
    let body = request_as(
        &app,
        &alice,
        "rename-both",
        &format!(
            "mutation {{ a: updateTask(input: {{id: \"{x}\", title: \"x2\"}}) {{ version }}
                        b: updateTask(input: {{id: \"{y}\", title: \"y2\"}}) {{ version }} }}"
        ),
    )
    .await;
    assert_no_errors(&body);
    let body = undo(&app, &bob, "rename-both").await;
    assert_eq!(
        error_code(&body),
        Some("NOT_FOUND"),
        "not bob's request: {body}"
    );
    let body = undo(&app, &alice, "rename-both").await;
    assert_no_errors(&body);
    assert_eq!(body["data"]["undo"].as_array().unwrap().len(), 2);
    assert_eq!(app.task_at_version(&alice, &x, 3).await["title"], "x");
    assert_eq!(app.task_at_version(&alice, &y, 3).await["title"], "y");

    // A later change on the task refuses the undo, and nothing is written.
    let body = request_as(
        &app,
        &alice,
        "complete-x",
        &format!("mutation {{ completeTask(id: \"{x}\") {{ version }} }}"),
    )
    .await;
    assert_no_errors(&body);
    assert_no_errors(
        &app.graphql(
            Some(&alice),
            "mutation($id: ID!) { setPriority(id: $id, priority: HIGH) { version } }",
            json!({"id": x}),
        )
        .await,
    );
    let body = undo(&app, &alice, "complete-x").await;
    assert_eq!(error_code(&body), Some("CONFLICT"), "{body}");
    assert_eq!(app.task(&alice, &x).await["version"], 5);

    // Undoing a creation deletes the task (restorable as any deletion).
    let body = request_as(
        &app,
        &alice,
        "make-z",
        "mutation { createTask(input: {title: \"z\"}) { taskId } }",
    )
    .await;
    assert_no_errors(&body);
    let z = body["data"]["createTask"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = undo(&app, &alice, "make-z").await;
    assert_no_errors(&body);
    assert_eq!(body["data"]["undo"][0]["taskId"], z.as_str());
    let body = app
        .graphql(
            Some(&alice),
            "{ tasks(filter: {status: [DELETED]}) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_no_errors(&body);
    assert!(body.to_string().contains(&z), "{body}");

    // Undoing a deletion restores the task; undoing that restore deletes it again.
    let body = request_as(
        &app,
        &alice,
        "drop-y",
        &format!("mutation {{ deleteTask(id: \"{y}\") {{ version }} }}"),
    )
    .await;
    assert_no_errors(&body);
    let body = undo(&app, &alice, "drop-y").await;
    assert_no_errors(&body);
    let restored = app.task_at_version(&alice, &y, 5).await;
    assert_eq!(restored["status"], "OPEN", "{restored}");

    for bad in ["", "with space", &"x".repeat(129)] {
        let body = undo(&app, &alice, bad).await;
        assert_eq!(error_code(&body), Some("VALIDATION"), "{bad:?}: {body}");
    }
    read_model_caught_up(&app.pool, Duration::from_secs(30), "undos").await;
}

#[tokio::test]
async fn undo_by_a_member_removed_since_answers_as_missing_not_as_a_conflict() {
    let app = TestApp::spawn().await;
    let (ann, rob) = (app.token("ann"), app.token("rob"));
    let list = app.new_list(&ann, "Chores").await;
    let invitation = app.invite(&ann, &list, "rob", "EDITOR").await;
    app.data(
        &rob,
        "mutation($id: ID!) { acceptInvitation(id: $id) { version } }",
        json!({ "id": invitation }),
    )
    .await;
    let id = app
        .data(
            &ann,
            "mutation($list: ID) { createTask(input: {title: \"dishes\", listId: $list}) { taskId } }",
            json!({ "list": list }),
        )
        .await["createTask"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();

    // rob, an editor, renames the list's task; then ann removes him and
    // changes it after him.
    let body = request_as(
        &app,
        &rob,
        "rob-renames",
        &format!("mutation {{ updateTask(input: {{id: \"{id}\", title: \"rob's dishes\"}}) {{ version }} }}"),
    )
    .await;
    assert_no_errors(&body);
    app.data(
        &ann,
        "mutation($list: ID!, $user: String!) { removeMember(listId: $list, userId: $user) { version } }",
        json!({ "list": list, "user": "rob" }),
    )
    .await;
    let version = app
        .data(
            &ann,
            "mutation($id: ID!) { updateTask(input: {id: $id, title: \"ann's dishes\"}) { version } }",
            json!({ "id": id }),
        )
        .await["updateTask"]["version"]
        .as_i64()
        .unwrap();
    let events = app.event_count().await;

    // His undo finds nothing: no conflict, no version of the task.
    let body = undo(&app, &rob, "rob-renames").await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    let extensions = &body["errors"][0]["extensions"];
    assert!(extensions.get("actualVersion").is_none(), "{body}");
    assert!(extensions.get("expectedVersion").is_none(), "{body}");
    // Exactly as for a request he never sent.
    let never = undo(&app, &rob, "never-sent").await;
    assert_eq!(body["errors"][0]["message"], never["errors"][0]["message"]);
    assert_eq!(extensions, &never["errors"][0]["extensions"]);
    assert_eq!(app.event_count().await, events, "the undo wrote nothing");
    let task = app.task_at_version(&ann, &id, version).await;
    assert_eq!(task["title"], "ann's dishes");
}
