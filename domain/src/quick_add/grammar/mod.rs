//! The phrases quick add reads. The text is split into words (a quoted span or
//! an escaped `#`, `!` or `"` makes its word literal), then read left to right:
//! each phrase found is set aside, every other word is kept for the title.
//! One part per kind of phrase; each adds its own matchers to the reader.

mod cursor;
mod dates;
mod durations;
mod numbers;
mod reader;
mod reminders;
mod repeats;
mod tags_and_priority;
mod times;
mod words;

pub(super) use dates::DateSpec;
pub(super) use reader::{read, Found, Phrase};
pub(super) use reminders::RemindSpec;
pub(super) use repeats::{Frequency, RepeatSpec};
