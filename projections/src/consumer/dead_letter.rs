//! Where a message goes that a projection can neither decode nor apply:
//! `<topic>.dlq`, unchanged, with headers saying why and where from, before
//! the batch that met it commits (docs/adr/0002). Consumption never stops on
//! a message that can be neither applied nor dead-lettered: one too large for
//! the dead-letter topic goes there cut short.

use std::time::Duration;

use infra::kafka::dead_letter_topic;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureRecord;
use rdkafka::Message;
use sha2::Digest;

use super::activation::Clients;
use super::projection::Projection;
use super::projection_consumer::ProjectionConsumer;

/// How much of a message too large for the dead-letter topic is kept there.
pub const DEAD_LETTER_MAX_PAYLOAD: usize = 64 * 1024;

/// Where a dead letter came from, as its headers tell whoever reads it.
pub(super) struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub projection: &'a str,
    pub group: &'a str,
}

/// What is said of a message sent cut short: its whole size and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Truncation {
    pub size: usize,
    pub sha256: String,
}

impl Truncation {
    pub fn of(payload: &[u8]) -> Self {
        let digest = sha2::Sha256::digest(payload);
        Self {
            size: payload.len(),
            sha256: digest.iter().map(|byte| format!("{byte:02x}")).collect(),
        }
    }
}

/// The message's own headers, then the `dlq-*` ones; the truncation headers
/// only on a message sent cut short.
pub(super) fn dead_letter_headers(
    original: Option<&OwnedHeaders>,
    origin: &Origin<'_>,
    reason: &str,
    failed_at: &str,
    truncated: Option<&Truncation>,
) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = original {
        for header in original.iter() {
            headers = headers.insert(header);
        }
    }
    let partition = origin.partition.to_string();
    let offset = origin.offset.to_string();
    let mut headers = headers
        .insert(Header {
            key: "dlq-reason",
            value: Some(reason),
        })
        .insert(Header {
            key: "dlq-source-topic",
            value: Some(origin.topic),
        })
        .insert(Header {
            key: "dlq-source-partition",
            value: Some(partition.as_str()),
        })
        .insert(Header {
            key: "dlq-source-offset",
            value: Some(offset.as_str()),
        })
        .insert(Header {
            key: "dlq-projection",
            value: Some(origin.projection),
        })
        .insert(Header {
            key: "dlq-consumer-group",
            value: Some(origin.group),
        })
        .insert(Header {
            key: "dlq-failed-at",
            value: Some(failed_at),
        });
    if let Some(truncated) = truncated {
        let size = truncated.size.to_string();
        headers = headers
            .insert(Header {
                key: "dlq-truncated-from-bytes",
                value: Some(size.as_str()),
            })
            .insert(Header {
                key: "dlq-original-sha256",
                value: Some(truncated.sha256.as_str()),
            });
    }
    headers
}

/// The payload as sent: whole, or its first [`DEAD_LETTER_MAX_PAYLOAD`] bytes
/// when cut short.
pub(super) fn dead_letter_payload(payload: &[u8], cut: bool) -> &[u8] {
    if cut {
        &payload[..payload.len().min(DEAD_LETTER_MAX_PAYLOAD)]
    } else {
        payload
    }
}

/// Whether the producer or the broker refused a message for its size.
pub(super) fn is_too_large(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize)
    )
}

impl<P: Projection> ProjectionConsumer<P> {
    /// Publishes the message unchanged to `<topic>.dlq`, with why and where
    /// from. A message the dead-letter topic will not take whole (too large)
    /// goes there cut to [`DEAD_LETTER_MAX_PAYLOAD`] bytes, with its size and
    /// SHA-256: consumption never stops on a message that can be neither
    /// applied nor dead-lettered.
    pub(super) async fn dead_letter(
        &self,
        clients: &Clients,
        message: &OwnedMessage,
        reason: &str,
    ) -> anyhow::Result<()> {
        tracing::warn!(
            projection = self.projection.name(),
            partition = message.partition(),
            offset = message.offset(),
            reason,
            "dead-lettering message"
        );
        match self
            .publish_dead_letter(clients, message, reason, None)
            .await
        {
            Ok(()) => Ok(()),
            Err(error) if is_too_large(&error) => {
                let truncation = Truncation::of(message.payload().unwrap_or_default());
                tracing::warn!(
                    size = truncation.size,
                    sha256 = %truncation.sha256,
                    "the dead-letter topic refused the whole message; sending it cut short"
                );
                self.publish_dead_letter(clients, message, reason, Some(&truncation))
                    .await
                    .map_err(Into::into)
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn publish_dead_letter(
        &self,
        clients: &Clients,
        message: &OwnedMessage,
        reason: &str,
        truncated: Option<&Truncation>,
    ) -> Result<(), KafkaError> {
        let dlq = dead_letter_topic(&self.settings.topic);
        let origin = Origin {
            topic: &self.settings.topic,
            partition: message.partition(),
            offset: message.offset(),
            projection: self.projection.name(),
            group: &self.group,
        };
        let failed_at = chrono::Utc::now().to_rfc3339();
        let headers =
            dead_letter_headers(message.headers(), &origin, reason, &failed_at, truncated);
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&dlq).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(dead_letter_payload(payload, truncated.is_some()));
        }
        clients
            .dead_letters
            .send(record, Duration::from_secs(10))
            .await
            .map(|_| ())
            .map_err(|(error, _)| error)
    }
}
