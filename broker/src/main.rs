//! `taskledger-broker`: the Kafka broker the development machine and the
//! tests run (docs/adr/0003). It is tansu's broker at 0.6.0, built from its
//! crates inside this workspace, so the dependencies it shares with
//! Taskledger compile once on a fresh machine instead of twice. Beyond
//! `tansu broker` it serves TLS (tansu 0.6.0 takes a certificate but never
//! uses it: here the binary terminates TLS itself and hands the bytes to the
//! broker on a loopback port of its own), so one listener can require
//! SASL/SCRAM over TLS as managed Kafka services do; and it writes SCRAM users
//! itself (`--user`, `user set`), so a broker that requires authentication
//! needs no unauthenticated door to create them.

mod scram;
mod tls;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_broker::NODE_ID;
use tansu_sans_io::ScramMechanism;
use tansu_storage::{BrokerRegistrationRequest, ScramCredential, Storage as _, StorageContainer};
use tokio_util::sync::CancellationToken;
use url::Url;

#[derive(Parser)]
#[command(
    version,
    about = "The local Kafka broker (tansu 0.6.0) for Taskledger",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Serve,
}

#[derive(Subcommand)]
enum Command {
    /// Set a user's SCRAM-SHA-256 and SCRAM-SHA-512 password in a broker's
    /// storage, whether or not the broker runs (new connections see it at
    /// once): how a test rotates a password on the broker's side.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Subcommand)]
enum UserAction {
    Set {
        #[arg(long)]
        storage_engine: Url,
        #[command(flatten)]
        user: UserArg,
    },
}

#[derive(Args)]
struct UserArg {
    name: String,
    password: String,
}

#[derive(Args)]
struct Serve {
    /// Where the broker listens.
    #[arg(long, default_value = "tcp://127.0.0.1:9092")]
    listener_url: Url,
    /// What the broker tells clients to connect to (its metadata).
    #[arg(long, default_value = "tcp://127.0.0.1:9092")]
    advertised_listener_url: Url,
    /// `memory://tansu/` (the default), or `sqlite://FILE` to keep topics and
    /// users across restarts.
    #[arg(long, default_value = "memory://tansu/")]
    storage_engine: Url,
    /// Require SASL (SCRAM-SHA-256 or SCRAM-SHA-512) of every client.
    #[arg(long)]
    authentication: bool,
    /// `NAME=PASSWORD`: a SCRAM user (both mechanisms) written to the storage
    /// before the broker starts; needs storage that persists (sqlite).
    #[arg(long = "user", value_name = "NAME=PASSWORD")]
    users: Vec<String>,
    /// A PEM certificate chain: with `--key`, the listener speaks TLS only.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// The PEM private key of `--cert`.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
}

const CLUSTER_ID: &str = "tansu_cluster";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    // Both of rustls's crypto providers are linked (the workspace's sqlx
    // and tansu each bring one), so the process names its own.
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a TLS crypto provider was already installed"))?;
    let cli = Cli::parse();
    match cli.command {
        Some(Command::User {
            action:
                UserAction::Set {
                    storage_engine,
                    user,
                },
        }) => set_user(&storage_engine, &storage_engine, &user.name, &user.password).await,
        None => serve(cli.serve).await,
    }
}

async fn serve(args: Serve) -> anyhow::Result<()> {
    let tls = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
        _ => None,
    };
    if !args.users.is_empty() && args.storage_engine.scheme() == "memory" {
        bail!("--user needs storage that persists (--storage-engine sqlite://FILE): memory storage is the broker's own");
    }
    for user in &args.users {
        let (name, password) = user
            .split_once('=')
            .with_context(|| format!("--user takes NAME=PASSWORD, not {user:?}"))?;
        set_user(
            &args.storage_engine,
            &args.advertised_listener_url,
            name,
            password,
        )
        .await?;
    }
    println!(
        "taskledger-broker (tansu 0.6.0) listening on {} (advertised {}), storage {}{}{}",
        &args.listener_url,
        args.advertised_listener_url,
        args.storage_engine.scheme(),
        if tls.is_some() { ", TLS" } else { "" },
        if args.authentication {
            ", SASL/SCRAM required"
        } else {
            ""
        },
    );
    // With TLS, clients reach the TLS listener, which hands each connection
    // to the broker on a loopback port only this process knows.
    let listener = match tls {
        Some(config) => {
            let inside = tls::loopback_port().context("finding a loopback port for the broker")?;
            let public = args.listener_url.clone();
            tokio::spawn(async move {
                if let Err(error) = tls::terminate(&public, inside, config).await {
                    tracing::error!(%error, "the TLS listener stopped");
                    std::process::exit(1);
                }
            });
            Url::parse(&format!("tcp://{inside}")).context("the broker's loopback address")?
        }
        None => args.listener_url,
    };
    let broker = Broker::<Controller<StorageContainer>, StorageContainer>::builder()
        .node_id(NODE_ID)
        .cluster_id(CLUSTER_ID)
        .incarnation_id(uuid::Uuid::now_v7())
        .advertised_listener(args.advertised_listener_url)
        .storage(args.storage_engine)
        .listener(listener)
        .authentication(args.authentication)
        .silent(true)
        .build()
        .await
        .context("starting the broker")?;
    let outcome = broker
        .main(tokio::time::Instant::now())
        .await
        .context("running the broker")?;
    tracing::info!(?outcome, "the broker stopped");
    Ok(())
}

/// Writes `name`'s credentials for both SCRAM mechanisms into the storage at
/// `storage_engine`, with a fresh salt each.
async fn set_user(
    storage_engine: &Url,
    advertised: &Url,
    name: &str,
    password: &str,
) -> anyhow::Result<()> {
    if name.is_empty() || password.is_empty() {
        bail!("a SCRAM user needs a name and a password");
    }
    let done = CancellationToken::new();
    let storage = StorageContainer::builder()
        .node_id(NODE_ID)
        .cluster_id(CLUSTER_ID)
        .advertised_listener(advertised.clone())
        .storage(storage_engine.clone())
        .cancellation(done.clone())
        .silent(true)
        .build()
        .await
        .with_context(|| format!("opening the broker's storage {storage_engine}"))?;
    // Credentials belong to a cluster: its row is what the broker registers
    // as it starts, so a user written first registers it.
    storage
        .register_broker(BrokerRegistrationRequest {
            broker_id: NODE_ID,
            cluster_id: CLUSTER_ID.into(),
            incarnation_id: uuid::Uuid::now_v7(),
            rack: None,
        })
        .await
        .context("registering the cluster in the broker's storage")?;
    for (mechanism, scram) in [
        (ScramMechanism::Scram256, scram::Mechanism::Sha256),
        (ScramMechanism::Scram512, scram::Mechanism::Sha512),
    ] {
        let salt: [u8; 32] = rand::random();
        let credential = scram::credential(scram, password.as_bytes(), &salt, scram::ITERATIONS);
        storage
            .upsert_user_scram_credential(
                name,
                mechanism,
                ScramCredential {
                    salt: credential.salt.into(),
                    iterations: credential.iterations as i32,
                    stored_key: credential.stored_key.into(),
                    server_key: credential.server_key.into(),
                },
            )
            .await
            .with_context(|| format!("writing {name}'s {mechanism:?} credential"))?;
    }
    // The storage's own task holds the sqlite file until it has stopped: the
    // broker opening it next would find it locked.
    done.cancel();
    drop(storage);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    Ok(())
}

/// A TLS server configuration from PEM files, without client certificates.
fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the certificate chain {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("building the TLS configuration")
}
