//! The pipeline benchmark: how fast the read side follows the write side.
//!
//! 1. Backlog: N events are stored and published first, then the projections
//!    start; the task list's apply rate (events/s) is printed beside the
//!    baseline measured in the same run: a bare Kafka consumer reading the same
//!    messages and doing nothing with them. Twice: task creations alone, then
//!    a mix (each task created, edited, tagged and completed).
//! 2. Offered load: `createTask` sent open-loop at fixed rates (a request every
//!    1/rate s, whether or not earlier ones have answered) for a while each,
//!    with every role in this process; for each rate: commands/s accepted, the
//!    task list's applied events/s, commit → visible lag p50/p99 sampled
//!    continuously during the load, and how far behind the read model is when
//!    the load stops.
//!
//! The process's resident memory (Taskledger and the load generator together)
//! is sampled throughout; its peak is printed per phase.
//!
//! Run with `./dev bench pipeline` (release build, real Postgres and broker);
//! `--help` for the knobs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use benches::chart::{BarChart, ChartsDir, LineChart};
use benches::{
    bare_consumer_rate, bench_token, graphql, publish_backlog, run_seconds, tasks_behind,
    visible_after, wait_for, wait_for_task_list, Backlog, BenchApp, Latencies, MemoryTrace,
    Services, WITHOUT_PROJECTIONS,
};
use clap::Parser;
use serde_json::json;
use sqlx::PgPool;
use taskledger::Roles;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(about = "Pipeline benchmark: projection backlog rate and lag under offered load")]
struct Args {
    /// Events in the preloaded backlog.
    #[arg(long, default_value_t = 100_000)]
    backlog: i64,
    /// Offered rates in commands/s, comma-separated.
    #[arg(long, default_value = "250,500,1000,2000", value_delimiter = ',')]
    rates: Vec<u64>,
    /// Seconds each offered rate runs.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    #[command(flatten)]
    services: Services,
    #[command(flatten)]
    charts: ChartsDir,
}

/// The most requests the load generator keeps waiting at once.
const MAX_IN_FLIGHT: usize = 256;

const CREATE: &str = "mutation($t: String!) { createTask(input: {title: $t, tags: [\"bench\", \"load\"]}) { taskId } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    infra::tls::install_crypto_provider();
    let args = Args::parse();
    let memory = MemoryTrace::of_this_process();
    println!("# Pipeline, release build");
    println!();
    let backlog = backlog(&args, &memory).await?;
    println!();
    let (lag, load) = offered_load(&args, &memory).await?;
    args.charts
        .write(&[
            ("pipeline-backlog", &backlog),
            ("pipeline-lag", &lag),
            ("pipeline-offered-load", &load),
        ])
        .map(drop)
}

/// Phase 1: the apply rate on a preloaded backlog of each kind, beside a
/// bare consumer reading the same messages.
async fn backlog(args: &Args, memory: &MemoryTrace) -> anyhow::Result<BarChart> {
    let mut baselines = Vec::new();
    let mut rates = Vec::new();
    println!(
        "## Backlog of {} events, nothing else running",
        args.backlog
    );
    println!();
    println!("| backlog | bare consumer, no work (baseline) events/s | task-list projection events/s | seconds | projection ÷ baseline | peak memory MB |");
    println!("|---|---:|---:|---:|---:|---:|");
    for kind in [Backlog::Creates, Backlog::Mix] {
        let app = BenchApp::start(&args.services, WITHOUT_PROJECTIONS, 20).await?;
        eprintln!("storing {} events ({kind:?})", args.backlog);
        let total = publish_backlog(&app, args.backlog, kind).await?;
        // The baseline: the same messages read by a consumer that does nothing.
        let baseline = bare_consumer_rate(&app, total).await?;

        // The projections, started on the published backlog.
        memory.reset_peak();
        let shutdown = CancellationToken::new();
        let started = Instant::now();
        let projector = taskledger::start(&app.settings, Roles::PROJECT, shutdown.clone()).await?;
        wait_for_task_list(&app, total, Duration::from_secs(300)).await?;
        let elapsed = started.elapsed();
        let rate = total as f64 / elapsed.as_secs_f64();
        shutdown.cancel();
        projector.wait().await?;
        app.stop(false).await?;

        let label = match kind {
            Backlog::Creates => format!("{total} creations"),
            Backlog::Mix => format!("{total} events: create, edit, tag, complete"),
        };
        println!(
            "| {label} | {baseline:.0} | {rate:.0} | {:.1} | {:.2} | {} |",
            elapsed.as_secs_f64(),
            rate / baseline,
            memory.peak_mb()
        );
        baselines.push((label.clone(), baseline));
        rates.push((label, rate));
    }
    Ok(BarChart::new(
        "Pipeline: the task-list projection on a backlog beside a bare consumer",
        "events/s",
    )
    .series("bare consumer, no work (baseline)", baselines)
    .series("task-list projection", rates))
}

async fn offered_load(args: &Args, memory: &MemoryTrace) -> anyhow::Result<(LineChart, BarChart)> {
    let app = BenchApp::start(&args.services, Roles::ALL, 40).await?;
    let token = Arc::new(bench_token("bench")?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;

    println!(
        "## Offered load, {} s per rate, every role in one process",
        args.seconds
    );
    println!();
    println!("| offered/s | accepted/s | refused or failed | not sent (256 in flight) | applied events/s | lag p50 ms | lag p99 ms | lag max ms | behind at end | drained in s | peak RSS MB |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut lag_chart = LineChart::over_run("Pipeline: commit → visible lag per second", "ms");
    let mut load_chart = BarChart::new(
        "Pipeline: accepted commands and applied events beside the offered rate",
        "per second",
    );
    for &rate in &args.rates {
        memory.reset_peak();
        let offered = format!("{rate}/s offered");
        lag_chart = lag_chart.phase(run_seconds(Instant::now()), &offered);
        let applied_before = applied(&app.pool).await?;
        let window = Duration::from_secs(args.seconds);
        let latest: Arc<Mutex<Option<(uuid::Uuid, Instant)>>> = Arc::default();
        let stop = CancellationToken::new();
        let sampler = tokio::spawn(sample_lag(app.pool.clone(), latest.clone(), stop.clone()));
        let accepted = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut sent = 0u64;
        let mut not_sent = 0u64;
        let mut requests = tokio::task::JoinSet::new();
        while started.elapsed() < window {
            ticks.tick().await;
            while requests.try_join_next().is_some() {}
            if requests.len() >= MAX_IN_FLIGHT {
                // Open loop, but not unbounded: a client that already waits
                // for this many answers counts the request as not sent.
                not_sent += 1;
                continue;
            }
            sent += 1;
            let (client, url, token) = (client.clone(), app.url.clone(), token.clone());
            let (latest, accepted, errors) = (latest.clone(), accepted.clone(), errors.clone());
            requests.spawn(async move {
                match graphql(
                    &client,
                    &url,
                    &token,
                    CREATE,
                    json!({ "t": format!("load {sent}") }),
                )
                .await
                {
                    Ok(body) => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        if let Some(id) = body["data"]["createTask"]["taskId"]
                            .as_str()
                            .and_then(|id| uuid::Uuid::parse_str(id).ok())
                        {
                            *latest.lock().unwrap() = Some((id, Instant::now()));
                        }
                    }
                    Err(error) => {
                        if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("error: {error}");
                        }
                    }
                }
            });
        }
        while requests.join_next().await.is_some() {}
        let elapsed = started.elapsed().as_secs_f64();
        let applied_rate = (applied(&app.pool).await? - applied_before) as f64 / elapsed;
        let behind = tasks_behind(&app.pool).await?;
        stop.cancel();
        let lag = sampler.await??;
        let drain_started = Instant::now();
        wait_for(
            Duration::from_secs(300),
            "the read model to catch up",
            || async { Ok(tasks_behind(&app.pool).await? == 0) },
        )
        .await?;
        let errors = errors.load(Ordering::Relaxed);
        if lag.errors > 0 {
            bail!("{} tasks never became visible within 60 s", lag.errors);
        }
        let accepted_rate = accepted.load(Ordering::Relaxed) as f64 / elapsed;
        lag_chart = lag_chart.latencies("commit → visible", &lag);
        load_chart = load_chart
            .series("offered createTask/s", [(offered.clone(), rate as f64)])
            .series("accepted createTask/s", [(offered.clone(), accepted_rate)])
            .series("applied events/s", [(offered, applied_rate)]);
        println!(
            "| {rate} | {accepted_rate:.0} | {errors} | {not_sent} | {applied_rate:.0} | {:.1} | {:.1} | {:.1} | {behind} | {:.1} | {} |",
            lag.millis(0.5),
            lag.millis(0.99),
            lag.millis(1.0),
            drain_started.elapsed().as_secs_f64(),
            memory.peak_mb(),
        );
    }
    app.stop(false).await?;
    Ok((lag_chart, load_chart))
}

/// Every 20 ms, takes the newest accepted task and times how long after its
/// answer it shows in the task list.
async fn sample_lag(
    pool: PgPool,
    latest: Arc<Mutex<Option<(uuid::Uuid, Instant)>>>,
    stop: CancellationToken,
) -> anyhow::Result<Latencies> {
    let mut lag = Latencies::default();
    while !stop.is_cancelled() {
        let Some((id, answered)) = latest.lock().unwrap().take() else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let (poll, give_up) = (Duration::from_millis(1), Duration::from_secs(60));
        match visible_after(&pool, id, answered, poll, give_up).await? {
            Some(after) => lag.record(after),
            None => lag.errors += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(lag)
}

async fn applied(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM task_list")
        .fetch_one(pool)
        .await?)
}
