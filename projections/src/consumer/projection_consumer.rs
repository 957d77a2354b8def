//! The runtime of one projection: its pool, its Kafka settings, its consumer
//! group and the projection it applies. What it does is spread by concern:
//! `run` (the loop), `activation`, `offsets`, `batch`, `stall`.

use infra::kafka::KafkaSettings;
use sqlx::PgPool;

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
}

impl<P: Projection> ProjectionConsumer<P> {
    pub fn new(
        pool: PgPool,
        kafka: &KafkaSettings,
        settings: ConsumerSettings,
        projection: P,
    ) -> Self {
        let group = settings.consumer_group(projection.name());
        Self {
            pool,
            kafka: kafka.clone(),
            group,
            settings,
            projection,
        }
    }
}
