//! Every Kafka client of Taskledger against a broker that requires SASL/SCRAM
//! over TLS, as managed Kafka services do: `setup`, the relay, each
//! projection, the scheduler, the API's live feed, `taskledger dlq` and the
//! analytics example. Each test runs a broker of its own, with its own CA,
//! certificate and password.
//!
//! tansu 0.6.0 refuses librdkafka's re-authentication of a connection after
//! about 54 s, so each test stays well under that.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use analytics_example::{completions_per_day, Counters};
use chrono::{DateTime, Utc};
use infra::kafka::{dead_letter_topic, KafkaSettings};
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use serde_json::{json, Value};
use taskledger::{Roles, Settings};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{
    assert_no_errors, broker_binary, eventually, fresh_settings, read_topic, role_process, text_at,
    TestApp,
};
use crate::ws_client::GqlSocket;

const CHANGES: &str = "subscription { taskChanges { kind taskId version task { id title } } }";

const NOTIFICATIONS: &str = "subscription { notificationReceived { id taskId title } }";

const LIST: &str =
    "{ tasks(first: 100) { nodes { id title completed series { id occurrence } } } }";

/// A broker (`taskledger-broker`) on a loopback port of its own that speaks
/// only TLS, with a certificate for 127.0.0.1 signed by a CA made for it, and
/// requires SASL/SCRAM of one user; its files in a directory of its own,
/// kept when the test fails. Killed on drop.
struct SecuredBroker {
    address: String,
    directory: PathBuf,
    password: String,
    process: Child,
}

impl SecuredBroker {
    const USER: &'static str = "taskledger";

    async fn start() -> Self {
        let directory = std::env::temp_dir().join(format!("taskledger-secured-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&directory).unwrap();
        make_certificates(&directory).await;
        let password = Uuid::new_v4().simple().to_string();
        // A port found free may be taken before the broker binds it: a start
        // that exits at once is tried again on another.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let port = {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                listener.local_addr().unwrap().port()
            };
            let address = format!("127.0.0.1:{port}");
            let process = std::cell::RefCell::new(launch(&directory, &address, &password));
            let listening = eventually(Duration::from_secs(10), || async {
                if process.borrow_mut().try_wait().unwrap().is_some() {
                    return Some(false);
                }
                tokio::net::TcpStream::connect(&address)
                    .await
                    .ok()
                    .map(|_| true)
            })
            .await;
            let mut process = process.into_inner();
            if listening == Some(true) {
                return Self {
                    address,
                    directory,
                    password,
                    process,
                };
            }
            let _ = process.kill().await;
            let log = std::fs::read_to_string(directory.join("broker.log")).unwrap_or_default();
            assert!(
                tokio::time::Instant::now() < deadline,
                "the secured broker did not start (built with `cargo build --workspace --bin taskledger-broker`?): {log}"
            );
        }
    }

    /// The CA file clients verify the broker's certificate with.
    fn ca(&self) -> String {
        self.directory.join("ca.pem").display().to_string()
    }

    /// Settings for a fresh database and fresh topics on this broker, as the
    /// cloud overlay sets them: SASL_SSL, `mechanism`, the user, its
    /// password and the CA.
    async fn settings(&self, mechanism: &str) -> Settings {
        let mut settings = fresh_settings().await;
        let common = &mut settings.common;
        common.kafka_brokers = self.address.clone();
        common.kafka_security_protocol = Some("sasl_ssl".into());
        common.kafka_sasl_mechanism = Some(mechanism.into());
        common.kafka_sasl_username = Some(Self::USER.into());
        common.kafka_sasl_password = Some(self.password.clone());
        common.kafka_ssl_ca_location = Some(self.ca());
        settings
    }

    /// That the broker requires both TLS and SASL, and that clients verify
    /// its certificate, so the tests cannot pass on a broker that asks less:
    /// a client of `kafka`'s settings is refused without TLS, with a wrong
    /// password, with neither TLS nor SASL, and without the CA.
    async fn assert_refuses_unsecured_clients(&self, kafka: &KafkaSettings) {
        let variant = |change: fn(&mut infra::kafka::KafkaSecurity)| {
            let mut kafka = kafka.clone();
            change(&mut kafka.security);
            kafka
        };
        let unsecured = [
            (
                "SASL without TLS",
                variant(|s| s.protocol = Some("sasl_plaintext".into())),
            ),
            (
                "a wrong password",
                variant(|s| s.sasl_password = Some("not-the-password".into())),
            ),
            ("neither TLS nor SASL", variant(|s| *s = Default::default())),
            ("TLS without the CA", variant(|s| s.ssl_ca_location = None)),
        ];
        let answers = futures::future::join_all(
            unsecured
                .iter()
                .map(|(_, kafka)| topics(kafka.clone(), Duration::from_secs(2))),
        )
        .await;
        for ((client, _), answer) in unsecured.iter().zip(answers) {
            assert!(
                answer.is_err(),
                "the broker answered a client with {client}: {answer:?}"
            );
        }
    }
}

impl Drop for SecuredBroker {
    fn drop(&mut self) {
        let _ = self.process.start_kill();
        if std::thread::panicking() {
            eprintln!(
                "the secured broker's files (log, CA, sqlite) are kept in {}",
                self.directory.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.directory);
        }
    }
}

/// openssl's configuration of the CA and of the broker's certificate (for
/// 127.0.0.1 and localhost), as `./dev` has it.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = Taskledger test CA
[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
";

/// `ca.pem` and, signed by it, `server.pem`/`server.key` for 127.0.0.1 and
/// localhost, made with the `openssl` command line.
async fn make_certificates(directory: &std::path::Path) {
    std::fs::write(directory.join("openssl.cnf"), OPENSSL_CNF).unwrap();
    let steps = [
        "req -x509 -new -newkey rsa:2048 -nodes -days 1 -config openssl.cnf -extensions ca \
         -keyout ca.key -out ca.pem"
            .to_owned(),
        "req -new -newkey rsa:2048 -nodes -config openssl.cnf -subj /CN=127.0.0.1 \
         -keyout server.key -out server.csr"
            .to_owned(),
        format!(
            "x509 -req -days 1 -in server.csr -CA ca.pem -CAkey ca.key -set_serial 0x{} \
             -extfile openssl.cnf -extensions server -out server.pem",
            Uuid::new_v4().simple()
        ),
    ];
    for step in steps {
        let output = Command::new("openssl")
            .args(step.split_whitespace())
            .current_dir(directory)
            .output()
            .await
            .expect("the openssl command line is installed");
        assert!(
            output.status.success(),
            "openssl {step:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The broker with TLS on its listener, SASL/SCRAM required, and the user
/// written into its sqlite storage before it starts.
fn launch(directory: &std::path::Path, address: &str, password: &str) -> Child {
    let listener = format!("tcp://{address}");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(directory.join("broker.log"))
        .unwrap();
    Command::new(broker_binary())
        .arg("--authentication")
        .args(["--listener-url", &listener])
        .args(["--advertised-listener-url", &listener])
        .args(["--storage-engine", "sqlite://broker.db"])
        .args(["--cert", "server.pem", "--key", "server.key"])
        .args(["--user", &format!("{}={password}", SecuredBroker::USER)])
        .current_dir(directory)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("the broker is built (cargo build --workspace --bin taskledger-broker)")
}

/// The names of every topic the broker reports to a client of `kafka`.
async fn topics(kafka: KafkaSettings, within: Duration) -> Result<Vec<String>, String> {
    tokio::task::spawn_blocking(move || {
        let consumer = kafka
            .consumer(&format!("metadata-{}", Uuid::new_v4()))
            .map_err(|e| e.to_string())?;
        let metadata = consumer
            .fetch_metadata(None, within)
            .map_err(|e| e.to_string())?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|topic| topic.error().is_none())
            .map(|topic| topic.name().to_owned())
            .collect())
    })
    .await
    .unwrap()
}

/// `taskledger ROLE ARGS` as a process of its own on `settings` (the broker's
/// security settings among them, from its environment); its stdout.
async fn taskledger(settings: &Settings, role: &str, args: &[&str]) -> String {
    let output = role_process(settings, role)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "taskledger {role} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn listing(app: &TestApp, token: &str) -> Vec<Value> {
    let body = app.graphql(Some(token), LIST, json!({})).await;
    assert_no_errors(&body);
    body["data"]["tasks"]["nodes"].as_array().unwrap().clone()
}

/// The task `id` as the listing shows it, once it does.
async fn listed(app: &TestApp, token: &str, id: &str) -> Value {
    eventually(Duration::from_secs(15), || async {
        listing(app, token)
            .await
            .into_iter()
            .find(|task| task["id"] == id)
    })
    .await
    .unwrap_or_else(|| panic!("task {id} never appeared in the listing"))
}

/// The next `taskChanges` change of task `id` on `socket`, passing over
/// `RESYNC` notices and other tasks' changes.
async fn change_of(socket: &mut GqlSocket, subscription: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let payload = socket
            .next_payload(subscription, left)
            .await
            .unwrap_or_else(|| panic!("no change of task {id} reached the subscriber"));
        assert!(payload["errors"].is_null(), "{payload}");
        let change = &payload["data"]["taskChanges"];
        if change["kind"] != "RESYNC" && change["taskId"] == id {
            return change.clone();
        }
    }
}

async fn create(app: &TestApp, token: &str, input: Value) -> String {
    let body = app
        .graphql(
            Some(token),
            "mutation($input: CreateTaskInput!) { createTask(input: $input) { taskId } }",
            json!({ "input": input }),
        )
        .await;
    assert_no_errors(&body);
    body["data"]["createTask"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn every_kafka_client_works_over_sasl_ssl_with_the_cloud_overlays_scram_sha_256() {
    let started = Instant::now();
    let broker = SecuredBroker::start().await;
    let settings = broker.settings("SCRAM-SHA-256").await;
    let kafka = settings.common.kafka();

    broker.assert_refuses_unsecured_clients(&kafka).await;

    // `taskledger setup`, as the overlay's setup Job runs it, creates every
    // topic; a secured client sees them.
    taskledger(&settings, "setup", &[]).await;
    let on_broker = topics(kafka.clone(), Duration::from_secs(10))
        .await
        .expect("a secured client reads the broker's metadata");
    let common = &settings.common;
    for topic in [
        common.task_events_topic.clone(),
        dead_letter_topic(&common.task_events_topic),
        common.reminders_topic.clone(),
        dead_letter_topic(&common.reminders_topic),
        common.task_updates_topic.clone(),
    ] {
        assert!(
            on_broker.contains(&topic),
            "{topic} is missing: {on_broker:?}"
        );
    }

    let mut app = TestApp::spawn_with(settings.clone(), Roles::ALL).await;
    let alice = app.token("alice");
    let ready: Value = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ready["broker"], true,
        "the API's probe reaches the broker: {ready}"
    );

    let mut changes = GqlSocket::connect(&app.address, &alice).await;
    changes.subscribe("c", CHANGES, json!({})).await;
    let mut notifications = GqlSocket::connect(&app.address, &alice).await;
    notifications.subscribe("n", NOTIFICATIONS, json!({})).await;

    let at: DateTime<Utc> = Utc::now() + chrono::Duration::seconds(3);
    let reminded = create(
        &app,
        &alice,
        json!({"title": "water the plants", "reminders": [{"at": at.to_rfc3339()}]}),
    )
    .await;
    let daily = create(
        &app,
        &alice,
        json!({"title": "Stand-up", "dueAt": "2027-03-26T08:00:00Z",
               "timeZone": "Europe/Berlin", "recurrence": "FREQ=DAILY"}),
    )
    .await;
    let body = app
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { completeTask(id: $id) { version } }",
            json!({"id": daily}),
        )
        .await;
    assert_no_errors(&body);

    // The relay publishes: the creation is on task-events.
    let published = read_topic(
        &kafka,
        &common.task_events_topic,
        Duration::from_secs(15),
        |m| {
            m.iter()
                .any(|m| m.key.as_deref() == Some(reminded.as_str()))
        },
    )
    .await;
    let created = published
        .iter()
        .find(|m| m.key.as_deref() == Some(reminded.as_str()))
        .expect("the relay published the creation")
        .json();
    assert_eq!(created["type"], "taskledger.task.created.v2");
    // Sealed with alice's key (docs/adr/0014), whatever the transport.
    assert_eq!(created["data"]["task_data"]["sealed"]["by"], "alice");
    assert!(created["data"]["task_data"].get("title").is_none());

    // Every projection applies: the task list, the reminders, the recurrence
    // processor (the completed occurrence's next one).
    assert_eq!(
        listed(&app, &alice, &reminded).await["title"],
        "water the plants"
    );
    let reminders = eventually(Duration::from_secs(15), || async {
        let rows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM reminders WHERE task_id = $1::uuid")
                .bind(&reminded)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        (rows > 0).then_some(rows)
    })
    .await;
    assert_eq!(
        reminders,
        Some(1),
        "the reminders projection holds the reminder"
    );
    let series = listed(&app, &alice, &daily).await["series"]["id"].clone();
    let next = eventually(Duration::from_secs(15), || async {
        listing(&app, &alice)
            .await
            .into_iter()
            .find(|t| t["series"]["id"] == series && t["series"]["occurrence"] == 2)
    })
    .await
    .expect("the recurrence processor created the next occurrence");
    assert_eq!(next["title"], "Stand-up");
    assert_eq!(next["completed"], false);

    // The live feed reaches a WebSocket subscriber: the change, then the
    // reminder the scheduler fired.
    let change = change_of(&mut changes, "c", &reminded).await;
    assert_eq!(change["task"]["title"], "water the plants");
    let payload = notifications
        .next_payload("n", Duration::from_secs(15))
        .await
        .expect("the reminder reaches the subscriber");
    let notification = &payload["data"]["notificationReceived"];
    assert_eq!(notification["taskId"], reminded.as_str());
    assert_eq!(notification["title"], "water the plants");

    // Dead letters: a message no projection can read is dead-lettered by the
    // task list, the reminders projection and the recurrence processor, then
    // listed, shown and replayed by `taskledger dlq` as a process.
    let topic = common.task_events_topic.clone();
    kafka
        .producer()
        .unwrap()
        .send(
            FutureRecord::to(&topic)
                .key("garbage")
                .payload("{{{ not json"),
            Duration::from_secs(5),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    let dead = read_topic(
        &kafka,
        &dead_letter_topic(&topic),
        Duration::from_secs(15),
        |m| m.len() >= 3,
    )
    .await;
    assert_eq!(dead.len(), 3, "each consumer group dead-letters it once");
    let listed_letters = eventually(Duration::from_secs(10), || async {
        let listed = taskledger(&settings, "dlq", &["list"]).await;
        listed.contains("3 dead letters").then_some(listed)
    })
    .await
    .expect("`taskledger dlq list` lists the three dead letters");
    for projection in ["task-list", "reminders", "recurrence"] {
        assert!(listed_letters.contains(projection), "{listed_letters}");
    }
    let shown = taskledger(&settings, "dlq", &["show", "0"]).await;
    assert!(shown.contains("value: {{{ not json"), "{shown}");
    let replayed = taskledger(&settings, "dlq", &["replay", "0"]).await;
    assert!(replayed.contains("replayed"), "{replayed}");
    let copies = read_topic(&kafka, &topic, Duration::from_secs(15), |m| {
        m.iter()
            .filter(|m| m.key.as_deref() == Some("garbage"))
            .count()
            >= 2
    })
    .await
    .into_iter()
    .filter(|m| m.key.as_deref() == Some("garbage"))
    .count();
    assert_eq!(copies, 2, "the original and the replayed copy");
    let again = read_topic(
        &kafka,
        &dead_letter_topic(&topic),
        Duration::from_secs(15),
        |m| m.len() >= 6,
    )
    .await;
    assert_eq!(
        again.len(),
        6,
        "the replayed copy is consumed and dead-lettered again"
    );

    // The analytics example reads the whole history: every event, the two
    // unreadable messages, the one completion.
    let messages = app.event_count().await as u64 + 2;
    let counters = Arc::new(Counters::default());
    let stop = CancellationToken::new();
    let analytics = {
        let (pool, kafka, counters, stop) = (
            app.pool.clone(),
            kafka.clone(),
            counters.clone(),
            stop.clone(),
        );
        let topic = topic.clone();
        tokio::spawn(async move {
            analytics_example::run(pool, kafka, &topic, "analytics-secured", counters, stop).await
        })
    };
    eventually(Duration::from_secs(15), || async {
        (counters.messages.load(Ordering::Relaxed) >= messages).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the analytics consumer read {counters:?} of {messages} messages"));
    stop.cancel();
    analytics.await.unwrap().unwrap();
    assert_eq!(counters.invalid.load(Ordering::Relaxed), 2);
    assert_eq!(counters.completions.load(Ordering::Relaxed), 1);
    assert_eq!(
        completions_per_day(&app.pool).await.unwrap(),
        vec![(Utc::now().date_naive(), "alice".to_owned(), 1)]
    );
    app.stop().await;

    eprintln!(
        "over SASL_SSL with SCRAM-SHA-256 in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_task_reaches_the_listing_and_a_subscriber_over_sasl_ssl_with_scram_sha_512() {
    let started = Instant::now();
    let broker = SecuredBroker::start().await;
    let mut app = TestApp::spawn_with(broker.settings("SCRAM-SHA-512").await, Roles::ALL).await;
    let alice = app.token("alice");
    let mut changes = GqlSocket::connect(&app.address, &alice).await;
    changes.subscribe("c", CHANGES, json!({})).await;

    let (id, _) = app.create_task(&alice, "over SCRAM-SHA-512").await;
    assert_eq!(
        listed(&app, &alice, &id).await["title"],
        "over SCRAM-SHA-512"
    );
    let change = change_of(&mut changes, "c", &id).await;
    assert_eq!(change["kind"], "CHANGED");
    assert_eq!(change["version"], 1);
    assert_eq!(change["task"]["title"], "over SCRAM-SHA-512");
    drop(changes);
    app.stop().await;
    eprintln!(
        "over SASL_SSL with SCRAM-SHA-512 in {:?}",
        started.elapsed()
    );
}

/// CPU seconds (user and system) process `pid` has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// A wrong password: the relay still starts, says in its log which settings
/// to check, answers `/readyz` with the broker down and
/// `taskledger_broker_reachable` 0, spends next to no CPU while refused, and
/// carries on by itself once the broker accepts the password (rotated on the
/// broker's side): the topics appear and a task's event is published.
#[tokio::test]
async fn a_refused_login_names_the_setting_and_heals_when_the_broker_accepts_it() {
    let broker = SecuredBroker::start().await;
    let mut settings = broker.settings("SCRAM-SHA-512").await;
    let rotated = format!("rotated-{}", Uuid::new_v4().simple());
    settings.common.kafka_sasl_password = Some(rotated.clone());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = broker.directory.join("relay.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut relay = role_process(&settings, "relay")
        .env("TASKLEDGER_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    let broker_seen = |up: bool| {
        let (http, readyz) = (http.clone(), readyz.clone());
        async move {
            let body: Value = http.get(&readyz).send().await.ok()?.json().await.ok()?;
            (body["broker"] == up).then_some(body)
        }
    };

    // Refused: the process serves, and says why.
    let body = eventually(Duration::from_secs(30), || broker_seen(false))
        .await
        .expect("/readyz answers with the broker down while the login is refused");
    assert_eq!(body["postgres"], true);
    let metrics = text_at(&http, &format!("http://127.0.0.1:{port}/metrics")).await;
    assert!(
        metrics.contains(r#"taskledger_broker_reachable{role="relay"} 0"#),
        "{metrics}"
    );
    let said = eventually(Duration::from_secs(30), || async {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|text| text.contains("the broker refused the SASL login: check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"))
    })
    .await;
    assert!(
        said.is_some(),
        "no log line names the settings: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // No busy loop: librdkafka backs off, the topics are tried every 5 s.
    let pid = relay.id().unwrap();
    let before = cpu_seconds(pid);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let spent = cpu_seconds(pid) - before;
    assert!(spent < 1.0, "{spent} s of CPU in 5 s while refused");

    // The broker's side rotates the password to the one the process has.
    let status = Command::new(broker_binary())
        .args([
            "user",
            "set",
            "--storage-engine",
            "sqlite://broker.db",
            SecuredBroker::USER,
            &rotated,
        ])
        .current_dir(&broker.directory)
        .status()
        .await
        .unwrap();
    assert!(status.success());

    // Healed by itself: the topics, the broker seen, an event published.
    let kafka = settings.common.kafka();
    let found = eventually(Duration::from_secs(40), || {
        let kafka = kafka.clone();
        let topic = settings.common.task_events_topic.clone();
        async move {
            topics(kafka, Duration::from_secs(5))
                .await
                .ok()
                .filter(|names| names.contains(&topic))
        }
    })
    .await;
    assert!(
        found.is_some(),
        "the relay never created its topics after the rotation"
    );
    eventually(Duration::from_secs(30), || broker_seen(true))
        .await
        .expect("/readyz sees the broker again");
    let mut app = TestApp::spawn_with(settings.clone(), Roles::API).await;
    let alice = app.token("alice");
    let (id, _) = app.create_task(&alice, "after the rotation").await;
    let published = read_topic(
        &kafka,
        &settings.common.task_events_topic,
        Duration::from_secs(20),
        |m| m.iter().any(|m| m.key.as_deref() == Some(id.as_str())),
    )
    .await;
    assert!(
        published
            .iter()
            .any(|m| m.key.as_deref() == Some(id.as_str())),
        "the relay did not publish the task's event after the rotation"
    );
    relay.kill().await.unwrap();
    app.stop().await;
}
