//! Your own writes at every door, through two API processes: `taskledger
//! all` and a second `taskledger api` on the same database, with each
//! sequence's write sent to one and its read to the other (the token from
//! the write passed back, as a client behind a load balancer would; MCP
//! passes nothing). While a background load of `createTask` keeps the
//! projection busy:
//!
//! 1. GraphQL `createTask` then at once `tasks { totalCount }`;
//! 2. MCP `add_tasks` then at once `find_tasks` (the official SDK's client);
//! 3. MCP `complete_task` then at once `task_overview`.
//!
//! Each read must show the write (the count it reads must include it). Beside
//! them, in the same run: the same reads by callers without recent writes,
//! and the projection's lag at that load (a background task's answer to its
//! row in the task list).
//!
//! Run with `./dev bench own-writes`; `--help` for the knobs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::chart::{BarChart, ChartsDir};
use benches::{bench_token, visible_after, ChildApp, Latencies, Services};
use clap::Parser;
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Write then read at once, per door, through two API processes")]
struct Args {
    /// Sequences of write-then-read per door.
    #[arg(long, default_value_t = 1000)]
    sequences: usize,
    /// Clients per door, each one sequence at a time, each its own user.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Background createTask/s while the doors run (0: idle).
    #[arg(long, default_value_t = 100)]
    background: u64,
    #[command(flatten)]
    services: Services,
    #[command(flatten)]
    charts: ChartsDir,
}

type McpClient = RunningService<RoleClient, ()>;

const COUNT: &str = "{ tasks(first: 1) { totalCount } }";
const HEADER: &str = "taskledger-consistency";

/// What one door's sequences came to.
#[derive(Default)]
struct Door {
    shown: u64,
    missed: u64,
    failed: u64,
    /// The read right after each write.
    reads: Latencies,
    /// The same read by a caller with no recent write.
    others: Latencies,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    infra::tls::install_crypto_provider();
    let args = Args::parse();
    let app = ChildApp::start(&args.services, &[]).await?;
    let chart = app.with(async |app| measure(&args, app).await).await?;
    args.charts.write(&[("own-writes", &chart)]).map(drop)
}

async fn measure(args: &Args, app: &ChildApp) -> anyhow::Result<BarChart> {
    let (second, _api) = app.api_beside(&args.services).await?;
    let doors = Arc::new([
        format!("http://{}", app.address),
        format!("http://{second}"),
    ]);
    println!("# Your own writes: `taskledger all` and `taskledger api` (release, processes of their own)");
    println!(
        "# {} sequences per door by {} clients, write on one process and read on the other; background {} createTask/s",
        args.sequences, args.clients, args.background
    );

    let pool = sqlx::PgPool::connect(&app.database.url).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let lag = Arc::new(tokio::sync::Mutex::new(Latencies::default()));
    let background = background_load(
        doors[0].clone(),
        args.background,
        pool.clone(),
        stop.clone(),
        lag.clone(),
    );

    let per_client = args.sequences.div_ceil(args.clients);
    let graphql = run_door(args.clients, {
        let doors = doors.clone();
        move |c| graphql_sequences(doors.clone(), c, per_client)
    })
    .await;
    let mcp_find = run_door(args.clients, {
        let doors = doors.clone();
        move |c| mcp_sequences(doors.clone(), c, per_client, Tools::AddFind)
    })
    .await;
    let mcp_overview = run_door(args.clients, {
        let doors = doors.clone();
        move |c| mcp_sequences(doors.clone(), c, per_client, Tools::CompleteOverview)
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    background.await?;
    let lag = lag.lock().await;

    println!();
    println!("| door: write, then read at once | reads that showed the write | failed | read after a write p50 / p99 (ms) | same read, no recent write p50 / p99 (ms) |");
    println!("|---|---:|---:|---:|---:|");
    let mut chart = BarChart::new(
        "Reads right after one's own write, beside reads without one (ms)",
        "ms",
    );
    for (name, door) in [
        ("GraphQL createTask → tasks", &graphql),
        ("MCP add_tasks → find_tasks", &mcp_find),
        ("MCP complete_task → task_overview", &mcp_overview),
    ] {
        println!(
            "| {name} | {} of {} | {} | {:.1} / {:.1} | {:.1} / {:.1} |",
            door.shown,
            door.shown + door.missed,
            door.failed,
            door.reads.millis(0.5),
            door.reads.millis(0.99),
            door.others.millis(0.5),
            door.others.millis(0.99),
        );
        chart = chart
            .quantiles(format!("{name}, after a write"), &door.reads)
            .quantiles(format!("{name}, no recent write"), &door.others);
    }
    println!();
    println!(
        "Projection lag at this load (a background createTask's answer to its row in the task list): p50 {:.1} ms, p99 {:.1} ms over {} tasks.",
        lag.millis(0.5),
        lag.millis(0.99),
        lag.count()
    );
    Ok(chart.quantiles("projection lag", &lag))
}

/// `rate` createTask/s on `door` by a user of its own until `stop`, each
/// task's lag (answer to row) recorded.
fn background_load(
    door: String,
    rate: u64,
    pool: sqlx::PgPool,
    stop: Arc<AtomicBool>,
    lag: Arc<tokio::sync::Mutex<Latencies>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if rate == 0 {
            return;
        }
        let client = reqwest::Client::new();
        let token = bench_token("background").expect("a user name");
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        let sampled = Arc::new(AtomicU64::new(0));
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let (client, door, token, pool, lag, sampled) = (
                client.clone(),
                door.clone(),
                token.clone(),
                pool.clone(),
                lag.clone(),
                sampled.clone(),
            );
            tokio::spawn(async move {
                let Ok((body, _)) = post(
                    &client,
                    &door,
                    &token,
                    "mutation { createTask(input: {title: \"noise\"}) { taskId } }",
                    None,
                )
                .await
                else {
                    return;
                };
                let answered = Instant::now();
                // Every tenth task's lag: polling each would load Postgres.
                if sampled.fetch_add(1, Ordering::Relaxed) % 10 != 0 {
                    return;
                }
                let Some(id) = body["data"]["createTask"]["taskId"]
                    .as_str()
                    .and_then(|id| id.parse().ok())
                else {
                    return;
                };
                if let Ok(Some(after)) = visible_after(
                    &pool,
                    id,
                    answered,
                    Duration::from_millis(2),
                    Duration::from_secs(10),
                )
                .await
                {
                    lag.lock().await.record(after);
                }
            });
        }
    })
}

/// `clients` clients running their sequences at once, merged.
async fn run_door<F, Fut>(clients: usize, client: F) -> Door
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Door> + Send + 'static,
{
    let running: Vec<_> = (0..clients).map(|c| tokio::spawn(client(c))).collect();
    let mut all = Door::default();
    for door in futures::future::join_all(running).await {
        let door = door.expect("a client's sequences");
        all.shown += door.shown;
        all.missed += door.missed;
        all.failed += door.failed;
        all.reads.merge(&door.reads);
        all.others.merge(&door.others);
    }
    all
}

/// One GraphQL request with an optional carried token: the body and the
/// token the answer carries.
async fn post(
    client: &reqwest::Client,
    door: &str,
    token: &str,
    query: &str,
    carried: Option<&str>,
) -> Result<(Value, Option<String>), String> {
    let mut request = client
        .post(format!("{door}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query }));
    if let Some(carried) = carried {
        request = request.header(HEADER, carried);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let answered = response
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if body.get("errors").is_some() {
        return Err(body.to_string());
    }
    Ok((body, answered))
}

/// Client `c`: `count` times createTask on one process, then at once the
/// count on the other with the token; then the same read as a user who
/// never writes.
async fn graphql_sequences(doors: Arc<[String; 2]>, c: usize, count: usize) -> Door {
    let client = reqwest::Client::new();
    let writer = bench_token(&format!("graphql{c}")).expect("a user name");
    let reader = bench_token(&format!("graphql-reader{c}")).expect("a user name");
    let mut door = Door::default();
    for n in 0..count {
        let (write_to, read_from) = (&doors[n % 2], &doors[(n + 1) % 2]);
        let Ok((_, token)) = post(
            &client,
            write_to,
            &writer,
            "mutation { createTask(input: {title: \"mine\"}) { taskId } }",
            None,
        )
        .await
        else {
            door.failed += 1;
            continue;
        };
        let started = Instant::now();
        match post(&client, read_from, &writer, COUNT, token.as_deref()).await {
            Ok((body, _)) => {
                door.reads.record(started.elapsed());
                if body["data"]["tasks"]["totalCount"].as_u64()
                    == Some((n + 1 - door.failed as usize) as u64)
                {
                    door.shown += 1;
                } else {
                    door.missed += 1;
                }
            }
            Err(_) => door.failed += 1,
        }
        let started = Instant::now();
        if post(&client, read_from, &reader, COUNT, None).await.is_ok() {
            door.others.record(started.elapsed());
        }
    }
    door
}

#[derive(Clone, Copy)]
enum Tools {
    AddFind,
    CompleteOverview,
}

async fn mcp_client(door: &str, user: &str) -> Option<McpClient> {
    let token = bench_token(user).ok()?;
    let config =
        StreamableHttpClientTransportConfig::with_uri(format!("{door}/mcp")).auth_header(token);
    ().serve_with_lifecycle(
        StreamableHttpClientTransport::from_config(config),
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    )
    .await
    .ok()
}

async fn tool(client: &McpClient, name: &str, arguments: Value) -> Result<Value, String> {
    let result = client
        .call_tool(
            CallToolRequestParams::new(name.to_owned())
                .with_arguments(arguments.as_object().cloned().unwrap_or_default()),
        )
        .await
        .map_err(|e| e.to_string())?;
    let value = result.structured_content.unwrap_or_default();
    if result.is_error == Some(true) {
        return Err(value.to_string());
    }
    Ok(value)
}

/// Client `c` over MCP, an SDK client on each process: `count` times a
/// write on one and at once a read on the other (nothing passed between
/// them), then the same read as a user who never writes.
async fn mcp_sequences(doors: Arc<[String; 2]>, c: usize, count: usize, tools: Tools) -> Door {
    let mut door = Door::default();
    let (user, reader) = match tools {
        Tools::AddFind => (format!("agent{c}"), format!("agent-reader{c}")),
        Tools::CompleteOverview => (format!("closer{c}"), format!("closer-reader{c}")),
    };
    let (Some(a), Some(b), Some(other)) = (
        mcp_client(&doors[0], &user).await,
        mcp_client(&doors[1], &user).await,
        mcp_client(&doors[1], &reader).await,
    ) else {
        door.failed = count as u64;
        return door;
    };
    let clients = [a, b];
    // complete_task needs tasks to complete: added first, not measured.
    let mut open = Vec::new();
    if let Tools::CompleteOverview = tools {
        for _ in 0..count {
            match tool(
                &clients[0],
                "add_tasks",
                json!({ "tasks": [{ "title": "to close" }] }),
            )
            .await
            {
                Ok(added) => open.push(
                    added["tasks"][0]["taskId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ),
                Err(_) => door.failed += 1,
            }
        }
    }
    let mut done = 0u64;
    for n in 0..count {
        let (writer, reader_client) = (&clients[n % 2], &clients[(n + 1) % 2]);
        let (write, read, read_args) = match tools {
            Tools::AddFind => (
                tool(
                    writer,
                    "add_tasks",
                    json!({ "tasks": [{ "text": "water the plants tomorrow 9am #home" }] }),
                )
                .await,
                "find_tasks",
                json!({ "first": 1 }),
            ),
            Tools::CompleteOverview => {
                let Some(id) = open.get(n) else { break };
                (
                    tool(writer, "complete_task", json!({ "id": id })).await,
                    "task_overview",
                    json!({}),
                )
            }
        };
        if write.is_err() {
            door.failed += 1;
            continue;
        }
        done += 1;
        let started = Instant::now();
        match tool(reader_client, read, read_args.clone()).await {
            Ok(answer) => {
                door.reads.record(started.elapsed());
                let seen = match tools {
                    Tools::AddFind => answer["tasks"]["totalCount"].as_u64(),
                    Tools::CompleteOverview => answer["taskStats"]["completed"].as_u64(),
                };
                if seen == Some(done) {
                    door.shown += 1;
                } else {
                    door.missed += 1;
                }
            }
            Err(_) => door.failed += 1,
        }
        let started = Instant::now();
        if tool(&other, read, read_args).await.is_ok() {
            door.others.record(started.elapsed());
        }
    }
    door
}
