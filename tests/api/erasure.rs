//! Erasure by crypto-shredding, proven by a canary (docs/adr/0014): a unique
//! string goes into a user's titles, descriptions, tags and quick-add text,
//! flows everywhere (the store, every topic, a fired reminder and its
//! notification, a dead letter, a next occurrence), and after the user is
//! erased it is found nowhere: not in a dump of the whole database, not in
//! any message of any topic, not after a rebuild, and not in a database
//! restored from a dump taken before the erasure (the ledger applies it
//! again as the API starts). Another user's data stays whole throughout.

use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use infra::kafka::{dead_letter_topic, KafkaSettings};
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use serde_json::{json, Value};
use taskledger::Roles;
use uuid::Uuid;

use crate::helpers::{
    assert_no_errors, end_listeners, error_code, eventually, read_topic, Received, TestApp,
};
use crate::ws_client::GqlSocket;

const ERASE: &str = "mutation($confirm: String!) { eraseMyData(confirm: $confirm) { erasureId } }";
const ERASURE: &str = "query($id: ID!) { erasure(id: $id) { id status requestedAt completedAt } }";

/// The whole database as `pg_dump` writes it (plain SQL, data of every table).
async fn dump(database_url: &str) -> String {
    let output = tokio::process::Command::new("pg_dump")
        .arg("--dbname")
        .arg(database_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("pg_dump runs");
    assert!(
        output.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every message a topic holds now (none if the broker does not know it).
async fn messages_of(kafka: &KafkaSettings, topic: &str) -> Vec<Received> {
    if !matches!(kafka.partition_count(topic).await, Ok(Some(_))) {
        return Vec::new();
    }
    let probe = kafka
        .consumer(&format!("probe-{}", Uuid::new_v4()))
        .unwrap();
    let name = topic.to_owned();
    let total: i64 = tokio::task::spawn_blocking(move || {
        infra::kafka::topic_watermarks(probe.client(), &name, Duration::from_secs(5))
    })
    .await
    .unwrap()
    .unwrap()
    .unwrap_or_default()
    .iter()
    .map(|(low, high)| high - low)
    .sum();
    let read = read_topic(kafka, topic, Duration::from_secs(30), |m| {
        m.len() as i64 >= total
    })
    .await;
    assert_eq!(read.len() as i64, total, "all of {topic} read");
    read
}

/// Every topic the deployment writes, with their dead letters.
fn topics(app: &TestApp) -> Vec<String> {
    let common = &app.settings.common;
    let mut topics = vec![
        common.task_events_topic.clone(),
        common.reminders_topic.clone(),
        common.task_updates_topic.clone(),
    ];
    topics.extend(topics.clone().iter().map(|t| dead_letter_topic(t)));
    topics
}

/// The topics' messages that hold `canary`, as `topic: message`.
async fn on_topics(app: &TestApp, canary: &str) -> (usize, Vec<String>) {
    let (mut read, mut found) = (0, Vec::new());
    for topic in topics(app) {
        for message in messages_of(&app.kafka(), &topic).await {
            read += 1;
            let text = String::from_utf8_lossy(&message.value);
            if text.contains(canary) || message.key.as_deref().is_some_and(|k| k.contains(canary)) {
                found.push(format!("{topic}: {text}"));
            }
        }
    }
    (read, found)
}

/// The lines of `text` that hold `canary`.
fn lines_with<'a>(text: &'a str, canary: &str) -> Vec<&'a str> {
    text.lines().filter(|line| line.contains(canary)).collect()
}

async fn run(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let body = app.graphql(Some(token), query, variables).await;
    assert_no_errors(&body);
    body["data"].clone()
}

async fn rebuild(app: &TestApp, projection: &str) {
    let (done, _, stderr) = crate::rebuild::rebuild_of(app, projection).await;
    assert!(done, "rebuild {projection}: {stderr}");
}

/// A database restored from `dump` (plain SQL) under a new name; its URL.
async fn restore(app: &TestApp, dump: &str) -> String {
    let url = app.settings.common.database_url.clone().unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    let name = format!(
        "taskledger_test_{}",
        &Uuid::new_v4().simple().to_string()[..16]
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&app.pool)
        .await
        .unwrap();
    let restored = format!("{base}/{name}");
    let mut psql = tokio::process::Command::new("psql")
        .args(["--quiet", "--set", "ON_ERROR_STOP=1", "--dbname", &restored])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql runs");
    use tokio::io::AsyncWriteExt;
    let mut input = psql.stdin.take().unwrap();
    input.write_all(dump.as_bytes()).await.unwrap();
    drop(input);
    let output = psql.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    restored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_users_canary_is_found_nowhere_a_dump_a_topic_a_rebuild_or_a_restore_can_reach() {
    let app = TestApp::spawn().await;
    let ada = app.token("ada");
    let bob = app.token("bob");
    let database_url = app.settings.common.database_url.clone().unwrap();
    let canary = format!("canary{}", &Uuid::new_v4().simple().to_string()[..12]);

    // What ada types, everywhere she can type it.
    let soon = (Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let created = run(
        &app,
        &ada,
        "mutation($input: CreateTaskInput!) { createTask(input: $input) { taskId } }",
        json!({ "input": {
            "title": format!("call {canary} about the roof"),
            "description": format!("the {canary} number is in the drawer"),
            "tags": [canary.clone()],
            "reminders": [{ "at": soon }],
        }}),
    )
    .await;
    let reminded = created["createTask"]["taskId"].as_str().unwrap().to_owned();
    let daily = run(
        &app,
        &ada,
        "mutation($input: CreateTaskInput!) { createTask(input: $input) { taskId } }",
        json!({ "input": {
            "title": format!("water the {canary} plant"),
            "dueAt": (Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
            "recurrence": "FREQ=DAILY",
        }}),
    )
    .await;
    let daily = daily["createTask"]["taskId"].as_str().unwrap().to_owned();
    run(
        &app,
        &ada,
        "mutation($id: ID!) { completeTask(id: $id) { version } }",
        json!({ "id": daily }),
    )
    .await;
    run(
        &app,
        &ada,
        "mutation($text: String!) { quickAdd(text: $text) { taskId } }",
        json!({ "text": format!("ask {canary} about the party tomorrow #{canary}") }),
    )
    .await;
    run(
        &app,
        &ada,
        "mutation($id: ID!, $title: String!) { updateTask(input: {id: $id, title: $title}) { version } }",
        json!({ "id": reminded, "title": format!("call {canary} about the roof today") }),
    )
    .await;
    run(&app, &ada, "{ calendarFeed { url } }", json!({})).await;
    // A long history: its snapshots (taken every 25 events) hold the
    // canary as well.
    let (diary, _) = app.create_task(&ada, &format!("the {canary} diary")).await;
    for day in 1..100 {
        run(
            &app,
            &ada,
            "mutation($id: ID!, $title: String!) { updateTask(input: {id: $id, title: $title}) { version } }",
            json!({ "id": diary, "title": format!("the {canary} diary, day {day}") }),
        )
        .await;
    }
    let snapshots: i64 =
        sqlx::query_scalar("SELECT count(*) FROM task_snapshots WHERE aggregate_id = $1")
            .bind(&diary)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(snapshots, 1, "the diary has a snapshot");
    let (bobs, bobs_version) = app.create_task(&bob, "bob keeps his own").await;

    // The reminder fires and lands in the inbox; the next occurrence exists.
    let inbox = eventually(Duration::from_secs(20), || async {
        let data = run(
            &app,
            &ada,
            "{ notifications(first: 10) { edges { node { title } } } tasks(first: 10) { totalCount } }",
            json!({}),
        )
        .await;
        let fired = data["notifications"]["edges"].as_array().unwrap().len();
        (fired == 1 && data["tasks"]["totalCount"] == json!(5)).then_some(data)
    })
    .await
    .expect("the reminder fires and the next occurrence is created");
    assert!(inbox.to_string().contains(&canary), "{inbox}");

    // A dead letter of one of ada's events: her creation, sent again with a
    // sequence no event has.
    let events = messages_of(&app.kafka(), &app.settings.common.task_events_topic).await;
    let mut forged: Value = events[0].json();
    forged["data"]["sequence"] = json!(0);
    app.kafka()
        .producer()
        .unwrap()
        .send(
            FutureRecord::to(&app.settings.common.task_events_topic)
                .key(events[0].key.as_deref().unwrap())
                .payload(&forged.to_string()),
            Duration::from_secs(5),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    let dead_letters = dead_letter_topic(&app.settings.common.task_events_topic);
    read_topic(&app.kafka(), &dead_letters, Duration::from_secs(20), |m| {
        !m.is_empty()
    })
    .await;

    // Before: the canary is in the read models (so the checks below can
    // fail), never on a topic (sealed there from the start).
    // Bob's task is in the read model before the dump: the restored
    // database below has no projector to add it later.
    app.task_at_version(&bob, &bobs, bobs_version).await;
    let before = dump(&database_url).await;
    assert!(
        lines_with(&before, &canary).len() >= 4,
        "the read models hold the canary before"
    );
    assert!(before.contains("bob keeps his own"));
    let (read, found) = on_topics(&app, &canary).await;
    assert!(read >= 8, "{read} messages read");
    assert!(found.is_empty(), "sealed on every topic: {found:#?}");

    // A clear refusal, then the erasure.
    let refused = app
        .graphql(Some(&ada), ERASE, json!({ "confirm": "erase" }))
        .await;
    assert_eq!(error_code(&refused), Some("VALIDATION"), "{refused}");
    let asked = Instant::now();
    let erased = run(&app, &ada, ERASE, json!({ "confirm": "ERASE MY DATA" })).await;
    let id = erased["eraseMyData"]["erasureId"]
        .as_str()
        .unwrap()
        .to_owned();
    let strangers = app.graphql(Some(&bob), ERASURE, json!({ "id": id })).await;
    assert_eq!(error_code(&strangers), Some("NOT_FOUND"), "{strangers}");
    let completed = eventually(Duration::from_secs(60), || async {
        let data = run(&app, &ada, ERASURE, json!({ "id": id })).await;
        (data["erasure"]["status"] == "COMPLETED").then_some(data)
    })
    .await
    .expect("the erasure completes within 60 s");
    let took = asked.elapsed();
    assert!(completed["erasure"]["completedAt"].is_string());
    println!("erasure completed {took:?} after it was asked for");

    // Nothing readable is left: the whole database (a logical dump reads
    // live rows only, so it needs no vacuum), every topic and dead letter.
    let after = dump(&database_url).await;
    assert_eq!(lines_with(&after, &canary), Vec::<&str>::new());
    assert!(after.contains("bob keeps his own"));
    let (read_after, found) = on_topics(&app, &canary).await;
    assert!(read_after > read, "the erasure is on task-events too");
    assert!(found.is_empty(), "{found:#?}");

    // What ada reads now: nothing of hers; her history reads as erased.
    let hers = run(
        &app,
        &ada,
        &format!(
            "{{ tasks(first: 10) {{ totalCount }} search: tasks(first: 10, search: {{query: \"{canary}\"}}) {{ totalCount }}
               notifications(first: 10) {{ edges {{ node {{ id }} }} }} taskStats {{ open completed }}
               history: taskHistory(id: \"{reminded}\") {{ edges {{ node {{ eventType data }} }} }} }}"
        ),
        json!({}),
    )
    .await;
    assert_eq!(hers["tasks"]["totalCount"], json!(0), "{hers}");
    assert_eq!(hers["search"]["totalCount"], json!(0), "{hers}");
    assert_eq!(hers["notifications"]["edges"], json!([]), "{hers}");
    assert_eq!(hers["taskStats"]["open"], json!(0), "{hers}");
    let created = &hers["history"]["edges"][0]["node"];
    assert_eq!(created["eventType"], "TaskCreated", "{hers}");
    assert_eq!(created["data"]["title"], json!(""), "{hers}");
    assert_eq!(created["data"]["tags"], json!([]), "{hers}");
    assert!(!hers.to_string().contains(&canary));
    let his = app.task(&bob, &bobs).await;
    assert_eq!(his["title"], "bob keeps his own");

    // A rebuild afterwards derives nothing of hers again.
    rebuild(&app, "task-list").await;
    rebuild(&app, "reminders").await;
    let rebuilt = dump(&database_url).await;
    assert_eq!(lines_with(&rebuilt, &canary), Vec::<&str>::new());
    assert!(rebuilt.contains("bob keeps his own"));

    // A database restored from before the erasure holds her key again, until
    // an API starts on it and applies the ledger.
    let restored = restore(&app, &before).await;
    assert!(!lines_with(&dump(&restored).await, &canary).is_empty());
    let mut settings = app.settings.clone();
    settings.common.database_url = Some(restored.clone());
    let on_restored = TestApp::spawn_with(settings, Roles::API).await;
    let again = dump(&restored).await;
    assert_eq!(lines_with(&again, &canary), Vec::<&str>::new());
    assert!(again.contains("bob keeps his own"));
    let hers = run(
        &on_restored,
        &ada,
        "{ tasks(first: 10) { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(hers["tasks"]["totalCount"], json!(0));
}

#[tokio::test]
async fn an_erased_user_who_comes_back_starts_afresh_and_only_they_can_see_their_erasure() {
    let app = TestApp::spawn().await;
    let ada = app.token("ada");
    let (old, _) = app.create_task(&ada, "before I left").await;
    app.task_at_version(&ada, &old, 1).await;
    // Her open WebSocket, and another user's.
    let changes = "subscription { taskChanges { kind } }";
    let mut hers = GqlSocket::connect(&app.address, &ada).await;
    hers.subscribe("1", changes, json!({})).await;
    let mut his = GqlSocket::connect(&app.address, &app.token("bob")).await;
    his.subscribe("1", changes, json!({})).await;
    let unsigned = app
        .graphql(None, ERASE, json!({ "confirm": "ERASE MY DATA" }))
        .await;
    assert_eq!(error_code(&unsigned), Some("UNAUTHENTICATED"), "{unsigned}");
    let erased = run(&app, &ada, ERASE, json!({ "confirm": "ERASE MY DATA" })).await;
    let id = erased["eraseMyData"]["erasureId"]
        .as_str()
        .unwrap()
        .to_owned();
    // Her socket is closed at once; his stays open.
    assert_eq!(hers.close_code(Duration::from_secs(2)).await, Some(4403));
    assert_eq!(his.close_code(Duration::from_millis(500)).await, None);
    let bad = app
        .graphql(Some(&ada), ERASURE, json!({ "id": "not-an-id" }))
        .await;
    assert_eq!(error_code(&bad), Some("VALIDATION"), "{bad}");
    let unknown = app
        .graphql(Some(&ada), ERASURE, json!({ "id": Uuid::new_v4() }))
        .await;
    assert_eq!(error_code(&unknown), Some("NOT_FOUND"), "{unknown}");

    // She signs in again: a new key, a new task, readable; the old one
    // stays erased, and reading it is refused like any missing task.
    let (new, _) = app.create_task(&ada, "after I came back").await;
    let task = app.task_at_version(&ada, &new, 1).await;
    assert_eq!(task["title"], "after I came back");
    let old_task = app
        .graphql(
            Some(&ada),
            "query($id: ID!) { task(id: $id) { title } }",
            json!({ "id": old }),
        )
        .await;
    assert!(old_task["data"]["task"].is_null(), "{old_task}");
    let status = run(&app, &ada, ERASURE, json!({ "id": id })).await;
    assert!(["PENDING", "COMPLETED"].contains(&status["erasure"]["status"].as_str().unwrap()));
    // The second sweep keeps what she wrote since.
    eventually(Duration::from_secs(20), || async {
        let data = run(&app, &ada, ERASURE, json!({ "id": id })).await;
        (data["erasure"]["status"] == "COMPLETED").then_some(())
    })
    .await
    .expect("the erasure completes");
    let task = app.task(&ada, &new).await;
    assert_eq!(task["title"], "after I came back");
}

/// An erasure announced while an API process's Postgres channel of erasures
/// was down still closes the erased user's sockets there, once the channel
/// is heard again; no one else's.
#[tokio::test]
async fn an_erasure_announced_while_the_channel_was_down_still_closes_her_sockets() {
    let app = TestApp::spawn().await;
    let changes = "subscription { taskChanges { kind } }";
    let mut hers = GqlSocket::connect(&app.address, &app.token("ada")).await;
    hers.subscribe("1", changes, json!({})).await;
    let mut his = GqlSocket::connect(&app.address, &app.token("bob")).await;
    his.subscribe("1", changes, json!({})).await;
    // Applied without its announcement (recorded here with none), just
    // before the channel goes: what a reconnect reads back.
    sqlx::query(
        "INSERT INTO erasures (id, user_id, requested_at, completed_at)
         VALUES ($1, 'ada', now(), NULL)",
    )
    .bind(Uuid::new_v4())
    .execute(&app.pool)
    .await
    .unwrap();
    end_listeners(&app.pool, projections::erasure::ERASURES_CHANNEL).await;
    assert_eq!(hers.close_code(Duration::from_secs(10)).await, Some(4403));
    assert_eq!(his.close_code(Duration::from_millis(500)).await, None);
}
