//! Good and hostile payloads: what decoding lets through, and the reason it
//! gives for what it refuses.

use serde_json::{json, Value};

use super::super::task_ids;
use super::{keyed, ConsumedMessage, ProjectionError, TaskEventMessage};

const TASK: &str = "0191f5a2-7c1e-7d4a-9a55-2b9d7f0c1e11";

fn task_event(task_id: &str, sequence: i64) -> Value {
    json!({
        "specversion": "1.0",
        "id": "0191f5a2-7c1e-7d4a-9a55-000000000001",
        "source": "taskledger/event-store",
        "type": "taskledger.task.created.v1",
        "subject": task_id,
        "time": "2025-03-01T12:00:00Z",
        "datacontenttype": "application/json",
        "data": {
            "event_type": "TaskCreated",
            "task_id": task_id,
            "task_data": {"title": "Water the plants"},
            "user_id": "alice",
            "timestamp": "2025-03-01T12:00:00Z",
            "sequence": sequence,
            "global_position": 42,
            "schema_version": "1.0"
        }
    })
}

fn decode(payload: &Value, key: Option<&[u8]>) -> Result<TaskEventMessage, String> {
    let bytes = serde_json::to_vec(payload).unwrap();
    TaskEventMessage::decode(&keyed(Some(bytes), key))
}

fn decode_bytes(bytes: &[u8]) -> Result<TaskEventMessage, String> {
    TaskEventMessage::decode(&keyed(Some(bytes.to_vec()), None))
}

#[test]
fn a_well_formed_task_event_decodes_with_its_trace_context() {
    let mut event = task_event(TASK, 3);
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    event["traceparent"] = json!(traceparent);
    let decoded = decode(&event, Some(TASK.as_bytes())).unwrap();
    assert_eq!(decoded.data.task_id, TASK);
    assert_eq!(decoded.data.sequence, 3);
    assert_eq!(decoded.data.event_type, "TaskCreated");
    assert_eq!(decoded.traceparent(), Some(traceparent));
}

/// Neither a key nor headers are required: the relay always sets both,
/// but the payload alone says everything decoding checks.
#[test]
fn a_message_without_a_key_or_headers_decodes() {
    let decoded = decode(&task_event(TASK, 1), None).unwrap();
    assert_eq!(decoded.subject, TASK);
    assert_eq!(decoded.traceparent(), None);
}

#[test]
fn a_message_without_a_payload_is_refused() {
    let refused = TaskEventMessage::decode(&keyed(None, Some(TASK.as_bytes())));
    assert_eq!(refused.unwrap_err(), "message has no payload");
}

#[test]
fn bytes_that_are_not_json_are_refused() {
    for bytes in [
        &b""[..],
        b"\xff\xfe\x00garbage",
        b"task created",
        b"{\"specversion\":",
    ] {
        let reason = decode_bytes(bytes).unwrap_err();
        assert!(
            reason.starts_with("not a task event CloudEvent: "),
            "{reason}"
        );
    }
}

#[test]
fn json_of_another_shape_is_refused() {
    let mut wrong_types = task_event(TASK, 1);
    wrong_types["data"]["sequence"] = json!("1");
    let mut no_task_id = task_event(TASK, 1);
    no_task_id["data"]
        .as_object_mut()
        .unwrap()
        .remove("task_id");
    let mut no_data = task_event(TASK, 1);
    no_data.as_object_mut().unwrap().remove("data");
    let mut bad_time = task_event(TASK, 1);
    bad_time["time"] = json!("yesterday");
    for payload in [
        json!(null),
        json!([]),
        json!({}),
        json!(17),
        wrong_types,
        no_task_id,
        no_data,
        bad_time,
    ] {
        let reason = decode(&payload, None).unwrap_err();
        assert!(
            reason.starts_with("not a task event CloudEvent: "),
            "{payload}: {reason}"
        );
    }
}

#[test]
fn deeply_nested_json_is_refused_without_exhausting_the_stack() {
    let depth = 100_000;
    let hostile = "[".repeat(depth) + &"]".repeat(depth);
    let reason = decode_bytes(hostile.as_bytes()).unwrap_err();
    assert!(
        reason.starts_with("not a task event CloudEvent: "),
        "{reason}"
    );
}

/// The reason becomes the `dlq-reason` header: it must not echo a payload
/// of megabytes back.
#[test]
fn a_huge_hostile_payload_gets_a_short_reason() {
    let hostile = vec![b'x'; 4 * 1024 * 1024];
    let reason = decode_bytes(&hostile).unwrap_err();
    assert!(reason.len() < 200, "{} bytes of reason", reason.len());
}

/// Size is bounded by the fetch limit and the batch's bytes, not by
/// decoding: a large but well-formed event is the projection's to judge.
#[test]
fn a_large_well_formed_event_decodes() {
    let mut event = task_event(TASK, 1);
    event["data"]["task_data"]["description"] = json!("d".repeat(2 * 1024 * 1024));
    assert!(decode(&event, None).is_ok());
}

#[test]
fn an_unsupported_specversion_is_refused() {
    let mut event = task_event(TASK, 1);
    event["specversion"] = json!("0.3");
    assert_eq!(
        decode(&event, None).unwrap_err(),
        "unsupported CloudEvents specversion 0.3"
    );
}

#[test]
fn a_subject_other_than_the_task_id_is_refused() {
    let mut event = task_event(TASK, 1);
    event["subject"] = json!("0191f5a2-7c1e-7d4a-9a55-2b9d7f0c1e12");
    assert_eq!(
        decode(&event, None).unwrap_err(),
        "subject and data.task_id differ"
    );
}

#[test]
fn a_key_other_than_the_task_id_is_refused() {
    let event = task_event(TASK, 1);
    for key in [&b"another-task"[..], b"", TASK.to_uppercase().as_bytes()] {
        assert_eq!(
            decode(&event, Some(key)).unwrap_err(),
            "message key is not the task id"
        );
    }
}

#[test]
fn a_sequence_below_one_is_refused() {
    for sequence in [0, -1, i64::MIN] {
        assert_eq!(
            decode(&task_event(TASK, sequence), None).unwrap_err(),
            "sequence must be at least 1"
        );
    }
}

/// Decoding checks the envelope only; the projection reads the stored
/// event and refuses what it does not know, so the reason names it.
#[test]
fn an_unknown_event_type_or_version_is_left_to_the_projection() {
    let mut event = task_event(TASK, 2);
    event["type"] = json!("taskledger.task.teleported.v9");
    event["data"]["event_type"] = json!("TaskTeleported");
    event["data"]["schema_version"] = json!("9.0");
    let decoded = decode(&event, Some(TASK.as_bytes())).unwrap();
    assert_eq!(decoded.event_type, "taskledger.task.teleported.v9");
}

/// CloudEvents extensions a newer publisher adds must not stop older
/// consumers.
#[test]
fn unknown_attributes_are_ignored() {
    let mut event = task_event(TASK, 1);
    event["dataschema"] = json!("https://example.invalid/schema");
    event["partitionkey"] = json!(TASK);
    event["data"]["added_later"] = json!({"nested": true});
    assert!(decode(&event, None).is_ok());
}

#[test]
fn task_ids_keep_message_order_and_lock_in_sorted_order_without_repeats() {
    let a = "0191f5a2-7c1e-7d4a-9a55-00000000000a";
    let b = "0191f5a2-7c1e-7d4a-9a55-00000000000b";
    let events: Vec<TaskEventMessage> = [b, a, b]
        .iter()
        .map(|id| serde_json::from_value(task_event(id, 1)).unwrap())
        .collect();
    let (ids, unique) = task_ids(&events).unwrap();
    let parse = |s: &str| uuid::Uuid::parse_str(s).unwrap();
    assert_eq!(ids, [parse(b), parse(a), parse(b)]);
    assert_eq!(unique, [parse(a), parse(b)]);
}

#[test]
fn a_task_id_that_is_not_a_uuid_fails_the_whole_batch_as_invalid() {
    let events: Vec<TaskEventMessage> = [TASK, "not-a-uuid"]
        .iter()
        .map(|id| serde_json::from_value(task_event(id, 1)).unwrap())
        .collect();
    match task_ids(&events) {
        Err(ProjectionError::Invalid(reason)) => assert_eq!(reason, "task_id is not a UUID"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}
