//! The task domain: the `Task` aggregate with its commands, past-tense events and
//! validated value types, plus the message envelope published to Kafka.
//! Nothing here does I/O; time comes in through [`TaskServices`].

mod command;
pub mod envelope;
mod error;
mod event;
mod services;
mod task;
pub mod values;

pub use command::TaskCommand;
pub use error::{TaskError, ValidationError};
pub use event::TaskEvent;
pub use services::{Clock, SystemClock, TaskServices};
pub use task::{Task, TaskStatus};
