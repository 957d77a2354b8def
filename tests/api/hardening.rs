//! The API tried as an attacker and a careless client would: documents built
//! to cost more than their size, aliases that multiply reads, tokens and
//! headers at the edges of the rules, another user's ids, bytes Postgres
//! cannot hold, edited cursors, oversized bodies, directives that mean nothing.
//! Each answers a clear error in milliseconds and the service keeps serving.

use std::time::{Duration, Instant};

use api_core::auth::JwtSecret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use taskledger::Roles;

use crate::helpers::{assert_no_errors, error_code, fresh_settings, TestApp};

/// A chain of fragments, each spreading the next one twice: 2^links fields.
fn doubling_chain(links: usize) -> String {
    let mut query = String::from("query { ...F0 }\n");
    for n in 0..links {
        query.push_str(&format!(
            "fragment F{n} on Query {{ ...F{next} ...F{next} }}\n",
            next = n + 1
        ));
    }
    query.push_str(&format!(
        "fragment F{links} on Query {{ taskStats {{ open }} }}\n"
    ));
    query
}

#[tokio::test]
async fn a_fragment_bomb_without_a_token_is_refused_at_once_and_health_holds() {
    let app = TestApp::spawn_roles(Roles::API).await;
    let started = Instant::now();
    let (status, body) = app
        .post_raw(None, json!({ "query": doubling_chain(30) }).to_string())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "query");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    let health = reqwest::get(format!("{}/healthz", app.address))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn aliases_of_a_cheap_looking_field_count_as_reads() {
    let app = TestApp::spawn_roles(Roles::API).await;
    let alice = app.token("alice");
    // A few hundred aliases fit well under the document's size limit.
    let aliases: String = (0..500)
        .map(|n| format!("s{n}:taskStats{{open}} "))
        .collect();
    let body = app
        .graphql(Some(&alice), &format!("{{ {aliases} }}"), json!({}))
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("reads"),
        "{body}"
    );
    // Ten reads are fine.
    let aliases: String = (0..10)
        .map(|n| format!("s{n}: taskStats {{ open }} "))
        .collect();
    assert_no_errors(
        &app.graphql(Some(&alice), &format!("{{ {aliases} }}"), json!({}))
            .await,
    );
}

#[tokio::test]
async fn waiting_on_another_users_task_looks_like_waiting_on_a_missing_one() {
    let mut settings = fresh_settings().await;
    settings.api.read_your_writes_wait_ms = 400;
    let app = TestApp::spawn_with(settings, Roles::ALL).await;
    let alice = app.token("alice");
    let bob = app.token("bob");
    let (id, version) = app.create_task(&alice, "alice's").await;
    app.task_at_version(&alice, &id, version).await;
    let missing = uuid::Uuid::now_v7().to_string();

    let query = "query($id: ID!) { task(id: $id, minVersion: 1) { version }
                   tasks(waitForTask: $id, waitForVersion: 1) { stale } }";
    let mut answers = Vec::new();
    for target in [&id, &missing] {
        let started = Instant::now();
        let body = app
            .graphql(Some(&bob), query, json!({ "id": target }))
            .await;
        answers.push((body, started.elapsed()));
    }
    let (foreign, foreign_time) = &answers[0];
    let (absent, absent_time) = &answers[1];
    assert_eq!(
        foreign, absent,
        "the same answer for another's task and a missing one"
    );
    assert_eq!(foreign["data"]["task"], Value::Null);
    assert_eq!(foreign["data"]["tasks"]["stale"], true);
    assert!(
        *foreign_time >= Duration::from_millis(350) && *absent_time >= Duration::from_millis(350),
        "both wait out the bound: {foreign_time:?} {absent_time:?}"
    );
}

fn sign(claims: Value) -> String {
    let key = EncodingKey::from_secret(JwtSecret::LOCAL_DEVELOPMENT.as_bytes());
    encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
}

#[tokio::test]
async fn tokens_and_authorization_headers_at_the_edges() {
    let app = TestApp::spawn_roles(Roles::API).await;
    let query = json!({ "query": "{ taskStats { open } }" }).to_string();
    let url = format!("{}/graphql", app.address);
    let client = reqwest::Client::new();
    let send = |headers: Vec<(&'static str, String)>| {
        let mut request = client
            .post(&url)
            .header("content-type", "application/json")
            .body(query.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let now = chrono::Utc::now().timestamp();

    // `sub` and `exp` alone are a valid token, as the README says.
    let minimal = sign(json!({ "sub": "alice", "exp": now + 600 }));
    let (status, body) = send(vec![("authorization", format!("Bearer {minimal}"))]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_no_errors(&body);
    // The scheme is case-insensitive.
    let (status, _) = send(vec![("authorization", format!("bEaReR {minimal}"))]).await;
    assert_eq!(status, StatusCode::OK);

    let refused = [
        // Not valid before a minute from now.
        vec![(
            "authorization",
            format!(
                "Bearer {}",
                sign(json!({ "sub": "alice", "exp": now + 600, "nbf": now + 60 }))
            ),
        )],
        // Two headers: which one wins is not for the server to guess.
        vec![
            ("authorization", format!("Bearer {minimal}")),
            ("authorization", format!("Bearer {}", app.token("bob"))),
        ],
        vec![("authorization", format!("Basic {minimal}"))],
        // No token at all for an operation that needs a user.
        vec![],
    ];
    for headers in refused {
        let (status, body) = send(headers.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}: {body}");
        assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{body}");
    }

    // A user id that would render as another's ("alice" behind a
    // right-to-left override, or with a zero-width space) is no user id.
    for sub in ["\u{202E}ecila", "ali\u{200B}ce", "\u{2066}alice\u{2069}"] {
        let token = sign(json!({ "sub": sub, "exp": now + 600 }));
        let (status, body) = send(vec![("authorization", format!("Bearer {token}"))]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{sub:?}: {body}");
        assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{body}");
        assert_eq!(
            body["errors"][0]["message"], "the bearer token's subject is not a valid user id",
            "{body}"
        );
    }
}

#[tokio::test]
async fn bytes_postgres_cannot_hold_and_edited_cursors_are_validation_errors() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let body = app
        .graphql(
            Some(&alice),
            "query($q: String!) { tasks(search: {query: $q}) { totalCount } }",
            json!({ "q": "milk\u{0}" }),
        )
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "search.query");

    // A cursor as the API issues it for TITLE_ASC, with its key edited to a
    // number and to text holding NUL, keeping its fingerprint.
    let page = "query($after: String) { tasks(orderBy: TITLE_ASC, first: 1, after: $after) { nodes { id } pageInfo { endCursor } } }";
    app.create_task(&alice, "one").await;
    app.create_task(&alice, "two").await;
    let mut cursor = None;
    for _ in 0..50 {
        let body = app.graphql(Some(&alice), page, json!({})).await;
        cursor = body["data"]["tasks"]["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned);
        if cursor.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cursor = cursor.expect("a page with a cursor");
    let mut data: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&cursor).unwrap()).unwrap();
    for edited in [json!([12345]), json!(["a\u{0}b"]), json!([1.5]), json!([])] {
        data["k"] = edited;
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&data).unwrap());
        let body = app
            .graphql(Some(&alice), page, json!({ "after": forged }))
            .await;
        assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "after");
    }
}

#[tokio::test]
async fn oversized_bodies_and_meaningless_directives_are_refused_clearly() {
    let app = TestApp::spawn_roles(Roles::API).await;
    let alice = app.token("alice");
    let huge =
        json!({ "query": "{ taskStats { open } }", "variables": { "pad": "x".repeat(200_000) } });
    let (status, body) = app.post_raw(Some(&alice), huge.to_string()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");

    for query in [
        "{ taskStats @cached { open } }",
        "{ taskStats @include(if: \"yes\") { open } }",
    ] {
        let body = app.graphql(Some(&alice), query, json!({})).await;
        assert_eq!(error_code(&body), Some("VALIDATION"), "{query}: {body}");
    }
}

/// The introspection query graphql-js's `getIntrospectionQuery()` sends, which
/// GraphiQL, Apollo and code generators use.
const STANDARD_INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}
"#;

#[tokio::test]
async fn the_standard_introspection_query_works_and_anonymous_use_is_a_setting() {
    let app = TestApp::spawn_roles(Roles::API).await;
    let body = app.graphql(None, STANDARD_INTROSPECTION, json!({})).await;
    assert_no_errors(&body);
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "TaskFilter"));

    let mut settings = fresh_settings().await;
    settings.api.anonymous_introspection = Some(false);
    let closed = TestApp::spawn_with(settings, Roles::API).await;
    let (status, body) = closed
        .post_raw(None, json!({ "query": STANDARD_INTROSPECTION }).to_string())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let token = closed.token("alice");
    assert_no_errors(
        &closed
            .graphql(Some(&token), STANDARD_INTROSPECTION, json!({}))
            .await,
    );
}

#[tokio::test]
async fn one_user_over_the_rate_is_told_to_wait_and_others_are_served() {
    let mut settings = fresh_settings().await;
    settings.api.user_rate_per_second = std::num::NonZeroU32::new(5).unwrap();
    settings.api.user_rate_burst = std::num::NonZeroU32::new(20).unwrap();
    let app = TestApp::spawn_with(settings, Roles::API).await;
    let alice = app.token("alice");
    let bob = app.token("bob");
    let query = json!({ "query": "{ taskStats { open } }" }).to_string();
    let mut limited = 0;
    let mut served = 0;
    for _ in 0..200 {
        let (status, body) = app.post_raw(Some(&alice), query.clone()).await;
        match status {
            StatusCode::OK => served += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(error_code(&body), Some("RATE_LIMITED"), "{body}");
                assert!(body["errors"][0]["extensions"]["retryAfterSeconds"].as_u64() >= Some(1));
                limited += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!((20..200).contains(&served), "served {served}");
    assert!(limited > 0);
    // Bob's requests are his own.
    let (status, body) = app.post_raw(Some(&bob), query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn silent_connections_are_closed_and_open_ones_are_bounded() {
    use tokio::io::AsyncReadExt;

    let mut settings = fresh_settings().await;
    settings.api.max_connections = 2;
    settings.api.connection_idle_secs = 1;
    let app = TestApp::spawn_with(settings, Roles::API).await;
    let address = app.address.trim_start_matches("http://").to_owned();

    // Two clients connect and say nothing (or start a request and stall).
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut trickling = tokio::net::TcpStream::connect(&address).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut trickling, b"POST /graphql HTTP/1.1\r\n")
        .await
        .unwrap();

    // A third is not served while they hold both connections...
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    assert!(client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .is_err());

    // ...and the server closes both within about the idle time.
    let mut buffer = [0u8; 256];
    for stream in [&mut silent, &mut trickling] {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("the server closes a silent connection");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(4));
    let health = reqwest::get(format!("{}/healthz", app.address))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_request_head_trickled_a_byte_at_a_time_is_cut_off_at_the_header_time() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut settings = fresh_settings().await;
    settings.api.connection_idle_secs = 30;
    settings.api.header_read_secs = 2;
    let app = TestApp::spawn_with(settings, Roles::API).await;
    let address = app.address.trim_start_matches("http://").to_owned();

    // Never silent for the idle time: a byte of the head every 300 ms.
    let mut trickling = Vec::new();
    for _ in 0..5 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(b"POST /graphql HTTP/1.1\r\n")
            .await
            .unwrap();
        trickling.push(stream);
    }
    let started = Instant::now();
    let mut open = trickling.len();
    let mut buffer = [0u8; 512];
    while open > 0 && started.elapsed() < Duration::from_secs(8) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        open = 0;
        for stream in &mut trickling {
            if stream.write_all(b"X").await.is_err() {
                continue;
            }
            match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buffer)).await {
                Err(_) => open += 1,
                Ok(Ok(0) | Err(_)) => {}
                // hyper answers 408 before closing.
                Ok(Ok(_)) => {}
            }
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(open, 0, "connections still open after {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(1500),
        "closed after {elapsed:?}, before the header time"
    );

    // A request that arrives whole is served as always.
    let health = reqwest::get(format!("{}/healthz", app.address))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
