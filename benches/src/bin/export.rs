//! The export benchmark: `taskledger export --user` over a small and a large
//! account in one store, as the released binary in a process of its own whose
//! resident memory is sampled. Memory that stays flat from the small account
//! to the large one is what "streamed" means; the rate is set beside reading
//! the same events in one query, in the same run.
//!
//! Run with `./dev bench export` (release build, real Postgres);
//! `--help` for the knobs.

use std::time::{Duration, Instant};

use anyhow::bail;
use benches::store::{store, template_task, EVENTS_PER_TASK};
use benches::{taskledger_binary, BenchApp, MemoryTrace, Services};
use clap::Parser;
use taskledger::Roles;

#[derive(Parser)]
#[command(about = "Export benchmark: a small and a large account, memory and rate")]
struct Args {
    /// Tasks of the small account (five events each).
    #[arg(long, default_value_t = 1_000)]
    small: i64,
    /// Tasks of the large account.
    #[arg(long, default_value_t = 100_000)]
    large: i64,
    /// Keep the run's database afterwards (its name is printed).
    #[arg(long)]
    keep: bool,
    #[command(flatten)]
    services: Services,
}

struct Run {
    tasks: i64,
    seconds: f64,
    peak_mb: f64,
    bytes: u64,
    baseline_seconds: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    infra::tls::install_crypto_provider();
    let args = Args::parse();
    let app = BenchApp::start(&args.services, Roles::API, 10).await?;
    let client = reqwest::Client::new();
    let template = template_task(&client, &app.url).await?;
    store(&app.pool, &template, args.small, 1, "small").await?;
    store(&app.pool, &template, args.large, 1, "large").await?;
    sqlx::query("VACUUM ANALYZE events")
        .execute(&app.pool)
        .await?;
    let mut runs = Vec::new();
    for (user, tasks) in [("small0", args.small), ("large0", args.large)] {
        runs.push(export(&app, user, tasks).await?);
    }
    println!(
        "| account | tasks | events | seconds | tasks/s | the same events in one query (baseline) | ÷ baseline | document MB | peak RSS MB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, run) in ["small", "large"].iter().zip(&runs) {
        println!(
            "| {name} | {} | {} | {:.2} | {:.0} | {:.2} s | {:.2} | {:.1} | {:.1} |",
            run.tasks,
            run.tasks * EVENTS_PER_TASK,
            run.seconds,
            run.tasks as f64 / run.seconds,
            run.baseline_seconds,
            run.seconds / run.baseline_seconds,
            run.bytes as f64 / 1e6,
            run.peak_mb,
        );
    }
    println!(
        "peak RSS, large ÷ small: {:.2} for {:.0}× the tasks",
        runs[1].peak_mb / runs[0].peak_mb,
        runs[1].tasks as f64 / runs[0].tasks as f64
    );
    app.stop(args.keep).await
}

/// One export by the released binary, its memory sampled every 20 ms; and
/// the baseline: the account's events read in one query.
async fn export(app: &BenchApp, user: &str, tasks: i64) -> anyhow::Result<Run> {
    let output = std::env::temp_dir().join(format!("taskledger-export-{user}.json"));
    let started = Instant::now();
    let mut child = tokio::process::Command::new(taskledger_binary()?)
        .args(["export", "--user", user, "--output"])
        .arg(&output)
        .env("DATABASE_URL", app.database_url())
        .env("TASKLEDGER_ENV", "local")
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let memory = MemoryTrace::start(child.id().unwrap_or_default(), Duration::from_millis(20));
    let status = child.wait().await?;
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("taskledger export --user {user} failed: {status}");
    }
    let bytes = std::fs::metadata(&output)?.len();
    let document: serde_json::Value = serde_json::from_slice(&std::fs::read(&output)?)?;
    std::fs::remove_file(&output)?;
    let exported = document["tasks"].as_array().map_or(0, Vec::len) as i64;
    if exported != tasks {
        bail!("the export of {user} holds {exported} tasks, not {tasks}");
    }
    let started = Instant::now();
    let (read,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (SELECT payload::text, metadata::text FROM events
          WHERE aggregate_type = 'Task' AND metadata->>'user_id' = $1) AS e",
    )
    .bind(user)
    .fetch_one(&app.pool)
    .await?;
    let baseline_seconds = started.elapsed().as_secs_f64();
    eprintln!("{user}: {exported} tasks in {seconds:.2} s; baseline read {read} events");
    Ok(Run {
        tasks,
        seconds,
        peak_mb: memory.peak_kb() as f64 / 1024.0,
        bytes,
        baseline_seconds,
    })
}
