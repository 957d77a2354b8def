//! What a dead letter carries: the original headers, why and where from, and
//! the size and digest of one sent cut short.

use super::super::dead_letter::{
    dead_letter_headers, dead_letter_payload, is_too_large, Origin, Truncation,
};
use super::super::DEAD_LETTER_MAX_PAYLOAD;
use super::{header_list, Header, KafkaError, OwnedHeaders, RDKafkaErrorCode};

const ORIGIN: Origin<'static> = Origin {
    topic: "task-events",
    partition: 3,
    offset: 1_234,
    projection: "task-list",
    group: "taskledger-task-list",
};

fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn a_dead_letter_keeps_the_original_headers_then_says_why_and_where_from() {
    let original = OwnedHeaders::new()
        .insert(Header {
            key: "traceparent",
            value: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        })
        .insert(Header {
            key: "content-type",
            value: Some("application/cloudevents+json"),
        });
    let headers = dead_letter_headers(
        Some(&original),
        &ORIGIN,
        "subject and data.task_id differ",
        "2025-03-01T12:00:00+00:00",
        None,
    );
    assert_eq!(
        header_list(&headers),
        owned(&[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            ),
            ("content-type", "application/cloudevents+json"),
            ("dlq-reason", "subject and data.task_id differ"),
            ("dlq-source-topic", "task-events"),
            ("dlq-source-partition", "3"),
            ("dlq-source-offset", "1234"),
            ("dlq-projection", "task-list"),
            ("dlq-consumer-group", "taskledger-task-list"),
            ("dlq-failed-at", "2025-03-01T12:00:00+00:00"),
        ])
    );
}

#[test]
fn a_message_cut_short_says_its_whole_size_and_digest() {
    let truncation = Truncation::of(b"abc");
    assert_eq!(
        truncation,
        Truncation {
            size: 3,
            sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into()
        }
    );
    let headers = dead_letter_headers(None, &ORIGIN, "too big", "now", Some(&truncation));
    let list = header_list(&headers);
    assert_eq!(list[0], ("dlq-reason".to_owned(), "too big".to_owned()));
    assert_eq!(
        list[list.len() - 2..],
        owned(&[
            ("dlq-truncated-from-bytes", "3"),
            (
                "dlq-original-sha256",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            ),
        ])
    );
}

#[test]
fn a_whole_dead_letter_carries_no_truncation_headers() {
    let headers = dead_letter_headers(None, &ORIGIN, "why", "now", None);
    let keys: Vec<_> = header_list(&headers).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 7);
    assert!(keys.iter().all(|k| k.starts_with("dlq-")));
    assert!(!keys.iter().any(|k| k == "dlq-truncated-from-bytes"));
}

#[test]
fn only_a_payload_sent_cut_short_is_shortened_to_the_bound() {
    let large: Vec<u8> = (0..100 * 1024).map(|i| (i % 251) as u8).collect();
    assert_eq!(dead_letter_payload(&large, false), &large[..]);
    let cut = dead_letter_payload(&large, true);
    assert_eq!(cut.len(), DEAD_LETTER_MAX_PAYLOAD);
    assert_eq!(cut, &large[..DEAD_LETTER_MAX_PAYLOAD]);
    assert_eq!(dead_letter_payload(b"small", true), b"small");
}

#[test]
fn only_size_refusals_send_a_message_again_cut_short() {
    for code in [
        RDKafkaErrorCode::MessageSizeTooLarge,
        RDKafkaErrorCode::InvalidMessageSize,
    ] {
        assert!(is_too_large(&KafkaError::MessageProduction(code)));
    }
    for code in [
        RDKafkaErrorCode::MessageTimedOut,
        RDKafkaErrorCode::UnknownTopicOrPartition,
    ] {
        assert!(!is_too_large(&KafkaError::MessageProduction(code)));
    }
}
