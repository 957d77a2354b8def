//! Gathering the phrases found into one plan for the task. A due date, a time,
//! a priority, a repeat rule and its end can each be given once; a second one
//! is refused, naming both, rather than one silently winning, since the user
//! meant something by each. Tags and reminders can be given any number of times.

use chrono::{Duration, NaiveTime};

use super::grammar::{DateSpec, Found, Phrase, RemindSpec, RepeatSpec};
use super::refused;
use crate::values::{Priority, Tag};
use crate::ValidationError;

/// The phrases found, at most one of each kind that can only be set once, each
/// with its source text for the messages that quote it.
#[derive(Default)]
pub(super) struct Plan<'a> {
    pub(super) date: Option<(&'a DateSpec, &'a str)>,
    pub(super) time: Option<(NaiveTime, &'a str)>,
    pub(super) later: Option<(Duration, &'a str)>,
    pub(super) repeat: Option<(&'a RepeatSpec, &'a str)>,
    pub(super) until: Option<(&'a DateSpec, &'a str)>,
    pub(super) priority: Option<(Priority, &'a str)>,
    pub(super) tags: Vec<Tag>,
    pub(super) reminders: Vec<(&'a RemindSpec, &'a str)>,
}

impl<'a> Plan<'a> {
    pub(super) fn gather(text: &'a str, found: &'a [Found]) -> Result<Self, ValidationError> {
        let mut plan = Self::default();
        for Found { phrase, span } in found {
            let source = &text[span.clone()];
            match phrase {
                Phrase::Tag(tag) => plan.tags.push(tag.clone()),
                Phrase::Priority(priority) => {
                    if let Some((earlier, first)) = plan.priority {
                        if earlier != *priority {
                            return Err(conflict(first, source, "priority"));
                        }
                    }
                    plan.priority = Some((*priority, source));
                }
                Phrase::Date(date) => {
                    if let Some(first) = plan.due_date_source() {
                        return Err(conflict(first, source, "due date"));
                    }
                    plan.date = Some((date, source));
                }
                Phrase::Later(duration) => {
                    if let Some(first) = plan.due_date_source().or(plan.time.map(|t| t.1)) {
                        return Err(conflict(first, source, "due date"));
                    }
                    plan.later = Some((*duration, source));
                }
                Phrase::Time(time) => {
                    if let Some(first) = plan.time.map(|t| t.1).or(plan.later.map(|l| l.1)) {
                        return Err(conflict(first, source, "time"));
                    }
                    plan.time = Some((*time, source));
                }
                Phrase::Repeat(spec) => {
                    if let Some((_, first)) = plan.repeat {
                        return Err(conflict(first, source, "repeat rule"));
                    }
                    if spec.on.is_some() {
                        if let Some(first) = plan.due_date_source() {
                            return Err(conflict(first, source, "due date"));
                        }
                    }
                    plan.repeat = Some((spec, source));
                }
                Phrase::Until(date) => {
                    if let Some((_, first)) = plan.until {
                        return Err(conflict(first, source, "end of the repeat"));
                    }
                    plan.until = Some((date, source));
                }
                Phrase::Remind(spec) => plan.reminders.push((spec, source)),
            }
        }
        if let (Some((_, later)), Some((_, repeat))) = (plan.later, plan.repeat) {
            return Err(refused(format!(
                "{repeat:?} starts on a day, and {later:?} is not one; give a date or a time"
            )));
        }
        Ok(plan)
    }

    /// What already gave the due date: a date, "in 2 hours", or "every dec 24".
    fn due_date_source(&self) -> Option<&'a str> {
        let yearly_on = self.repeat.filter(|(spec, _)| spec.on.is_some());
        self.date
            .map(|d| d.1)
            .or(self.later.map(|l| l.1))
            .or(yearly_on.map(|r| r.1))
    }
}

fn conflict(first: &str, second: &str, what: &str) -> ValidationError {
    refused(format!(
        "{first:?} and {second:?} both give the {what}; keep one, or quote the one meant for the title"
    ))
}
