//! `analytics-example`: consumes task-events and prints completed tasks per
//! day per user every ten seconds, until Ctrl-C or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use analytics_example::{completions_per_day, run, Counters};
use clap::Parser;
use infra::kafka::KafkaSettings;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(about = "Example analytics consumer: completed tasks per day per user")]
struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long, default_value = "task-events")]
    topic: String,
    /// The consumer group: a new one starts from the beginning of the topic.
    #[arg(long, default_value = "analytics-completions")]
    group: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let pool = sqlx::PgPool::connect(&args.database_url).await?;
    let kafka = KafkaSettings {
        brokers: args.brokers,
        ..KafkaSettings::local()
    };
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        stop.cancel();
    });
    let counters = Arc::new(Counters::default());
    let report = {
        let (pool, shutdown) = (pool.clone(), shutdown.clone());
        tokio::spawn(async move {
            while !shutdown.is_cancelled() {
                tokio::time::sleep(Duration::from_secs(10)).await;
                for (day, user, count) in completions_per_day(&pool).await.unwrap_or_default() {
                    println!("{day}  {user:<24} {count}");
                }
            }
        })
    };
    run(pool, kafka, &args.topic, &args.group, counters, shutdown).await?;
    report.abort();
    Ok(())
}
