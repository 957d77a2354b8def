//! Offset arithmetic: where a batch leaves each partition, what is already
//! consumed, and which stored offsets a partition no longer holds.

use std::collections::HashMap;

use rdkafka::Offset;

use super::super::offsets::{
    advance, already_consumed, next_offsets, offset_out_of_range, resume_assignment,
    unreachable_offsets, Unreachable, RESUME_REWIND,
};
use super::{message_at, KafkaError, RDKafkaErrorCode, TOPIC};

#[test]
fn the_next_offset_is_one_past_the_highest_seen_per_partition() {
    let batch = [
        message_at(0, 5, Some(b"a")),
        message_at(0, 7, Some(b"b")),
        message_at(0, 3, Some(b"c")),
        message_at(2, 0, None),
    ];
    assert_eq!(next_offsets(&batch), HashMap::from([(0, 8), (2, 1)]));
    assert!(next_offsets(&[]).is_empty());
}

#[test]
fn a_message_below_where_the_partition_stands_was_already_consumed() {
    let stood = HashMap::from([(0, 10)]);
    assert!(already_consumed(&stood, &message_at(0, 9, None)));
    assert!(!already_consumed(&stood, &message_at(0, 10, None)));
    assert!(!already_consumed(&stood, &message_at(0, 11, None)));
    assert!(!already_consumed(&stood, &message_at(1, 0, None)));
}

#[test]
fn where_a_partition_stands_never_moves_back() {
    let mut stood = HashMap::from([(0, 10), (1, 5)]);
    advance(&mut stood, &HashMap::from([(0, 8), (1, 7), (2, 3)]));
    assert_eq!(stood, HashMap::from([(0, 10), (1, 7), (2, 3)]));
}

#[test]
fn stored_offsets_from_the_start_to_the_end_are_resumed_from() {
    let watermarks = [(0, 10), (5, 20)];
    let stored = HashMap::from([(0, 0), (1, 20)]);
    assert_eq!(unreachable_offsets(&stored, &watermarks), []);
    let stored = HashMap::from([(0, 10), (1, 5)]);
    assert_eq!(unreachable_offsets(&stored, &watermarks), []);
}

#[test]
fn a_stored_offset_beyond_the_end_means_the_topic_was_replaced() {
    let stored = HashMap::from([(0, 4), (1, 50)]);
    let found = unreachable_offsets(&stored, &[(0, 10), (0, 10)]);
    assert_eq!(
        found,
        [Unreachable {
            partition: 1,
            stored: 50,
            start: 0,
            end: 10
        }]
    );
    assert!(found[0].topic_replaced());
}

#[test]
fn a_stored_offset_before_the_start_was_overtaken_by_retention() {
    let stored = HashMap::from([(0, 2), (1, 30)]);
    let found = unreachable_offsets(&stored, &[(5, 20), (25, 40)]);
    assert_eq!(
        found,
        [Unreachable {
            partition: 0,
            stored: 2,
            start: 5,
            end: 20
        }]
    );
    assert!(!found[0].topic_replaced());
}

#[test]
fn partitions_without_a_stored_offset_or_outside_the_topic_are_left_alone() {
    let stored = HashMap::from([(3, 100)]);
    assert_eq!(unreachable_offsets(&stored, &[(5, 20), (5, 20)]), []);
}

#[test]
fn the_partitions_held_are_assigned_from_a_little_before_their_stored_offset() {
    let next = HashMap::from([(1, 42), (3, 5_000), (7, 9)]);
    let watermarks = [(0, 50), (10, 60), (0, 0), (0, 6_000)];
    let assignment = resume_assignment(TOPIC, &[0, 1, 3], &next, &watermarks).unwrap();
    let assigned: Vec<_> = assignment
        .elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition(), e.offset()))
        .collect();
    assert_eq!(
        assigned,
        [
            // Nothing stored: the beginning.
            (TOPIC.to_owned(), 0, Offset::Beginning),
            // Never before the partition's start.
            (TOPIC.to_owned(), 1, Offset::Offset(10)),
            (TOPIC.to_owned(), 3, Offset::Offset(5_000 - RESUME_REWIND)),
        ]
    );
}

#[test]
fn only_out_of_range_errors_say_the_stored_offset_is_gone() {
    for code in [
        RDKafkaErrorCode::OffsetOutOfRange,
        RDKafkaErrorCode::AutoOffsetReset,
    ] {
        assert!(offset_out_of_range(&KafkaError::MessageConsumption(code)));
    }
    for code in [
        RDKafkaErrorCode::BrokerTransportFailure,
        RDKafkaErrorCode::UnknownTopicOrPartition,
    ] {
        assert!(!offset_out_of_range(&KafkaError::MessageConsumption(code)));
    }
    assert!(!offset_out_of_range(&KafkaError::PartitionEOF(0)));
}
