//! The rebuild benchmark: `taskledger rebuild task-list` and `taskledger
//! verify` over a store of a million events, beside baselines measured in
//! the same run, and a user's listing latency before and during a rebuild.
//!
//! 1. The store: a template task goes through GraphQL once per kind of
//!    change, so the store holds a real event of each kind; then N tasks of
//!    five events each (created, priority set, tags changed, edited, then
//!    completed or given a due date) are generated from those templates in
//!    SQL, spread over 1,000 users.
//! 2. Baselines: every event read once in one query, and in the rebuild's
//!    order through the same stream the rebuild reads, doing nothing.
//! 3. The first rebuild builds the task list (it starts empty: no projector
//!    runs), as the released binary in a process of its own whose peak
//!    memory is sampled; `verify` then checks every row.
//! 4. One client asks for a user's first page of tasks 200 times a second
//!    for 10 s, then goes on while a second rebuild runs: p50/p99 before and
//!    during.
//!
//! Run with `./dev bench rebuild` (release build, real Postgres and broker);
//! `--help` for the knobs.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use benches::chart::{BarChart, ChartsDir, LineChart};
use benches::{
    bench_token, graphql, run_seconds, taskledger_binary, BenchApp, Latencies, MemoryTrace,
    Services,
};
use clap::Parser;
use futures::TryStreamExt;
use serde_json::json;
use taskledger::Roles;

#[derive(Parser)]
#[command(about = "Rebuild benchmark: rebuild and verify rates, listing latency during a rebuild")]
struct Args {
    /// Tasks in the store (five events each).
    #[arg(long, default_value_t = 200_000)]
    tasks: i64,
    /// Users the tasks are spread over.
    #[arg(long, default_value_t = 1_000)]
    users: i64,
    /// `--writers` of the rebuilds.
    #[arg(long, default_value_t = 2)]
    writers: usize,
    /// Seconds of listing before the second rebuild.
    #[arg(long, default_value_t = 10)]
    before_seconds: u64,
    /// `--max-rate` of the second rebuild (the one beside the listing).
    #[arg(long)]
    max_rate: Option<u32>,
    /// Listing queries a second, before and during the second rebuild.
    #[arg(long, default_value_t = 200)]
    queries_per_second: u32,
    /// Keep the run's database afterwards (its name is printed).
    #[arg(long)]
    keep: bool,
    #[command(flatten)]
    services: Services,
    #[command(flatten)]
    charts: ChartsDir,
}

use benches::store::EVENTS_PER_TASK;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    infra::tls::install_crypto_provider();
    let args = Args::parse();
    let app = BenchApp::start(&args.services, Roles::API, 10).await?;
    let client = reqwest::Client::new();

    let template = benches::store::template_task(&client, &app.url).await?;
    let started = Instant::now();
    benches::store::store(&app.pool, &template, args.tasks, args.users, "user").await?;
    let (events,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await?;
    eprintln!(
        "stored {events} events in {:.0} s; analyzing",
        started.elapsed().as_secs_f64()
    );
    sqlx::query("VACUUM ANALYZE events")
        .execute(&app.pool)
        .await?;

    // Baselines.
    let started = Instant::now();
    let (scanned, megabytes): (i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), (sum(length(payload::text) + length(metadata::text)) / 1000000)::bigint FROM events",
    )
    .fetch_one(&app.pool)
    .await?;
    let scan = scanned as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut connection = app.pool.acquire().await?;
    let streamed = event_store::global_log::every_aggregates_events(&mut *connection, "Task")
        .try_fold(0u64, |n, _| async move { Ok(n + 1) })
        .await?;
    let stream = streamed as f64 / started.elapsed().as_secs_f64();
    drop(connection);

    let first = rebuild_process(&app, args.writers).await?;
    let report = worker::verify::verify(&app.pool).await?;
    if !report.differences.is_empty() {
        bail!(
            "verify found {} differences after the rebuild, first: {:?}",
            report.differences.len(),
            &report.differences[..3.min(report.differences.len())]
        );
    }
    let verified = report.events as f64 / report.elapsed.as_secs_f64();

    let reader = bench_token("user1")?;
    let mut latency = LineChart::over_run("Rebuild: a user's first page of tasks per second", "ms")
        .phase(run_seconds(Instant::now()), "before the rebuild");
    let before = listing(&client, &app.url, &reader, args.queries_per_second, {
        let until = Instant::now() + Duration::from_secs(args.before_seconds);
        move || Instant::now() >= until
    })
    .await;
    latency = latency.phase(run_seconds(Instant::now()), "during the rebuild");
    let rebuilding = tokio::spawn({
        let (database, brokers) = (app.database_url(), args.services.brokers.clone());
        let (writers, max_rate) = (args.writers, args.max_rate);
        async move { run_rebuild(&database, &brokers, writers, max_rate).await }
    });
    let during = listing(&client, &app.url, &reader, args.queries_per_second, || {
        rebuilding.is_finished()
    })
    .await;
    let second = rebuilding.await??;
    app.stop(args.keep).await?;

    println!("# Rebuild, release build");
    println!();
    println!(
        "A store of {events} events ({} tasks of {EVENTS_PER_TASK} events, {} users; {} MB of JSON); `--writers {}`{}.",
        args.tasks,
        args.users,
        megabytes.unwrap_or(0),
        args.writers,
        args.max_rate
            .map(|r| format!(", the second rebuild `--max-rate {r}`"))
            .unwrap_or_default()
    );
    println!();
    println!("| | events/s | whole run |");
    println!("|---|---:|---:|");
    println!("| reading every event once in one query (baseline) | {scan:.0} | |");
    println!(
        "| reading every event in the rebuild's order, doing nothing (baseline) | {stream:.0} | |"
    );
    for (name, run) in [
        (
            "`taskledger rebuild task-list`, first (empty task list)",
            &first,
        ),
        (
            "`taskledger rebuild task-list` again, while a user lists tasks",
            &second,
        ),
    ] {
        println!(
            "| {name}: {} tasks, bulk load {:.1} s, peak RSS {} MB | {:.0} | {:.1} s |",
            run.tasks,
            run.loaded_secs,
            run.peak_kb / 1024,
            run.events as f64 / run.switched_secs,
            run.switched_secs
        );
    }
    println!(
        "| `taskledger verify`: fold every task, compare every row | {verified:.0} | {:.1} s |",
        report.elapsed.as_secs_f64()
    );
    println!();
    println!(
        "| a user's first page of tasks, one client, {} a second | queries | p50 ms | p99 ms | errors |",
        args.queries_per_second
    );
    println!("|---|---:|---:|---:|---:|");
    for (when, latencies) in [
        (
            format!("before the rebuild ({} s)", args.before_seconds),
            &before,
        ),
        ("during the rebuild".to_owned(), &during),
    ] {
        println!(
            "| {when} | {} | {:.2} | {:.2} | {} |",
            latencies.count(),
            latencies.millis(0.5),
            latencies.millis(0.99),
            latencies.errors
        );
    }
    println!();
    println!(
        "p99 during ÷ before: {:.2}; rebuild ÷ reading in its order: {:.3}",
        during.millis(0.99) / before.millis(0.99),
        first.events as f64 / first.switched_secs / stream
    );
    let throughput = BarChart::new("Rebuild and verify beside reading the store", "events/s")
        .series(
            "reading the store (baseline)",
            [
                ("every event, one query", scan),
                ("in the rebuild's order", stream),
            ],
        )
        .series(
            "rebuild, verify",
            [
                ("rebuild, first", first.events as f64 / first.switched_secs),
                (
                    "rebuild, while a user lists",
                    second.events as f64 / second.switched_secs,
                ),
                ("verify", verified),
            ],
        );
    args.charts.write(&[
        ("rebuild-throughput", &throughput),
        (
            "rebuild-listing-latency",
            &latency
                .latencies("listing", &before)
                .latencies("listing", &during),
        ),
    ])?;
    Ok(())
}

/// One rebuild as the released binary runs it.
struct RebuildRun {
    tasks: u64,
    events: u64,
    loaded_secs: f64,
    switched_secs: f64,
    peak_kb: u64,
}

async fn rebuild_process(app: &BenchApp, writers: usize) -> anyhow::Result<RebuildRun> {
    run_rebuild(
        &app.database_url(),
        &app.settings.common.kafka_brokers,
        writers,
        None,
    )
    .await
}

/// `taskledger rebuild task-list` in a process of its own, its resident
/// memory sampled every 50 ms; its summary line read back.
async fn run_rebuild(
    database: &str,
    brokers: &str,
    writers: usize,
    max_rate: Option<u32>,
) -> anyhow::Result<RebuildRun> {
    let binary = taskledger_binary()?;
    let mut command = tokio::process::Command::new(&binary);
    command.args([
        "rebuild",
        "task-list",
        "--json",
        "--writers",
        &writers.to_string(),
    ]);
    if let Some(rate) = max_rate {
        command.args(["--max-rate", &rate.to_string()]);
    }
    let child = command
        .env("TASKLEDGER_ENV", "local")
        .env("DATABASE_URL", database)
        .env("KAFKA_BROKERS", brokers)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let pid = child.id().context("a pid")?;
    let memory = MemoryTrace::start(pid, Duration::from_millis(50));
    let output = child.wait_with_output().await?;
    let printed = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("the rebuild failed: {printed}");
    }
    let summary: serde_json::Value = printed
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .with_context(|| format!("no JSON summary in {printed:?}"))?;
    let number = |key: &str| {
        summary[key]
            .as_f64()
            .with_context(|| format!("{key} in {summary}"))
    };
    Ok(RebuildRun {
        tasks: number("tasks")? as u64,
        events: number("events")? as u64,
        loaded_secs: number("loaded_secs")?,
        switched_secs: number("switched_secs")?,
        peak_kb: memory.peak_kb(),
    })
}

/// A user's first page of tasks, asked by one client `rate` times a second
/// until `done`. Each latency runs from the instant the request was due, so
/// a slow answer also counts against the requests it held up.
async fn listing(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    rate: u32,
    done: impl Fn() -> bool,
) -> Latencies {
    let mut latencies = Latencies::default();
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while !done() {
        let due = ticks.tick().await;
        match graphql(
            client,
            url,
            token,
            "{ tasks(first: 20) { nodes { id title } } }",
            json!({}),
        )
        .await
        {
            Ok(_) => latencies.record(due.elapsed()),
            Err(_) => latencies.errors += 1,
        }
    }
    latencies
}
