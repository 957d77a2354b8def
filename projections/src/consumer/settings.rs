//! How a projection's consumer is tuned, and the names it goes by on the
//! broker and in Postgres. The defaults are what one process needs at the
//! rates measured in docs/adr/0005; the worker overrides them from its
//! environment.

use std::time::Duration;

/// The bounds and timings of one projection's consumer.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    pub topic: String,
    /// The broker-side group, `<prefix>-<projection name>`, that offsets are
    /// committed under for monitoring; the prefix defaults to `taskledger`.
    pub group_prefix: Option<String>,
    /// The most messages applied in one transaction.
    pub batch_max: usize,
    /// How long a batch waits to fill after its first message.
    pub batch_window: Duration,
    /// A consumer that applies nothing for this long while its partitions
    /// hold messages is replaced.
    pub stall_timeout: Duration,
    /// How often lag, the topic's partitions and its generation are checked,
    /// and this process's share of the partitions settled again.
    pub check_interval: Duration,
    /// A process that has not renewed its membership for this long is gone:
    /// the others take its partitions (docs/adr/0012).
    pub lease_ttl: Duration,
}

impl ConsumerSettings {
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            group_prefix: None,
            batch_max: 1_000,
            batch_window: Duration::from_millis(5),
            stall_timeout: Duration::from_secs(30),
            check_interval: Duration::from_secs(2),
            lease_ttl: Duration::from_secs(10),
        }
    }

    /// The group `projection`'s offsets are committed under, so that Kafka
    /// tools show its lag; never read back.
    pub(super) fn consumer_group(&self, projection: &str) -> String {
        let prefix = self.group_prefix.as_deref().unwrap_or("taskledger");
        format!("{prefix}-{projection}")
    }
}
