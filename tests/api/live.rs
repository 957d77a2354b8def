//! `/graphql/ws`: the protocol's close codes, limits, `taskChanges` from a
//! cursor then live, per-user isolation, and the change feed surviving a
//! projector killed right after its commit. Real WebSocket clients throughout.

use std::time::Duration;

use serde_json::{json, Value};
use taskledger::Roles;

use crate::helpers::{
    end_listeners, eventually, fresh_settings, read_topic, spawn_role_process, TestApp,
};
use crate::ws_client::{Frame, GqlSocket};

const CHANGES: &str = "subscription($since: String) {
    taskChanges(since: $since) { kind cursor taskId version task { id title status } }
}";

const SECOND: Duration = Duration::from_secs(1);

/// The next `taskChanges` item on `socket` for subscription `id`.
/// The next `taskChanges` change on `socket` for subscription `id`; a
/// `RESYNC` notice (the API's live feed started after the subscription) is
/// passed over, as a client does.
async fn next_change(socket: &mut GqlSocket, id: &str, within: Duration) -> Option<Value> {
    loop {
        let payload = socket.next_payload(id, within).await?;
        assert!(payload["errors"].is_null(), "{payload}");
        let change = &payload["data"]["taskChanges"];
        if change["kind"] != "RESYNC" {
            return Some(change.clone());
        }
    }
}

#[tokio::test]
async fn task_changes_replay_from_a_cursor_then_stream_live_and_never_another_users() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let mut created = Vec::new();
    for title in ["one", "two", "three"] {
        let (id, version) = app.create_task(&alice, title).await;
        app.task_at_version(&alice, &id, version).await;
        created.push(id);
    }
    let bobs = app.create_task(&bob, "bob's own").await;
    app.task_at_version(&bob, &bobs.0, bobs.1).await;

    // Alice from the very beginning: her three tasks, in change order.
    let mut socket = GqlSocket::connect(&app.address, &alice).await;
    socket.subscribe("1", CHANGES, json!({"since": "0"})).await;
    let mut cursor = String::new();
    for id in &created {
        let change = next_change(&mut socket, "1", Duration::from_secs(5))
            .await
            .expect("the backlog arrives");
        assert_eq!(change["kind"], "CHANGED");
        assert_eq!(&change["taskId"], id, "in change order");
        cursor = change["cursor"].as_str().unwrap().to_owned();
    }
    // Bob's socket, subscribed live only.
    let mut bob_socket = GqlSocket::connect(&app.address, &bob).await;
    bob_socket.subscribe("b", CHANGES, json!({})).await;

    // Live: a change of alice's reaches her, and not bob.
    let started = std::time::Instant::now();
    let (fourth, _) = app.create_task(&alice, "four").await;
    let change = next_change(&mut socket, "1", Duration::from_secs(5))
        .await
        .expect("the live change arrives");
    assert_eq!(change["taskId"], fourth.as_str());
    assert_eq!(change["version"], 1);
    assert_eq!(change["task"]["title"], "four");
    assert!(change["cursor"].as_str().unwrap().parse::<i64>().unwrap() > cursor.parse().unwrap());
    eprintln!("mutation to subscriber: {:?}", started.elapsed());
    assert_eq!(
        bob_socket.next(SECOND).await,
        None,
        "bob hears nothing of alice's tasks"
    );
    let cursor = change["cursor"].as_str().unwrap().to_owned();

    // Disconnected, then back with the last cursor: only what changed since.
    drop(socket);
    let body = app
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { completeTask(id: $id) { version } }",
            json!({"id": created[0]}),
        )
        .await;
    crate::helpers::assert_no_errors(&body);
    let mut socket = GqlSocket::connect(&app.address, &alice).await;
    socket
        .subscribe("2", CHANGES, json!({"since": cursor}))
        .await;
    let change = next_change(&mut socket, "2", Duration::from_secs(5))
        .await
        .expect("the change made while away arrives");
    assert_eq!(change["taskId"], created[0].as_str());
    assert_eq!(change["task"]["status"], "COMPLETED");
    assert_eq!(change["version"], 2);
    assert_eq!(
        socket.next(SECOND).await,
        None,
        "nothing before the cursor comes again"
    );

    // Bob's own change reaches bob.
    app.create_task(&bob, "bob's second").await;
    let change = next_change(&mut bob_socket, "b", Duration::from_secs(5))
        .await
        .expect("bob's change reaches bob");
    assert_eq!(change["task"]["title"], "bob's second");
    assert_eq!(socket.next(SECOND).await, None, "and not alice");
}

#[tokio::test]
async fn the_protocol_closes_with_its_codes() {
    let mut settings = fresh_settings().await;
    settings.api.ws_init_timeout_secs = 1;
    let app = TestApp::spawn_with(settings, Roles::API).await;
    let token = app.token("alice");

    // 4408: no connection_init in time.
    let mut silent = GqlSocket::open(&app.address, "graphql-transport-ws").await;
    assert_eq!(silent.close_code(Duration::from_secs(5)).await, Some(4408));

    // 4401: subscribe before connection_init.
    let mut early = GqlSocket::open(&app.address, "graphql-transport-ws").await;
    early.subscribe("1", CHANGES, json!({})).await;
    assert_eq!(early.close_code(SECOND).await, Some(4401));

    // 4403: a bad token, an expired one, and none at all.
    for payload in [
        json!({"authorization": "Bearer not-a-token"}),
        json!({"authorization": format!("Bearer {}", app.expired_token("alice"))}),
        json!({}),
    ] {
        let mut refused = GqlSocket::open(&app.address, "graphql-transport-ws").await;
        refused
            .send(json!({"type": "connection_init", "payload": payload}))
            .await;
        assert_eq!(refused.close_code(SECOND).await, Some(4403), "{payload}");
    }

    // 4409: a subscription id in use; 4429: a second connection_init.
    let mut socket = GqlSocket::connect(&app.address, &token).await;
    socket.subscribe("same", CHANGES, json!({})).await;
    socket.subscribe("same", CHANGES, json!({})).await;
    assert_eq!(socket.close_code(SECOND).await, Some(4409));
    let mut socket = GqlSocket::connect(&app.address, &token).await;
    socket
        .send(json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}))
        .await;
    assert_eq!(socket.close_code(SECOND).await, Some(4429));

    // 4400: not a protocol message, and binary frames.
    let mut socket = GqlSocket::connect(&app.address, &token).await;
    socket.send_text("{\"type\": \"launch\"}".into()).await;
    assert_eq!(socket.close_code(SECOND).await, Some(4400));

    // 4403 when the token expires while connected.
    let short = app.short_token("alice", chrono::Duration::seconds(2));
    let mut socket = GqlSocket::connect(&app.address, &short).await;
    socket.subscribe("1", CHANGES, json!({})).await;
    assert_eq!(socket.close_code(Duration::from_secs(5)).await, Some(4403));

    // No subprotocol offered: refused before the upgrade.
    let response = app
        .client
        .get(format!("{}/graphql/ws", app.address))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(status, 400, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn subscribe_documents_get_the_same_limits_and_clear_errors() {
    let app = TestApp::spawn_roles(Roles::API).await;
    let mut socket = GqlSocket::connect(&app.address, &app.token("alice")).await;

    // Too deep a document: refused before it runs, with VALIDATION.
    let live_only = "subscription { taskChanges { cursor } }";
    let nested = "query { ".to_owned() + &"a { ".repeat(200) + &"}".repeat(201);
    socket.subscribe("deep", &nested, json!({})).await;
    let Some(Frame::Json(error)) = socket.next(SECOND).await else {
        panic!("an error message");
    };
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["id"], "deep");
    assert_eq!(error["payload"][0]["extensions"]["code"], "VALIDATION");

    // Queries and mutations belong to POST /graphql.
    socket
        .subscribe("q", "{ tasks { nodes { id } } }", json!({}))
        .await;
    let Some(Frame::Json(error)) = socket.next(SECOND).await else {
        panic!("an error message");
    };
    assert_eq!(error["id"], "q", "{error}");
    assert_eq!(
        error["payload"][0]["extensions"]["code"], "VALIDATION",
        "{error}"
    );

    // A bad cursor: an error for that subscription, the socket stays open.
    socket
        .subscribe("bad", CHANGES, json!({"since": "yesterday"}))
        .await;
    let Some(Frame::Json(error)) = socket.next(SECOND).await else {
        panic!("an error message");
    };
    assert_eq!(
        error["payload"][0]["extensions"]["code"], "VALIDATION",
        "{error}"
    );
    assert_eq!(
        error["payload"][0]["extensions"]["field"], "since",
        "{error}"
    );

    // At most so many subscriptions on one connection.
    for n in 0..taskledger_limits::MAX_SUBSCRIPTIONS {
        socket
            .subscribe(&format!("s{n}"), live_only, json!({}))
            .await;
    }
    socket.subscribe("one-too-many", live_only, json!({})).await;
    let refusal = loop {
        match socket.next(Duration::from_secs(5)).await {
            Some(Frame::Json(message)) if message["id"] == "one-too-many" => break message,
            Some(Frame::Json(_)) => continue,
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    assert_eq!(refusal["type"], "error");
    assert_eq!(refusal["payload"][0]["extensions"]["code"], "RATE_LIMITED");

    // A message larger than 64 KiB closes the socket.
    socket.send_text("x".repeat(70 * 1024)).await;
    let code = socket.close_code(Duration::from_secs(5)).await;
    assert!(matches!(code, Some(1009 | 1006)), "{code:?}");
}

mod taskledger_limits {
    pub use server::{MAX_SUBSCRIPTIONS, MAX_SUBSCRIPTIONS_PER_USER};
}

/// Fails on any refusal `socket` sends within 300 ms.
async fn refused_nothing(socket: &mut GqlSocket) {
    while let Some(frame) = socket.next(Duration::from_millis(300)).await {
        let Frame::Json(message) = &frame else {
            panic!("{frame:?}");
        };
        assert_ne!(message["type"], "error", "refused: {message}");
    }
}

/// The first message of subscription `id` on `socket` within 5 s, past
/// any `RESYNC` (a feed subscribed before the process read its topic).
async fn answer(socket: &mut GqlSocket, id: &str) -> Value {
    loop {
        match socket.next(Duration::from_secs(5)).await {
            Some(Frame::Json(message))
                if message["id"] == id
                    && message["payload"]["data"]["taskChanges"]["kind"] == "RESYNC" =>
            {
                continue
            }
            Some(Frame::Json(message)) if message["id"] == id => return message,
            Some(Frame::Json(_)) => continue,
            other => panic!("expected an answer to {id}, got {other:?}"),
        }
    }
}

/// One user's subscriptions are bounded across all their sockets too, as
/// each reads its backlog: one past the bound is refused by name, another
/// user is not held back, and one ended frees its place.
#[tokio::test]
async fn one_users_subscriptions_are_bounded_across_their_sockets() {
    use taskledger_limits::{MAX_SUBSCRIPTIONS, MAX_SUBSCRIPTIONS_PER_USER};
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    app.create_task(&alice, "one to read back").await;
    let live_only = "subscription { taskChanges { cursor } }";
    let backlog = "subscription { taskChanges(since: \"0\") { kind taskId } }";
    let mut sockets = Vec::new();
    let mut opened = 0;
    while opened < MAX_SUBSCRIPTIONS_PER_USER {
        let mut socket = GqlSocket::connect(&app.address, &alice).await;
        for n in 0..MAX_SUBSCRIPTIONS.min(MAX_SUBSCRIPTIONS_PER_USER - opened) {
            socket
                .subscribe(&format!("s{n}"), live_only, json!({}))
                .await;
            opened += 1;
        }
        sockets.push(socket);
    }
    for socket in &mut sockets {
        refused_nothing(socket).await;
    }
    let mut another = GqlSocket::connect(&app.address, &alice).await;
    another.subscribe("over", backlog, json!({})).await;
    let refusal = answer(&mut another, "over").await;
    assert_eq!(refusal["type"], "error", "{refusal}");
    assert_eq!(refusal["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    let message = refusal["payload"][0]["message"].as_str().unwrap();
    assert!(message.contains("per user"), "{message}");

    let mut bobs = GqlSocket::connect(&app.address, &app.token("bob")).await;
    bobs.subscribe("b", live_only, json!({})).await;
    refused_nothing(&mut bobs).await;

    sockets[0]
        .send(json!({"id": "s0", "type": "complete"}))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let admitted = loop {
        another.subscribe("room", backlog, json!({})).await;
        let message = answer(&mut another, "room").await;
        if message["type"] == "next" {
            break message;
        }
        // Refused (which ends it) while the place was not freed yet.
        assert!(
            std::time::Instant::now() < deadline,
            "an ended subscription frees no place: {message}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        admitted["payload"]["data"]["taskChanges"]["kind"], "CHANGED",
        "{admitted}"
    );
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_works_too() {
    let app = TestApp::spawn().await;
    let token = app.token("alice");
    let mut socket = GqlSocket::open(&app.address, "graphql-ws").await;
    socket.init(&token).await;
    socket
        .send(json!({"id": "1", "type": "start", "payload": {"query": CHANGES, "variables": {}}}))
        .await;
    // Give the subscription a moment to join the fan-out before the change.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (id, _) = app.create_task(&token, "legacy").await;
    let data = loop {
        match socket.next(Duration::from_secs(10)).await {
            Some(Frame::Json(message))
                if message["payload"]["data"]["taskChanges"]["kind"] == "RESYNC" =>
            {
                continue
            }
            Some(Frame::Json(message)) if message["type"] == "data" => break message,
            Some(Frame::Json(message)) if message["type"] == "ka" => continue,
            other => panic!("expected data, got {other:?}"),
        }
    };
    assert_eq!(data["id"], "1");
    assert_eq!(
        data["payload"]["data"]["taskChanges"]["taskId"],
        id.as_str()
    );
    socket.send(json!({"id": "1", "type": "stop"})).await;
    socket.send(json!({"type": "connection_terminate"})).await;
    assert_eq!(socket.close_code(SECOND).await, Some(1000));
}

#[tokio::test]
async fn a_change_committed_reaches_task_updates_even_if_the_projector_dies_right_after() {
    let settings = fresh_settings().await;
    let api_and_relay = Roles {
        project: false,
        scheduler: false,
        ..Roles::ALL
    };
    let app = TestApp::spawn_with(settings.clone(), api_and_relay).await;
    let token = app.token("alice");
    let mut projector = spawn_role_process(&settings, "project");
    let (id, _) = app.create_task(&token, "committed, then killed").await;
    // Kill the projector the moment the read model holds the task: its
    // publisher has had a millisecond at most to send the change.
    let unpublished = eventually(Duration::from_secs(30), || async {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT t.change_seq, coalesce((SELECT change_seq FROM task_update_publishers
                                             WHERE name = $2), 0)
               FROM task_list t WHERE t.id = $1::uuid",
        )
        .bind(&id)
        .bind(&settings.common.task_updates_topic)
        .fetch_optional(&app.pool)
        .await
        .unwrap();
        row
    })
    .await
    .expect("the task reaches the read model");
    projector.start_kill().unwrap();
    projector.wait().await.unwrap();
    eprintln!(
        "killed with change {} committed, the publisher at {}",
        unpublished.0, unpublished.1
    );

    // A new projector publishes what the killed one committed.
    let _projector = spawn_role_process(&settings, "project");
    let received = read_topic(
        &app.kafka(),
        &settings.common.task_updates_topic,
        Duration::from_secs(30),
        |received| {
            received
                .iter()
                .any(|m| m.json()["data"]["task"]["id"] == id.as_str())
        },
    )
    .await;
    let update = received
        .iter()
        .map(|m| m.json())
        .find(|m| m["data"]["task"]["id"] == id.as_str())
        .expect("the committed change is on task-updates");
    assert_eq!(update["data"]["user_id"], "alice");
    assert_eq!(update["data"]["version"], 1);
    assert_eq!(update["data"]["cursor"], unpublished.0);
    let key = received
        .iter()
        .find(|m| m.json()["data"]["task"]["id"] == id.as_str())
        .and_then(|m| m.key.clone());
    assert_eq!(key.as_deref(), Some("alice"), "keyed by user");
}

#[tokio::test]
async fn the_page_is_served_whole_and_dev_tokens_exist_in_local_mode_only() {
    let app = TestApp::spawn_roles(Roles::API).await;
    let page = app.client.get(&app.address).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(html.contains("/app/app.js"), "{html}");
    assert!(!html.contains("https://"), "nothing from elsewhere");
    for file in ["app.js", "app.css"] {
        let asset = app
            .client
            .get(format!("{}/app/{file}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(asset.status(), 200, "{file}");
    }
    let missing = app
        .client
        .get(format!("{}/app/secrets.txt", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let dev = |name: Value| {
        app.client
            .post(format!("{}/auth/dev-token", app.address))
            .json(&json!({ "name": name }))
            .send()
    };
    let response = dev(json!("carol")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    let me = app
        .graphql(Some(token), "{ unreadNotificationCount }", json!({}))
        .await;
    assert_eq!(me["data"]["unreadNotificationCount"], 0, "{me}");
    let refused = dev(json!("not a name!")).await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION");

    // Not in production, nor in local mode with a real secret.
    for env in [
        taskledger::Environment::Production,
        taskledger::Environment::Local,
    ] {
        let mut settings = fresh_settings().await;
        settings.common.env = env;
        settings.api.jwt_secret = Some("a production secret of at least 32 bytes!".into());
        // One process serves one master key: the one the other apps of this
        // test binary use (local mode's), given as production gives it.
        settings.common.master_key = Some("dGFza2xlZGdlciBsb2NhbCBkZXZlbG9wbWVudCBrZXk=".into());
        let other = TestApp::spawn_with(settings, Roles::API).await;
        let response = other
            .client
            .post(format!("{}/auth/dev-token", other.address))
            .json(&json!({"name": "carol"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "no development tokens in {env:?}");
    }
}

#[tokio::test]
async fn forged_messages_on_the_live_topics_reach_no_one() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let mut socket = GqlSocket::connect(&app.address, &alice).await;
    socket.subscribe("c", CHANGES, json!({})).await;
    socket
        .subscribe(
            "n",
            "subscription { notificationReceived { id title } }",
            json!({}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let task = uuid::Uuid::new_v4();
    let forged_update = json!({
        "specversion": "1.0", "id": format!("{task}/1"), "source": "evil",
        "type": "taskledger.task.updated.v1", "subject": task.to_string(),
        "time": "2026-01-01T00:00:00Z", "datacontenttype": "application/json",
        "data": {"cursor": 1_000_000_000, "user_id": "alice", "version": 1, "task": {
            "id": task, "user_id": "alice", "title": "pay mallory", "description": null,
            "status": "open", "version": 1, "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z", "completed_at": null, "deleted_at": null,
            "priority": 0, "tags": [], "due_at": null, "due_date": null, "time_zone": null,
            "reminders": [], "recurrence": null, "series_id": null, "occurrence": null,
            "change_seq": 1_000_000_000}}
    });
    let reminder = uuid::Uuid::new_v4().to_string();
    let forged_reminder = json!({
        "specversion": "1.0", "id": reminder, "source": "evil",
        "type": "taskledger.reminder.due.v1", "subject": task.to_string(),
        "time": "2026-01-01T00:00:00Z", "datacontenttype": "application/json",
        "data": {"reminder_id": reminder, "task_id": task.to_string(), "title": "click here",
                 "due_at": null, "remind_at": "2026-01-01T00:00:00Z", "user_id": "alice",
                 "priority": "URGENT", "tags": [], "fired_at": "2026-01-01T00:00:00Z", "late_ms": 0}
    });
    let producer = app.kafka().producer().unwrap();
    for (topic, payload) in [
        (&app.settings.common.task_updates_topic, forged_update),
        (&app.settings.common.reminders_topic, forged_reminder),
    ] {
        let payload = payload.to_string();
        producer
            .send(
                rdkafka::producer::FutureRecord::to(topic)
                    .key("alice")
                    .payload(&payload),
                Duration::from_secs(5),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }

    // The next thing alice hears is her own real change.
    let (real, _) = app.create_task(&alice, "real").await;
    let change = next_change(&mut socket, "c", Duration::from_secs(10))
        .await
        .expect("the real change arrives");
    assert_eq!(change["taskId"], real.as_str(), "{change}");
    assert_eq!(socket.next(SECOND).await, None, "no forged notification");

    // The inbox refused the forged reminder into the dead-letter topic.
    let dead = read_topic(
        &app.kafka(),
        &infra::kafka::dead_letter_topic(&app.settings.common.reminders_topic),
        Duration::from_secs(15),
        |m| !m.is_empty(),
    )
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].header("dlq-projection"), Some("notifications"));
    let body = app
        .graphql(Some(&alice), "{ unreadNotificationCount }", json!({}))
        .await;
    assert_eq!(body["data"]["unreadNotificationCount"], 0);
}

/// The update the publisher would send for `task`'s change `cursor`.
fn task_update(task: &str, cursor: i64) -> Value {
    json!({
        "specversion": "1.0", "id": format!("{task}/1"), "source": "taskledger.test",
        "type": "taskledger.task.updated.v1", "subject": task,
        "time": "2026-01-01T00:00:00Z", "datacontenttype": "application/json",
        "data": {"cursor": cursor, "user_id": "alice", "version": 1, "task": {
            "id": task, "user_id": "alice", "title": "", "description": null,
            "status": "open", "version": 1, "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z", "completed_at": null, "deleted_at": null,
            "priority": 0, "tags": [], "due_at": null, "due_date": null, "time_zone": null,
            "reminders": [], "recurrence": null, "series_id": null, "occurrence": null,
            "change_seq": cursor}}
    })
}

/// Each key's partition of `task-updates` arrives on its own, so an API
/// process can hear a change before an earlier one. The cursor it hands out
/// with the later change stays short of the earlier one, so a client cut off
/// in between and resuming from that cursor still gets it.
#[tokio::test]
async fn a_client_resuming_from_its_cursor_gets_a_change_overtaken_on_the_topic() {
    let settings = fresh_settings().await;
    // This test publishes the task updates, in the order it chooses: the
    // publisher waits for its lock meanwhile.
    let mut publisher_lock = <sqlx::PgConnection as sqlx::Connection>::connect(
        settings.common.database_url.as_deref().unwrap(),
    )
    .await
    .unwrap();
    let lock = format!(
        "taskledger-task-updates:{}",
        settings.common.task_updates_topic
    );
    assert!(infra::single_active::try_lock(&mut publisher_lock, &lock)
        .await
        .unwrap());
    let app = TestApp::spawn_with(settings, Roles::ALL).await;
    let alice = app.token("alice");
    let mut socket = GqlSocket::connect(&app.address, &alice).await;
    socket.subscribe("1", CHANGES, json!({})).await;

    let mut changes = Vec::new();
    for title in ["earlier", "later"] {
        let (id, version) = app.create_task(&alice, title).await;
        app.task_at_version(&alice, &id, version).await;
        let seq: i64 = sqlx::query_scalar("SELECT change_seq FROM task_list WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        changes.push((id, seq));
    }
    let [(earlier, earlier_seq), (later, later_seq)] = <[_; 2]>::try_from(changes).unwrap();

    // The later change arrives alone (sent again until the live feed, which
    // starts reading with the app, hears it).
    let producer = app.kafka().producer().unwrap();
    let mut heard = None;
    for _ in 0..10 {
        producer
            .send(
                rdkafka::producer::FutureRecord::to(&app.settings.common.task_updates_topic)
                    .key("alice")
                    .payload(&task_update(&later, later_seq).to_string()),
                Duration::from_secs(5),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        heard = next_change(&mut socket, "1", 2 * SECOND).await;
        if heard.is_some() {
            break;
        }
    }
    let heard = heard.expect("the later change is heard live");
    assert_eq!(heard["taskId"], later.as_str(), "{heard}");
    let cursor: i64 = heard["cursor"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        cursor,
        earlier_seq - 1,
        "the cursor stays short of the change not heard yet ({earlier_seq})"
    );
    drop(socket);

    // Cut off there, the client resumes from its cursor: both come.
    let mut socket = GqlSocket::connect(&app.address, &alice).await;
    socket
        .subscribe("2", CHANGES, json!({"since": cursor.to_string()}))
        .await;
    let mut resumed = Vec::new();
    for _ in 0..2 {
        let change = next_change(&mut socket, "2", 5 * SECOND)
            .await
            .expect("the backlog from the cursor");
        resumed.push(change["taskId"].as_str().unwrap().to_owned());
    }
    assert_eq!(resumed, [earlier, later]);
    drop(publisher_lock);
}

/// A process whose Postgres channel of list changes went may have missed an
/// invitation: its notification feeds end (`complete`), so a client reads
/// its inbox and subscribes again, and the new feed hears what comes next.
#[tokio::test]
async fn a_lost_channel_ends_the_notification_feed_and_the_next_one_hears_on() {
    let app = TestApp::spawn().await;
    let (ann, bob) = (app.token("ann"), app.token("bob"));
    let feed = "subscription { notificationReceived { id kind } }";
    let mut socket = GqlSocket::connect(&app.address, &bob).await;
    socket.subscribe("n", feed, json!({})).await;
    end_listeners(&app.pool, query_api::live::LISTS_CHANNEL).await;
    let mut completed = false;
    while let Some(frame) = socket.next(Duration::from_secs(10)).await {
        match frame {
            Frame::Json(message) if message["id"] == "n" && message["type"] == "complete" => {
                completed = true;
                break;
            }
            Frame::Json(_) => continue,
            Frame::Closed(code, reason) => panic!("closed with {code}: {reason}"),
        }
    }
    assert!(completed, "the feed went on as if nothing was missed");
    // Subscribed again once the channel is heard again (a feed opened
    // before that ends too, as it may have missed what passed meanwhile):
    // the next invitation arrives.
    let listening = eventually(Duration::from_secs(10), || async {
        let listening: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                             WHERE datname = current_database() AND query LIKE 'LISTEN %'
                               AND query LIKE '%' || $1 || '%')",
        )
        .bind(query_api::live::LISTS_CHANNEL)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        listening.then_some(())
    })
    .await;
    assert!(listening.is_some(), "the channel is not heard again");
    // The feeds opened meanwhile end as it listens again, at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    socket.subscribe("n", feed, json!({})).await;
    let list = app.new_list(&ann, "Errands").await;
    app.invite(&ann, &list, "bob", "EDITOR").await;
    let heard = socket
        .next_payload("n", Duration::from_secs(10))
        .await
        .expect("the invitation on the new feed");
    assert_eq!(heard["data"]["notificationReceived"]["kind"], "INVITATION");
}
