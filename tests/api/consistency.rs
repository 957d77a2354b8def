//! Session consistency at every door: a caller's next read shows what they
//! just wrote without passing anything (GraphQL, MCP through the official
//! SDK's client, the calendar feed, a WebSocket `taskChanges` resync), across
//! two API processes with the token, and bounded with `caughtUp: false` when
//! the projection is stopped (at once when the relay is far behind). Other
//! callers pay nothing; bad tokens are refused by name; the counts both sides
//! keep agree after a rebuild.

use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{json, Value};
use taskledger::{Roles, Settings};

use crate::helpers::{
    assert_no_errors, error_code, free_address, fresh_settings, graphql_at, start_api, text_at,
    TestApp,
};
use crate::ws_client::GqlSocket;

const CREATE: &str =
    "mutation($title: String!) { createTask(input: {title: $title}) { taskId version } }";
const LIST: &str = "{ tasks(first: 100) { totalCount nodes { id title } } }";
const HEADER: &str = api_core::consistency::HEADER;

fn titles(body: &Value) -> Vec<String> {
    body["data"]["tasks"]["nodes"]
        .as_array()
        .expect("a page of tasks")
        .iter()
        .map(|task| task["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn graphql_reads_show_the_callers_own_writes_and_cost_others_nothing() {
    let app = patient_app().await;
    let ada = app.token("ada");
    let client = &app.client;
    for round in 0..15 {
        let mut written = Vec::new();
        for n in 0..3 {
            let title = format!("round {round} task {n}");
            let (_, body, token) = graphql_at(
                client,
                &app.address,
                &ada,
                CREATE,
                json!({ "title": title }),
                None,
            )
            .await;
            assert_no_errors(&body);
            let token = token.expect("a write answers its token in a header");
            assert!(token.starts_with("c1."), "{token}");
            assert_eq!(body["extensions"]["consistency"]["token"], json!(token));
            written.push(title);
        }
        let (_, page, answered) =
            graphql_at(client, &app.address, &ada, LIST, json!({}), None).await;
        assert_no_errors(&page);
        assert_eq!(answered, None, "a read answers no token");
        let shown = titles(&page);
        for title in &written {
            assert!(
                shown.contains(title),
                "round {round}: {title} missing from {shown:?}"
            );
        }
        assert_eq!(page["data"]["tasks"]["totalCount"], json!(3 * (round + 1)));
        assert_eq!(page["extensions"]["consistency"]["caughtUp"], json!(true));
    }

    // Once seen applied, the next reads check nothing (a read begun in the
    // millisecond of the last write checks once more); nor does anyone else's.
    let (_, once_more, _) = graphql_at(client, &app.address, &ada, LIST, json!({}), None).await;
    let (_, again, _) = graphql_at(client, &app.address, &ada, LIST, json!({}), None).await;
    assert!(
        again["extensions"]["consistency"].is_null(),
        "{once_more} then {again}"
    );
    let bob = app.token("bob");
    let (_, theirs, _) = graphql_at(client, &app.address, &bob, LIST, json!({}), None).await;
    assert_no_errors(&theirs);
    assert!(theirs["extensions"]["consistency"].is_null(), "{theirs}");
    assert_eq!(theirs["data"]["tasks"]["totalCount"], json!(0));
    // The event store's and the task list's counts agree once all is applied.
    let counts: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT w.user_id, w.events, s.events
           FROM (SELECT user_id, user_events_stored(user_id, 1000000000) AS events
                   FROM (SELECT user_id FROM user_writes
                         UNION SELECT metadata ->> 'user_id' FROM events WHERE aggregate_type = 'Task') u) w
           JOIN task_stats s USING (user_id)",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(counts, vec![("ada".to_owned(), 45, 45)]);
    // Another user carrying ada's token checks only their own writes: none
    // of ada's tasks, and nothing of hers to wait for.
    let (_, ada_token, _) = graphql_at(
        client,
        &app.address,
        &ada,
        CREATE,
        json!({ "title": "hers" }),
        None,
    )
    .await;
    let carried = ada_token["extensions"]["consistency"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, borrowed, _) =
        graphql_at(client, &app.address, &bob, LIST, json!({}), Some(&carried)).await;
    assert_eq!(
        borrowed["data"]["tasks"]["totalCount"],
        json!(0),
        "{borrowed}"
    );
    assert_eq!(
        borrowed["extensions"]["consistency"]["caughtUp"],
        json!(true),
        "{borrowed}"
    );
}

#[tokio::test]
async fn a_bad_token_is_refused_by_name_at_every_door_that_reads_it() {
    let app = TestApp::spawn_roles(Roles::API).await;
    let ada = app.token("ada");
    for bad in ["nonsense", "c1.", "c1.12x", "c1.1234567890123456"] {
        let (status, body, _) =
            graphql_at(&app.client, &app.address, &ada, LIST, json!({}), Some(bad)).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(error_code(&body), Some("VALIDATION"));
        assert_eq!(
            body["errors"][0]["extensions"]["field"],
            json!("Taskledger-Consistency")
        );
    }
    // A token written long ago asks for nothing.
    let (status, body, _) = graphql_at(
        &app.client,
        &app.address,
        &ada,
        LIST,
        json!({}),
        Some("c1.1000"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["extensions"]["consistency"].is_null(), "{body}");

    let mcp = app
        .client
        .post(format!("{}/mcp", app.address))
        .bearer_auth(&ada)
        .header(HEADER, "c9.1")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), 400);
    let body: Value = mcp.json().await.unwrap();
    assert_eq!(error_code(&body), Some("VALIDATION"));

    let mut socket = GqlSocket::open(&app.address, "graphql-transport-ws").await;
    socket
        .send(json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {ada}"), "consistencyToken": 7}}))
        .await;
    match socket.next(Duration::from_secs(5)).await {
        Some(crate::ws_client::Frame::Closed(code, reason)) => {
            assert_eq!(code, 4400);
            assert!(reason.contains("consistencyToken"), "{reason}");
        }
        other => panic!("the socket should close: {other:?}"),
    }
}

/// A second API process on the app's database: the process and its URL.
/// An app whose reads wait up to 10 s for the caller's writes. These tests
/// prove that a read shows them, not how soon: on two cores shared with a
/// Chromium and other tests' brokers, the relay and the projection take more
/// than the 2 s default now and then. The bound is tested with the projection
/// stopped below; the wait itself is measured by `./dev bench own-writes`.
async fn patient_app() -> TestApp {
    let mut settings = fresh_settings().await;
    settings.api.read_your_writes_wait_ms = 10_000;
    TestApp::spawn_with(settings, Roles::ALL).await
}

async fn second_api(settings: &Settings) -> (tokio::process::Child, String) {
    let address = free_address();
    (
        start_api(settings, &address).await,
        format!("http://{address}"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_carries_a_callers_writes_to_another_api_process() {
    let app = patient_app().await;
    let (_api, other) = second_api(&app.settings).await;
    let ada = app.token("ada");
    let processes = [app.address.clone(), other];
    let mut written = Vec::new();
    for round in 0..20 {
        let (writer, reader) = (&processes[round % 2], &processes[(round + 1) % 2]);
        let title = format!("written on one, read on the other {round}");
        let (_, body, token) = graphql_at(
            &app.client,
            writer,
            &ada,
            CREATE,
            json!({ "title": title }),
            None,
        )
        .await;
        assert_no_errors(&body);
        written.push(title);
        let (_, page, _) =
            graphql_at(&app.client, reader, &ada, LIST, json!({}), token.as_deref()).await;
        assert_no_errors(&page);
        assert_eq!(
            page["extensions"]["consistency"]["caughtUp"],
            json!(true),
            "{page}"
        );
        let shown = titles(&page);
        for title in &written {
            assert!(shown.contains(title), "round {round}: {title} missing");
        }
    }
}

type Client = RunningService<RoleClient, ()>;

async fn mcp_client(address: &str, token: &str) -> Client {
    let config = StreamableHttpClientTransportConfig::with_uri(format!("{address}/mcp"))
        .auth_header(token.to_owned());
    ().serve_with_lifecycle(
        StreamableHttpClientTransport::from_config(config),
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    )
    .await
    .expect("the MCP client connects")
}

async fn tool(client: &Client, name: &str, arguments: Value) -> Value {
    let result = client
        .call_tool(
            CallToolRequestParams::new(name.to_owned())
                .with_arguments(arguments.as_object().cloned().unwrap_or_default()),
        )
        .await
        .unwrap_or_else(|error| panic!("{name} answers: {error}"));
    let value = result
        .structured_content
        .clone()
        .expect("structured content");
    assert_ne!(result.is_error, Some(true), "{name} failed: {value}");
    value
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_finds_what_it_just_added_on_either_api_process() {
    let app = patient_app().await;
    let (_api, other) = second_api(&app.settings).await;
    let ada = app.token("ada");
    let here = mcp_client(&app.address, &ada).await;
    let there = mcp_client(&other, &ada).await;
    for round in 0..10 {
        let (adder, finder) = if round % 2 == 0 {
            (&here, &there)
        } else {
            (&there, &here)
        };
        let added = tool(
            adder,
            "add_tasks",
            json!({ "tasks": [{ "title": format!("agent task {round}") }, { "text": format!("call mum tomorrow {round} #family") }] }),
        )
        .await;
        assert!(
            added["consistencyToken"]
                .as_str()
                .is_some_and(|t| t.starts_with("c1.")),
            "{added}"
        );
        let found = tool(finder, "find_tasks", json!({})).await;
        assert_eq!(
            found["tasks"]["totalCount"],
            json!(2 * (round + 1)),
            "{found}"
        );
        let id = added["tasks"][0]["taskId"].as_str().unwrap().to_owned();
        tool(adder, "complete_task", json!({ "id": id })).await;
        let overview = tool(finder, "task_overview", json!({})).await;
        assert_eq!(
            overview["taskStats"]["completed"],
            json!(round + 1),
            "{overview}"
        );
    }
}

#[tokio::test]
async fn the_calendar_feed_and_a_websocket_resync_show_the_callers_own_writes() {
    let app = patient_app().await;
    let ada = app.token("ada");
    let feed = app
        .graphql(Some(&ada), "{ calendarFeed { url } }", json!({}))
        .await;
    assert_no_errors(&feed);
    let url = feed["data"]["calendarFeed"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    for round in 0..5 {
        let title = format!("Dentist {round}");
        let body = app
            .graphql(
                Some(&ada),
                "mutation($t: String!) { createTask(input: {title: $t, dueAt: \"2030-01-01T09:00:00Z\"}) { taskId } }",
                json!({ "t": title }),
            )
            .await;
        assert_no_errors(&body);
        let calendar = text_at(&app.client, &url).await;
        assert!(
            calendar.contains(&title),
            "round {round}: {title} not in the feed"
        );
    }

    let (id, _) = app.create_task(&ada, "seen on resync").await;
    let mut socket = GqlSocket::connect(&app.address, &ada).await;
    socket
        .subscribe(
            "changes",
            "subscription { taskChanges(since: \"0\") { kind taskId } }",
            json!({}),
        )
        .await;
    let mut seen = Vec::new();
    while let Some(payload) = socket.next_payload("changes", Duration::from_secs(5)).await {
        let change = &payload["data"]["taskChanges"];
        seen.push(change["taskId"].as_str().unwrap_or_default().to_owned());
        if seen.len() == 6 {
            break;
        }
    }
    assert!(
        seen.contains(&id),
        "the resync's backlog holds the new task: {seen:?}"
    );
}

#[tokio::test]
async fn with_the_projection_stopped_a_read_waits_its_bound_and_says_so() {
    let mut settings = fresh_settings().await;
    settings.api.read_your_writes_wait_ms = 300;
    let app = TestApp::spawn_with(settings, Roles::API).await;
    let ada = app.token("ada");
    app.create_task(&ada, "never projected").await;
    let started = Instant::now();
    let (_, page, _) = graphql_at(&app.client, &app.address, &ada, LIST, json!({}), None).await;
    let waited = started.elapsed();
    assert_no_errors(&page);
    assert_eq!(
        page["extensions"]["consistency"]["caughtUp"],
        json!(false),
        "{page}"
    );
    assert!(
        page["extensions"]["consistency"]["waitedMs"]
            .as_u64()
            .unwrap()
            >= 250
    );
    assert!(waited < Duration::from_secs(3), "bounded: {waited:?}");
    assert_eq!(page["data"]["tasks"]["totalCount"], json!(0));
    // Another user's read does not wait for ada's writes.
    let started = Instant::now();
    let (_, theirs, _) = graphql_at(
        &app.client,
        &app.address,
        &app.token("bob"),
        LIST,
        json!({}),
        None,
    )
    .await;
    assert!(theirs["extensions"]["consistency"].is_null());
    assert!(started.elapsed() < Duration::from_millis(250));
}

#[tokio::test]
async fn with_the_relay_far_behind_a_read_says_so_without_waiting() {
    let mut settings = fresh_settings().await;
    settings.api.read_your_writes_wait_ms = 5_000;
    let app = TestApp::spawn_with(settings, Roles::API).await;
    let ada = app.token("ada");
    app.create_task(&ada, "behind a backlog").await;
    // More events than a check looks through wait for the relay (none runs).
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'Task', gen_random_uuid()::text, 1, 'TaskCreated', '1.0', '{}', '{\"user_id\": \"bob\"}'
           FROM generate_series(1, 2001)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let started = Instant::now();
    let (_, page, _) = graphql_at(&app.client, &app.address, &ada, LIST, json!({}), None).await;
    assert_no_errors(&page);
    assert_eq!(
        page["extensions"]["consistency"]["caughtUp"],
        json!(false),
        "{page}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "answered at once, not after the 5 s wait: {:?}",
        started.elapsed()
    );
}
