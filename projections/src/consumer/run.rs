//! The runtime's loop: take a share of the partitions, then apply batches,
//! check progress and settle the share again until shut down, and then let
//! the partitions go to the other processes. Any failure beyond one message
//! ends the activation, and the next one starts again from the offsets in
//! Postgres with new clients, as a restarted process would.

use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::Message;
use tokio_util::sync::CancellationToken;

use super::metrics;
use super::offsets::{advance, commit_for_monitoring, next_offsets, offset_out_of_range};
use super::projection::Projection;
use super::projection_consumer::ProjectionConsumer;

impl<P: Projection> ProjectionConsumer<P> {
    /// Consumes until `shutdown` is cancelled, starting again from the offsets
    /// in Postgres after any failure.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let name = self.projection.name();
        if self.settings.check_interval >= self.settings.lease_ttl {
            tracing::warn!(
                projection = name,
                check = ?self.settings.check_interval,
                lease = ?self.settings.lease_ttl,
                "the membership is renewed at each check, and the check is no more often than \
                 the lease runs out: the other processes will take this one's partitions"
            );
        }
        if self.settings.check_interval > infra::kafka::REPLACEMENT_NOTICE {
            tracing::warn!(
                projection = name,
                check = ?self.settings.check_interval,
                "checked less often than a topic's replacement expects; a replacement may \
                 delete the topic under this consumer"
            );
        }
        loop {
            match self.run_while_active(&shutdown).await {
                Ok(()) => break,
                Err(error) => {
                    metrics::restarted(name);
                    tracing::error!(
                        projection = name,
                        error = %format_args!("{error:#}"),
                        "projection failed; starting again from its offsets in Postgres in 1s"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        tracing::info!(projection = name, "projection stopped: shutdown requested");
        Ok(())
    }

    async fn run_while_active(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let name = self.projection.name();
        let topic = self.settings.topic.as_str();
        let Some(mut active) = self.activate(shutdown).await? else {
            return Ok(());
        };
        let mut check = tokio::time::interval(self.settings.check_interval);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    // Without it the others take the partitions once the
                    // lease runs out.
                    match self.membership.leave(&mut active.session).await {
                        Ok(()) => tracing::info!(projection = name, "let the partitions go to the other processes"),
                        Err(error) => tracing::warn!(
                            projection = name,
                            error = %error,
                            "could not let the partitions go; the others take them when the lease runs out"
                        ),
                    }
                    metrics::partitions_owned(name, 0);
                    return Ok(());
                }
                _ = check.tick() => {
                    self.rebalance(&mut active).await?;
                    self.check(&mut active).await?;
                }
                first = active.clients.consumer.recv() => {
                    let first = match first {
                        Ok(message) => message.detach(),
                        Err(error) => {
                            tracing::warn!(projection = name, error = %error, "consumer error");
                            if let Some(why) = restart_reason(active.clients.lost_broker(), &error) {
                                anyhow::bail!(why);
                            }
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    };
                    let mut batch = self.fill_batch(&active.clients.consumer, first).await;
                    // Fetched before a partition was let go.
                    batch.retain(|message| active.owned.contains_key(&message.partition()));
                    if batch.is_empty() {
                        continue;
                    }
                    let applied = self
                        .apply_until_done(&mut active, &batch, shutdown)
                        .await?;
                    if !applied {
                        return Ok(());
                    }
                    let committed = next_offsets(&batch);
                    advance(&mut active.next, &committed);
                    active.progress.made(Instant::now());
                    commit_for_monitoring(&active.clients.consumer, topic, &committed);
                }
            }
        }
    }
}

/// Why a consumer error calls for new clients from the offsets in Postgres,
/// or `None` for one worth waiting out. A client that lost every broker is
/// replaced before the broker comes back, since it may come back empty; an
/// offset a partition no longer holds means the topic was replaced or
/// truncated, and the next activation compares the stored offsets with what
/// the partitions hold.
pub(super) fn restart_reason(lost_broker: bool, error: &KafkaError) -> Option<&'static str> {
    if lost_broker {
        return Some(
            "lost every broker connection; replacing the clients before the broker comes back \
             (it may come back empty)",
        );
    }
    if offset_out_of_range(error) {
        return Some(
            "a partition no longer holds the offset this projection stands at (the topic was \
             replaced or truncated); assigning it again",
        );
    }
    None
}
