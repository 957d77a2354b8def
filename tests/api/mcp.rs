//! The MCP endpoint, driven over HTTP by the official Rust SDK's client: the
//! tools, their annotations, both protocol revisions served, idempotent adds,
//! and the same isolation, validation and codes as GraphQL.

use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use serde_json::{json, Value};
use taskledger::Roles;

use std::time::Duration;

use crate::helpers::{eventually, TestApp};

type Client = RunningService<RoleClient, ()>;

fn transport(app: &TestApp, token: &str) -> StreamableHttpClientTransport<reqwest::Client> {
    let config = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", app.address))
        .auth_header(token.to_owned());
    StreamableHttpClientTransport::from_config(config)
}

/// A client on the current, stateless revision (no handshake).
async fn connect(app: &TestApp, token: &str) -> Client {
    ().serve_with_lifecycle(
        transport(app, token),
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    )
    .await
    .expect("the MCP client connects")
}

/// A tool's structured answer, and whether it was an error.
async fn call(client: &Client, tool: &str, arguments: Value) -> (bool, Value) {
    let arguments = arguments.as_object().cloned().unwrap_or_default();
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .unwrap_or_else(|error| panic!("{tool} answers: {error}"));
    let value = result
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("{tool} answers with structured content: {result:?}"));
    (result.is_error == Some(true), value)
}

async fn ok(client: &Client, tool: &str, arguments: Value) -> Value {
    let (failed, value) = call(client, tool, arguments).await;
    assert!(!failed, "{tool} failed: {value}");
    value
}

async fn refused(client: &Client, tool: &str, arguments: Value) -> Value {
    let (failed, value) = call(client, tool, arguments).await;
    assert!(failed, "{tool} should have failed: {value}");
    value
}

#[tokio::test]
async fn agents_manage_their_users_tasks_through_mcp_and_never_anyone_elses() {
    let app = TestApp::spawn_roles(Roles::ALL).await;
    let alice = connect(&app, &app.token("alice")).await;
    let bob = connect(&app, &app.token("bob")).await;

    // The tools, with their annotations and schemas.
    let tools = alice.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(tools.len() <= 12, "{names:?}");
    for name in [
        "add_tasks",
        "find_tasks",
        "get_task",
        "update_task",
        "complete_task",
        "delete_task",
        "schedule_task",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let tool = |name: &str| tools.iter().find(|t| t.name == name).unwrap().clone();
    let find = tool("find_tasks").annotations.unwrap();
    assert_eq!(find.read_only_hint, Some(true));
    let delete = tool("delete_task").annotations.unwrap();
    assert_eq!(
        (delete.read_only_hint, delete.destructive_hint),
        (Some(false), Some(true))
    );
    let add = tool("add_tasks");
    assert_eq!(add.annotations.unwrap().idempotent_hint, Some(false));
    let schema = serde_json::to_value(&*add.input_schema).unwrap();
    assert!(schema.to_string().contains("idempotencyKey"), "{schema}");

    // Quick add and a structured task, safely retried with one key.
    let arguments = json!({
        "tasks": [
            { "text": "pay rent every month on the 1st 9am #home !high", "timeZone": "Europe/Berlin" },
            { "title": "Call the bank", "priority": "LOW", "tags": ["admin"] },
        ],
        "idempotencyKey": "chat-42-turn-7",
    });
    let added = ok(&alice, "add_tasks", arguments.clone()).await;
    let rent = added["tasks"][0].clone();
    assert_eq!(rent["title"], "pay rent");
    let kinds: Vec<&str> = rent["understood"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["kind"].as_str().unwrap())
        .collect();
    for kind in ["RECURRENCE", "TAG", "PRIORITY"] {
        assert!(kinds.contains(&kind), "{kind} not understood: {rent}");
    }
    let rent_id = rent["taskId"].as_str().unwrap().to_owned();
    let events = app.event_count().await;
    let again = ok(&alice, "add_tasks", arguments).await;
    assert_eq!(again["tasks"][0]["taskId"], rent["taskId"]);
    assert_eq!(again["tasks"][1]["taskId"], added["tasks"][1]["taskId"]);
    assert_eq!(
        app.event_count().await,
        events,
        "a retried add stored nothing"
    );

    // The tasks as the read model holds them.
    for added in added["tasks"].as_array().unwrap() {
        let id = added["taskId"].as_str().unwrap();
        app.task_at_version(&app.token("alice"), id, added["version"].as_i64().unwrap())
            .await;
    }
    let found = ok(
        &alice,
        "find_tasks",
        json!({ "search": "rent", "tagsAny": ["home"] }),
    )
    .await;
    let nodes = found["tasks"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{found}");
    assert_eq!(nodes[0]["recurrence"], "FREQ=MONTHLY;BYMONTHDAY=1");
    assert_eq!(nodes[0]["priority"], "HIGH");
    assert_eq!(nodes[0]["timeZone"], "Europe/Berlin");

    let got = ok(&alice, "get_task", json!({ "id": rent_id })).await;
    assert_eq!(got["task"]["title"], "pay rent");
    assert_eq!(got["taskHistory"]["nodes"][0]["eventType"], "TaskCreated");
    assert_eq!(got["taskHistory"]["nodes"][0]["actor"], "alice");

    // Bob, through his own agent, cannot see or touch Alice's task: every
    // answer is the one a task that does not exist gets.
    let missing = uuid::Uuid::new_v4().to_string();
    for id in [rent_id.as_str(), missing.as_str()] {
        assert_eq!(
            refused(&bob, "get_task", json!({ "id": id })).await["code"],
            "NOT_FOUND"
        );
        for tool in [
            "complete_task",
            "delete_task",
            "reopen_task",
            "restore_task",
        ] {
            assert_eq!(
                refused(&bob, tool, json!({ "id": id })).await["code"],
                "NOT_FOUND",
                "{tool}"
            );
        }
        let update = refused(
            &bob,
            "update_task",
            json!({ "id": id, "title": "mine now" }),
        )
        .await;
        assert_eq!(update["code"], "NOT_FOUND");
        let schedule = refused(&bob, "schedule_task", json!({ "id": id, "clearDue": true })).await;
        assert_eq!(schedule["code"], "NOT_FOUND");
        for change in [
            json!({ "priority": "LOW" }),
            json!({ "addTags": ["mine"] }),
            json!({ "recurrence": "" }),
        ] {
            let mut arguments = change.clone();
            arguments["id"] = json!(id);
            let refusal = refused(&bob, "update_task", arguments).await;
            assert_eq!(
                (
                    refusal["code"].as_str(),
                    refusal["applied"].as_object().map(|a| a.len())
                ),
                (Some("NOT_FOUND"), Some(0)),
                "{change}"
            );
        }
        let reminders = refused(
            &bob,
            "schedule_task",
            json!({ "id": id, "reminders": [{ "minutesBefore": 5 }] }),
        )
        .await;
        assert_eq!(reminders["code"], "NOT_FOUND");
    }
    let bob_overview = ok(&bob, "task_overview", json!({})).await;
    assert_eq!(bob_overview["tags"], json!([]), "{bob_overview}");
    assert_eq!(bob_overview["taskStats"]["open"], 0);
    let bob_inbox = ok(&bob, "list_notifications", json!({})).await;
    assert_eq!(
        bob_inbox["notifications"]["edges"]
            .as_array()
            .map_or(0, Vec::len)
            + bob_inbox["notifications"]["nodes"]
                .as_array()
                .map_or(0, Vec::len),
        0
    );
    let bobs = ok(&bob, "find_tasks", json!({ "search": "rent" })).await;
    assert_eq!(bobs["tasks"]["totalCount"], 0, "{bobs}");
    let same_key = ok(
        &bob,
        "add_tasks",
        json!({ "tasks": [{ "title": "Bob's" }], "idempotencyKey": "chat-42-turn-7" }),
    )
    .await;
    assert_ne!(
        same_key["tasks"][0]["taskId"], rent["taskId"],
        "keys are per user"
    );

    // Writes, each answered with the version GraphQL gives.
    let done = ok(&alice, "complete_task", json!({ "id": rent_id })).await;
    assert!(done["completeTask"]["version"].as_i64().unwrap() > rent["version"].as_i64().unwrap());
    let updated = ok(
        &alice,
        "update_task",
        json!({ "id": rent_id, "priority": "URGENT", "addTags": ["money"] }),
    )
    .await;
    assert!(
        updated["priority"]["version"].is_i64() && updated["addTags"]["version"].is_i64(),
        "{updated}"
    );
    let stale = refused(
        &alice,
        "update_task",
        json!({ "id": rent_id, "title": "x", "expectedVersion": 1 }),
    )
    .await;
    assert_eq!(stale["code"], "CONFLICT");
    // A version guards a title or description change alone, never half of
    // a change: refused before anything is written. (Only this task's
    // events: the recurrence processor is adding its next occurrence.)
    let rent_events = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events WHERE aggregate_id = $1")
            .bind(&rent_id)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let events = rent_events().await;
    let half = refused(
        &alice,
        "update_task",
        json!({ "id": rent_id, "title": "x", "priority": "LOW", "expectedVersion": 1 }),
    )
    .await;
    assert_eq!(
        (half["code"].as_str(), half["field"].as_str()),
        (Some("VALIDATION"), Some("expectedVersion"))
    );
    assert_eq!(rent_events().await, events);
    // Several changes run in order; the first refusal stops the rest and the
    // answer names what was applied.
    let partial = refused(
        &alice,
        "update_task",
        json!({ "id": rent_id, "addTags": ["ok"], "recurrence": "FREQ=HOURLY" }),
    )
    .await;
    assert_eq!(
        (partial["code"].as_str(), partial["failed"].as_str()),
        (Some("VALIDATION"), Some("recurrence")),
        "{partial}"
    );
    assert!(
        partial["applied"]["addTags"]["version"].is_i64(),
        "{partial}"
    );
    ok(&alice, "delete_task", json!({ "id": rent_id })).await;
    let restored = ok(&alice, "restore_task", json!({ "id": rent_id })).await;
    let version = restored["restoreTask"]["version"].as_i64().unwrap();
    app.task_at_version(&app.token("alice"), &rent_id, version)
        .await;

    // Bad input: the same codes, fields and reasons as GraphQL.
    let empty = refused(&alice, "add_tasks", json!({ "tasks": [{ "title": "  " }] })).await;
    assert_eq!(
        (empty["code"].as_str(), empty["field"].as_str()),
        (Some("VALIDATION"), Some("title")),
        "{empty}"
    );
    let many: Vec<Value> = (0..21)
        .map(|i| json!({ "title": format!("t{i}") }))
        .collect();
    assert_eq!(
        refused(&alice, "add_tasks", json!({ "tasks": many })).await["code"],
        "VALIDATION"
    );
    let zone = refused(
        &alice,
        "add_tasks",
        json!({ "tasks": [{ "text": "x tomorrow", "timeZone": "Mars/Olympus" }] }),
    )
    .await;
    assert_eq!(zone["code"], "VALIDATION");
    let both = refused(
        &alice,
        "add_tasks",
        json!({ "tasks": [{ "text": "x", "title": "y" }] }),
    )
    .await;
    assert_eq!(both["code"], "VALIDATION");
    let page = refused(&alice, "find_tasks", json!({ "first": 1000 })).await;
    assert_eq!(
        (page["code"].as_str(), page["field"].as_str()),
        (Some("VALIDATION"), Some("first"))
    );
    let id = refused(&alice, "get_task", json!({ "id": "not-a-uuid" })).await;
    assert_eq!(id["code"], "VALIDATION");
    // Arguments of the wrong shape never reach a tool; the refusal has our code.
    let wrong = alice
        .call_tool(
            CallToolRequestParams::new("find_tasks")
                .with_arguments(json!({ "first": "many" }).as_object().cloned().unwrap()),
        )
        .await;
    let wrong = wrong.expect("a tool error, not a protocol error");
    let refusal = wrong.structured_content.expect("with our code");
    assert_eq!(
        (refusal["code"].as_str(), refusal["field"].as_str()),
        (Some("VALIDATION"), Some("arguments")),
        "{refusal}"
    );
    assert!(
        refusal["message"].as_str().unwrap().contains("many"),
        "{refusal}"
    );

    let overview = ok(&alice, "task_overview", json!({})).await;
    // The read model may not hold the last writes yet; what it holds is Alice's.
    let stats = &overview["taskStats"];
    let counted = stats["open"].as_i64().unwrap() + stats["completed"].as_i64().unwrap();
    assert!(counted >= 2, "{overview}");
    let tags: Vec<&str> = overview["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    assert!(
        tags.contains(&"home") && tags.contains(&"admin"),
        "{overview}"
    );
    let inbox = ok(&alice, "list_notifications", json!({ "unreadOnly": true })).await;
    assert_eq!(inbox["unreadNotificationCount"], 0);
}

#[tokio::test]
async fn the_handshake_revision_is_served_too_and_every_request_needs_a_token() {
    let app = TestApp::spawn_roles(Roles::API).await;
    // 2025-11-25: initialize, then requests (served statelessly).
    let legacy = ().serve(transport(&app, &app.token("carol"))).await.expect("initialize");
    let info = legacy.peer_info().expect("the server answered initialize");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);
    assert!(legacy.list_all_tools().await.unwrap().len() >= 10);
    let added = ok(
        &legacy,
        "add_tasks",
        json!({ "tasks": [{ "title": "from an older client" }] }),
    )
    .await;
    assert!(added["tasks"][0]["taskId"].is_string());

    // No token, a forged one, an expired one: 401 before MCP, with the code.
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" });
    for token in [
        None,
        Some("not-a-jwt".to_owned()),
        Some(app.expired_token("carol")),
    ] {
        let mut request = app
            .client
            .post(format!("{}/mcp", app.address))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&body);
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{token:?}");
        assert!(response.headers().contains_key("www-authenticate"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }

    // A body past the limit is refused before it is parsed.
    let huge = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": { "name": "add_tasks", "arguments": { "tasks": [{ "title": "x".repeat(70_000) }] } } });
    let response = app
        .client
        .post(format!("{}/mcp", app.address))
        .bearer_auth(app.token("carol"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

/// `shared_lists` shows an agent the lists its user belongs to and the
/// invitations waiting for them, and nothing of anyone else's.
#[tokio::test]
async fn an_agent_sees_its_users_lists_and_invitations_and_no_one_elses() {
    let app = TestApp::spawn().await;
    let (ann, bob) = (app.token("ann"), app.token("bob"));
    let created = app
        .graphql(
            Some(&ann),
            "mutation { createList(input: {name: \"Trip\"}) { listId } }",
            json!({}),
        )
        .await;
    let list = created["data"]["createList"]["listId"]
        .as_str()
        .unwrap()
        .to_owned();
    let invited = app
        .graphql(
            Some(&ann),
            "mutation($l: ID!) { inviteToList(listId: $l, userId: \"bob\", role: VIEWER) { invitationId } }",
            json!({ "l": list }),
        )
        .await;
    assert!(invited.get("errors").is_none(), "{invited}");

    let anns = ok(&connect(&app, &ann).await, "shared_lists", json!({})).await;
    assert_eq!(anns["lists"][0]["id"], json!(list));
    assert_eq!(anns["lists"][0]["role"], json!("OWNER"));
    assert_eq!(anns["invitations"], json!([]));
    let bobs = ok(&connect(&app, &bob).await, "shared_lists", json!({})).await;
    assert_eq!(bobs["lists"], json!([]), "an invitee is not a member yet");
    assert_eq!(bobs["invitations"][0]["listId"], json!(list));
    assert_eq!(bobs["invitations"][0]["listName"], json!("Trip"));
    assert_eq!(bobs["invitations"][0]["from"], json!("ann"));
    // The invitation is in bob's notifications, and in no one else's.
    let bob_inbox = ok(&connect(&app, &bob).await, "list_notifications", json!({})).await;
    assert_eq!(bob_inbox["unreadNotificationCount"], json!(1));
    let notice = &bob_inbox["notifications"]["nodes"][0];
    assert_eq!(notice["kind"], json!("INVITATION"));
    assert_eq!(notice["taskId"], Value::Null);
    assert_eq!(
        notice["invitation"],
        json!({ "listId": list, "listName": "Trip", "role": "VIEWER", "from": "ann" })
    );
    let anns_inbox = ok(&connect(&app, &ann).await, "list_notifications", json!({})).await;
    assert_eq!(anns_inbox["notifications"]["nodes"], json!([]));
    let carol = connect(&app, &app.token("carol")).await;
    let carols = ok(&carol, "shared_lists", json!({})).await;
    assert_eq!(carols["lists"], json!([]));
    assert_eq!(carols["invitations"], json!([]));
    assert!(carols["inboxId"].is_string());

    // Once bob joins, a task ann's agent adds to the list is his agent's to
    // find too, and nothing carol's agent can find or change.
    let accepted = app
        .graphql(
            Some(&bob),
            "mutation($id: ID!) { acceptInvitation(id: $id) { version } }",
            json!({ "id": bobs["invitations"][0]["id"] }),
        )
        .await;
    assert!(accepted.get("errors").is_none(), "{accepted}");
    let added = ok(
        &connect(&app, &ann).await,
        "add_tasks",
        json!({ "tasks": [{ "text": "book the ferry tomorrow #travel", "listId": list }] }),
    )
    .await;
    let id = added["tasks"][0]["taskId"].as_str().unwrap().to_owned();
    let bob_agent = connect(&app, &bob).await;
    let found = eventually(Duration::from_secs(5), || async {
        let found = ok(&bob_agent, "find_tasks", json!({ "listIds": [list] })).await;
        // The page and its count are two reads: wait for the page.
        (found["tasks"]["nodes"].as_array().map(Vec::len) == Some(1)).then_some(found)
    })
    .await
    .expect("a member's agent finds the list's task");
    let task = &found["tasks"]["nodes"][0];
    assert_eq!(task["id"], json!(id));
    assert_eq!(
        (&task["listId"], &task["owner"]),
        (&json!(list), &json!("ann"))
    );
    // bob is a viewer: he reads and changes nothing.
    let refusal = refused(&bob_agent, "complete_task", json!({ "id": id })).await;
    assert_eq!(refusal["code"], "FORBIDDEN");
    let nothing = ok(&carol, "find_tasks", json!({ "listIds": [list] })).await;
    assert_eq!(nothing["tasks"]["totalCount"], 0);
    let refusal = refused(&carol, "complete_task", json!({ "id": id })).await;
    assert_eq!(refusal["code"], "NOT_FOUND");
    let refusal = refused(
        &carol,
        "add_tasks",
        json!({ "tasks": [{ "title": "sneak", "listId": list }] }),
    )
    .await;
    assert_eq!(refusal["code"], "NOT_FOUND");
}
