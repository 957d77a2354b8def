//! The doors beside GraphQL, each beside its GraphQL baseline in the same run,
//! against `taskledger all` (the release binary, a process of its own):
//!
//! 1. MCP `find_tasks` (the official SDK's client, streamable HTTP) against the
//!    same listing as a GraphQL `tasks` query, and MCP `add_tasks` with
//!    quick-add text against GraphQL `createTask`; closed loop, 8 clients
//!    each, while a background load of `createTask` runs.
//! 2. The calendar feed of a user with N due tasks against a GraphQL listing
//!    of 100 of them.
//! 3. The quick-add parser alone, in this process.
//!
//! Absolute times on a shared 2-core machine are noisy; read the ratios.
//! Run with `./dev bench doors`; `--help` for the knobs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::chart::{BarChart, ChartsDir, LineChart};
use benches::{bench_token, graphql, run_seconds, ChildApp, Latencies, Services};
use chrono::Utc;
use clap::Parser;
use domain::values::TimeZone;
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "MCP, calendar feed and quick add, each beside its GraphQL baseline")]
struct Args {
    /// Seconds each measured phase runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Clients per phase, each one request at a time.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Background createTask/s while the phases run (0: idle).
    #[arg(long, default_value_t = 100)]
    background: u64,
    /// Due tasks in the calendar feed.
    #[arg(long, default_value_t = 2000)]
    feed_tasks: usize,
    #[command(flatten)]
    services: Services,
    #[command(flatten)]
    charts: ChartsDir,
}

const LIST: &str = "query($search: TaskSearch, $first: Int) { tasks(search: $search, first: $first) { \
    totalCount pageInfo { hasNextPage endCursor } nodes { id title description status priority tags \
    dueAt dueDate timeZone recurrence version createdAt updatedAt completedAt nextReminderAt \
    reminders { at minutesBefore firesAt } series { id occurrence } } } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    infra::tls::install_crypto_provider();
    let args = Args::parse();
    let app = ChildApp::start(&args.services, &[]).await?;
    let (graphql_create_p50, latency, throughput) =
        app.with(async |app| measure(&args, app).await).await?;
    quick_add(graphql_create_p50)?;
    args.charts
        .write(&[
            ("doors-latency", &latency),
            ("doors-throughput", &throughput),
        ])
        .map(drop)
}

/// The GraphQL and MCP phases and the calendar feed against `app`: the
/// GraphQL create's p50 (ms), for the parser's share of it, and the charts.
async fn measure(args: &Args, app: &ChildApp) -> anyhow::Result<(f64, LineChart, BarChart)> {
    let base = format!("http://{}", app.address);
    let token = |user: &str| bench_token(user).expect("a valid user name");
    let client = reqwest::Client::new();
    let url = app.graphql_url();

    println!("# Doors beside GraphQL: `taskledger all` (release, its own process)");
    println!(
        "# {} clients per phase, {} s each, background {} createTask/s",
        args.clients, args.seconds, args.background
    );

    // Each client's user has 200 tasks to list.
    for c in 0..args.clients {
        let token = token(&format!("reader{c}"));
        for i in 0..200 {
            let title = format!("Read the {i} report about apples");
            graphql(
                &client,
                &url,
                &token,
                "mutation($t: String!) { createTask(input: {title: $t}) { taskId } }",
                json!({ "t": title }),
            )
            .await
            .map_err(anyhow::Error::msg)?;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let stop_background = Arc::new(AtomicBool::new(false));
    let background = {
        let (client, url, token, stop) = (
            client.clone(),
            url.clone(),
            token("background"),
            stop_background.clone(),
        );
        let rate = args.background;
        tokio::spawn(async move {
            if rate == 0 {
                return;
            }
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let (client, url, token) = (client.clone(), url.clone(), token.clone());
                tokio::spawn(async move {
                    let _ = graphql(
                        &client,
                        &url,
                        &token,
                        "mutation { createTask(input: {title: \"noise\"}) { taskId } }",
                        json!({}),
                    )
                    .await;
                });
            }
        })
    };

    let seconds = Duration::from_secs(args.seconds);
    let readers: Arc<Vec<String>> = Arc::new(
        (0..args.clients)
            .map(|c| token(&format!("reader{c}")))
            .collect(),
    );
    let writers: Arc<Vec<String>> = Arc::new(
        (0..args.clients)
            .map(|c| token(&format!("writer{c}")))
            .collect(),
    );
    let search = json!({ "query": "apples", "mode": "FULL_TEXT" });
    let mut latency = LineChart::over_run("Doors beside GraphQL: latency per second", "ms")
        .phase(run_seconds(Instant::now()), "list 20 of 200 (search)");
    let graphql_list = closed_loop(args.clients, seconds, {
        let (client, url, readers) = (client.clone(), url.clone(), readers.clone());
        move |c| {
            let (client, url, token, search) = (
                client.clone(),
                url.clone(),
                readers[c].clone(),
                search.clone(),
            );
            async move {
                graphql(
                    &client,
                    &url,
                    &token,
                    LIST,
                    json!({ "search": search, "first": 20 }),
                )
                .await
                .map(|_| ())
            }
        }
    })
    .await;
    let mcp_clients =
        futures::future::try_join_all(readers.iter().map(|token| mcp_client(&base, token.clone())))
            .await?;
    let mcp_clients = Arc::new(mcp_clients);
    let mcp_list = closed_loop(args.clients, seconds, {
        let mcp_clients = mcp_clients.clone();
        move |c| {
            let clients = mcp_clients.clone();
            async move {
                call(
                    &clients[c],
                    "find_tasks",
                    json!({ "search": "apples", "first": 20 }),
                )
                .await
            }
        }
    })
    .await;
    latency = latency.phase(run_seconds(Instant::now()), "create");
    let graphql_create = closed_loop(args.clients, seconds, {
        let (client, url, writers) = (client.clone(), url.clone(), writers.clone());
        move |c| {
        let (client, url, token) = (client.clone(), url.clone(), writers[c].clone());
        async move {
            graphql(&client, &url, &token, "mutation { createTask(input: {title: \"pay rent\", priority: HIGH, tags: [\"home\"], dueAt: \"2027-04-01T07:00:00Z\", timeZone: \"Europe/Berlin\", recurrence: \"FREQ=MONTHLY;BYMONTHDAY=1\"}) { taskId } }", json!({}))
                .await
                .map(|_| ())
        }
    }})
    .await;
    let mcp_create = closed_loop(args.clients, seconds, {
        let mcp_clients = mcp_clients.clone();
        move |c| {
        let clients = mcp_clients.clone();
        async move {
            call(&clients[c], "add_tasks", json!({ "tasks": [{ "text": "pay rent every month on the 1st 9am #home !high", "timeZone": "Europe/Berlin" }] })).await
        }
    }})
    .await;

    println!();
    println!("| operation | GraphQL p50 / p99 ms | MCP p50 / p99 ms | MCP ÷ GraphQL p50 / p99 | calls/s GraphQL / MCP |");
    println!("|---|---|---|---|---|");
    for (name, (g, m)) in [
        ("list 20 of 200 (search)", (&graphql_list, &mcp_list)),
        (
            "create (MCP: quick-add text)",
            (&graphql_create, &mcp_create),
        ),
    ] {
        println!(
            "| {name} | {:.1} / {:.1} | {:.1} / {:.1} | {:.2} / {:.2} | {:.0} / {:.0} |",
            g.0.millis(0.5),
            g.0.millis(0.99),
            m.0.millis(0.5),
            m.0.millis(0.99),
            m.0.millis(0.5) / g.0.millis(0.5),
            m.0.millis(0.99) / g.0.millis(0.99),
            g.0.count() as f64 / g.1,
            m.0.count() as f64 / m.1,
        );
        anyhow::ensure!(
            g.2 == 0 && m.2 == 0,
            "{name}: {} GraphQL and {} MCP calls failed",
            g.2,
            m.2
        );
    }

    // The calendar feed of one user with many due tasks.
    let owner = token("calendar");
    let mut inputs = Vec::new();
    for i in 0..args.feed_tasks {
        let due = Utc::now() + chrono::Duration::hours(i as i64 + 1);
        inputs.push(json!({ "title": format!("Due thing {i}"), "dueAt": due, "timeZone": "Europe/Berlin",
            "reminders": [{ "minutesBefore": 15 }], "recurrence": if i % 10 == 0 { Some("FREQ=WEEKLY") } else { None } }));
    }
    futures::future::try_join_all(
        inputs
            .chunks(args.feed_tasks.div_ceil(8).max(1))
            .map(|chunk| {
                let (client, url, owner) = (client.clone(), url.clone(), owner.clone());
                async move {
                    for input in chunk {
                        graphql(
                            &client,
                            &url,
                            &owner,
                            "mutation($i: CreateTaskInput!) { createTask(input: $i) { taskId } }",
                            json!({ "i": input }),
                        )
                        .await
                        .map_err(anyhow::Error::msg)?;
                    }
                    anyhow::Ok(())
                }
            }),
    )
    .await?;
    let feed = graphql(&client, &url, &owner, "{ calendarFeed { url } }", json!({}))
        .await
        .map_err(anyhow::Error::msg)?;
    let feed_url = feed["data"]["calendarFeed"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = Instant::now();
    loop {
        let body = client.get(&feed_url).send().await?.text().await?;
        if body.matches("BEGIN:VTODO").count() >= args.feed_tasks {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the read model did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let size = client.get(&feed_url).send().await?.bytes().await?.len();
    // One client at a time: the feed is read at its owner's expense (4 at once).
    latency = latency.phase(
        run_seconds(Instant::now()),
        format!("calendar feed of {} due tasks", args.feed_tasks),
    );
    let listing = closed_loop(1, seconds, {
        let (client, url, owner) = (client.clone(), url.clone(), owner.clone());
        move |_| {
            let (client, url, owner) = (client.clone(), url.clone(), owner.clone());
            async move {
                graphql(&client, &url, &owner, LIST, json!({ "first": 100 }))
                    .await
                    .map(|_| ())
            }
        }
    })
    .await;
    let calendar = closed_loop(1, seconds, {
        let (client, feed_url) = (client.clone(), feed_url.clone());
        move |_| {
            let (client, feed_url) = (client.clone(), feed_url.clone());
            async move {
                let response = client
                    .get(&feed_url)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(response.status().to_string());
                }
                response
                    .bytes()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    })
    .await;
    println!();
    println!("| read | p50 / p99 ms | per task (p50) |");
    println!("|---|---|---|");
    println!(
        "| GraphQL `tasks(first: 100)` (baseline) | {:.1} / {:.1} | {:.3} ms |",
        listing.0.millis(0.5),
        listing.0.millis(0.99),
        listing.0.millis(0.5) / 100.0
    );
    println!(
        "| calendar feed, {} due tasks, {} KiB | {:.1} / {:.1} | {:.3} ms |",
        args.feed_tasks,
        size / 1024,
        calendar.0.millis(0.5),
        calendar.0.millis(0.99),
        calendar.0.millis(0.5) / args.feed_tasks as f64
    );
    anyhow::ensure!(listing.2 == 0 && calendar.2 == 0, "reads failed");
    stop_background.store(true, Ordering::Relaxed);
    let _ = background.await;

    let latency = latency
        .latencies("GraphQL", &graphql_list.0)
        .latencies("MCP", &mcp_list.0)
        .latencies("GraphQL", &graphql_create.0)
        .latencies("MCP", &mcp_create.0)
        .latencies("GraphQL", &listing.0)
        .latencies("calendar feed", &calendar.0);
    let rate = |phase: &(Latencies, f64, u64)| phase.0.count() as f64 / phase.1;
    let feed = format!("{} due tasks: feed / tasks(first: 100)", args.feed_tasks);
    let throughput = BarChart::new("Doors beside GraphQL: calls per second", "calls/s")
        .series(
            "GraphQL (baseline)",
            [
                ("list 20 of 200 (search)".to_owned(), rate(&graphql_list)),
                ("create".to_owned(), rate(&graphql_create)),
                (feed.clone(), rate(&listing)),
            ],
        )
        .series(
            "MCP",
            [
                ("list 20 of 200 (search)", rate(&mcp_list)),
                ("create", rate(&mcp_create)),
            ],
        )
        .series("calendar feed", [(feed, rate(&calendar))]);
    Ok((graphql_create.0.millis(0.5), latency, throughput))
}

/// The quick-add parser alone, in this process, beside the GraphQL create
/// it feeds.
fn quick_add(graphql_create_p50: f64) -> anyhow::Result<()> {
    let phrases = [
        "pay rent every month on the 1st 9am #home !high",
        "standup every weekday 9:30am remind me 10 min before #work",
        "call mom tomorrow 6pm",
        "dentist next friday at 14 !2",
        "taxes apr 15 #admin/finance remind me 1 day before",
        "water the plants every 2 weeks on mon and thu",
    ];
    let zone = TimeZone::parse("Europe/Berlin")?;
    let now = Utc::now();
    let rounds = 20_000;
    let started = Instant::now();
    for i in 0..rounds {
        let parsed = domain::quick_add::quick_add(phrases[i % phrases.len()], now, zone)?;
        std::hint::black_box(parsed);
    }
    let per_phrase = started.elapsed().as_secs_f64() / rounds as f64;
    println!();
    println!("quick add: {:.1} µs a phrase ({} phrases), beside {:.2} ms for the GraphQL create it feeds (p50): {:.2}% of it",
        per_phrase * 1e6, rounds, graphql_create_p50, per_phrase * 1e3 / graphql_create_p50 * 100.0);
    Ok(())
}

type McpClient = rmcp::service::RunningService<rmcp::service::RoleClient, ()>;

async fn mcp_client(base: &str, token: String) -> anyhow::Result<McpClient> {
    let config =
        StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp")).auth_header(token);
    let client = ()
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_config(config),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await?;
    Ok(client)
}

async fn call(client: &McpClient, tool: &str, arguments: Value) -> Result<(), String> {
    let result = client
        .call_tool(
            CallToolRequestParams::new(tool.to_owned())
                .with_arguments(arguments.as_object().cloned().unwrap_or_default()),
        )
        .await
        .map_err(|e| e.to_string())?;
    if result.is_error == Some(true) {
        return Err(format!("{:?}", result.structured_content));
    }
    Ok(())
}

/// `clients` loops of `operation`, each one call at a time, for `duration`:
/// the latencies, the seconds measured and the failures.
async fn closed_loop<F, Fut>(
    clients: usize,
    duration: Duration,
    operation: F,
) -> (Latencies, f64, u64)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let started = Instant::now();
    let loops = (0..clients).map(|c| {
        let operation = operation.clone();
        tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut failures = 0;
            while started.elapsed() < duration {
                let call = Instant::now();
                match operation(c).await {
                    Ok(()) => latencies.record(call.elapsed()),
                    Err(error) => {
                        failures += 1;
                        if failures == 1 {
                            eprintln!("a call failed: {error}");
                        }
                    }
                }
            }
            (latencies, failures)
        })
    });
    let mut all = Latencies::default();
    let mut failures = 0;
    for joined in futures::future::join_all(loops).await {
        let (latencies, failed) = joined.expect("a client loop");
        all.merge(&latencies);
        failures += failed;
    }
    (all, started.elapsed().as_secs_f64(), failures)
}
