//! Validated value types: each is parsed once at the edge and carried by commands,
//! so the aggregate never sees a raw string.

mod task_description;
mod task_id;
mod task_title;
mod user_id;

pub use task_description::TaskDescription;
pub use task_id::TaskId;
pub use task_title::TaskTitle;
pub use user_id::UserId;
