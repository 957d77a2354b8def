//! Secrets from a Dapr sidecar for the full binary: the workers' (the
//! database URL) and the API's JWT secret (key `jwt-secret`), where the
//! environment does not give them.

use crate::Settings;

/// Fills `DATABASE_URL` (key `database-url`) and `TASKLEDGER_JWT_SECRET` (key
/// `jwt-secret`) from the store named in the settings, where not already set.
pub async fn fill_secrets(settings: &mut Settings, sidecar: &str) -> anyhow::Result<()> {
    worker::secrets::fill_secrets(&mut settings.common, sidecar).await?;
    if let (Some(store), None) = (&settings.common.dapr_secret_store, &settings.api.jwt_secret) {
        settings.api.jwt_secret =
            Some(worker::secrets::secret(sidecar, store, "jwt-secret").await?);
    }
    Ok(())
}
