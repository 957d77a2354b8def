//! Commands by shape, through the command service called directly: what a
//! command costs in CPU (this process and Postgres) and in statements
//! (`pg_stat_statements`), for new tasks, for hot tasks drawn Zipf-wise from
//! 10,000 (with the default cache and with one a tenth the size), and for a
//! task with 10,000 events in its history, warm and cold, beside a new
//! task's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::statements::{one_line, Statements};
use benches::zipf::Zipf;
use benches::{cpu_seconds, ms_each, postgres_cpu_seconds, Latencies};
use domain::values::{TaskId, TaskTitle, UserId};
use domain::{NewTask, TaskCommand, TaskServices};
use event_store::command::{Actor, CommandService, DEFAULT_WARM_TASKS};
use sqlx::PgPool;

/// Tasks the Zipf workload draws from, and events in the long task's history.
const HOT_SET: usize = 10_000;
const LONG_HISTORY: usize = 10_000;
/// Windows of the Zipf workload run before the measured one.
const WARM_UP_PASSES: usize = 2;

/// One phase's figures.
struct Phase {
    latencies: Latencies,
    rate: f64,
    process_cpu: f64,
    postgres_cpu: f64,
    statements: Option<Vec<(String, i64)>>,
}

impl Phase {
    fn per_command(&self, total: f64) -> f64 {
        total / self.latencies.count().max(1) as f64
    }

    fn statements_per_command(&self) -> Option<f64> {
        let total: i64 = self
            .statements
            .as_ref()?
            .iter()
            .map(|(_, calls)| calls)
            .sum();
        Some(self.per_command(total as f64))
    }

    fn row(&self, name: &str, hit_rate: Option<String>) -> String {
        format!(
            "| {name} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} |",
            self.rate,
            self.latencies.millis(0.5),
            self.latencies.millis(0.99),
            hit_rate.unwrap_or_else(|| "—".to_owned()),
            ms_each(self.process_cpu, self.latencies.count()),
            ms_each(self.postgres_cpu, self.latencies.count()),
            self.statements_per_command()
                .map_or("—".to_owned(), |s| format!("{s:.2}")),
        )
    }
}

/// Where the phases' statements are counted.
pub struct Counting<'a> {
    pub admin: &'a PgPool,
    pub database: &'a str,
    /// The API's process, when it runs apart from this one.
    pub api_pid: Option<u32>,
}

impl Counting<'_> {
    async fn read(&self) -> Option<Statements> {
        Statements::read(self.admin, self.database).await
    }
}

/// Runs `clients` loops of `command(worker, n)` for `window` (or `limit`
/// commands per client, whichever comes first), measuring CPU and
/// statements around them.
async fn phase<F>(
    commands: &Arc<CommandService>,
    counting: &Counting<'_>,
    clients: usize,
    window: Duration,
    limit: u64,
    command: F,
) -> anyhow::Result<Phase>
where
    F: Fn(usize, u64) -> (TaskId, TaskCommand) + Send + Sync + 'static,
{
    let command = Arc::new(command);
    let before = counting.read().await;
    let (process, postgres) = (cpu_seconds(std::process::id()), postgres_cpu_seconds());
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|worker| {
            let (commands, command) = (commands.clone(), command.clone());
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                let mut n = 0;
                while started.elapsed() < window && n < limit {
                    let (task_id, command) = command(worker, n);
                    let actor = Actor {
                        user_id: command.actor().clone(),
                        correlation_id: format!("shape-{worker}-{n}"),
                    };
                    let begun = Instant::now();
                    match commands.execute(&actor, task_id, command, None).await {
                        Ok(_) => latencies.record(begun.elapsed()),
                        Err(error) => {
                            if latencies.errors == 0 {
                                eprintln!("error: {error}");
                            }
                            latencies.errors += 1;
                        }
                    }
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Latencies::default();
    for worker in workers {
        latencies.merge(&worker.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let process_cpu = cpu_seconds(std::process::id())
        .zip(process)
        .map_or(0.0, |(after, before)| after - before);
    let postgres_cpu = postgres_cpu_seconds() - postgres;
    let after = counting.read().await;
    Ok(Phase {
        rate: latencies.count() as f64 / elapsed,
        latencies,
        process_cpu,
        postgres_cpu,
        statements: before
            .zip(after)
            .map(|(before, after)| before.since(&after)),
    })
}

fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

fn owner() -> UserId {
    UserId::parse("bench-shapes").expect("a user id")
}

fn create(task_id: TaskId, n: u64) -> TaskCommand {
    TaskCommand::Create {
        task_id,
        owner: owner(),
        title: TaskTitle::parse(&format!("task {n}")).expect("a title"),
        details: NewTask::default(),
    }
}

fn edit(n: u64) -> TaskCommand {
    TaskCommand::Edit {
        actor: owner(),
        title: Some(TaskTitle::parse(&format!("title {n}")).expect("a title")),
        description: None,
    }
}

/// Measures every shape; answers the number of failed commands.
pub async fn measure(
    pool: &PgPool,
    counting: &Counting<'_>,
    clients: usize,
    window: Duration,
) -> anyhow::Result<u64> {
    let services = || TaskServices::default();
    let default_cache = Arc::new(CommandService::new(pool.clone(), services()));
    let mut failures = 0;

    println!();
    println!("## Commands by shape: the command service called directly");
    println!();
    println!("| workload | commands/s | p50 ms | p99 ms | warm hit rate | process CPU ms/command | Postgres CPU ms/command | statements/command |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");

    // New tasks: every command a creation (a load that finds nothing, then
    // the statement).
    let creates = phase(
        &default_cache,
        counting,
        clients,
        window,
        u64::MAX,
        |_, n| {
            let id = TaskId::new();
            (id, create(id, n))
        },
    )
    .await?;
    failures += creates.latencies.errors;
    let stats = &creates.statements;
    println!(
        "{}",
        creates.row(
            &format!("new tasks, uniform ({clients} clients)"),
            Some(percent(default_cache.warm_counts().hit_rate()))
        )
    );

    // The hot set, created first (not measured).
    let per_client = HOT_SET / clients;
    let hot: Arc<Vec<TaskId>> =
        Arc::new((0..per_client * clients).map(|_| TaskId::new()).collect());
    let seeding = Arc::new(CommandService::new(pool.clone(), services()).with_warm_tasks(0));
    let set = hot.clone();
    let seeded = phase(
        &seeding,
        counting,
        clients,
        Duration::MAX,
        per_client as u64,
        move |worker, n| {
            let i = n as usize * clients + worker;
            (set[i], create(set[i], n))
        },
    )
    .await?;
    failures += seeded.latencies.errors;

    for (name, capacity) in [
        (
            format!("Zipf (s = 1) edits over {HOT_SET} tasks, {DEFAULT_WARM_TASKS} kept warm"),
            DEFAULT_WARM_TASKS,
        ),
        (
            format!("Zipf (s = 1) edits over {HOT_SET} tasks, 1,000 kept warm"),
            1_000,
        ),
    ] {
        let service =
            Arc::new(CommandService::new(pool.clone(), services()).with_warm_tasks(capacity));
        let set = hot.clone();
        let draws: Arc<Vec<std::sync::Mutex<Zipf>>> = Arc::new(
            (0..clients)
                .map(|worker| {
                    std::sync::Mutex::new(Zipf::new(per_client * clients, 1.0, 17 + worker as u64))
                })
                .collect(),
        );
        let pick = move |worker: usize, n: u64| {
            let rank = draws[worker].lock().expect("not poisoned").next_rank();
            (set[rank], edit(n))
        };
        let pick = Arc::new(pick);
        // Warm-up passes fill the cache, as a process that has run a while
        // has it (each pass's hit rate printed: the misses are the tail's
        // first commands in this process); the pass after them is measured.
        let mut warming = Vec::with_capacity(WARM_UP_PASSES);
        for _ in 0..WARM_UP_PASSES {
            let (before, warm) = (service.warm_counts(), pick.clone());
            phase(
                &service,
                counting,
                clients,
                window,
                u64::MAX,
                move |w, n| warm(w, n),
            )
            .await?;
            warming.push(percent(service.warm_counts().hit_rate_since(&before)));
        }
        let before = service.warm_counts();
        let zipf = phase(
            &service,
            counting,
            clients,
            window,
            u64::MAX,
            move |w, n| pick(w, n),
        )
        .await?;
        failures += zipf.latencies.errors;
        let hit_rate = service.warm_counts().hit_rate_since(&before);
        println!(
            "{}",
            zipf.row(
                &name,
                Some(format!(
                    "{} (warm-up passes: {})",
                    percent(hit_rate),
                    warming.join(", ")
                ))
            )
        );
    }

    // One task with a long history, built by one writer (not measured).
    let long = TaskId::new();
    let writer = Arc::new(CommandService::new(pool.clone(), services()));
    let built = phase(
        &writer,
        counting,
        1,
        Duration::MAX,
        LONG_HISTORY as u64,
        move |_, n| (long, if n == 0 { create(long, n) } else { edit(n) }),
    )
    .await?;
    failures += built.latencies.errors;

    // One client from here: a single task's commands run one after another.
    let cold = Arc::new(CommandService::new(pool.clone(), services()).with_warm_tasks(0));
    let single = 2_000;
    let new_cold = phase(&cold, counting, 1, window, single, |_, n| {
        let id = TaskId::new();
        (id, create(id, n))
    })
    .await?;
    // Tasks of one event each, each edited once cold: the same two round
    // trips as the long task's, with one event to read and fold.
    let short: Arc<Vec<TaskId>> = Arc::new((0..single).map(|_| TaskId::new()).collect());
    let set = short.clone();
    let made = phase(&writer, counting, 1, Duration::MAX, single, move |_, n| {
        let id = set[n as usize];
        (id, create(id, n))
    })
    .await?;
    failures += made.latencies.errors;
    let short_cold = phase(&cold, counting, 1, window, single, move |_, n| {
        (short[n as usize], edit(n))
    })
    .await?;
    let long_cold = phase(&cold, counting, 1, window, single, move |_, n| {
        (long, edit(n))
    })
    .await?;
    let long_warm = phase(&writer, counting, 1, window, single, move |_, n| {
        (long, edit(n))
    })
    .await?;
    let mut no_snapshot = Latencies::default();
    for n in 0..50 {
        sqlx::query("DELETE FROM task_snapshots WHERE aggregate_id = $1")
            .bind(long.to_string())
            .execute(pool)
            .await?;
        let begun = Instant::now();
        let actor = Actor {
            user_id: owner(),
            correlation_id: format!("no-snapshot-{n}"),
        };
        match cold.execute(&actor, long, edit(n), None).await {
            Ok(_) => no_snapshot.record(begun.elapsed()),
            Err(_) => no_snapshot.errors += 1,
        }
    }
    failures += new_cold.latencies.errors
        + short_cold.latencies.errors
        + long_cold.latencies.errors
        + long_warm.latencies.errors
        + no_snapshot.errors;
    println!(
        "{}",
        new_cold.row("a new task, nothing kept warm (1 client)", None)
    );
    println!(
        "{}",
        short_cold.row(
            "a task with one event, nothing kept warm: that event (1 client)",
            None
        )
    );
    println!(
        "{}",
        long_cold.row(
            &format!("the task with {LONG_HISTORY}+ events, nothing kept warm: its snapshot and the events after it (1 client)"),
            None
        )
    );
    println!(
        "{}",
        long_warm.row(
            &format!("the task with {LONG_HISTORY}+ events, kept warm (1 client)"),
            None
        )
    );
    println!(
        "| the task with {LONG_HISTORY}+ events, its snapshot deleted before each command: every event folded (1 client, 50 commands) | — | {:.2} | {:.2} | — | — | — | — |",
        no_snapshot.millis(0.5),
        no_snapshot.millis(0.99)
    );
    println!();
    println!(
        "A command on the {LONG_HISTORY}-event task, loaded cold, ÷ a new task's: p50 {:.2} (÷ the short task's, loaded cold: {:.2}), kept warm: {:.2}; without its snapshot: {:.1}.",
        long_cold.latencies.millis(0.5) / new_cold.latencies.millis(0.5),
        long_cold.latencies.millis(0.5) / short_cold.latencies.millis(0.5),
        long_warm.latencies.millis(0.5) / new_cold.latencies.millis(0.5),
        no_snapshot.millis(0.5) / new_cold.latencies.millis(0.5),
    );

    if let Some(stats) = stats {
        println!();
        println!("Statements of the new-task workload, per command (`pg_stat_statements`):");
        println!();
        println!("| statement | calls/command |");
        println!("|---|---:|");
        for (query, calls) in stats.iter().take(8) {
            println!(
                "| `{}` | {:.2} |",
                one_line(query, 90).replace('|', "\\|"),
                creates.per_command(*calls as f64)
            );
        }
    }
    Ok(failures)
}
