//! Quick add: one line such as "pay rent every month on the 1st 9am #home !high"
//! read into a new task, listing what was understood; the clock and zone come in.
//! Hand-written, not `interim`: that reads a whole string as one date, not phrases in a title.
//! The `grammar` finds the phrases, the `plan` gathers them, the `clock` and
//! `schedule` place them on the calendar, and `describe` says what each became.

mod clock;
mod describe;
mod grammar;
mod plan;
mod schedule;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

use crate::values::{Priority, Reminder, Reminders, Tag, TagSet, TaskTitle, TimeZone};
use crate::{NewTask, ValidationError};
use clock::LocalClock;
use describe::describe;
use plan::Plan;

// tests.rs builds the values it expects from these, through `use super::*`.
#[cfg(test)]
use crate::values::{Due, Recurrence};

/// A task as read from one line of text.
#[derive(Debug, Clone, PartialEq)]
pub struct QuickAdd {
    pub title: TaskTitle,
    pub details: NewTask,
    /// What was read from the text besides the title, in the order written.
    pub understood: Vec<Understood>,
}

impl QuickAdd {
    /// Longer text is refused rather than read: the line is meant for one task.
    pub const MAX_TEXT_CHARS: usize = 500;
}

/// One phrase taken out of the title, so a client can show the user what it
/// became (and the user can quote it if it was meant literally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Understood {
    pub kind: UnderstoodKind,
    /// The text exactly as written.
    pub source: String,
    /// What it was read as, e.g. "monthly on the 1st" or "priority HIGH".
    pub meaning: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnderstoodKind {
    Due,
    Time,
    Recurrence,
    Reminder,
    Tag,
    Priority,
}

/// Reads `text` as a new task at `now`, dates and times being in `zone`.
///
/// Whatever is not understood stays in the title, whitespace collapsed; a
/// quoted span or a backslash before `#`, `!` or `"` keeps text literal.
/// The conventions, where a phrase could mean more than one thing:
/// - `!1` is urgent and `!4` low, as Todoist's p1 to p4 (the reverse of
///   [`Priority::rank`]); `!low`, `!medium`, `!high`, `!urgent` also work.
/// - A weekday ("fri"), a month and day ("dec 24", never "may" alone), "on the
///   24th" or a bare time is the next one to come: today counts unless its
///   time has already passed. "next monday" is the Monday of next week
///   (Monday to Sunday), "today" is today even if its time has passed.
/// - A bare hour is a time only with "at" and only from 13 to 23 or 0: "at 5"
///   could be morning or evening, so it stays in the title; "5:30" is 05:30.
/// - A local time skipped by a daylight-saving change moves forward by the
///   gap (02:30 becomes 03:30), a repeated one is its earlier instant.
/// - A repeat rule without a date starts at its first occurrence from now;
///   "every month on the 31st" skips months without a 31st (RFC 5545), "every
///   month on the last day" is each month's end. "feb 29" is the next 29
///   February; "feb 30" and "2027-02-29" are refused.
/// - Two phrases for the same thing (two dates, two times, two different
///   priorities) are refused, naming both, rather than one silently winning.
pub fn quick_add(
    text: &str,
    now: DateTime<Utc>,
    zone: TimeZone,
) -> Result<QuickAdd, ValidationError> {
    if text.chars().count() > QuickAdd::MAX_TEXT_CHARS {
        return Err(refused(format!(
            "must be at most {} characters",
            QuickAdd::MAX_TEXT_CHARS
        )));
    }
    let reading = grammar::read(text)?;
    let plan = Plan::gather(text, &reading.found)?;
    let clock = LocalClock::new(now, zone);
    let schedule = plan.schedule(&clock)?;
    let reminders = plan
        .reminders
        .iter()
        .map(|(spec, source)| clock.reminder(spec, source, schedule.due.as_ref()))
        .collect::<Result<Vec<Reminder>, _>>()?;
    let valid_reminders =
        Reminders::parse(reminders.clone(), schedule.due.as_ref()).map_err(as_text_error)?;
    let tag_names: Vec<&str> = plan.tags.iter().map(Tag::as_str).collect();
    let tags = TagSet::parse(&tag_names).map_err(as_text_error)?;

    let title = reading.title_words.join(" ");
    if title.is_empty() {
        return Err(refused(if text.trim().is_empty() {
            "must say what the task is"
        } else {
            "leaves no title: every word was read as a date, time, repeat rule, reminder, \
             tag or priority; add what the task is, or quote words meant for the title"
        }));
    }
    let title = TaskTitle::parse(&title).map_err(as_text_error)?;

    let understood = describe(text, &reading.found, &clock, &schedule, &reminders);
    Ok(QuickAdd {
        title,
        details: NewTask {
            description: None,
            priority: plan
                .priority
                .map_or(Priority::None, |(priority, _)| priority),
            tags,
            due: schedule.due,
            reminders: valid_reminders.as_slice().to_vec(),
            recurrence: schedule.recurrence,
            list: None,
        },
        understood,
    })
}

fn refused(reason: impl Into<std::borrow::Cow<'static, str>>) -> ValidationError {
    ValidationError::new("text", reason)
}

/// The one input is the text, so a refusal from a value type is reported
/// against it, naming the value.
fn as_text_error(error: ValidationError) -> ValidationError {
    refused(format!("{}: {}", error.field, error.reason))
}
