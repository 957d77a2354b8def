//! The worker's subcommands, shared by both binaries: `taskledger-worker`
//! has these alone, `taskledger` adds the API's beside them.

use clap::{Subcommand, ValueEnum};
use infra::telemetry;
use tokio_util::sync::CancellationToken;

use crate::{Roles, Settings};

#[derive(Subcommand)]
pub enum Command {
    /// Publish committed events to the task-events topic.
    Relay,
    /// Build the read models (task list, reminders, notification inbox),
    /// run the recurrence processor and publish task-updates.
    Project,
    /// Fire due reminders to the reminders topic.
    Scheduler,
    /// Run the relay, the projections and the scheduler in this process.
    Workers,
    /// Apply migrations and create topics, then exit.
    Setup,
    /// Publish the whole event log to the topic again, from the beginning, in
    /// commit order and with the same message ids (after a broker lost it).
    Republish,
    /// Print a task's history from the event store: every event, when, by
    /// whom, and what it changed.
    Replay {
        /// The task's id.
        #[arg(long)]
        task: uuid::Uuid,
        /// One JSON object per event instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Inspect dead letters, or put one back on its topic after a fix.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
        /// The source topic whose dead letters to read (default: task-events).
        #[arg(long, global = true)]
        topic: Option<String>,
    },
    /// Write everything held about a user as one JSON document
    /// (docs/schemas/export.v1.schema.json): every task they created with
    /// its full history, their reminders, notifications and calendar feed.
    Export {
        /// The user whose data to export.
        #[arg(long)]
        user: String,
        /// Where to write it (default: standard output).
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Erase a user for good (docs/adr/0014): delete the key that seals what
    /// they typed, everywhere it was copied, and drop every row the read
    /// models hold for them. Waits for the erasure to complete.
    Erase {
        /// The user to erase.
        #[arg(long)]
        user: String,
    },
    /// Fold every task from the event store and compare it with the read
    /// model, row by row; list every difference and fail if there is one.
    Verify,
    /// Build a projection again from the event store beside the live one,
    /// then switch readers over (queries keep working throughout).
    Rebuild {
        projection: Rebuildable,
        /// Connections writing rows and building indexes at once.
        #[arg(long, default_value_t = 2)]
        writers: usize,
        /// The most events a second the bulk load reads (default: as fast
        /// as it can), to leave cores to live queries.
        #[arg(long)]
        max_rate: Option<std::num::NonZeroU32>,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Serve `/metrics` (progress, rate) and the probes here meanwhile.
        #[arg(long)]
        metrics_addr: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum DlqAction {
    /// One line per dead letter: offset, when, which projection, where from, why.
    List,
    /// One dead letter whole: headers, key and value.
    Show { offset: i64 },
    /// Put one dead letter back on its source topic (idempotent: projections
    /// recognise what they already applied).
    Replay { offset: i64 },
}

/// The projections `rebuild` can build again from the event store.
#[derive(Clone, Copy, ValueEnum)]
pub enum Rebuildable {
    /// The task list, with its counts and word list.
    TaskList,
    /// The pending reminders (what fired, or was snoozed, is kept).
    Reminders,
}

impl Rebuildable {
    fn name(self) -> &'static str {
        match self {
            Self::TaskList => "task-list",
            Self::Reminders => "reminders",
        }
    }
}

/// What a binary does after [`run`]: a one-off command has finished, or the
/// named roles are to run until a signal.
pub enum Next {
    Done,
    Run(&'static str, Roles),
}

/// Runs a one-off command, or says which roles to start.
pub async fn run(command: Command, settings: &Settings) -> anyhow::Result<Next> {
    match command {
        Command::Export { user, output } => {
            let _telemetry = telemetry::init(settings.env.log_format(), "export");
            let user = domain::values::UserId::parse(&user).map_err(anyhow::Error::msg)?;
            let pool = crate::connect(settings, 2).await?;
            crate::export::to_file_or_stdout(&pool, &user, output.as_deref()).await?;
            Ok(Next::Done)
        }
        Command::Erase { user } => {
            let _telemetry = telemetry::init(settings.env.log_format(), "erase");
            let user = domain::values::UserId::parse(&user).map_err(anyhow::Error::msg)?;
            let pool = crate::migrate(settings).await?;
            let erasure =
                projections::erasure::erase(&pool, &crate::ledger(settings)?, user.as_str())
                    .await?;
            tracing::info!(erasure = %erasure.erasure_id, "waiting for the second sweep");
            tokio::time::sleep(projections::erasure::SETTLE).await;
            projections::erasure::complete(&pool, erasure.erasure_id).await?;
            println!("{}", erasure.erasure_id);
            Ok(Next::Done)
        }
        Command::Replay { task, json } => {
            let pool = crate::connect(settings, 2).await?;
            crate::replay::print_history(&pool, task, json).await?;
            Ok(Next::Done)
        }
        Command::Dlq { action, topic } => {
            let kafka = settings.kafka();
            let topic = topic.unwrap_or_else(|| settings.task_events_topic.clone());
            match action {
                DlqAction::List => crate::dlq::list(&kafka, &topic).await?,
                DlqAction::Show { offset } => crate::dlq::show(&kafka, &topic, offset).await?,
                DlqAction::Replay { offset } => crate::dlq::replay(&kafka, &topic, offset).await?,
            }
            Ok(Next::Done)
        }
        Command::Rebuild {
            projection,
            writers,
            max_rate,
            json,
            metrics_addr,
        } => {
            use crate::rebuild::{rebuild, Options, Reminders, TaskList};
            let _telemetry = telemetry::init(settings.env.log_format(), "rebuild");
            let pool = crate::setup(settings).await?;
            if let Some(address) = metrics_addr {
                crate::serve_ops_meanwhile(settings, &pool, &address).await?;
            }
            let options = Options { writers, max_rate };
            let rebuilt = match projection {
                Rebuildable::TaskList => rebuild(&pool, &TaskList, options).await?,
                Rebuildable::Reminders => rebuild(&pool, &Reminders, options).await?,
            };
            if json {
                let summary = serde_json::json!({
                    "projection": projection.name(),
                    "tasks": rebuilt.tasks,
                    "events": rebuilt.events,
                    "caught_up": rebuilt.caught_up,
                    "loaded_secs": rebuilt.loaded_in.as_secs_f64(),
                    "switched_secs": rebuilt.elapsed.as_secs_f64(),
                });
                println!("{summary}");
                return Ok(Next::Done);
            }
            println!(
                "{} rebuilt: {} tasks from {} events in {:.1} s ({:.0} events/s; bulk load {:.1} s); {} caught up after the load",
                projection.name(),
                rebuilt.tasks,
                rebuilt.events,
                rebuilt.elapsed.as_secs_f64(),
                rebuilt.events as f64 / rebuilt.elapsed.as_secs_f64(),
                rebuilt.loaded_in.as_secs_f64(),
                rebuilt.caught_up
            );
            Ok(Next::Done)
        }
        Command::Verify => {
            let _telemetry = telemetry::init(settings.env.log_format(), "verify");
            let pool = crate::connect(settings, 4).await?;
            let report = crate::verify::verify(&pool).await?;
            for difference in &report.differences {
                println!("{difference}");
            }
            println!(
                "{} tasks ({} events) checked in {:.1} s: {} differ",
                report.tasks,
                report.events,
                report.elapsed.as_secs_f64(),
                report.differences.len()
            );
            if !report.differences.is_empty() {
                std::process::exit(1);
            }
            Ok(Next::Done)
        }
        Command::Setup => {
            let _telemetry = telemetry::init(settings.env.log_format(), "setup");
            crate::setup(settings).await?;
            tracing::info!("migrations applied and topics created");
            Ok(Next::Done)
        }
        Command::Republish => {
            let _telemetry = telemetry::init(settings.env.log_format(), "republish");
            let pool = crate::setup(settings).await?;
            let published = event_store::relay::republish(
                &pool,
                &settings.relay_name,
                &settings.task_events_topic,
            )
            .await?;
            tracing::info!(
                relay = %settings.relay_name,
                previously_published = published,
                "the relay publishes the whole log again from the beginning"
            );
            Ok(Next::Done)
        }
        Command::Relay => Ok(Next::Run("relay", Roles::RELAY)),
        Command::Project => Ok(Next::Run("project", Roles::PROJECT)),
        Command::Scheduler => Ok(Next::Run("scheduler", Roles::SCHEDULER)),
        Command::Workers => Ok(Next::Run("workers", Roles::ALL)),
    }
}

/// Runs a binary's `run` on a multi-threaded runtime, with glibc's arenas
/// bounded first (`allocator`).
pub fn block_on(run: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    crate::allocator::limit_arenas();
    infra::tls::install_crypto_provider();
    let ran = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| anyhow::anyhow!("starting the async runtime: {error}"))?
        .block_on(run);
    if !infra::kafka::wait_for_dropped_clients(std::time::Duration::from_secs(10)) {
        tracing::warn!("Kafka clients were still being destroyed after 10 s; exiting anyway");
    }
    ran
}

/// A cancellation token that SIGTERM or Ctrl-C cancels, and the allocator's
/// housekeeping, for a process that runs roles until told to stop.
pub fn shutdown_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    tokio::spawn(crate::allocator::give_back_freed_memory(shutdown.clone()));
    shutdown
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
    shutdown.cancel();
}
