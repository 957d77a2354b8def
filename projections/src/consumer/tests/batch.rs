//! A batch's bounds, how it is sorted before it is applied, and how often a
//! failed one is tried again.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::message::OwnedMessage;
use rdkafka::Message;

use super::super::batch::{triage, Fill, Retries, BATCH_MAX_BYTES};
use super::{message_at, ConsumedMessage, Outcome, TOPIC};

/// A message type of its own: decimal digits, or a reason to refuse.
#[derive(Debug, PartialEq)]
struct Digits(u64);

impl ConsumedMessage for Digits {
    fn decode(message: &OwnedMessage) -> Result<Self, String> {
        let payload = message.payload().ok_or("no payload")?;
        std::str::from_utf8(payload)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Digits)
            .ok_or_else(|| "not digits".to_owned())
    }
}

fn sized(payload: usize, key: usize) -> OwnedMessage {
    OwnedMessage::new(
        Some(vec![b'p'; payload]),
        Some(vec![b'k'; key]),
        TOPIC.to_owned(),
        rdkafka::Timestamp::NotAvailable,
        0,
        0,
        None,
    )
}

#[test]
fn a_batch_fills_up_to_its_message_count() {
    let mut fill = Fill::new(3);
    for _ in 0..2 {
        fill.add(&sized(10, 0));
        assert!(fill.has_room());
    }
    fill.add(&sized(10, 0));
    assert!(!fill.has_room());
}

#[test]
fn a_batch_stops_taking_once_its_bytes_reach_the_bound() {
    let mut fill = Fill::new(1_000);
    fill.add(&sized(BATCH_MAX_BYTES / 2 - 8, 8));
    assert!(fill.has_room());
    fill.add(&sized(BATCH_MAX_BYTES / 2 - 1, 0));
    assert!(fill.has_room(), "one byte short of the bound");
    fill.add(&sized(0, 1));
    assert!(!fill.has_room(), "keys count toward the bound");
}

#[test]
fn a_first_message_beyond_the_byte_bound_is_a_batch_of_its_own() {
    let mut fill = Fill::new(1_000);
    fill.add(&sized(BATCH_MAX_BYTES + 1, 0));
    assert!(!fill.has_room());
}

#[test]
fn messages_without_payload_or_key_count_only_toward_the_number() {
    let mut fill = Fill::new(2);
    fill.add(&message_at(0, 0, None));
    assert!(fill.has_room());
    fill.add(&message_at(0, 1, None));
    assert!(!fill.has_room());
}

#[test]
fn triage_skips_what_was_consumed_and_sets_aside_what_cannot_be_decoded() {
    let batch = [
        message_at(0, 4, Some(b"1")),
        message_at(0, 5, Some(b"2")),
        message_at(0, 6, Some(b"x")),
        message_at(1, 0, Some(b"3")),
        message_at(1, 1, None),
    ];
    let stood = HashMap::from([(0, 5)]);
    let triage = triage::<Digits>(&batch, &stood);
    assert_eq!(triage.outcomes, [Outcome::AlreadyConsumed; 5]);
    assert_eq!(triage.events, [Digits(2), Digits(3)]);
    assert_eq!(triage.event_slots, [1, 3]);
    assert_eq!(
        triage.undecodable,
        [(2, "not digits".to_owned()), (4, "no payload".to_owned())]
    );
}

#[test]
fn a_redelivered_batch_is_already_consumed_whole() {
    let batch = [message_at(0, 1, Some(b"x")), message_at(0, 2, Some(b"7"))];
    let triage = triage::<Digits>(&batch, &HashMap::from([(0, 3)]));
    assert!(triage.events.is_empty());
    assert!(triage.undecodable.is_empty(), "not even decoded");
    assert_eq!(triage.outcomes, [Outcome::AlreadyConsumed; 2]);
}

#[test]
fn the_projections_outcomes_land_in_their_messages_slots() {
    let batch = [
        message_at(0, 0, Some(b"x")),
        message_at(0, 1, Some(b"1")),
        message_at(0, 2, Some(b"2")),
    ];
    let mut triage = triage::<Digits>(&batch, &HashMap::new());
    triage.record(vec![Outcome::Applied, Outcome::Duplicate]);
    assert_eq!(
        triage.outcomes,
        [
            Outcome::AlreadyConsumed,
            Outcome::Applied,
            Outcome::Duplicate
        ]
    );
}

#[test]
fn a_transient_failure_is_tried_five_times_in_all_with_doubling_pauses() {
    let mut retries = Retries::new();
    let mut pauses = Vec::new();
    let mut attempts = vec![retries.attempt()];
    while let Some(pause) = retries.next_delay() {
        pauses.push(pause);
        attempts.push(retries.attempt());
    }
    assert_eq!(attempts, [1, 2, 3, 4, 5]);
    assert_eq!(pauses, [100, 200, 400, 800].map(Duration::from_millis));
    assert_eq!(retries.next_delay(), None, "stays given up");
}
