//! Tasks kept warm per process, with two API processes writing the same
//! tasks: a decision made on a stale warm task is made again on the stored
//! one (a no-op, a refusal, a version the client names), racing writers on
//! both lose no update, and every conflict reads as it always did. One
//! commit is one statement.

use serde_json::{json, Value};

use crate::helpers::{assert_no_errors, error_code, free_address, graphql_at, start_api, TestApp};

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> Value {
    graphql_at(client, url, token, query, variables, None)
        .await
        .1
}

const COMPLETE: &str = "mutation($id: ID!) { completeTask(id: $id) { version } }";
const REOPEN: &str = "mutation($id: ID!) { reopenTask(id: $id) { version } }";
const EDIT: &str = "mutation($id: ID!, $title: String!, $v: Int) { updateTask(input: {id: $id, title: $title, expectedVersion: $v}) { version } }";
const TAG: &str =
    "mutation($id: ID!, $tag: String!) { addTags(id: $id, tags: [$tag]) { version } }";

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_with_warm_tasks_decide_on_what_the_store_holds() {
    let app = TestApp::spawn().await;
    let address = free_address();
    let _other = start_api(&app.settings, &address).await;
    let (here, there) = (app.address.clone(), format!("http://{address}"));
    let ada = app.token("ada");
    let client = &app.client;

    // Warm here at version 1; completed there (version 2).
    let (id, _) = app.create_task(&ada, "water the plants").await;
    let done = post(client, &there, &ada, COMPLETE, json!({ "id": id })).await;
    assert_eq!(done["data"]["completeTask"]["version"], json!(2), "{done}");

    // Here the warm task is still open: reopening it would be a no-op on
    // that, so it is decided again on the stored task, and applies.
    let reopened = post(client, &here, &ada, REOPEN, json!({ "id": id })).await;
    assert_no_errors(&reopened);
    assert_eq!(reopened["data"]["reopenTask"]["version"], json!(3));

    // Edited there (version 4); here a client naming version 4 is not
    // refused because the warm task says 3...
    let edited = post(
        client,
        &there,
        &ada,
        EDIT,
        json!({ "id": id, "title": "water the roses", "v": 3 }),
    )
    .await;
    assert_eq!(
        edited["data"]["updateTask"]["version"],
        json!(4),
        "{edited}"
    );
    let named = post(
        client,
        &here,
        &ada,
        EDIT,
        json!({ "id": id, "title": "water the tulips", "v": 4 }),
    )
    .await;
    assert_no_errors(&named);
    assert_eq!(named["data"]["updateTask"]["version"], json!(5));
    // ...and one naming an old version is refused as always, with the truth.
    let stale = post(
        client,
        &there,
        &ada,
        EDIT,
        json!({ "id": id, "title": "late", "v": 4 }),
    )
    .await;
    assert_eq!(error_code(&stale), Some("CONFLICT"), "{stale}");
    assert_eq!(
        stale["errors"][0]["extensions"]["actualVersion"],
        json!(5),
        "{stale}"
    );

    // Someone else's task is missing, warm or not.
    let bob = app.token("bob");
    let theirs = post(client, &here, &bob, COMPLETE, json!({ "id": id })).await;
    assert_eq!(error_code(&theirs), Some("NOT_FOUND"), "{theirs}");

    // Racing writers on both processes: each tag applied or, after the
    // retries, refused with CONFLICT as before; none applied and lost.
    let writes = (0..16).map(|n| {
        let url = if n % 2 == 0 {
            here.clone()
        } else {
            there.clone()
        };
        let (client, ada, id) = (client.clone(), ada.clone(), id.clone());
        async move {
            let tag = format!("t{n}");
            let answer = post(&client, &url, &ada, TAG, json!({ "id": id, "tag": tag })).await;
            (tag, answer)
        }
    });
    let mut applied = Vec::new();
    for (tag, answer) in futures::future::join_all(writes).await {
        match error_code(&answer) {
            None => applied.push(tag),
            Some("CONFLICT") => {}
            Some(other) => panic!("a racing write answered {other}: {answer}"),
        }
    }
    assert!(applied.len() >= 8, "most racing writes apply: {applied:?}");
    let last = 5 + applied.len() as i64;
    let task = app.task_at_version(&ada, &id, last).await;
    assert_eq!(task["title"], json!("water the tulips"));
    let tags = post(
        client,
        &here,
        &ada,
        "query($id: ID!) { task(id: $id) { tags } }",
        json!({ "id": id }),
    )
    .await;
    let mut shown: Vec<String> =
        serde_json::from_value(tags["data"]["task"]["tags"].clone()).unwrap();
    shown.sort();
    applied.sort();
    assert_eq!(shown, applied);

    // One statement per commit: every event of the task in sequence, each
    // command's events in one transaction of their own.
    let sequences: Vec<i64> =
        sqlx::query_scalar("SELECT sequence FROM events WHERE aggregate_id = $1 ORDER BY sequence")
            .bind(&id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(sequences, (1..=last).collect::<Vec<i64>>());
}

const TITLED: &str = "query($id: ID!) { task(id: $id) { title status version } }";

/// Every 25th event stores the task's state beside its events, sealed as they
/// are, and a process that never saw the task loads it from the snapshot and
/// the events after it; a snapshot that no longer reads is passed over.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_history_is_loaded_from_its_sealed_snapshot() {
    use domain::values::{TaskId, UserId};
    use domain::{TaskCommand, TaskServices};
    use event_store::command::{Actor, CommandService};

    let app = TestApp::spawn().await;
    let ada = app.token("ada");
    let (id, _) = app.create_task(&ada, "snapshot canary 0").await;
    let mut version = 1;
    for n in 1..260 {
        let edited = post(
            &app.client,
            &app.address,
            &ada,
            EDIT,
            json!({ "id": id, "title": format!("snapshot canary {n}"), "v": version }),
        )
        .await;
        assert_no_errors(&edited);
        version = edited["data"]["updateTask"]["version"].as_i64().unwrap();
    }
    assert_eq!(version, 260);

    // One snapshot, at the last multiple of 25, with no title in the clear.
    let (at, state): (i64, String) =
        sqlx::query_as("SELECT sequence, state::text FROM task_snapshots WHERE aggregate_id = $1")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(at, 250);
    assert!(!state.contains("snapshot canary"), "{state}");
    assert!(state.contains("\"sealed\""), "{state}");

    // A process that never saw the task: its snapshot and 10 events.
    let actor = Actor {
        user_id: UserId::parse("ada").unwrap(),
        correlation_id: "snapshot-test".into(),
    };
    let task_id = TaskId::parse(&id).unwrap();
    let cold = CommandService::new(app.pool.clone(), TaskServices::default());
    assert_eq!(
        cold.version_of_own(&actor, task_id).await.unwrap(),
        Some(260)
    );
    let done = cold
        .execute(
            &actor,
            task_id,
            TaskCommand::Complete {
                actor: actor.user_id.clone(),
                stop_repeating: false,
            },
            Some(260),
        )
        .await
        .unwrap();
    assert_eq!(done.version, 261);

    // A snapshot of another shape is passed over: every event is folded.
    sqlx::query("UPDATE task_snapshots SET state = '{\"shape\": \"old\"}' WHERE aggregate_id = $1")
        .bind(&id)
        .execute(&app.pool)
        .await
        .unwrap();
    let colder = CommandService::new(app.pool.clone(), TaskServices::default());
    assert_eq!(
        colder.version_of_own(&actor, task_id).await.unwrap(),
        Some(261)
    );
    let stranger = Actor {
        user_id: UserId::parse("bob").unwrap(),
        correlation_id: "snapshot-test".into(),
    };
    assert_eq!(
        colder.version_of_own(&stranger, task_id).await.unwrap(),
        None
    );

    let read = crate::helpers::eventually(std::time::Duration::from_secs(20), || async {
        let read = post(&app.client, &app.address, &ada, TITLED, json!({ "id": id })).await;
        (read["data"]["task"]["version"] == json!(261)).then_some(read)
    })
    .await
    .expect("the completion reaches the read model");
    assert_eq!(read["data"]["task"]["title"], json!("snapshot canary 259"));
    assert_eq!(read["data"]["task"]["status"], json!("COMPLETED"));
}
