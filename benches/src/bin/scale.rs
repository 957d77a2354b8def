//! The scale benchmark: 1, 2 and 4 `taskledger project` processes on the same
//! backlog, sharing the partitions of `task-events` (docs/adr/0012).
//!
//! For each count, on a database and topic of its own: N `TaskCreated`
//! events are stored and published, a bare Kafka consumer reads them all
//! (the baseline, in the same run), then the projector processes start
//! together and apply the backlog. Printed per count: the task list's
//! events/s and its ratio to the baseline, each process's CPU seconds and
//! partitions held, and the projectors' CPU per event. Postgres's own CPU is
//! shared by all and printed beside it: on two cores it is what bounds the
//! total.
//!
//! Then the churn: two processes under a steady write load while a third
//! joins, one leaves (SIGTERM) and one is killed (SIGKILL); a task created
//! every 100 ms is timed from its answer to its row in the read model, and
//! the lag around each change is printed beside the lag before them.
//!
//! Run with `./dev bench scale` (release build, real Postgres and broker);
//! `--help` for the knobs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use benches::chart::{BarChart, ChartsDir};
use benches::{
    bare_consumer_rate, bench_token, cpu_seconds, graphql, postgres_cpu_seconds, publish_backlog,
    taskledger_binary, visible_after, wait_for_task_list, Backlog, BenchApp, Services,
    WITHOUT_PROJECTIONS,
};
use clap::Parser;

const CREATE: &str = "mutation($t: String!) { createTask(input: {title: $t}) { taskId } }";

#[derive(Parser)]
#[command(about = "Scale benchmark: projector processes sharing a backlog's partitions")]
struct Args {
    /// Events in the preloaded backlog.
    #[arg(long, default_value_t = 60_000)]
    backlog: i64,
    /// Projector process counts, comma-separated.
    #[arg(long, default_value = "1,2,4", value_delimiter = ',')]
    processes: Vec<usize>,
    /// Partitions of the run's task-events topic (a multiple of every count
    /// splits evenly).
    #[arg(long, default_value_t = 12)]
    partitions: i32,
    /// What the backlog holds.
    #[arg(long, value_enum, default_value_t = Backlog::Creates)]
    kind: Backlog,
    #[command(flatten)]
    services: Services,
    #[command(flatten)]
    charts: ChartsDir,
}

/// One count's figures.
struct Run {
    processes: usize,
    baseline: f64,
    rate: f64,
    seconds: f64,
    /// Per process: CPU seconds, and the task-list partitions it held.
    per_process: Vec<(f64, i64)>,
    postgres_cpu: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    infra::tls::install_crypto_provider();
    let args = Args::parse();
    if args.processes.is_empty() || args.processes.contains(&0) {
        bail!("--processes takes counts of one or more");
    }
    println!("# Scale, release build");
    println!();
    let mut runs = Vec::new();
    for &processes in &args.processes {
        eprintln!(
            "{processes} projector process(es) on {} events",
            args.backlog
        );
        runs.push(run(&args, processes).await?);
    }
    print(&args, &runs);
    let churn = print_churn(&churn(&args).await?);
    let mut chart = BarChart::new(
        "Scale: projector processes sharing a backlog, beside a bare consumer",
        "events/s",
    );
    chart = chart.series(
        "bare consumer, no work (baseline)",
        runs.iter()
            .map(|r| (format!("{} process(es)", r.processes), r.baseline)),
    );
    chart = chart.series(
        "task-list projection",
        runs.iter()
            .map(|r| (format!("{} process(es)", r.processes), r.rate)),
    );
    args.charts
        .write(&[("scale", &chart), ("scale-churn", &churn)])
        .map(drop)
}

async fn run(args: &Args, processes: usize) -> anyhow::Result<Run> {
    let app = start_app(args).await?;
    let measured = measure(args, &app, processes).await;
    app.stop(false).await?;
    measured
}

/// Taskledger without its projections, on a topic of `--partitions`.
async fn start_app(args: &Args) -> anyhow::Result<BenchApp> {
    let partitions = args.partitions;
    BenchApp::start_with(&args.services, WITHOUT_PROJECTIONS, 20, |settings| {
        settings.common.task_events_partitions = partitions;
    })
    .await
}

async fn measure(args: &Args, app: &BenchApp, processes: usize) -> anyhow::Result<Run> {
    let total = publish_backlog(app, args.backlog, args.kind).await?;
    let baseline = bare_consumer_rate(app, total).await?;

    let postgres_before = postgres_cpu_seconds();
    let mut children = Vec::new();
    for _ in 0..processes {
        children.push(spawn_projector(app, args.partitions)?);
    }
    let started = Instant::now();
    wait_for_task_list(app, total, Duration::from_secs(600)).await?;
    let seconds = started.elapsed().as_secs_f64();
    let postgres_cpu = postgres_cpu_seconds() - postgres_before;
    let held = partitions_held(app).await?;
    let mut per_process = Vec::new();
    for child in &children {
        let pid = child.id().context("a running projector")?;
        per_process.push((
            cpu_seconds(pid).unwrap_or(0.0),
            held.get(&pid).copied().unwrap_or(0),
        ));
    }
    for mut child in children {
        let pid = child.id().context("a running projector")?;
        tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .context("a projector did not stop within 30 s of SIGTERM")??;
        if !status.success() {
            bail!("a projector stopped with {status}");
        }
    }
    Ok(Run {
        processes,
        baseline,
        rate: total as f64 / seconds,
        seconds,
        per_process,
        postgres_cpu,
    })
}

/// `taskledger project` (release) on the run's database and topics.
fn spawn_projector(app: &BenchApp, partitions: i32) -> anyhow::Result<tokio::process::Child> {
    let common = &app.settings.common;
    let binary = taskledger_binary()?;
    tokio::process::Command::new(&binary)
        .arg("project")
        .env("TASKLEDGER_ENV", "local")
        .env("DATABASE_URL", app.database_url())
        .env("KAFKA_BROKERS", &common.kafka_brokers)
        .env("TASKLEDGER_HTTP_ADDR", "127.0.0.1:0")
        .env("TASKLEDGER_TASK_EVENTS_TOPIC", &common.task_events_topic)
        .env("TASKLEDGER_TASK_EVENTS_PARTITIONS", partitions.to_string())
        .env("TASKLEDGER_REMINDERS_TOPIC", &common.reminders_topic)
        .env("TASKLEDGER_TASK_UPDATES_TOPIC", &common.task_updates_topic)
        .env(
            "TASKLEDGER_CONSUMER_GROUP_PREFIX",
            common.consumer_group_prefix.as_deref().unwrap_or("bench"),
        )
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))
}

/// The task-list partitions each process (by pid) held at the end.
async fn partitions_held(app: &BenchApp) -> anyhow::Result<BTreeMap<u32, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT m.process, count(*) FROM projection_leases l
           JOIN projection_members m ON m.projection = l.projection AND m.member = l.owner
          WHERE l.projection = 'task-list' GROUP BY m.process",
    )
    .fetch_all(&app.pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(process, held)| Some((process.rsplit('/').next()?.parse().ok()?, held)))
        .collect())
}

/// CPU seconds every `postgres` process on this machine has used so far.
fn print(args: &Args, runs: &[Run]) {
    println!(
        "## A backlog of {} TaskCreated events, {} partitions",
        args.backlog + 1,
        args.partitions
    );
    println!();
    println!("| processes | events/s | ÷ bare consumer | seconds | partitions held | CPU s per process | projectors' CPU µs/event | Postgres CPU µs/event |");
    println!("|---:|---:|---:|---:|---|---|---:|---:|");
    for run in runs {
        let events = (args.backlog + 1) as f64;
        let projectors: f64 = run.per_process.iter().map(|(cpu, _)| cpu).sum();
        let held: Vec<String> = run.per_process.iter().map(|(_, h)| h.to_string()).collect();
        let cpu: Vec<String> = run
            .per_process
            .iter()
            .map(|(cpu, _)| format!("{cpu:.1}"))
            .collect();
        println!(
            "| {} | {:.0} | {:.3} | {:.1} | {} | {} | {:.0} | {:.0} |",
            run.processes,
            run.rate,
            run.rate / run.baseline,
            run.seconds,
            held.join(" / "),
            cpu.join(" / "),
            projectors / events * 1e6,
            run.postgres_cpu / events * 1e6,
        );
    }
    println!();
    println!(
        "Each process's CPU includes its start (connections, migrations checked) and every \
         projection it runs (task list, reminders, notifications, recurrence); Postgres's is \
         every backend's, the relay's and the API's included."
    );
}

/// What happened at a moment of the churn, and the lags of the probes that
/// followed it (until the next change).
struct Window {
    what: &'static str,
    lags_ms: Vec<f64>,
}

/// Two projector processes under load; a third joins, one leaves, one dies.
async fn churn(args: &Args) -> anyhow::Result<Vec<Window>> {
    let app = start_app(args).await?;
    let measured = churn_on(args, &app).await;
    app.stop(false).await?;
    measured
}

async fn churn_on(args: &Args, app: &BenchApp) -> anyhow::Result<Vec<Window>> {
    let mut projectors = vec![
        spawn_projector(app, args.partitions)?,
        spawn_projector(app, args.partitions)?,
    ];
    let token = bench_token("bench")?;
    let client = reqwest::Client::new();
    // Background load: four writers, each a task at a time.
    let stop = tokio_util::sync::CancellationToken::new();
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..4 {
        let (client, url, token, stop) =
            (client.clone(), app.url.clone(), token.clone(), stop.clone());
        writers.spawn(async move {
            let mut n = 0;
            while !stop.is_cancelled() {
                n += 1;
                let _ = graphql(
                    &client,
                    &url,
                    &token,
                    CREATE,
                    serde_json::json!({ "t": format!("load {writer}.{n}") }),
                )
                .await;
            }
        });
    }
    let mut windows = Vec::new();
    let phases: [(&'static str, u64); 4] = [
        ("two processes, steady", 15),
        ("a third joins", 15),
        ("one leaves (SIGTERM)", 15),
        ("one is killed (SIGKILL)", 20),
    ];
    for (what, seconds) in phases {
        match what {
            "a third joins" => projectors.push(spawn_projector(app, args.partitions)?),
            "one leaves (SIGTERM)" => {
                let mut leaving = projectors.remove(0);
                let pid = leaving.id().context("a running projector")?;
                tokio::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await?;
                tokio::time::timeout(Duration::from_secs(30), leaving.wait())
                    .await
                    .context("a projector did not stop within 30 s of SIGTERM")??;
            }
            "one is killed (SIGKILL)" => {
                let mut killed = projectors.remove(0);
                killed.kill().await?;
            }
            _ => {}
        }
        eprintln!("churn: {what}");
        let mut lags_ms = Vec::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(seconds) {
            let body = graphql(
                &client,
                &app.url,
                &token,
                CREATE,
                serde_json::json!({ "t": "probe" }),
            )
            .await
            .map_err(anyhow::Error::msg)?;
            let answered = Instant::now();
            let id = body["data"]["createTask"]["taskId"]
                .as_str()
                .and_then(|id| uuid::Uuid::parse_str(id).ok())
                .context("a task id")?;
            let visible = visible_after(
                &app.pool,
                id,
                answered,
                Duration::from_millis(1),
                Duration::from_secs(60),
            )
            .await?
            .context("a probe never became visible within 60 s")?;
            lags_ms.push(visible.as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        windows.push(Window { what, lags_ms });
    }
    stop.cancel();
    while writers.join_next().await.is_some() {}
    for mut projector in projectors {
        projector.kill().await?;
    }
    Ok(windows)
}

impl Window {
    /// The lag at quantile `q` (0 to 1) of this window's probes, in ms.
    fn lag_ms(&self, q: f64) -> f64 {
        let mut lags = self.lags_ms.clone();
        lags.sort_by(f64::total_cmp);
        lags.get(((lags.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    }
}

/// The churn's table, and its chart: the lag around each change.
fn print_churn(windows: &[Window]) -> BarChart {
    println!();
    println!("## Joins and leaves under load (4 writers, a probe every 100 ms)");
    println!();
    println!("| from the moment | probes | lag p50 ms | lag p99 ms | lag max ms |");
    println!("|---|---:|---:|---:|---:|");
    for window in windows {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} |",
            window.what,
            window.lags_ms.len(),
            window.lag_ms(0.5),
            window.lag_ms(0.99),
            window.lag_ms(1.0)
        );
    }
    let mut chart = BarChart::new(
        "Scale: commit → visible lag as projector processes join, leave and die",
        "ms",
    );
    for (series, q) in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)] {
        chart = chart.series(
            series,
            windows.iter().map(|w| (w.what.to_owned(), w.lag_ms(q))),
        );
    }
    chart
}
