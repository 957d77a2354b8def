//! `TestApp`: Taskledger started in-process on port 0 against a fresh database
//! and fresh topics, with request methods for the tests.

use std::future::Future;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use api_core::auth::{JwtSecret, TokenVerifier};
use chrono::Duration as Ttl;
use domain::values::UserId;
use infra::kafka::KafkaConsumer;
use infra::kafka::KafkaSettings;
use infra::telemetry::{self, LogFormat};
use rdkafka::consumer::Consumer;
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::Message;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use taskledger::{Roles, Settings};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub settings: Settings,
    pub client: reqwest::Client,
    verifier: TokenVerifier,
    shutdown: CancellationToken,
    roles: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// With `TEST_LOG` set (`TEST_LOG=1 ./dev test NAME`), the logs of the apps under
/// test go to stdout, as `taskledger` prints them locally (filtered by
/// `RUST_LOG`); without it they are discarded. Installed once per test binary.
static TEST_LOGGING: LazyLock<()> = LazyLock::new(|| {
    infra::tls::install_crypto_provider();
    if std::env::var_os("TEST_LOG").is_some() {
        // Kept for the life of the test binary.
        std::mem::forget(telemetry::init(LogFormat::Text, "test"));
    }
});

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://taskledger:taskledger@127.0.0.1:5432/postgres".to_owned())
}

/// Settings for a fresh database and fresh topics of this test alone.
pub async fn fresh_settings() -> Settings {
    LazyLock::force(&TEST_LOGGING);
    let suffix = Uuid::new_v4().simple().to_string();
    let database = format!("taskledger_test_{}", &suffix[..16]);
    let admin = admin_url();
    let mut connection = PgConnection::connect(&admin).await.expect("Postgres is up");
    sqlx::query(&format!("CREATE DATABASE {database}"))
        .execute(&mut connection)
        .await
        .expect("create the test database");
    let base = admin.rsplit_once('/').expect("a database URL").0;
    let mut settings = Settings::local();
    settings.common.database_url = Some(format!("{base}/{database}"));
    settings.common.db_max_connections = 10;
    settings.common.task_events_topic = format!("task-events-{}", &suffix[..12]);
    settings.common.reminders_topic = format!("reminders-{}", &suffix[..12]);
    settings.common.task_updates_topic = format!("task-updates-{}", &suffix[..12]);
    settings.common.consumer_group_prefix = Some(format!("test-{}", &suffix[..12]));
    // A ledger of the test's own, as each deployment has one of its own.
    settings.common.erasure_ledger =
        Some(std::env::temp_dir().join(format!("taskledger-erasures-{}.jsonl", &suffix[..16])));
    settings.common.http_addr = "127.0.0.1:0".into();
    // Tests race many requests of one user on purpose; the per-user limits
    // have a test of their own.
    settings.api.user_rate_per_second = std::num::NonZeroU32::MAX;
    settings.api.user_rate_burst = std::num::NonZeroU32::MAX;
    settings.api.user_in_flight = 1_000;
    // A projector killed by a test hands its partitions on sooner.
    settings.common.projection_lease_secs = 5;
    if let Ok(brokers) = std::env::var("KAFKA_BROKERS") {
        settings.common.kafka_brokers = brokers;
    }
    settings
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_roles(Roles::ALL).await
    }

    pub async fn spawn_roles(roles: Roles) -> Self {
        Self::spawn_with(fresh_settings().await, roles).await
    }

    pub async fn spawn_with(settings: Settings, roles: Roles) -> Self {
        LazyLock::force(&TEST_LOGGING);
        let shutdown = CancellationToken::new();
        let running = taskledger::start(&settings, roles, shutdown.clone())
            .await
            .expect("Taskledger starts");
        let address = format!("http://{}", running.api_address.expect("the API runs"));
        let pool = running.pool.clone();
        let roles = tokio::spawn(running.wait());
        Self {
            address,
            pool,
            settings,
            client: reqwest::Client::new(),
            verifier: TokenVerifier::new(&JwtSecret::local_development()),
            shutdown,
            roles: Some(roles),
        }
    }

    /// Stops every role of this app, as SIGTERM would, and waits for them and
    /// for their Kafka clients to be destroyed (as the binaries do before they
    /// exit: librdkafka's threads must not outlive the process's exit).
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(roles) = self.roles.take() {
            roles.await.unwrap().expect("the roles stop cleanly");
        }
        let destroyed = tokio::task::spawn_blocking(|| {
            infra::kafka::wait_for_dropped_clients(Duration::from_secs(20))
        })
        .await
        .unwrap();
        assert!(destroyed, "Kafka clients still being destroyed after 20 s");
    }

    pub fn token(&self, user: &str) -> String {
        self.verifier
            .issue(&UserId::parse(user).unwrap(), Ttl::minutes(10))
            .to_string()
    }

    /// A token of `user` that expires after `ttl`.
    pub fn short_token(&self, user: &str, ttl: Ttl) -> String {
        self.verifier.issue(&UserId::parse(user).unwrap(), ttl)
    }

    pub fn expired_token(&self, user: &str) -> String {
        self.verifier
            .issue(&UserId::parse(user).unwrap(), Ttl::minutes(-10))
    }

    /// Sends `body` as it is to `POST /graphql`.
    pub async fn post_raw(&self, token: Option<&str>, body: String) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        let body = response.json().await.expect("a JSON body");
        (status, body)
    }

    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = json!({ "query": query, "variables": variables }).to_string();
        self.post_raw(token, body).await.1
    }

    /// `query`'s `data` as `token`'s user, which must come without errors.
    pub async fn data(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.graphql(Some(token), query, variables).await;
        assert_no_errors(&body);
        body["data"].clone()
    }

    /// Erases `user`'s data (`eraseMyData`), failing on any error.
    pub async fn erase(&self, user: &str) {
        self.data(
            &self.token(user),
            "mutation { eraseMyData(confirm: \"ERASE MY DATA\") { erasureId } }",
            json!({}),
        )
        .await;
    }

    /// A list named `name` made by `owner`'s user; its id.
    pub async fn new_list(&self, owner: &str, name: &str) -> String {
        self.data(
            owner,
            "mutation($name: String!) { createList(input: {name: $name}) { listId } }",
            json!({ "name": name }),
        )
        .await["createList"]["listId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `user` invited to `list` as `role` by `owner`'s user; the invitation's id.
    pub async fn invite(&self, owner: &str, list: &str, user: &str, role: &str) -> String {
        self.data(
            owner,
            "mutation($list: ID!, $user: String!, $role: ListRole!) { inviteToList(listId: $list, userId: $user, role: $role) { invitationId } }",
            json!({ "list": list, "user": user, "role": role }),
        )
        .await["inviteToList"]["invitationId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `user` invited to `list` as `role` by `owner`'s user, and accepting.
    pub async fn join(&self, owner: &str, list: &str, user: &str, role: &str) {
        let id = self.invite(owner, list, user, role).await;
        self.data(
            &self.token(user),
            "mutation($id: ID!) { acceptInvitation(id: $id) { version } }",
            json!({ "id": id }),
        )
        .await;
    }

    /// A task titled `title` made by `token`'s user in `list`; its id.
    pub async fn task_in(&self, token: &str, list: &str, title: &str) -> String {
        self.data(
            token,
            "mutation($title: String!, $list: ID) {
                createTask(input: {title: $title, listId: $list}) { taskId } }",
            json!({ "title": title, "list": list }),
        )
        .await["createTask"]["taskId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates a task and returns its id and version, failing on any error.
    pub async fn create_task(&self, token: &str, title: &str) -> (String, i64) {
        let body = self
            .graphql(
                Some(token),
                "mutation($title: String!) { createTask(input: {title: $title}) { taskId version } }",
                json!({ "title": title }),
            )
            .await;
        assert_no_errors(&body);
        let result = &body["data"]["createTask"];
        (
            result["taskId"].as_str().unwrap().to_owned(),
            result["version"].as_i64().unwrap(),
        )
    }

    /// The task as the `task` query shows it to `token`'s user.
    /// Completes task `id` as `token`'s user; the answer has no errors.
    pub async fn complete_task(&self, token: &str, id: &str) {
        let body = self
            .graphql(
                Some(token),
                "mutation($id: ID!) { completeTask(id: $id) { version } }",
                json!({ "id": id }),
            )
            .await;
        assert_no_errors(&body);
    }

    pub async fn task(&self, token: &str, id: &str) -> Value {
        let body = self
            .graphql(
                Some(token),
                "query($id: ID!) { task(id: $id) { id title description status completed version } }",
                json!({ "id": id }),
            )
            .await;
        assert_no_errors(&body);
        body["data"]["task"].clone()
    }

    /// Waits until `token`'s view of task `id` reaches `version`.
    pub async fn task_at_version(&self, token: &str, id: &str, version: i64) -> Value {
        eventually(Duration::from_secs(15), || async {
            let task = self.task(token, id).await;
            (task["version"].as_i64() == Some(version)).then_some(task)
        })
        .await
        .unwrap_or_else(|| panic!("task {id} never reached version {version} in the read model"))
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Every task id a `tasks` query lists (`arguments`: filter, search,
    /// orderBy), page by page: forwards with `first`/`after`, or backwards
    /// from the end with `last`/`before`; in the listing's order either way.
    pub async fn all_task_ids(
        &self,
        token: &str,
        arguments: Value,
        page_size: i64,
        backwards: bool,
    ) -> Vec<String> {
        let query = "query($filter: TaskFilter, $search: TaskSearch, $orderBy: TaskOrder,
                           $first: Int, $after: String, $last: Int, $before: String) {
            tasks(filter: $filter, search: $search, orderBy: $orderBy,
                  first: $first, after: $after, last: $last, before: $before) {
              nodes { id } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";
        let (size, cursor_name, more, next) = if backwards {
            ("last", "before", "hasPreviousPage", "startCursor")
        } else {
            ("first", "after", "hasNextPage", "endCursor")
        };
        let mut pages: Vec<Vec<String>> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut variables = arguments.clone();
            variables[size] = json!(page_size);
            variables[cursor_name] = json!(cursor);
            let body = self.graphql(Some(token), query, variables).await;
            assert_no_errors(&body);
            let page = &body["data"]["tasks"];
            pages.push(
                page["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n["id"].as_str().unwrap().to_owned())
                    .collect(),
            );
            if page["pageInfo"][more] == false {
                break;
            }
            assert!(pages.len() < 1000, "paging does not end");
            cursor = page["pageInfo"][next].as_str().map(str::to_owned);
        }
        if backwards {
            pages.reverse();
        }
        pages.concat()
    }

    pub fn kafka(&self) -> KafkaSettings {
        self.settings.common.kafka()
    }
}

pub fn assert_no_errors(body: &Value) {
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
}

/// The `extensions.code` of the first error, if any.
pub fn error_code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}

/// Polls `check` until it yields a value or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A message as read back from a topic.
pub struct Received {
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
    pub value: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.value).expect("a JSON message")
    }

    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads `topic` from the beginning with a new consumer group until `done`
/// says enough has arrived, or `timeout` passes.
pub async fn read_topic(
    kafka: &KafkaSettings,
    topic: &str,
    timeout: Duration,
    done: impl Fn(&[Received]) -> bool,
) -> Vec<Received> {
    let deadline = tokio::time::Instant::now() + timeout;
    // A group that subscribes to a topic the broker does not know yet (a
    // broker that restarted empty, before the relay creates it again) learns
    // of it only at its next metadata refresh, minutes later: wait for it.
    while !matches!(kafka.partition_count(topic).await, Ok(Some(_)))
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let consumer: KafkaConsumer = kafka
        .consumer(&format!("reader-{}", Uuid::new_v4()))
        .expect("a consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut received = Vec::new();
    while !done(&received) {
        let next = tokio::time::timeout_at(deadline, consumer.recv()).await;
        let Ok(message) = next else { break };
        let message: OwnedMessage = match message {
            Ok(message) => message.detach(),
            // A topic the broker does not know yet (a broker that restarted
            // empty): the reader waits for it, as a consumer would.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        received.push(Received {
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            headers,
            value: message.payload().unwrap_or_default().to_vec(),
        });
    }
    // Closing a consumer leaves its group, which waits on the broker: off the
    // test's runtime, so a broker that went away cannot stall the app under test.
    std::thread::spawn(move || drop(consumer));
    received
}

/// The oracle of the crash tests: every way the read models disagree with the
/// event store. The task list must hold every task at the last sequence the
/// store holds for it; every completion that names a next occurrence must have
/// had it created; each user's events counted alike on both sides. Empty
/// when they agree.
/// Waits, up to `within`, until the read model equals the event store; how
/// long it took. Otherwise fails, naming the first disagreements and what
/// happened before (`after`).
pub async fn read_model_caught_up(pool: &PgPool, within: Duration, after: &str) -> Duration {
    let started = Instant::now();
    let agreed = eventually(within, || async {
        read_model_disagreements(pool)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    if agreed.is_none() {
        let disagreements = read_model_disagreements(pool).await;
        panic!(
            "after {after}: {} disagreements with the event store after {within:?}, first: {:?}",
            disagreements.len(),
            &disagreements[..disagreements.len().min(5)]
        );
    }
    started.elapsed()
}

pub async fn read_model_disagreements(pool: &PgPool) -> Vec<String> {
    let mut found: Vec<String> = sqlx::query_scalar(
        "SELECT format('task %s: event store at %s, task list at %s', e.id, e.last, t.version)
           FROM (SELECT aggregate_id AS id, max(sequence) AS last FROM events
                  WHERE aggregate_type = 'Task' GROUP BY aggregate_id) e
           LEFT JOIN task_list t ON t.id::text = e.id
          WHERE t.version IS DISTINCT FROM e.last
            -- A task with an erased writer's events is kept by no read model.
            AND NOT EXISTS (SELECT 1 FROM task_list_gone g WHERE g.id::text = e.id AND t.id IS NULL)
          ORDER BY e.id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let missing: Vec<String> = sqlx::query_scalar(
        "SELECT format('completion of %s names next occurrence %s, which was never created',
                       c.aggregate_id, c.payload->'TaskCompleted'->'next_occurrence'->>'task_id')
           FROM events c
          WHERE c.event_type = 'TaskCompleted'
            AND c.payload->'TaskCompleted'->'next_occurrence'->>'task_id' IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM events n
                             WHERE n.aggregate_id = c.payload->'TaskCompleted'->'next_occurrence'->>'task_id')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    found.extend(missing);
    // Each user's events as the store counts them and as the task list
    // applied them (what a read of the user's own writes compares).
    let counts: Vec<String> = sqlx::query_scalar(
        "SELECT format('user %s: the event store counts %s of their events, the task list applied %s',
                       user_id, coalesce(w.events, 0), coalesce(s.events, 0))
           FROM (SELECT user_id, user_events_stored(user_id, 1000000000) AS events
                   FROM (SELECT user_id FROM user_writes
                         UNION SELECT metadata ->> 'user_id' FROM events WHERE aggregate_type = 'Task') u) w
                FULL JOIN task_stats s USING (user_id)
          WHERE coalesce(w.events, 0) <> coalesce(s.events, 0)
          ORDER BY user_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    found.extend(counts);
    found
}

/// `taskledger ROLE` as a process of its own (to be killed by a test), on the
/// test's database, topic and consumer groups, serving its probes on a port
/// of its own.
pub fn spawn_role_process(settings: &Settings, role: &str) -> tokio::process::Child {
    role_process(settings, role)
        .spawn()
        .expect("the taskledger binary starts")
}

/// The command [`spawn_role_process`] runs, to adjust before spawning.
pub fn role_process(settings: &Settings, role: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_taskledger"));
    command
        .arg(role)
        .env("TASKLEDGER_ENV", "local")
        .env(
            "DATABASE_URL",
            settings.common.database_url.as_deref().unwrap(),
        )
        .env("KAFKA_BROKERS", &settings.common.kafka_brokers)
        .env(
            "TASKLEDGER_TASK_EVENTS_TOPIC",
            &settings.common.task_events_topic,
        )
        .env(
            "TASKLEDGER_REMINDERS_TOPIC",
            &settings.common.reminders_topic,
        )
        .env(
            "TASKLEDGER_TASK_UPDATES_TOPIC",
            &settings.common.task_updates_topic,
        )
        .env(
            "TASKLEDGER_CONSUMER_GROUP_PREFIX",
            settings
                .common
                .consumer_group_prefix
                .as_deref()
                .unwrap_or("taskledger"),
        )
        .env("TASKLEDGER_HTTP_ADDR", "127.0.0.1:0")
        .env(
            "TASKLEDGER_ERASURE_LEDGER",
            settings.common.erasure_ledger.as_deref().unwrap(),
        )
        .env(
            "TASKLEDGER_TASK_EVENTS_PARTITIONS",
            settings.common.task_events_partitions.to_string(),
        )
        .env(
            "TASKLEDGER_PROJECTION_LEASE_SECS",
            settings.common.projection_lease_secs.to_string(),
        )
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    // A secured broker's settings (tests/api/secured.rs), each only when set.
    let common = &settings.common;
    for (name, value) in [
        ("KAFKA_SECURITY_PROTOCOL", &common.kafka_security_protocol),
        ("KAFKA_SASL_MECHANISM", &common.kafka_sasl_mechanism),
        ("KAFKA_SASL_USERNAME", &common.kafka_sasl_username),
        ("KAFKA_SASL_PASSWORD", &common.kafka_sasl_password),
        ("KAFKA_SSL_CA_LOCATION", &common.kafka_ssl_ca_location),
    ] {
        if let Some(value) = value {
            command.env(name, value);
        }
    }
    command
}

/// The broker binary (`taskledger-broker`, the workspace's `broker` package):
/// where `./dev` says, or beside this test binary's directory in the same
/// target directory.
pub fn broker_binary() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("TASKLEDGER_BROKER_BIN") {
        return path.into();
    }
    let test_binary = std::env::current_exe().expect("the test binary's path");
    test_binary
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/deps")
        .join("taskledger-broker")
}

/// A free local address, `127.0.0.1:PORT`, for a process to listen on.
pub fn free_address() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().to_string()
}

/// Starts `taskledger api` on `address`, and waits until it answers.
pub async fn start_api(settings: &Settings, address: &str) -> tokio::process::Child {
    let mut command = role_process(settings, "api");
    command.env("TASKLEDGER_HTTP_ADDR", address);
    // The per-user limits and the read-your-writes wait as the in-process
    // app has them (fresh_settings, or what a test set).
    for (name, value) in [
        (
            "TASKLEDGER_USER_RATE_PER_SECOND",
            settings.api.user_rate_per_second.to_string(),
        ),
        (
            "TASKLEDGER_USER_RATE_BURST",
            settings.api.user_rate_burst.to_string(),
        ),
        (
            "TASKLEDGER_USER_IN_FLIGHT",
            settings.api.user_in_flight.to_string(),
        ),
        (
            "TASKLEDGER_READ_YOUR_WRITES_WAIT_MS",
            settings.api.read_your_writes_wait_ms.to_string(),
        ),
    ] {
        command.env(name, value);
    }
    let api = command.spawn().expect("the API starts");
    let client = reqwest::Client::new();
    eventually(Duration::from_secs(30), || async {
        let answer = client.get(format!("http://{address}/readyz")).send().await;
        answer.is_ok_and(|r| r.status() == 200).then_some(())
    })
    .await
    .expect("the API answers");
    api
}

/// `POST /graphql` at `address` (any API process) as `token`, with an
/// optional consistency token: the status, the body and the token the answer
/// carries in its header.
pub async fn graphql_at(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    query: &str,
    variables: Value,
    carried: Option<&str>,
) -> (reqwest::StatusCode, Value, Option<String>) {
    let mut request = client
        .post(format!("{address}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(carried) = carried {
        request = request.header(api_core::consistency::HEADER, carried);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status();
    let answered = response
        .headers()
        .get(api_core::consistency::HEADER)
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.expect("JSON"), answered)
}

/// The repository's root as the test runner gives it (the directory of the
/// package under test), falling back to where it was compiled: a build
/// reused from another checkout must read this checkout's files.
pub fn repository_root() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}

/// The body of a `GET` of `url`, as text.
pub async fn text_at(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// The value of counter `series` (its name and labels as `/metrics` prints
/// them, `name{label="value"}`) on the process at `address`; 0 before it
/// counts anything.
pub async fn counter_at(client: &reqwest::Client, address: &str, series: &str) -> u64 {
    let metrics = text_at(client, &format!("{address}/metrics")).await;
    let prefix = format!("{series} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Ends the Postgres sessions of this test's database that listen on
/// `channel`, once there is one; how many it ended.
pub async fn end_listeners(pool: &PgPool, channel: &str) -> i64 {
    eventually(Duration::from_secs(10), || async {
        let ended: i64 = sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()
                AND query LIKE 'LISTEN %' AND query LIKE '%' || $1 || '%'",
        )
        .bind(channel)
        .fetch_one(pool)
        .await
        .unwrap();
        (ended > 0).then_some(ended)
    })
    .await
    .unwrap_or_else(|| panic!("no session listens on {channel}"))
}
