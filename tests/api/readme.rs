//! The table of environment variables in `docs/operations.md` (its
//! "Settings" section) names exactly what the binary reads: every `env` of
//! `Settings` (what `taskledger --help` lists) and the few variables read
//! outside it. Needs no services.

use std::collections::BTreeSet;

use clap::{Args, Command};
use taskledger::Settings;

/// Read by the binary without being a `Settings` argument: the log filter,
/// which `telemetry::init` hands to `EnvFilter`, the async runtime's worker
/// threads, OpenTelemetry's standard variables, and the Dapr sidecar's port.
const READ_OUTSIDE_SETTINGS: &[&str] = &[
    "RUST_LOG",
    "TOKIO_WORKER_THREADS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_SERVICE_NAME",
    "DAPR_HTTP_PORT",
];

fn variables_read() -> BTreeSet<String> {
    let command = Settings::augment_args(Command::new("taskledger"));
    let declared = command.get_arguments().filter_map(|arg| arg.get_env());
    declared
        .map(|name| name.to_str().expect("a UTF-8 variable name").to_owned())
        .chain(READ_OUTSIDE_SETTINGS.iter().map(|name| (*name).to_owned()))
        .collect()
}

/// The first cells of the table headed `| variable | default | meaning |`.
fn variables_in_table(page: &str) -> BTreeSet<String> {
    let mut lines = page
        .lines()
        .skip_while(|line| !line.starts_with("| variable |"));
    assert!(
        lines.next().is_some(),
        "docs/operations.md has a `| variable |` table"
    );
    lines
        .skip(1) // |---|---|---|
        .take_while(|line| line.starts_with('|'))
        .map(|row| {
            let cell = row.split('|').nth(1).unwrap_or_default().trim();
            cell.strip_prefix('`')
                .and_then(|name| name.strip_suffix('`'))
                .unwrap_or_else(|| panic!("a `NAME` in the first cell of {row:?}"))
                .to_owned()
        })
        .collect()
}

#[test]
fn readme_table_lists_every_environment_variable_and_only_those() {
    let read = variables_read();
    let listed = variables_in_table(include_str!("../../docs/operations.md"));
    let missing: Vec<_> = read.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&read).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/operations.md's table of environment variables is out of date:\n  \
         read by taskledger but not listed: {missing:?}\n  \
         listed but not read: {unknown:?}"
    );
}
