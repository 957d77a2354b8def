//! What the aggregate needs from outside itself, behind a small trait so tests
//! control it.

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The services handed to [`crate::Task::handle`].
#[derive(Clone)]
pub struct TaskServices {
    pub clock: Arc<dyn Clock>,
}

impl TaskServices {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }
}

impl Default for TaskServices {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}
