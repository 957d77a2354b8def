//! The runtime of one projection: its pool, its Kafka settings, its consumer
//! group and the projection it applies. What it does is spread by concern:
//! `run` (the loop), `activation`, `leases`, `offsets`, `batch`, `stall`.

use infra::kafka::KafkaSettings;
use sqlx::PgPool;
use uuid::Uuid;

use super::leases::Membership;
use super::projection::Projection;
use super::settings::ConsumerSettings;

/// Runs one projection: applies what its topic carries to its read model,
/// with the offsets stored beside it.
pub struct ProjectionConsumer<P> {
    pub(super) pool: PgPool,
    pub(super) kafka: KafkaSettings,
    pub(super) group: String,
    pub(super) settings: ConsumerSettings,
    pub(super) projection: P,
    /// This process among the projection's processes.
    pub(super) membership: Membership,
}

impl<P: Projection> ProjectionConsumer<P> {
    pub fn new(
        pool: PgPool,
        kafka: &KafkaSettings,
        settings: ConsumerSettings,
        projection: P,
    ) -> Self {
        let group = settings.consumer_group(projection.name());
        let membership = Membership {
            projection: projection.name(),
            member: Uuid::new_v4(),
            process: format!(
                "{}/{}",
                std::env::var("HOSTNAME").unwrap_or_default(),
                std::process::id()
            ),
            ttl: settings.lease_ttl,
        };
        Self {
            membership,
            pool,
            kafka: kafka.clone(),
            group,
            settings,
            projection,
        }
    }
}
