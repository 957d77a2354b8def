//! The statement that stores a command's events, in each of its shapes:
//! sealed or not, with a snapshot or not, and checking the writer's
//! membership of shared lists or not (docs/adr/0016).

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use serde_json::Value;

/// How a command's statement is shaped: whether its events are sealed (and
/// stored only while the key that sealed them is), whether a snapshot is
/// taken with them, and whether the writer's membership of shared lists is
/// checked (docs/adr/0016).
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub sealed: bool,
    pub snapshot: bool,
    pub checked: bool,
}

impl Shape {
    /// Whether the statement answers `(allowed, stored)` rather than only
    /// affecting rows.
    pub(super) fn answers(self) -> bool {
        self.snapshot || self.checked
    }

    pub(super) fn index(self) -> usize {
        usize::from(self.sealed) | usize::from(self.snapshot) << 1 | usize::from(self.checked) << 2
    }
}

/// Every statement shape, built once (see [`statement`]).
pub(super) static STATEMENTS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    (0..8)
        .map(|i| {
            statement(Shape {
                sealed: i & 1 != 0,
                snapshot: i & 2 != 0,
                checked: i & 4 != 0,
            })
        })
        .collect()
});

/// A command's events in one statement: each column an array ($3 to $7),
/// the JSON columns as text (parsed by the cast). Sealed events go in only
/// while the key that sealed them is still stored (a key erased after this
/// process cached it seals nothing more). A snapshot goes in with the events
/// and never over a later one. A checked commit goes in only if the writer
/// ($`w`) is an owner or editor of every list named ($`l`) and none is
/// archived, as they stand when it commits: the writer's member rows, which
/// say whether their list is archived (event-store migration 1015), are
/// locked (`FOR SHARE`) until then, so a removal, a demotion or an archive
/// commits wholly before this statement reads them, or wholly after its
/// events. The lists' own rows are neither read nor locked: every member's
/// commit would share that lock.
fn statement(shape: Shape) -> String {
    let mut next = 7;
    let mut param = || {
        next += 1;
        format!("${next}")
    };
    let mut conditions = Vec::new();
    let key = shape.sealed.then(|| (param(), param()));
    if let Some((user, key)) = &key {
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM user_keys WHERE user_id = {user} AND key_id = {key})"
        ));
    }
    let snapshot = shape.snapshot.then(|| (param(), param()));
    let mut with = Vec::new();
    if shape.checked {
        let (lists, writer) = (param(), param());
        with.push(format!(
            "allowed AS (
  SELECT count(*) = cardinality({lists}::uuid[]) AS ok
    FROM (SELECT 1 FROM list_members
           WHERE list_id = ANY({lists}) AND user_id = {writer}
             AND role IN ('OWNER', 'EDITOR') AND NOT list_archived
             FOR SHARE) AS member
)"
        ));
        conditions.push("(SELECT ok FROM allowed)".to_owned());
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("\n WHERE {}", conditions.join(" AND "))
    };
    let insert = format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
 SELECT $1, $2, e.sequence, e.event_type, e.event_version, e.payload::json, e.metadata::json
   FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
     AS e (sequence, event_type, event_version, payload, metadata){filter}"
    );
    if !shape.answers() {
        return insert;
    }
    with.push(format!("stored AS (\n{insert}\n RETURNING sequence\n)"));
    if let Some((at, state)) = snapshot {
        with.push(format!(
            "snapshot AS (
  INSERT INTO task_snapshots (aggregate_type, aggregate_id, sequence, state)
  SELECT $1, $2, {at}, {state}::json WHERE EXISTS (SELECT 1 FROM stored)
  ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
     SET sequence = excluded.sequence, state = excluded.state, taken_at = now()
   WHERE task_snapshots.sequence < excluded.sequence
)"
        ));
    }
    let allowed = if shape.checked {
        "(SELECT ok FROM allowed)"
    } else {
        "true"
    };
    format!(
        "WITH {}\nSELECT {allowed} AS allowed, count(*) AS stored FROM stored",
        with.join(",\n")
    )
}

/// The metadata key naming the shared lists a commit checks the writer's
/// membership of, separated by spaces (set by the command service from
/// `Task::lists_to_check`, and kept with the events: which lists the
/// writer was a member of when they wrote).
pub const CHECKED_LISTS: &str = "checked_lists";

/// The commit was refused: its writer is not an owner or editor of a list
/// it names (any more), or the list is archived.
#[derive(Debug, thiserror::Error)]
#[error("the writer may not change this list's tasks")]
pub struct NotAllowedInList;

/// The shared lists `event`'s commit checks (see [`CHECKED_LISTS`]), with
/// the writer it checks; `None` if it names none.
pub(super) fn checked_lists(
    event: &SerializedEvent,
) -> Result<Option<(Vec<uuid::Uuid>, String)>, PersistenceError> {
    let Some(named) = event.metadata.get(CHECKED_LISTS).and_then(Value::as_str) else {
        return Ok(None);
    };
    let lists = named
        .split(' ')
        .filter(|id| !id.is_empty())
        .map(uuid::Uuid::parse_str)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PersistenceError::UnknownError(Box::new(e)))?;
    let writer = event.metadata.get("user_id").and_then(Value::as_str);
    match (lists.is_empty(), writer) {
        (true, _) => Ok(None),
        (false, Some(writer)) => Ok(Some((lists, writer.to_owned()))),
        (false, None) => Err(PersistenceError::UnknownError(
            "a checked commit names no writer".into(),
        )),
    }
}
