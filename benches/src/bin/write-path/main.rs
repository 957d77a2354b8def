//! The write-path benchmark: `createTask` / `updateTask` through the GraphQL
//! endpoint at 1, 8 and 32 concurrent clients, the same commands through the
//! command service called directly (no HTTP, JSON or GraphQL), beside the
//! floor measured in the same run: raw Postgres inserts of one event row per
//! transaction at the same concurrency. Then, on the idle system, the time
//! from a mutation's commit to its row being visible in the read model.
//! `--api-only` runs the API alone (no relay or projection meanwhile), as a
//! process of its own (the release `taskledger api`), so its CPU per command
//! is its own. Beside the rates: CPU per command (the API process's, this
//! process's, which generates the load and runs the command service called
//! directly, and with every role the API too; and Postgres's) and statements
//! per command from `pg_stat_statements`; then commands by shape
//! (`shapes.rs`).
//!
//! Run with `./dev bench` (release build, real Postgres and broker).

mod shapes;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use benches::chart::{BarChart, ChartsDir, LineChart};
use benches::statements::Statements;
use benches::{
    bench_token, cpu_seconds, graphql, ms_each, postgres_cpu_seconds, run_seconds, tasks_behind,
    visible_after, BenchApp, Latencies, Services,
};
use clap::Parser;
use domain::values::{TaskId, TaskTitle, UserId};
use domain::{NewTask, TaskCommand, TaskServices};
use event_store::command::{Actor, CommandService};
use serde_json::json;
use sqlx::PgPool;
use taskledger::Roles;

#[derive(Parser)]
#[command(about = "Write-path benchmark: GraphQL commands vs raw Postgres inserts")]
struct Args {
    /// Seconds each concurrency level runs, for each side.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent clients, comma-separated.
    #[arg(long, default_value = "1,8,32", value_delimiter = ',')]
    clients: Vec<usize>,
    /// Commit-to-visible samples taken on the idle system.
    #[arg(long, default_value_t = 100)]
    lag_samples: usize,
    /// The API alone: no relay or projection runs meanwhile (and the
    /// commit-to-visible lag is not measured).
    #[arg(long)]
    api_only: bool,
    /// With `--api-only`, the API process's tokio worker threads
    /// (`TOKIO_WORKER_THREADS`; by default one per core).
    #[arg(long)]
    api_worker_threads: Option<usize>,
    #[command(flatten)]
    services: Services,
    #[command(flatten)]
    charts: ChartsDir,
}

const CREATE: &str = "mutation($t: String!) { createTask(input: {title: $t}) { taskId version } }";
const UPDATE: &str =
    "mutation($id: ID!, $t: String!) { updateTask(input: {id: $id, title: $t}) { version } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    infra::tls::install_crypto_provider();
    let args = Args::parse();
    let roles = if args.api_only {
        Roles::API
    } else {
        Roles::ALL
    };
    let app = BenchApp::start(&args.services, roles, 40).await?;
    let admin = PgPool::connect(&args.services.admin_url).await?;
    let result = async {
        if !args.api_only {
            return measure(&args, (&app.url, None), &app.pool, &admin).await;
        }
        let env: Vec<(&str, String)> = args
            .api_worker_threads
            .map(|threads| ("TOKIO_WORKER_THREADS", threads.to_string()))
            .into_iter()
            .collect();
        let (url, pid, _api) = app.api_process(&args.services, &env).await?;
        measure(&args, (&url, Some(pid)), &app.pool, &admin).await
    }
    .await;
    app.stop(false).await?;
    result
}

/// CPU and statements spent between two readings.
struct Spent {
    /// The API process's, when it runs apart.
    api_cpu: Option<f64>,
    process_cpu: f64,
    postgres_cpu: f64,
    statements: Option<i64>,
}

struct Reading {
    api: Option<f64>,
    this: Option<f64>,
    postgres: f64,
    statements: Option<Statements>,
}

async fn reading(counting: &shapes::Counting<'_>) -> Reading {
    Reading {
        api: counting.api_pid.and_then(cpu_seconds),
        this: cpu_seconds(std::process::id()),
        postgres: postgres_cpu_seconds(),
        statements: Statements::read(counting.admin, counting.database).await,
    }
}

async fn spent_since(start: Reading, counting: &shapes::Counting<'_>) -> Spent {
    let now = reading(counting).await;
    Spent {
        api_cpu: now.api.zip(start.api).map(|(a, b)| a - b),
        process_cpu: now.this.zip(start.this).map_or(0.0, |(a, b)| a - b),
        postgres_cpu: now.postgres - start.postgres,
        statements: start
            .statements
            .zip(now.statements)
            .map(|(before, after)| before.since(&after).iter().map(|(_, c)| c).sum()),
    }
}

fn cpu_row(clients: usize, path: &str, count: u64, spent: &Spent, api_apart: bool) -> String {
    let api = match spent.api_cpu {
        Some(seconds) if api_apart => ms_each(seconds, count),
        _ => "—".to_owned(),
    };
    format!(
        "| {clients} | {path} | {api} | {} | {} | {} |",
        ms_each(spent.process_cpu, count),
        ms_each(spent.postgres_cpu, count),
        spent.statements.map_or("—".to_owned(), |s| format!(
            "{:.2}",
            s as f64 / count.max(1) as f64
        ))
    )
}

async fn measure(
    args: &Args,
    (url, api_pid): (&str, Option<u32>),
    pool: &PgPool,
    admin: &PgPool,
) -> anyhow::Result<()> {
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pool)
        .await?;
    let counting = shapes::Counting {
        admin,
        database: &database,
        api_pid,
    };
    let mut cpu_rows = Vec::new();
    let token = Arc::new(bench_token("bench")?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    sqlx::query("CREATE TABLE bench_events (LIKE events INCLUDING ALL)")
        .execute(pool)
        .await?;
    let window = Duration::from_secs(args.seconds);

    let roles = if args.api_only {
        "the API alone"
    } else {
        "every role running"
    };
    println!(
        "# Write path: {} s per level, release build, {roles}",
        args.seconds
    );
    println!("# each client: createTask, then updateTask three times on it, and again");
    println!();
    println!("| clients | GraphQL commands/s | p50 ms | p99 ms | command service/s (no HTTP) | p50 ms | raw inserts/s (baseline) | p50 ms | p99 ms | GraphQL ÷ raw | service ÷ raw |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let commands = Arc::new(CommandService::new(pool.clone(), TaskServices::default()));
    let mut failures = 0;
    let mut latency = LineChart::over_run("Write path: latency per second", "ms");
    let mut throughput = BarChart::new(
        "Write path: GraphQL commands beside raw Postgres inserts",
        "operations/s",
    );
    for &clients in &args.clients {
        let level = format!("{clients} client{}", if clients == 1 { "" } else { "s" });
        latency = latency.phase(run_seconds(Instant::now()), &level);
        let start = reading(&counting).await;
        let (graphql, graphql_rate) = graphql_load(&client, url, &token, clients, window).await?;
        let spent = spent_since(start, &counting).await;
        cpu_rows.push(cpu_row(clients, "GraphQL", graphql.count(), &spent, true));
        let start = reading(&counting).await;
        let (service, service_rate) = service_load(&commands, clients, window).await?;
        let spent = spent_since(start, &counting).await;
        cpu_rows.push(cpu_row(
            clients,
            "command service",
            service.count(),
            &spent,
            false,
        ));
        let start = reading(&counting).await;
        let (raw, raw_rate) = raw_inserts(pool, clients, window).await?;
        let spent = spent_since(start, &counting).await;
        cpu_rows.push(cpu_row(
            clients,
            "raw insert (baseline)",
            raw.count(),
            &spent,
            false,
        ));
        failures += graphql.errors + service.errors + raw.errors;
        latency = latency
            .latencies("GraphQL command", &graphql)
            .latencies("raw insert (baseline)", &raw);
        throughput = throughput
            .series("GraphQL commands/s", [(level.clone(), graphql_rate)])
            .series("command service/s", [(level.clone(), service_rate)])
            .series("raw inserts/s (baseline)", [(level, raw_rate)]);
        println!(
            "| {clients} | {graphql_rate:.0} | {:.2} | {:.2} | {service_rate:.0} | {:.2} | {raw_rate:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            graphql.millis(0.5),
            graphql.millis(0.99),
            service.millis(0.5),
            raw.millis(0.5),
            raw.millis(0.99),
            graphql_rate / raw_rate,
            service_rate / raw_rate,
        );
    }

    println!();
    println!("CPU and statements per command (API: the API process, with `--api-only`; this process: the load generator, the command service called directly, and with every role the API too; Postgres: every backend; statements from `pg_stat_statements`, each one round trip):");
    println!();
    println!("| clients | path | API CPU ms/command | this process CPU ms/command | Postgres CPU ms/command | statements/command |");
    println!("|---:|---|---:|---:|---:|---:|");
    for row in &cpu_rows {
        println!("{row}");
    }
    let shape_clients = args
        .clients
        .iter()
        .copied()
        .find(|&c| c == 8)
        .unwrap_or(args.clients[0]);
    failures += shapes::measure(pool, &counting, shape_clients, window).await?;

    if args.api_only {
        args.charts
            .write(&[("write-path-api-only-throughput", &throughput)])?;
        if failures > 0 {
            bail!("{failures} operations failed; the figures above are not valid");
        }
        return Ok(());
    }
    // Let the projection drain the backlog before measuring on an idle system.
    drain(pool).await?;
    let latency = latency.phase(run_seconds(Instant::now()), "idle");
    let lag = visibility_lag(&client, url, &token, pool, args.lag_samples).await?;
    failures += lag.errors;
    println!();
    println!(
        "Commit → read model visible, idle system, {} samples: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lag.count(),
        lag.millis(0.5),
        lag.millis(0.99),
        lag.millis(1.0)
    );
    args.charts.write(&[
        (
            "write-path-latency",
            &latency.latencies("commit → read model visible", &lag),
        ),
        ("write-path-throughput", &throughput),
    ])?;
    if failures > 0 {
        bail!("{failures} operations failed; the figures above are not valid");
    }
    Ok(())
}

/// Each client creates a task, then updates it three times, and repeats.
async fn graphql_load(
    client: &reqwest::Client,
    url: &str,
    token: &Arc<String>,
    clients: usize,
    window: Duration,
) -> anyhow::Result<(Latencies, f64)> {
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|worker| {
            let (client, url, token) = (client.clone(), url.to_owned(), token.clone());
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                let mut task_id = String::new();
                let mut n = 0u64;
                while started.elapsed() < window {
                    let begun = Instant::now();
                    let outcome = if n % 4 == 0 {
                        graphql(
                            &client,
                            &url,
                            &token,
                            CREATE,
                            json!({ "t": format!("task {worker}-{n}") }),
                        )
                        .await
                        .map(|body| {
                            task_id = body["data"]["createTask"]["taskId"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned();
                        })
                    } else {
                        graphql(
                            &client,
                            &url,
                            &token,
                            UPDATE,
                            json!({ "id": task_id, "t": format!("title {n}") }),
                        )
                        .await
                        .map(drop)
                    };
                    record(&mut latencies, begun, outcome);
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    collect(workers, started).await
}

/// The same mix through the command service, called directly: what the
/// command path costs without HTTP, JSON and GraphQL.
async fn service_load(
    commands: &Arc<CommandService>,
    clients: usize,
    window: Duration,
) -> anyhow::Result<(Latencies, f64)> {
    let started = Instant::now();
    let owner = UserId::parse("bench-service").map_err(anyhow::Error::msg)?;
    let workers: Vec<_> = (0..clients)
        .map(|worker| {
            let (commands, owner) = (commands.clone(), owner.clone());
            tokio::spawn(async move {
                let actor = Actor {
                    user_id: owner.clone(),
                    correlation_id: format!("bench-{worker}"),
                };
                let mut latencies = Latencies::default();
                let mut task_id = TaskId::new();
                let mut n = 0u64;
                while started.elapsed() < window {
                    let begun = Instant::now();
                    let command = if n % 4 == 0 {
                        task_id = TaskId::new();
                        TaskCommand::Create {
                            task_id,
                            owner: owner.clone(),
                            title: TaskTitle::parse(&format!("task {worker}-{n}"))
                                .expect("a title"),
                            details: NewTask::default(),
                        }
                    } else {
                        TaskCommand::Edit {
                            actor: owner.clone(),
                            title: Some(TaskTitle::parse(&format!("title {n}")).expect("a title")),
                            description: None,
                        }
                    };
                    let outcome = commands.execute(&actor, task_id, command, None).await;
                    record(
                        &mut latencies,
                        begun,
                        outcome.map(drop).map_err(|e| e.to_string()),
                    );
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    collect(workers, started).await
}

/// One operation's latency, or its failure (the first one printed).
fn record(latencies: &mut Latencies, begun: Instant, outcome: Result<(), String>) {
    match outcome {
        Ok(()) => latencies.record(begun.elapsed()),
        Err(error) => {
            if latencies.errors == 0 {
                eprintln!("error: {error}");
            }
            latencies.errors += 1;
        }
    }
}

/// The floor: one event-shaped row per transaction, straight into Postgres.
async fn raw_inserts(
    pool: &PgPool,
    clients: usize,
    window: Duration,
) -> anyhow::Result<(Latencies, f64)> {
    let started = Instant::now();
    let payload = json!({ "TaskEdited": { "title": "a title of usual length", "description": null, "edited_at": "2026-01-01T00:00:00Z" } });
    let metadata =
        json!({ "user_id": "bench", "correlation_id": "00000000-0000-0000-0000-000000000000" });
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (pool, payload, metadata) = (pool.clone(), payload.clone(), metadata.clone());
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                let aggregate = uuid::Uuid::now_v7().to_string();
                let mut sequence = 1i64;
                while started.elapsed() < window {
                    let begun = Instant::now();
                    let inserted = sqlx::query(
                        "INSERT INTO bench_events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                         VALUES ('Task', $1, $2, 'TaskEdited', '1.0', $3, $4)",
                    )
                    .bind(&aggregate)
                    .bind(sequence)
                    .bind(&payload)
                    .bind(&metadata)
                    .execute(&pool)
                    .await;
                    match inserted {
                        Ok(_) => latencies.record(begun.elapsed()),
                        Err(_) => latencies.errors += 1,
                    }
                    sequence += 1;
                }
                latencies
            })
        })
        .collect();
    collect(workers, started).await
}

async fn collect(
    workers: Vec<tokio::task::JoinHandle<Latencies>>,
    started: Instant,
) -> anyhow::Result<(Latencies, f64)> {
    let mut total = Latencies::default();
    for worker in workers {
        total.merge(&worker.await?);
    }
    let rate = total.count() as f64 / started.elapsed().as_secs_f64();
    Ok((total, rate))
}

/// Waits until the read model holds every task in the event store.
async fn drain(pool: &PgPool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let behind = tasks_behind(pool).await?;
        if behind == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the read model is still {behind} tasks behind after 300 s");
        }
        eprintln!("waiting for the projection: {behind} tasks behind");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// From the mutation's answer (its commit) to the row in the read model.
async fn visibility_lag(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    pool: &PgPool,
    samples: usize,
) -> anyhow::Result<Latencies> {
    let mut lag = Latencies::default();
    for n in 0..samples {
        let body = match graphql(
            client,
            url,
            token,
            CREATE,
            json!({ "t": format!("lag {n}") }),
        )
        .await
        {
            Ok(body) => body,
            Err(_) => {
                lag.errors += 1;
                continue;
            }
        };
        let committed = Instant::now();
        let id = uuid::Uuid::parse_str(
            body["data"]["createTask"]["taskId"]
                .as_str()
                .unwrap_or_default(),
        )?;
        let (poll, give_up) = (Duration::from_micros(500), Duration::from_secs(10));
        match visible_after(pool, id, committed, poll, give_up).await? {
            Some(after) => lag.record(after),
            None => lag.errors += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(lag)
}
