//! Secrets from a Dapr sidecar: with `TASKLEDGER_DAPR_SECRET_STORE` set, the
//! database URL (and, for the API, the JWT secret) that the environment does
//! not give are read from the sidecar's secrets API (`GET /v1.0/secrets/<store>/<key>`,
//! which answers `{"<key>": "<value>"}`), once, as the process starts.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::Settings;

/// Where the sidecar listens; Dapr sets `DAPR_HTTP_PORT` in the app's
/// environment.
pub fn sidecar_url() -> String {
    let port = std::env::var("DAPR_HTTP_PORT").unwrap_or_else(|_| "3500".into());
    format!("http://127.0.0.1:{port}")
}

/// Fills `DATABASE_URL` (key `database-url`) and `TASKLEDGER_MASTER_KEY`
/// (key `master-key`) from the store named in the settings, if not already set.
pub async fn fill_secrets(settings: &mut Settings, sidecar: &str) -> anyhow::Result<()> {
    if let (Some(store), None) = (&settings.dapr_secret_store, &settings.database_url) {
        settings.database_url = Some(secret(sidecar, store, "database-url").await?);
    }
    if let (Some(store), None) = (&settings.dapr_secret_store, &settings.master_key) {
        settings.master_key = Some(secret(sidecar, store, "master-key").await?);
    }
    Ok(())
}

/// How long a role waits for its sidecar to answer: Kubernetes starts the
/// app's container and the sidecar together, in no set order.
const SIDECAR_WAIT: Duration = Duration::from_secs(30);

/// The value of `key` in `store`, asked of the sidecar at `sidecar`.
pub async fn secret(sidecar: &str, store: &str, key: &str) -> anyhow::Result<String> {
    infra::tls::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("{sidecar}/v1.0/secrets/{store}/{key}");
    let started = tokio::time::Instant::now();
    let response = loop {
        let mut request = client.get(&url);
        // With an API token set on the sidecar, Dapr wants it on every call.
        if let Ok(token) = std::env::var("DAPR_API_TOKEN") {
            request = request.header("dapr-api-token", token);
        }
        match request.send().await {
            Ok(response) => break response,
            Err(error) if error.is_connect() && started.elapsed() < SIDECAR_WAIT => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => {
                return Err(error).with_context(|| {
                    format!("asking the Dapr sidecar for secret {key:?} of store {store:?}")
                })
            }
        }
    };
    let status = response.status();
    if !status.is_success() {
        bail!("the Dapr sidecar answered {status} for secret {key:?} of store {store:?}");
    }
    let mut values: HashMap<String, String> = response
        .json()
        .await
        .with_context(|| format!("reading secret {key:?} from the Dapr sidecar"))?;
    values
        .remove(key)
        .with_context(|| format!("the Dapr secret {key:?} of store {store:?} has no key {key:?}"))
}
