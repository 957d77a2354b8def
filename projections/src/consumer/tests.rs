//! The runtime's parts tested without Kafka or Postgres: what each decides
//! from the messages, offsets, watermarks and clocks it is given. The whole
//! runtime, against a real broker and database, is tested in `tests/api/`.

mod batch;
mod dead_letter;
mod decode;
mod leases;
mod metrics;
mod offsets;
mod projection;
mod run;
mod settings;
mod stall;

use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage, Timestamp};

use super::{ConsumedMessage, Outcome, ProjectionError, TaskEventMessage};

const TOPIC: &str = "task-events";

fn message_at(partition: i32, offset: i64, payload: Option<&[u8]>) -> OwnedMessage {
    OwnedMessage::new(
        payload.map(<[u8]>::to_vec),
        None,
        TOPIC.to_owned(),
        Timestamp::NotAvailable,
        partition,
        offset,
        None,
    )
}

fn keyed(payload: Option<Vec<u8>>, key: Option<&[u8]>) -> OwnedMessage {
    OwnedMessage::new(
        payload,
        key.map(<[u8]>::to_vec),
        TOPIC.to_owned(),
        Timestamp::NotAvailable,
        0,
        0,
        None,
    )
}

fn header_list(headers: &OwnedHeaders) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
            (h.key.to_owned(), value.unwrap_or_default())
        })
        .collect()
}
