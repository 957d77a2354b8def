//! Validated value types: each is parsed once at the edge and carried by commands,
//! so the aggregate never sees a raw string.

mod due;
mod priority;
mod recurrence;
mod reminder;
mod tag;
mod task_description;
mod task_id;
mod task_title;
mod time_zone;
mod user_id;

pub(crate) use due::ensure_storable_year;
pub use due::{Due, DueWhen};
pub use priority::Priority;
pub use recurrence::Recurrence;
pub use reminder::{Reminder, Reminders};
pub use tag::{Tag, TagSet};
pub use task_description::TaskDescription;
pub use task_id::TaskId;
pub use task_title::TaskTitle;
pub use time_zone::TimeZone;
pub use user_id::UserId;
