//! The `task-updates` contract, pinned: the message built from a row is
//! byte for byte the committed golden file, the golden file reads back as the
//! wire type, and it keeps to the committed JSON Schema. Changing what is
//! published fails here first; if the change is meant, regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p projections task_updates` and raise
//! `TASK_UPDATE_VERSION` for anything a reader could trip on.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use domain::envelope::TaskUpdateMessage;
use domain::values::Priority;
use domain::TaskStatus;
use serde_json::{json, Value};
use uuid::Uuid;

use super::message;
use crate::task_list::TaskRow;

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, hour, 0, 0).unwrap()
}

/// A recurring task, done and then put in the trash: every field set.
fn full_row() -> TaskRow {
    TaskRow {
        id: Uuid::from_u128(0x0195_5f1e_6c3a_7b20_8d41_2a6b_9c0e_1f37),
        user_id: "alice".into(),
        owner: "alice".into(),
        list_id: Uuid::nil(),
        assignee: None,
        title: "Water the plants".into(),
        description: Some("The ones by the window".into()),
        status: TaskStatus::Deleted,
        completed: true,
        version: 7,
        created_at: at(8),
        updated_at: at(11),
        completed_at: Some(at(10)),
        deleted_at: Some(at(11)),
        priority: Priority::High,
        tags: vec!["home".into(), "plants".into()],
        due_at: Some(at(23)),
        due_date: NaiveDate::from_ymd_opt(2026, 3, 1),
        time_zone: Some("Europe/Berlin".into()),
        reminders: json!([{ "minutes_before": 30 }, { "at": "2026-03-01T09:00:00Z" }]),
        recurrence: Some("FREQ=WEEKLY;BYDAY=SU".into()),
        series_id: Some(Uuid::from_u128(0x0195_5f1e_6c3a_7b20_8d41_2a6b_9c0e_aaaa)),
        occurrence: Some(3),
        change_seq: 42,
    }
}

/// A new task with nothing but a title.
fn bare_row() -> TaskRow {
    TaskRow {
        id: Uuid::from_u128(0x0195_5f1e_6c3a_7b20_8d41_2a6b_9c0e_2e48),
        user_id: "bob".into(),
        owner: "bob".into(),
        list_id: Uuid::nil(),
        assignee: None,
        title: "Call back".into(),
        description: None,
        status: TaskStatus::Open,
        completed: false,
        version: 1,
        created_at: at(9),
        updated_at: at(9),
        completed_at: None,
        deleted_at: None,
        priority: Priority::None,
        tags: Vec::new(),
        due_at: None,
        due_date: None,
        time_zone: None,
        reminders: json!([]),
        recurrence: None,
        series_id: None,
        occurrence: None,
        change_seq: 43,
    }
}

fn repository_file(path: &str) -> PathBuf {
    // Where the runner says this crate is, not where it was compiled.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).to_owned(),
            PathBuf::from,
        )
        .join(path)
}

fn published() -> Vec<TaskUpdateMessage> {
    [full_row(), bare_row()]
        .iter()
        .map(|row| message(row, at(12)))
        .collect()
}

#[test]
fn the_published_message_is_the_golden_file() {
    let path = repository_file("src/task_updates/task-update.v1.golden.json");
    let generated = serde_json::to_string_pretty(&published()).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "the task-updates message differs from {}:\n{generated}",
        path.display()
    );
}

#[test]
fn the_golden_file_reads_back_as_the_wire_type() {
    let golden = std::fs::read_to_string(repository_file(
        "src/task_updates/task-update.v1.golden.json",
    ))
    .unwrap();
    let read: Vec<TaskUpdateMessage> = serde_json::from_str(&golden).unwrap();
    assert_eq!(read, published());
}

#[test]
fn the_golden_file_keeps_to_the_committed_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repository_file("../docs/schemas/task-update.schema.json"))
            .unwrap(),
    )
    .unwrap();
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(repository_file(
            "src/task_updates/task-update.v1.golden.json",
        ))
        .unwrap(),
    )
    .unwrap();
    for message in golden.as_array().unwrap() {
        conforms(&schema, &schema, message, "message");
    }
}

/// The subset of JSON Schema that schemars writes for the wire type, checked
/// strictly: a field the schema does not name is a failure too, so the
/// schema cannot fall behind what is sent.
fn conforms(root: &Value, schema: &Value, value: &Value, at: &str) {
    if *schema == Value::Bool(true) {
        return;
    }
    let schema = schema.as_object().expect("a schema object");
    for keyword in schema.keys() {
        assert!(
            [
                "$schema",
                "$defs",
                "$ref",
                "title",
                "description",
                // An annotation: what a reader takes for a missing field.
                "default",
                "format",
                "type",
                "enum",
                "properties",
                "required",
                "items",
                "minimum",
                "maximum",
            ]
            .contains(&keyword.as_str()),
            "{at}: the schema uses {keyword}, which this check does not know"
        );
    }
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.strip_prefix("#/$defs/").expect("a local $ref");
        conforms(root, &root["$defs"][name], value, at);
    }
    if let Some(kind) = schema.get("type") {
        let kinds: Vec<&str> = match kind {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            other => panic!("{at}: type {other}"),
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        assert!(
            kinds.contains(&actual),
            "{at}: {value} is not of type {kind}"
        );
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        assert!(
            allowed.contains(value),
            "{at}: {value} is not in {allowed:?}"
        );
    }
    if let Some(minimum) = schema.get("minimum").and_then(Value::as_i64) {
        assert!(
            value.as_i64().is_none_or(|n| n >= minimum),
            "{at}: below {minimum}"
        );
    }
    if let Some(maximum) = schema.get("maximum").and_then(Value::as_i64) {
        assert!(
            value.as_i64().is_none_or(|n| n <= maximum),
            "{at}: above {maximum}"
        );
    }
    if let (Some(items), Some(elements)) = (schema.get("items"), value.as_array()) {
        for (n, element) in elements.iter().enumerate() {
            conforms(root, items, element, &format!("{at}[{n}]"));
        }
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for field in required.iter().filter_map(Value::as_str) {
            assert!(value.get(field).is_some(), "{at}: {field} is missing");
        }
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        let fields = value.as_object().expect("an object");
        for (field, inner) in fields {
            let described = properties
                .get(field)
                .unwrap_or_else(|| panic!("{at}: the schema does not describe {field}"));
            conforms(root, described, inner, &format!("{at}.{field}"));
        }
    }
}
