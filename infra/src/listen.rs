//! Listening on Postgres channels for as long as the process runs.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Runs `listen` until `shutdown`. Each time it fails (its connection went),
/// `lost` is told (what was announced meanwhile went unheard) and it listens
/// again a second later. `channel` names it in the log.
pub async fn again_and_again<F, Fut>(
    channel: &'static str,
    shutdown: CancellationToken,
    mut listen: F,
    mut lost: impl FnMut(),
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), sqlx::Error>>,
{
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            Err(error) = listen() => {
                lost();
                tracing::warn!(%error, channel, "lost a Postgres channel; listening again in 1s");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
