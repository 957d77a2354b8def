//! The periodic check of a running projection: is the topic still the one it
//! assigned, and are the partitions this process holds keeping up? A consumer can stop delivering without an
//! error (a broker that came back empty, a fetch that never returns), so a
//! projection that applies nothing while its partitions hold messages is
//! declared stalled and started again with a new consumer (docs/adr/0002,
//! "Progress is watched").

use std::collections::HashMap;
use std::time::Instant;

use infra::single_active;

use super::activation::{topic_watermarks, Activation};
use super::leases::Owned;
use super::metrics;
use super::progress::Verdict;
use super::projection::Projection;
use super::projection_consumer::ProjectionConsumer;

/// The messages each partition this process holds (`owned`) has beyond where
/// the projection stands, with the partition; a partition with no stored
/// offset stands at its start.
pub(super) fn partition_lag(
    watermarks: &[(i64, i64)],
    owned: &Owned,
    next: &HashMap<i32, i64>,
) -> Vec<(i32, i64)> {
    owned
        .keys()
        .filter_map(|&partition| {
            let &(low, high) = watermarks.get(usize::try_from(partition).ok()?)?;
            let next = next.get(&partition).copied().unwrap_or(low);
            Some((partition, (high - next).max(0)))
        })
        .collect()
}

impl<P: Projection> ProjectionConsumer<P> {
    /// A replacement of the topic, its generation, the partitions, lag and
    /// progress: anything that calls for a new start ends the activation
    /// with an error.
    pub(super) async fn check(&self, active: &mut Activation) -> anyhow::Result<()> {
        let name = self.projection.name();
        if active.clients.lost_broker() {
            anyhow::bail!("lost every broker connection; replacing the clients");
        }
        let topic = &self.settings.topic;
        if infra::kafka::being_replaced(&mut active.session, &[topic]).await? {
            anyhow::bail!(
                "the topic is being replaced by one with more partitions; letting go of it"
            );
        }
        let generation = active.generation;
        let now_generation = single_active::topic_generation(&mut active.session, topic).await?;
        if now_generation != generation {
            anyhow::bail!(
                "the topic was published again from the beginning (generation {generation} → \
                 {now_generation}); reading it again from the start"
            );
        }
        let watermarks = match topic_watermarks(&active.clients.consumer, topic).await {
            Ok(Some(watermarks)) => watermarks,
            Ok(None) => {
                metrics::broker_reachable(name, true);
                tracing::warn!(
                    projection = name,
                    "the broker does not know the topic (yet)"
                );
                return Ok(());
            }
            Err(error) => {
                metrics::broker_reachable(name, false);
                tracing::debug!(error = %format_args!("{error:#}"), "could not read the topic's watermarks");
                return Ok(());
            }
        };
        metrics::broker_reachable(name, true);
        let count = active.partitions;
        if watermarks.len() as i32 != count {
            anyhow::bail!(
                "the topic has {} partitions now, not {count}; assigning them again",
                watermarks.len()
            );
        }
        let lag = partition_lag(&watermarks, &active.owned, &active.next);
        for &(partition, lag) in &lag {
            metrics::partition_lag(name, partition, lag);
        }
        let behind = lag.iter().map(|(_, lag)| lag).sum();
        match active
            .progress
            .check(behind, Instant::now(), self.settings.stall_timeout)
        {
            Verdict::CaughtUp => metrics::caught_up(name),
            Verdict::Behind(_) => {}
            Verdict::Stalled(since) => {
                metrics::stalled(name);
                anyhow::bail!(
                    "no progress for {since:?} while the partitions hold {behind} messages not \
                     applied; replacing the consumer"
                );
            }
        }
        Ok(())
    }
}
