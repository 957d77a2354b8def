//! The memory benchmark: the resident memory of a `taskledger all` process
//! (the release binary, as deployed, in a process of its own) through load and
//! faults. It is idle first; then `createTask` arrives open-loop at a fixed
//! rate; then Postgres is restarted under it, then the broker (through
//! `./dev restart`), each followed by more writes; then it idles for a minute.
//! For each phase: resident memory at its end and its peak (sampled every
//! 100 ms), and how long the read model took to catch up, without any restart
//! of Taskledger.
//!
//! Run with `./dev bench memory` from the repository root.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use benches::chart::{BarChart, ChartsDir, LineChart};
use benches::{bench_token, graphql, run_seconds, tasks_behind, ChildApp, Services};
use clap::Parser;
use serde_json::json;
use sqlx::PgPool;

#[derive(Parser)]
#[command(about = "Memory benchmark: taskledger all's resident memory through load and faults")]
struct Args {
    /// Offered rate of the load phase, commands/s.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Seconds of the load phase.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Seconds of the final idle phase (the first minute may still hold the
    /// broker restart's aftermath: a republished topic read again).
    #[arg(long, default_value_t = 150)]
    idle: u64,
    #[command(flatten)]
    services: Services,
    #[command(flatten)]
    charts: ChartsDir,
}

const CREATE: &str =
    "mutation($t: String!) { createTask(input: {title: $t, tags: [\"bench\"]}) { taskId } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    infra::tls::install_crypto_provider();
    let args = Args::parse();
    let app = ChildApp::start(&args.services, &[]).await?;
    app.with(async |app| measure(&args, app).await).await
}

async fn measure(args: &Args, app: &ChildApp) -> anyhow::Result<()> {
    let pool = PgPool::connect(&app.database.url).await?;
    let url = app.graphql_url();
    let token = bench_token("bench")?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;

    println!(
        "# Memory of `taskledger all` (release binary, its own process), pid {}",
        app.pid
    );
    println!();
    println!("| phase | RSS at end MB | peak MB | accepted/s | read model caught up in s |");
    println!("|---|---:|---:|---:|---:|");
    let memory = &app.memory;
    let mut phases = vec![(run_seconds(Instant::now()), "start".to_owned())];
    tokio::time::sleep(Duration::from_secs(3)).await;
    memory.reset_peak();
    println!(
        "| idle after start | {} | {} | | |",
        app.rss_mb(),
        memory.peak_mb()
    );

    memory.reset_peak();
    let load = format!("{} createTask/s offered", args.rate);
    phases.push((run_seconds(Instant::now()), load.clone()));
    let accepted = open_loop(&client, &url, &token, args.rate, args.seconds).await;
    let caught_up = catch_up(&pool).await?;
    println!(
        "| {load} for {} s | {} | {} | {accepted:.0} | {caught_up:.1} |",
        args.seconds,
        app.rss_mb(),
        memory.peak_mb()
    );
    let mut throughput = BarChart::new(
        "Memory benchmark: createTask accepted beside offered",
        "createTask/s",
    )
    .series("offered", [(load.clone(), args.rate as f64)])
    .series("accepted", [(load, accepted)]);

    for what in ["postgres", "broker"] {
        memory.reset_peak();
        phases.push((run_seconds(Instant::now()), format!("{what} restarted")));
        let status = tokio::process::Command::new("./dev")
            .args(["restart", what])
            .stdout(std::process::Stdio::null())
            .status()
            .await
            .context("running ./dev restart (run the benchmark from the repository root)")?;
        if !status.success() {
            bail!("./dev restart {what} failed");
        }
        // Writes while the roles recover: some may fail while Postgres is down.
        let accepted = open_loop(&client, &url, &token, 200, 10).await;
        let caught_up = catch_up(&pool).await?;
        println!(
            "| {what} restarted, then 200 createTask/s for 10 s | {} | {} | {accepted:.0} | {caught_up:.1} |",
            app.rss_mb(),
            memory.peak_mb()
        );
        let phase = format!("after the {what} restart");
        throughput = throughput
            .series("offered", [(phase.clone(), 200.0)])
            .series("accepted", [(phase, accepted)]);
    }
    memory.reset_peak();
    let idle_started = Instant::now();
    phases.push((run_seconds(idle_started), "idle".to_owned()));
    let mut report_at = 60;
    while report_at <= args.idle {
        tokio::time::sleep_until((idle_started + Duration::from_secs(report_at)).into()).await;
        println!(
            "| idle for {report_at} s | {} | {} | | |",
            app.rss_mb(),
            memory.peak_mb()
        );
        report_at += 60;
    }
    let resident = phases.into_iter().fold(
        LineChart::over_run("Memory of `taskledger all` through load and faults", "MiB")
            .series("resident memory", memory.megabytes()),
        |chart, (at, label)| chart.phase(at, label),
    );
    args.charts.write(&[
        ("memory-resident", &resident),
        ("memory-throughput", &throughput),
    ])?;
    Ok(())
}

/// `createTask` every 1/rate s for `seconds`, at most 256 waiting at once;
/// the accepted rate.
async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    rate: u64,
    seconds: u64,
) -> f64 {
    let accepted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let mut requests = tokio::task::JoinSet::new();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        ticks.tick().await;
        while requests.try_join_next().is_some() {}
        if requests.len() >= 256 {
            continue;
        }
        n += 1;
        let (client, url, token, accepted) = (
            client.clone(),
            url.to_owned(),
            token.to_owned(),
            accepted.clone(),
        );
        requests.spawn(async move {
            if graphql(
                &client,
                &url,
                &token,
                CREATE,
                json!({ "t": format!("m {n}") }),
            )
            .await
            .is_ok()
            {
                accepted.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while requests.join_next().await.is_some() {}
    accepted.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Seconds until the task list holds every task the event store does.
async fn catch_up(pool: &PgPool) -> anyhow::Result<f64> {
    let started = Instant::now();
    loop {
        // While Postgres restarts the question fails; ask again.
        if tasks_behind(pool).await.is_ok_and(|behind| behind == 0) {
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the read model did not catch up within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
