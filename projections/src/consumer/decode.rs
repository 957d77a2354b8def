//! A message is untrusted input: anyone who can produce to a topic can write
//! one. Decoding checks its shape and that its key, subject and sequence
//! agree, so a message that cannot be right is dead-lettered with the reason
//! before a projection sees it. What an event says is still read from the
//! event store, never from the message (docs/adr/0002).

use domain::envelope::{CloudEvent, TaskEventData};
use rdkafka::message::OwnedMessage;
use rdkafka::Message;

use super::error::ProjectionError;

/// The task event as projections receive it.
pub type TaskEventMessage = CloudEvent<TaskEventData>;

/// What a topic carries, parsed from untrusted bytes: a message that cannot
/// be decoded is dead-lettered with the reason.
pub trait ConsumedMessage: Sized + Send + Sync + 'static {
    fn decode(message: &OwnedMessage) -> Result<Self, String>;

    /// The W3C trace context the message carries, if any.
    fn traceparent(&self) -> Option<&str> {
        None
    }
}

/// Sanity checks beyond the shape: the key, subject and sequence agree.
impl ConsumedMessage for TaskEventMessage {
    fn decode(message: &OwnedMessage) -> Result<Self, String> {
        decode_task_event(message)
    }

    fn traceparent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }
}

fn decode_task_event(message: &OwnedMessage) -> Result<TaskEventMessage, String> {
    let payload = message.payload().ok_or("message has no payload")?;
    let event: TaskEventMessage =
        serde_json::from_slice(payload).map_err(|e| format!("not a task event CloudEvent: {e}"))?;
    if event.specversion != "1.0" {
        return Err(format!(
            "unsupported CloudEvents specversion {}",
            event.specversion
        ));
    }
    if event.subject != event.data.task_id {
        return Err("subject and data.task_id differ".into());
    }
    if message
        .key()
        .is_some_and(|key| key != event.data.task_id.as_bytes())
    {
        return Err("message key is not the task id".into());
    }
    if event.data.sequence < 1 {
        return Err("sequence must be at least 1".into());
    }
    Ok(event)
}

/// The task id each message names, and the same ids sorted without repeats
/// (the order in which a batch locks its rows, so overlapping batches cannot
/// deadlock).
pub(crate) fn task_ids(
    messages: &[TaskEventMessage],
) -> Result<(Vec<uuid::Uuid>, Vec<uuid::Uuid>), ProjectionError> {
    let ids = messages
        .iter()
        .map(|m| uuid::Uuid::parse_str(&m.data.task_id))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ProjectionError::Invalid("task_id is not a UUID".into()))?;
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    Ok((ids, unique))
}
