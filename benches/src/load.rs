//! Load as the benchmarks make it: closed loops of clients, each sending its
//! next request as soon as the one before answered.

use std::time::{Duration, Instant};

use crate::Latencies;

/// `clients` closed loops for `window`, each awaiting `make()` again as soon
/// as the one before answered; every answer's latency (a failure is counted,
/// its first error printed) and the rate of answers.
pub async fn closed_loop<F, Fut>(clients: usize, window: Duration, make: F) -> (Latencies, f64)
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let make = make.clone();
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                while started.elapsed() < window {
                    let begun = Instant::now();
                    match make().await {
                        Ok(()) => latencies.record(begun.elapsed()),
                        Err(error) => {
                            if latencies.errors == 0 {
                                eprintln!("error: {error}");
                            }
                            latencies.errors += 1;
                        }
                    }
                }
                latencies
            })
        })
        .collect();
    let mut total = Latencies::default();
    for worker in workers {
        if let Ok(latencies) = worker.await {
            total.merge(&latencies);
        }
    }
    let rate = total.count() as f64 / started.elapsed().as_secs_f64();
    (total, rate)
}

/// Vacuums and analyses the task list's tables after a bulk load: what
/// autovacuum would have done by now on a live system (and what lets a
/// listing read the index alone).
pub async fn settle_task_list(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    for table in ["task_list", "task_stats", "tag_counts", "task_words"] {
        sqlx::query(&format!("VACUUM ANALYZE {table}"))
            .execute(pool)
            .await?;
    }
    Ok(())
}
