//! `taskledger ROLE`: every role in one binary, the API among them. The
//! worker roles and the operators' commands are the worker crate's (the
//! `taskledger-worker` binary runs them without the API).

use anyhow::Context;
use clap::{Parser, Subcommand};
use domain::values::UserId;
use taskledger::{Roles, Settings};
use worker::cli::{self, Next};

#[derive(Parser)]
#[command(version, about = "Taskledger: an event-sourced task backend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Serve GraphQL, MCP, the live feed, the page, health and metrics over HTTP.
    Api,
    /// Run every role in this process (the local default).
    All,
    /// Print a bearer token for USER.
    Token {
        user: String,
        /// Hours until the token expires.
        #[arg(long, default_value_t = 24)]
        hours: i64,
    },
    #[command(flatten)]
    Worker(cli::Command),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli::block_on(run(cli.command, cli.settings))
}

async fn run(command: Command, mut settings: Settings) -> anyhow::Result<()> {
    taskledger::dapr::fill_secrets(&mut settings, &worker::secrets::sidecar_url()).await?;
    let (name, roles) = match command {
        Command::Token { user, hours } => {
            let user = UserId::parse(&user).map_err(anyhow::Error::msg)?;
            let verifier = settings.token_verifier()?;
            println!("{}", verifier.issue(&user, chrono::Duration::hours(hours)));
            return Ok(());
        }
        Command::Api => ("api", Roles::API),
        Command::All => ("all", Roles::ALL),
        Command::Worker(cli::Command::Setup) => {
            let _telemetry = infra::telemetry::init(settings.common.env.log_format(), "setup");
            taskledger::setup(&settings).await?;
            tracing::info!("migrations applied and topics created");
            return Ok(());
        }
        Command::Worker(command) => match cli::run(command, &settings.common).await? {
            Next::Done => return Ok(()),
            Next::Run(name, workers) => (name, Roles::workers(workers)),
        },
    };
    let _telemetry = infra::telemetry::init(settings.common.env.log_format(), name);
    let shutdown = cli::shutdown_on_signal();
    taskledger::start(&settings, roles, shutdown)
        .await
        .context("starting")?
        .wait()
        .await
}
