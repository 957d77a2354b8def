//! The broker is a part that restarts: each test runs a tansu broker of its
//! own (so other tests are not disturbed), restarts it, and reads `task-events`
//! from the beginning with a new consumer group, as an analytics consumer
//! would. It must see every event of every task, in per-task order, no gap.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use taskledger::Roles;
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::helpers::{
    assert_no_errors, broker_binary, eventually, fresh_settings, read_model_caught_up, read_topic,
    TestApp,
};

/// A tansu broker on a port of its own, with its storage (as `./dev` names
/// it: `memory`, the default, or `sqlite`) in a directory of its own;
/// restartable.
pub(crate) struct TestBroker {
    pub(crate) address: String,
    storage: &'static str,
    directory: PathBuf,
    process: Option<Child>,
}

impl TestBroker {
    pub(crate) async fn start(storage: &'static str) -> Self {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let directory = std::env::temp_dir().join(format!("taskledger-broker-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&directory).unwrap();
        let mut broker = Self {
            address: format!("127.0.0.1:{port}"),
            storage,
            directory,
            process: None,
        };
        broker.launch().await;
        broker
    }

    /// Starts the broker and waits until it listens. A broker stopped a moment
    /// ago may leave its port unbindable for a while (connections in
    /// TIME_WAIT), so a start that exits at once is tried again.
    pub(crate) async fn launch(&mut self) {
        let listener = format!("tcp://{}", self.address);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.directory.join("broker.log"))
                .unwrap();
            let mut child = Command::new(broker_binary())
                .args(["--listener-url", &listener])
                .args(["--advertised-listener-url", &listener])
                .args([
                    "--storage-engine",
                    match self.storage {
                        "sqlite" => "sqlite://tansu.db",
                        _ => "memory://tansu/",
                    },
                ])
                .current_dir(&self.directory)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .expect("the broker is built (./dev builds it)");
            let address = self.address.clone();
            let listening = eventually(Duration::from_secs(5), || async {
                tokio::net::TcpStream::connect(&address).await.ok()
            })
            .await;
            if listening.is_some() && child.try_wait().unwrap().is_none() {
                self.process = Some(child);
                return;
            }
            let _ = child.kill().await;
            assert!(
                tokio::time::Instant::now() < deadline,
                "the broker did not start; see {}",
                self.directory.join("broker.log").display()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Stops the broker as an operator would (SIGTERM).
    pub(crate) async fn stop(&mut self) {
        let mut child = self.process.take().expect("the broker runs");
        let pid = child.id().expect("a pid") as i32;
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .unwrap();
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            child.kill().await.unwrap();
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

async fn a_restart_loses_no_history(storage: &'static str, roles: Roles) {
    let mut broker = TestBroker::start(storage).await;
    let mut settings = fresh_settings().await;
    settings.common.kafka_brokers = broker.address.clone();
    settings.common.relay_topic_check_secs = 1;
    let app = TestApp::spawn_with(settings, roles).await;
    let alice = app.token("alice");

    let mut tasks = Vec::new();
    for n in 0..6 {
        let (id, _) = app
            .create_task(&alice, &format!("before the restart {n}"))
            .await;
        tasks.push(id);
    }
    for id in tasks.iter().step_by(2) {
        let body = app
            .graphql(
                Some(&alice),
                "mutation($id: ID!) { completeTask(id: $id) { version } setPriority(id: $id, priority: HIGH) { version } }",
                json!({ "id": id }),
            )
            .await;
        assert_no_errors(&body);
    }
    // Everything before the restart is on the topic.
    let before = app.event_count().await;
    let published = read_topic(
        &app.kafka(),
        &app.settings.common.task_events_topic,
        Duration::from_secs(20),
        |received| received.len() as i64 >= before,
    )
    .await;
    assert_eq!(published.len() as i64, before);

    // While the broker is down, writes succeed (the event store is the
    // buffer) and the API stays ready, saying the broker is unreachable.
    broker.stop().await;
    for n in 0..3 {
        let (id, _) = app
            .create_task(&alice, &format!("while the broker is down {n}"))
            .await;
        tasks.push(id);
    }
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["broker"], false, "{ready}");
    assert_eq!(ready["postgres"], true, "{ready}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.launch().await;
    let back = std::time::Instant::now();

    // The relay carries on by itself with what is committed after the restart.
    let (after, _) = app.create_task(&alice, "after the restart").await;
    tasks.push(after.clone());
    let events = app.event_count().await;
    let messages = read_topic(
        &app.kafka(),
        &app.settings.common.task_events_topic,
        Duration::from_secs(60),
        |received| {
            let ids: std::collections::HashSet<_> =
                received.iter().map(|m| m.json()["id"].clone()).collect();
            ids.len() as i64 >= events
        },
    )
    .await;

    // Every task's events, each once at least, in sequence order, no gap.
    let mut sequences: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for message in &messages {
        let data = message.json()["data"].clone();
        let seen = sequences
            .entry(data["task_id"].as_str().unwrap().to_owned())
            .or_default();
        let sequence = data["sequence"].as_u64().unwrap();
        // A republished history may repeat what the topic still held, but
        // never goes backwards past a gap.
        if seen.last().is_some_and(|last| sequence <= *last) {
            assert!(
                seen.contains(&sequence),
                "sequence {sequence} of {} came out of order: {seen:?}",
                data["task_id"]
            );
            continue;
        }
        seen.push(sequence);
    }
    for id in &tasks {
        let expected: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
                .bind(id)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        let expected: Vec<u64> = (1..=expected as u64).collect();
        assert_eq!(
            sequences.get(id),
            Some(&expected),
            "task {id}: every event in order after a restart of a {storage} broker"
        );
    }
    if roles.project {
        // The projections carry on by themselves: the read model equals the
        // event store, with no restart of Taskledger.
        let after = format!("a restart of a {storage} broker");
        read_model_caught_up(&app.pool, Duration::from_secs(60), &after).await;
        eprintln!(
            "{storage} broker: read model caught up {:?} after the broker's return",
            back.elapsed()
        );
    }
}

#[tokio::test]
async fn a_broker_that_keeps_its_data_keeps_the_history_across_a_restart() {
    a_restart_loses_no_history("sqlite", Roles::ALL).await;
}

#[tokio::test]
async fn the_default_broker_forgets_its_topics_and_the_relay_publishes_the_history_again() {
    // Memory storage (./dev's default) has no topic after a restart: the relay
    // creates it, notices it holds fewer messages than it published, and
    // publishes the log again under a new topic generation, which the
    // projections read again from the start.
    a_restart_loses_no_history("memory", Roles::ALL).await;
}
