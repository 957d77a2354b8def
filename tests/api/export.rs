//! A user's data exported whole: `exportMyData` over GraphQL, `GET /export`
//! streamed, and `taskledger export --user` for operators. Each holds every
//! task the user created with its full history, and nothing of anyone else's;
//! the document has the shape its schema documents.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use serde_json::{json, Value};

use crate::helpers::{assert_no_errors, error_code, eventually, role_process, TestApp};

const EXPORT: &str = "{ exportMyData }";

/// Alice's tasks: one edited and completed, one tagged and deleted, one with
/// a reminder. Bob has one of his own. Returns alice's task ids.
async fn alice_and_bob(app: &TestApp) -> Vec<String> {
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let (done, _) = app.create_task(&alice, "file the taxes").await;
    let body = app
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { updateTask(input: {id: $id, title: \"file the taxes early\"}) { version } }",
            json!({"id": done}),
        )
        .await;
    assert_no_errors(&body);
    app.complete_task(&alice, &done).await;
    let (gone, _) = app.create_task(&alice, "old plan").await;
    let body = app
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { deleteTask(id: $id) { version } }",
            json!({"id": gone}),
        )
        .await;
    assert_no_errors(&body);
    let at = (Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let body = app
        .graphql(
            Some(&alice),
            "mutation($at: DateTime!) { createTask(input: {title: \"call the dentist\",
                reminders: [{at: $at}]}) { taskId } }",
            json!({"at": at}),
        )
        .await;
    assert_no_errors(&body);
    let reminded = body["data"]["createTask"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create_task(&bob, "bob's secret").await;
    // Bob invites alice to a list: her inbox holds the invitation, and her
    // export none of what bob typed.
    let body = app
        .graphql(
            Some(&bob),
            "mutation { createList(input: {name: \"bob's secret list\"}) { listId } }",
            json!({}),
        )
        .await;
    assert_no_errors(&body);
    let list = &body["data"]["createList"]["listId"];
    let body = app
        .graphql(
            Some(&bob),
            "mutation($list: ID!) { inviteToList(listId: $list, userId: \"alice\", role: VIEWER) { invitationId } }",
            json!({"list": list}),
        )
        .await;
    assert_no_errors(&body);
    vec![done, gone, reminded]
}

/// What every export of alice's must hold.
fn check_alices(document: &Value, ids: &[String]) {
    assert_eq!(document["format"], "taskledger.export.v1");
    assert_eq!(document["user_id"], "alice");
    let tasks = document["tasks"].as_array().expect("tasks");
    let exported: BTreeSet<&str> = tasks.iter().map(|t| t["id"].as_str().unwrap()).collect();
    let expected: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(exported, expected, "alice's tasks, and only hers");
    assert!(!document.to_string().contains("bob's secret"));
    let done = tasks.iter().find(|t| t["id"] == ids[0].as_str()).unwrap();
    let history = done["history"].as_array().unwrap();
    let kinds: Vec<&str> = history
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["TaskCreated", "TaskEdited", "TaskCompleted"]);
    assert!(history.iter().all(|e| e["actor"] == "alice"), "{history:?}");
    let renamed = &history[1]["changes"];
    assert!(
        renamed
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["field"] == "title"
                && c["old"] == "file the taxes"
                && c["new"] == "file the taxes early"),
        "{renamed}"
    );
    assert_eq!(done["version"], 3);
    assert_eq!(done["state"]["title"], "file the taxes early");
    assert!(done["completed_at"].is_string());
    let gone = tasks.iter().find(|t| t["id"] == ids[1].as_str()).unwrap();
    assert!(
        gone["deleted_at"].is_string(),
        "a deleted task is exported too"
    );
    let invitations: Vec<&Value> = document["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "INVITATION")
        .collect();
    assert_eq!(invitations.len(), 1, "{}", document["notifications"]);
    let invitation = invitations[0];
    assert!(invitation["task_id"].is_null());
    assert!(invitation["list_id"].is_string());
    assert_eq!(invitation["role"], "VIEWER");
    assert_eq!(invitation["invited_by"], "bob");
    assert_eq!(invitation["title"], "");
    assert!(document.get("calendar_feed").is_some());
}

#[tokio::test]
async fn a_user_exports_every_task_with_its_history_at_every_door_and_nothing_of_others() {
    let app = TestApp::spawn().await;
    let ids = alice_and_bob(&app).await;
    let alice = app.token("alice");
    // Reminders are exported as their read model holds them.
    eventually(Duration::from_secs(15), || async {
        let held: i64 =
            sqlx::query_scalar("SELECT count(*) FROM reminders WHERE user_id = 'alice'")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        (held == 1).then_some(())
    })
    .await
    .expect("the reminder reaches its read model");

    // GraphQL.
    let body = app.graphql(Some(&alice), EXPORT, json!({})).await;
    assert_no_errors(&body);
    let document = &body["data"]["exportMyData"];
    check_alices(document, &ids);
    let reminders = document["reminders"].as_array().unwrap();
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert_eq!(reminders[0]["task_id"], ids[2].as_str());

    // GET /export, streamed.
    let response = app
        .client
        .get(format!("{}/export", app.address))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let streamed: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    check_alices(&streamed, &ids);
    assert_eq!(
        streamed["tasks"], document["tasks"],
        "both doors say the same"
    );

    // Bob's holds his own task alone.
    let bobs = app
        .graphql(Some(&app.token("bob")), EXPORT, json!({}))
        .await;
    let tasks = bobs["data"]["exportMyData"]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["state"]["title"], "bob's secret");

    // The operator's command writes the same document.
    let file = std::env::temp_dir().join(format!("export-{}.json", uuid::Uuid::new_v4()));
    let status = role_process(&app.settings, "export")
        .args(["--user", "alice", "--output"])
        .arg(&file)
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let written: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    std::fs::remove_file(&file).unwrap();
    check_alices(&written, &ids);
    assert_eq!(written["tasks"], document["tasks"]);
}

#[tokio::test]
async fn an_export_needs_a_valid_token_and_a_large_one_is_downloaded_not_inlined() {
    let app = TestApp::spawn().await;
    // No token, a forged one: refused with the API's codes.
    let response = app
        .client
        .get(format!("{}/export", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));
    let response = app
        .client
        .get(format!("{}/export", app.address))
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body = app.graphql(None, EXPORT, json!({})).await;
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));

    // More tasks than one GraphQL response holds: refused there with the
    // way out, and streamed whole from GET /export.
    let carol = app.token("carol");
    let count = query_api::EXPORT_INLINE_TASKS as usize + 1;
    let titles: Vec<String> = (0..count).map(|n| format!("chore {n}")).collect();
    for chunk in titles.chunks(50) {
        join_all(chunk.iter().map(|title| app.create_task(&carol, title))).await;
    }
    let body = app.graphql(Some(&carol), EXPORT, json!({})).await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("GET /export"),
        "{body}"
    );
    let response = tokio::time::timeout(
        Duration::from_secs(60),
        app.client
            .get(format!("{}/export", app.address))
            .bearer_auth(&carol)
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.status(), 200);
    let document: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(document["tasks"].as_array().unwrap().len(), count);
}

#[test]
fn the_schema_names_what_an_export_holds() {
    let schema: Value =
        serde_json::from_str(include_str!("../../docs/schemas/export.v1.schema.json")).unwrap();
    let required = |value: &Value| -> BTreeSet<String> {
        value["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        required(&schema),
        [
            "format",
            "user_id",
            "exported_at",
            "tasks",
            "reminders",
            "notifications",
            "calendar_feed"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(
        required(&schema["$defs"]["notification"]),
        [
            "id",
            "kind",
            "task_id",
            "title",
            "due_at",
            "remind_at",
            "fired_at",
            "read_at",
            "list_id",
            "role",
            "invited_by"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(
        required(&schema["$defs"]["task"]),
        [
            "id",
            "version",
            "created_at",
            "updated_at",
            "completed_at",
            "deleted_at",
            "state",
            "history"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(
        schema["properties"]["format"]["const"],
        query_api::export::EXPORT_FORMAT
    );
}

const REMOVE: &str =
    "mutation($list: ID!, $user: String!) { removeMember(listId: $list, userId: $user) { version } }";
const EDIT: &str = "mutation($id: ID!, $title: String!, $description: String) {
    updateTask(input: {id: $id, title: $title, description: $description}) { version } }";
const MOVE: &str =
    "mutation($id: ID!, $list: ID!) { moveTask(id: $id, listId: $list) { version } }";

/// Task `id` renamed to `canary` (and described with it) by `token`'s user;
/// its new version.
async fn renamed(app: &TestApp, token: &str, id: &str, canary: &str) -> i64 {
    app.data(
        token,
        EDIT,
        json!({ "id": id, "title": canary, "description": format!("{canary}, described") }),
    )
    .await["updateTask"]["version"]
        .as_i64()
        .unwrap()
}

/// `token`'s user's export at both of the API's doors (`exportMyData` and
/// `GET /export`), as text.
async fn exports(app: &TestApp, token: &str) -> [String; 2] {
    let body = app.graphql(Some(token), EXPORT, json!({})).await;
    assert_no_errors(&body);
    assert_eq!(
        body["data"]["exportMyData"]["format"],
        "taskledger.export.v1"
    );
    let response = app
        .client
        .get(format!("{}/export", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let streamed = response.text().await.unwrap();
    let document: Value = serde_json::from_str(&streamed).expect("a JSON document");
    assert_eq!(document["format"], "taskledger.export.v1");
    [body["data"]["exportMyData"].to_string(), streamed]
}

#[tokio::test]
async fn a_member_removed_from_a_list_exports_nothing_written_to_its_tasks_after_the_removal() {
    let app = TestApp::spawn().await;
    let (ann, rob) = (app.token("ann"), app.token("rob"));
    let list = app.new_list(&ann, "Errands").await;
    app.join(&ann, &list, "rob", "EDITOR").await;
    // rob makes a task in the list and sets it a reminder.
    let id = app.task_in(&rob, &list, "rob's errand").await;
    let at = (Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    app.data(
        &rob,
        "mutation($id: ID!, $at: DateTime!) { setReminders(id: $id, reminders: [{at: $at}]) { version } }",
        json!({ "id": id, "at": at }),
    )
    .await;
    // ann removes him, then writes to his task.
    app.data(&ann, REMOVE, json!({ "list": list, "user": "rob" }))
        .await;
    let canary = format!("after-removal-{}", uuid::Uuid::new_v4().simple());
    let version = renamed(&app, &ann, &id, &canary).await;
    // The read models hold the edit: the task list's, and the reminders'
    // (which a reminder's title comes from; not awaited past 15 s, as a
    // projection that drops the task would never get there).
    assert_eq!(
        app.task_at_version(&ann, &id, version).await["title"],
        canary.as_str()
    );
    reminders_hold(&app, &id, version).await;

    for export in exports(&app, &rob).await {
        assert!(
            !export.contains(&canary),
            "ann's edit after rob's removal is in his export: {export}"
        );
        // What he wrote is still his to take: the task as he left it.
        assert!(
            export.contains(&id) && export.contains("rob's errand"),
            "{export}"
        );
    }
}

#[tokio::test]
async fn a_task_moved_into_another_members_inbox_exports_nothing_written_to_it_there() {
    let app = TestApp::spawn().await;
    let (ann, rob, eve) = (app.token("ann"), app.token("rob"), app.token("eve"));
    let list = app.new_list(&ann, "Errands").await;
    app.join(&ann, &list, "rob", "EDITOR").await;
    app.join(&ann, &list, "eve", "EDITOR").await;
    let id = app.task_in(&rob, &list, "rob's errand").await;
    // eve, an editor, takes rob's task to her own Inbox and renames it
    // there; rob is still a member of the list.
    let eves_inbox = app.data(&eve, "{ inboxId }", json!({})).await["inboxId"].clone();
    app.data(&eve, MOVE, json!({ "id": id, "list": eves_inbox }))
        .await;
    let canary = format!("in-eves-inbox-{}", uuid::Uuid::new_v4().simple());
    let version = renamed(&app, &eve, &id, &canary).await;
    let task = app.task_at_version(&eve, &id, version).await;
    assert_eq!(task["title"], canary.as_str());
    assert_eq!(app.task(&rob, &id).await, Value::Null, "eve's alone now");

    for export in exports(&app, &rob).await {
        assert!(
            !export.contains(&canary),
            "eve's edit in her Inbox is in rob's export: {export}"
        );
        assert!(
            export.contains(&id) && export.contains("rob's errand"),
            "{export}"
        );
    }
}

/// Waits, up to 15 s, until the reminders projection holds task `id` at
/// `version` or later.
async fn reminders_hold(app: &TestApp, id: &str, version: i64) {
    let _ = eventually(Duration::from_secs(15), || async {
        let held: Option<i64> =
            sqlx::query_scalar("SELECT version FROM reminder_tasks WHERE task_id = $1::uuid")
                .bind(id)
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        (held >= Some(version)).then_some(())
    })
    .await;
}
