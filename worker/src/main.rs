//! `taskledger-worker ROLE`: the worker roles and the operators' commands,
//! built without the GraphQL engine or the MCP server (the worker image).

use anyhow::Context;
use clap::Parser;
use worker::cli::{self, Next};
use worker::Settings;

#[derive(Parser)]
#[command(version, about = "Taskledger's workers: relay, projections, scheduler")]
struct Cli {
    #[command(subcommand)]
    command: cli::Command,
    #[command(flatten)]
    settings: Settings,
}

fn main() -> anyhow::Result<()> {
    cli::block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let Cli {
        command,
        mut settings,
    } = Cli::parse();
    worker::secrets::fill_secrets(&mut settings, &worker::secrets::sidecar_url()).await?;
    let Next::Run(name, roles) = cli::run(command, &settings).await? else {
        return Ok(());
    };
    let _telemetry = infra::telemetry::init(settings.env.log_format(), name);
    let shutdown = cli::shutdown_on_signal();
    worker::start(&settings, roles, shutdown)
        .await
        .context("starting")?
        .wait()
        .await
}
