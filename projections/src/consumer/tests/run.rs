//! Which consumer errors end an activation.

use super::super::run::restart_reason;
use super::{KafkaError, RDKafkaErrorCode};

fn consuming(code: RDKafkaErrorCode) -> KafkaError {
    KafkaError::MessageConsumption(code)
}

#[test]
fn a_client_that_lost_every_broker_is_replaced_whatever_the_error() {
    for error in [
        consuming(RDKafkaErrorCode::BrokerTransportFailure),
        consuming(RDKafkaErrorCode::OffsetOutOfRange),
    ] {
        let reason = restart_reason(true, &error).unwrap();
        assert!(
            reason.starts_with("lost every broker connection"),
            "{reason}"
        );
    }
}

#[test]
fn an_offset_the_partition_no_longer_holds_ends_the_activation() {
    for code in [
        RDKafkaErrorCode::OffsetOutOfRange,
        RDKafkaErrorCode::AutoOffsetReset,
    ] {
        let reason = restart_reason(false, &consuming(code)).unwrap();
        assert!(reason.contains("no longer holds the offset"), "{reason}");
    }
}

#[test]
fn other_consumer_errors_are_waited_out() {
    assert_eq!(
        restart_reason(false, &consuming(RDKafkaErrorCode::BrokerTransportFailure)),
        None
    );
    assert_eq!(restart_reason(false, &KafkaError::PartitionEOF(1)), None);
}
