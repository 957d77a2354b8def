//! The live benchmark: what users of the live surfaces wait for, over real
//! WebSocket clients, against `taskledger all` (the release binary, a process
//! of its own, so its memory is its own).
//!
//! 1. Commit → subscriber: `createTask` open-loop at each rate, spread over
//!    20 users, each with a `taskChanges` subscriber; the time from the
//!    mutation's answer (its commit acknowledged) to the subscriber's receipt.
//!    Beside it, measured in the same run on the same broker: one bare broker
//!    hop (produce → an assigned consumer receives), the floor of each of the
//!    two hops on the path (task-events, task-updates).
//! 2. Many subscribers: 1,000 users, one socket each holding 10 `taskChanges`
//!    subscriptions; resident memory per idle subscriber, then push latency at
//!    100 changes/s (every subscriber of the changed task's user counts).
//! 3. Reminders: N reminders due within one minute, spread evenly, while
//!    100 other `createTask`/s run; lateness = receipt by the owner's
//!    `notificationReceived` subscriber − `remindAt`, and how many arrived.
//!
//! Run with `./dev bench live`; `--help` for the knobs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use benches::chart::{BarChart, ChartsDir, LineChart};
use benches::{bench_token, graphql, run_seconds, ChildApp, Latencies, Services};
use chrono::{DateTime, Utc};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use infra::kafka::KafkaSettings;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(
    about = "Live benchmark: commit-to-subscriber latency, many subscribers, reminder lateness"
)]
struct Args {
    /// Offered createTask rates of phase 1, comma-separated.
    #[arg(long, default_value = "100,1000", value_delimiter = ',')]
    rates: Vec<u64>,
    /// Seconds each rate of phase 1 runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Users of phase 2, one socket each.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Subscriptions per socket in phase 2.
    #[arg(long, default_value_t = 10)]
    per_user: usize,
    /// Reminders due within one minute in phase 3.
    #[arg(long, default_value_t = 10_000)]
    reminders: usize,
    #[command(flatten)]
    services: Services,
    #[command(flatten)]
    charts: ChartsDir,
}

const CREATE: &str = "mutation($t: String!) { createTask(input: {title: $t}) { taskId } }";
const CREATE_REMINDED: &str = "mutation($t: String!, $at: DateTime!) {
    createTask(input: {title: $t, reminders: [{at: $at}]}) { taskId } }";
const CHANGES: &str = "subscription { taskChanges { taskId version } }";
const NOTIFICATIONS: &str = "subscription { notificationReceived { id remindAt } }";
/// Requests the load generator keeps waiting at once.
const MAX_IN_FLIGHT: usize = 256;

/// What every socket of the run heard: per task, when each subscriber got it;
/// per notification, when it arrived (by both clocks) and when it was due.
#[derive(Default)]
struct Heard {
    changes: HashMap<String, Vec<Instant>>,
    notifications: HashMap<String, (Instant, DateTime<Utc>, DateTime<Utc>)>,
}

type Shared = Arc<Mutex<Heard>>;

/// One `graphql-transport-ws` socket, its reads recorded into `heard`.
struct Socket {
    sink: futures::stream::SplitSink<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        Message,
    >,
}

impl Socket {
    async fn open(address: &str, token: &str, heard: Shared) -> anyhow::Result<Self> {
        let mut request = format!("ws://{address}/graphql/ws").into_client_request()?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        let (mut sink, mut stream) = socket.split();
        let init = json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}});
        sink.send(Message::Text(init.to_string().into())).await?;
        match stream.next().await {
            Some(Ok(Message::Text(text))) if text.contains("connection_ack") => {}
            other => bail!("no connection_ack: {other:?}"),
        }
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let at = Instant::now();
                let now = Utc::now();
                let Ok(message) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                let data = &message["payload"]["data"];
                let mut heard = heard.lock().unwrap();
                if let Some(task) = data["taskChanges"]["taskId"].as_str() {
                    heard.changes.entry(task.to_owned()).or_default().push(at);
                } else if let Some(id) = data["notificationReceived"]["id"].as_str() {
                    let due = data["notificationReceived"]["remindAt"]
                        .as_str()
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&Utc))
                        .unwrap_or(now);
                    heard
                        .notifications
                        .entry(id.to_owned())
                        .or_insert((at, now, due));
                }
            }
        });
        Ok(Self { sink })
    }

    async fn close(mut self) -> anyhow::Result<()> {
        self.sink.send(Message::Close(None)).await?;
        Ok(())
    }

    async fn subscribe(&mut self, id: &str, query: &str) -> anyhow::Result<()> {
        let message = json!({"id": id, "type": "subscribe", "payload": {"query": query}});
        self.sink
            .send(Message::Text(message.to_string().into()))
            .await?;
        Ok(())
    }
}

/// `count` createTask requests, one every 1/rate s, by `tokens` in turn;
/// `vars(n)` gives each its variables. Answers each task's id and when its
/// answer arrived (the commit acknowledged), and the failures.
async fn create_tasks(
    client: &reqwest::Client,
    url: &str,
    tokens: &[String],
    rate: u64,
    count: usize,
    query: &'static str,
    vars: impl Fn(usize) -> Value,
) -> (Vec<(String, Instant)>, u64) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let answers = Arc::new(Mutex::new((Vec::with_capacity(count), 0u64)));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..count {
        tick.tick().await;
        let permit = permits.clone().acquire_owned().await.unwrap();
        let (client, url, token) = (
            client.clone(),
            url.to_owned(),
            tokens[n % tokens.len()].clone(),
        );
        let (answers, variables) = (answers.clone(), vars(n));
        requests.spawn(async move {
            let answer = graphql(&client, &url, &token, query, variables).await;
            let at = Instant::now();
            let mut answers = answers.lock().unwrap();
            match answer.ok().and_then(|body| {
                body["data"]["createTask"]["taskId"]
                    .as_str()
                    .map(str::to_owned)
            }) {
                Some(id) => answers.0.push((id, at)),
                None => answers.1 += 1,
            }
            drop(permit);
        });
    }
    while requests.join_next().await.is_some() {}
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    answers
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    infra::tls::install_crypto_provider();
    let args = Args::parse();
    let env = [("TASKLEDGER_MAX_CONNECTIONS", "8192".to_owned())];
    let app = ChildApp::start(&args.services, &env).await?;
    app.with(async |app| measure(&args, app).await).await
}

async fn measure(args: &Args, app: &ChildApp) -> anyhow::Result<()> {
    let (address, run) = (app.address.as_str(), app.database.run.as_str());
    let url = app.graphql_url();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .build()?;

    println!(
        "# Live surfaces: `taskledger all` (release, its own process), real WebSocket clients"
    );
    println!();
    let mut lag = LineChart::over_run("Live surfaces: commit → subscriber per second", "ms")
        .phase(run_seconds(Instant::now()), "bare broker hop");
    let floor = broker_hop(&args.services, run).await?;
    println!(
        "Floor, one bare broker hop (produce → assigned consumer) at 100 msg/s: p50 {:.1} ms, p99 {:.1} ms; \
         the path crosses two (task-events, task-updates).",
        floor.millis(0.5),
        floor.millis(0.99)
    );
    println!();
    // Each phase's deliveries: its line, its bars, the latencies.
    let mut deliveries = vec![(
        "broker hop (floor)",
        "bare broker hop (floor)".to_owned(),
        floor,
    )];

    // 1. Commit → subscriber.
    let heard: Shared = Arc::default();
    let users: Vec<String> = (0..20)
        .map(|n| bench_token(&format!("writer-{n}")))
        .collect::<Result<_, _>>()?;
    let mut sockets = Vec::new();
    for user in &users {
        let mut socket = Socket::open(address, user, heard.clone()).await?;
        socket.subscribe("c", CHANGES).await?;
        sockets.push(socket);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("| createTask/s offered | accepted/s | commit → subscriber p50 ms | p99 ms | max ms | received/created |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for &rate in &args.rates {
        let count = (rate * args.seconds) as usize;
        let started = Instant::now();
        lag = lag.phase(run_seconds(started), format!("{rate} createTask/s"));
        let (created, failed) = create_tasks(
            &client,
            &url,
            &users,
            rate,
            count,
            CREATE,
            |n| json!({"t": format!("live {n}")}),
        )
        .await;
        let accepted = created.len() as f64 / started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (latency, received) = latencies(&heard, &created);
        println!(
            "| {rate} | {accepted:.0} | {:.1} | {:.1} | {:.1} | {received}/{} ({failed} failed) |",
            latency.millis(0.5),
            latency.millis(0.99),
            latency.millis(1.0),
            created.len()
        );
        let bars = format!("commit → subscriber at {rate} createTask/s");
        deliveries.push(("commit → subscriber", bars, latency));
    }
    for socket in sockets {
        socket.close().await?;
    }
    println!();

    // 2. Many subscribers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_kb = app.rss_kb();
    let heard: Shared = Arc::default();
    let tokens: Vec<String> = (0..args.users)
        .map(|n| bench_token(&format!("user-{n}")))
        .collect::<Result<_, _>>()?;
    let mut sockets = Vec::with_capacity(args.users);
    for user in &tokens {
        let mut socket = Socket::open(address, user, heard.clone()).await?;
        for n in 0..args.per_user {
            socket.subscribe(&format!("c{n}"), CHANGES).await?;
        }
        sockets.push(socket);
    }
    let subscribers = args.users * args.per_user;
    let held = wait_for_subscriptions(&client, address, subscribers).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_kb = app.rss_kb();
    let per_subscriber = (after_kb.saturating_sub(before_kb) * 1024) as f64 / subscribers as f64;
    lag = lag.phase(
        run_seconds(Instant::now()),
        format!("{subscribers} subscribers"),
    );
    let (created, failed) = create_tasks(
        &client,
        &url,
        &tokens,
        100,
        1000,
        CREATE,
        |n| json!({"t": format!("fan-out {n}")}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (latency, received) = latencies(&heard, &created);
    println!(
        "{held} subscriptions held on {} sockets ({} users): resident memory {} → {} MB, {:.1} KiB per idle subscriber (socket included).",
        args.users,
        args.users,
        before_kb / 1024,
        after_kb / 1024,
        per_subscriber / 1024.0
    );
    println!(
        "At 100 changes/s: push p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {received} of {} deliveries ({failed} writes failed).",
        latency.millis(0.5),
        latency.millis(0.99),
        latency.millis(1.0),
        created.len() * args.per_user
    );
    println!();
    let bars = format!("push to {subscribers} subscribers at 100 changes/s");
    deliveries.push(("fan-out push", bars, latency));

    // 3. Reminders due within one minute, under other load.
    for socket in &mut sockets {
        socket.subscribe("n", NOTIFICATIONS).await?;
    }
    let first = Utc::now() + chrono::Duration::seconds(45);
    let spacing = 60_000.0 / args.reminders as f64;
    let remind_at = move |n: usize| {
        first + chrono::Duration::microseconds((n as f64 * spacing * 1000.0) as i64)
    };
    let (created, failed) = create_tasks(
        &client,
        &url,
        &tokens,
        1000,
        args.reminders,
        CREATE_REMINDED,
        |n| json!({"t": format!("reminder {n}"), "at": remind_at(n).to_rfc3339()}),
    )
    .await;
    if Utc::now() > first {
        bail!("creating the reminders took past the first one's time; offer fewer");
    }
    let background = {
        let (client, url, tokens) = (client.clone(), url.clone(), tokens.clone());
        tokio::spawn(async move {
            create_tasks(
                &client,
                &url,
                &tokens,
                100,
                8000,
                CREATE,
                |n| json!({"t": format!("load {n}")}),
            )
            .await
        })
    };
    let last = remind_at(args.reminders - 1);
    let wait = (last - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(5);
    tokio::time::sleep(wait).await;
    background.abort();
    let heard = std::mem::take(&mut *heard.lock().unwrap());
    let mut lateness = Latencies::default();
    let mut early = 0;
    for (at, received, due) in heard.notifications.values() {
        match (*received - *due).to_std() {
            Ok(late) => lateness.record_at(*at, late),
            Err(_) => early += 1,
        }
    }
    println!(
        "{} reminders due within one minute (under 100 createTask/s of other load): {} received ({failed} not created), \
         {early} before their time; lateness p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms.",
        created.len(),
        heard.notifications.len(),
        lateness.millis(0.5),
        lateness.millis(0.99),
        lateness.millis(1.0)
    );
    drop(sockets);
    let summary = BarChart::new("Live surfaces: latency beside one bare broker hop", "ms");
    let (lag, summary) =
        deliveries
            .iter()
            .fold((lag, summary), |(lag, summary), (line, bars, latency)| {
                (
                    lag.latencies(line, latency),
                    summary.quantiles(bars, latency),
                )
            });
    let reminders = LineChart::over_run(
        "Live surfaces: reminder lateness per second of receipt",
        "ms late",
    )
    .latencies("lateness", &lateness);
    args.charts.write(&[
        ("live-lag", &lag),
        ("live-latency", &summary),
        ("live-reminders", &reminders),
    ])?;
    Ok(())
}

/// Per delivery, the time from the creating mutation's answer to the receipt
/// (0 when the change arrived first), and how many deliveries there were.
fn latencies(heard: &Shared, created: &[(String, Instant)]) -> (Latencies, usize) {
    let heard = heard.lock().unwrap();
    let mut latency = Latencies::default();
    let mut received = 0;
    for (task, answered) in created {
        for at in heard
            .changes
            .get(task)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            latency.record_at(*at, at.saturating_duration_since(*answered));
            received += 1;
        }
    }
    (latency, received)
}

/// Waits until the API reports `wanted` subscriptions held (its
/// `taskledger_subscriptions` gauge); answers how many it holds.
async fn wait_for_subscriptions(
    client: &reqwest::Client,
    address: &str,
    wanted: usize,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    loop {
        let metrics = client
            .get(format!("http://{address}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let held = metrics
            .lines()
            .find_map(|line| line.strip_prefix("taskledger_subscriptions "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as usize;
        if held >= wanted || started.elapsed() > Duration::from_secs(60) {
            return Ok(held);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One broker hop, bare: 500 messages at 100/s to a topic of one partition,
/// read by an assigned consumer with the same fetch wait as Taskledger's.
async fn broker_hop(services: &Services, run: &str) -> anyhow::Result<Latencies> {
    let kafka = KafkaSettings {
        brokers: services.brokers.clone(),
        ..KafkaSettings::local()
    };
    let topic = format!("bench-floor-{run}");
    kafka.ensure_topics(&[(topic.as_str(), 1)]).await?;
    let consumer = kafka.consumer(&format!("bench-floor-{run}"))?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(&topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let producer = kafka.producer()?;
    let sent = Arc::new(Mutex::new(HashMap::new()));
    let reader = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut latency = Latencies::default();
            while latency.count() < 500 {
                let Ok(Ok(message)) =
                    tokio::time::timeout(Duration::from_secs(10), consumer.recv()).await
                else {
                    break;
                };
                let key = rdkafka::Message::key(&message)
                    .map(|k| String::from_utf8_lossy(k).into_owned());
                if let Some(at) = key.and_then(|k| sent.lock().unwrap().remove(&k)) {
                    latency.record(Instant::now().duration_since(at));
                }
            }
            latency
        })
    };
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for n in 0..500 {
        tick.tick().await;
        let key = n.to_string();
        sent.lock().unwrap().insert(key.clone(), Instant::now());
        let record: FutureRecord<'_, str, [u8]> =
            FutureRecord::to(&topic).key(key.as_str()).payload(b"x");
        producer.send_all(vec![record]).await?;
    }
    Ok(reader.await?)
}
