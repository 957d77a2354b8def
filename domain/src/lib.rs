//! The task domain: the `Task` aggregate with its commands, past-tense events and
//! validated value types, the `List` aggregate of lists people share, plus the
//! message envelope published to Kafka.
//! Nothing here does I/O; time comes in through [`TaskServices`].

mod command;
pub mod envelope;
mod error;
mod event;
pub mod history;
pub mod list;
pub mod quick_add;
mod services;
mod task;
pub mod upcast;
pub mod values;

pub use command::{NewTask, TaskCommand};
pub use error::{TaskError, ValidationError};
pub use event::{NextOccurrence, Series, TaskEvent};
pub use quick_add::{quick_add, QuickAdd, Understood, UnderstoodKind};
pub use services::{Clock, SystemClock, TaskServices};
pub use task::{snoozed_reminder_id, ScheduledReminder, Task, TaskStatus};

/// A task's version: the sequence of its last event, 1 for its creation.
/// One integer type from the event store through commands, messages, the read
/// model and the API (Postgres `bigint`, the store's sequence).
pub type Version = i64;
