//! Turning the plan's date, time and repeat rule into the task's due date and
//! recurrence. A repeating task is due at its rule's first occurrence, found by
//! the same [`Recurrence`] the aggregate uses, so the aggregate reads that due
//! date as the series' start rather than a date off the rule.

use chrono::{Duration, NaiveDate};

use super::clock::LocalClock;
use super::grammar::{DateSpec, Frequency, RepeatSpec};
use super::plan::Plan;
use super::{as_text_error, refused};
use crate::values::{Due, Recurrence};
use crate::ValidationError;

/// What the plan comes to on the clock.
pub(super) struct Schedule {
    pub(super) due: Option<Due>,
    pub(super) recurrence: Option<Recurrence>,
    /// The last day of the repeat rule, already in its RRULE.
    pub(super) until: Option<NaiveDate>,
}

impl Schedule {
    fn once(due: Due) -> Self {
        Self {
            due: Some(due),
            recurrence: None,
            until: None,
        }
    }
}

impl Plan<'_> {
    pub(super) fn schedule(&self, clock: &LocalClock) -> Result<Schedule, ValidationError> {
        let date_spec = self
            .date
            .map(|(spec, _)| spec)
            .or_else(|| self.repeat.and_then(|(spec, _)| spec.on.as_ref()));
        let time = self.time.map(|(time, _)| time).or_else(|| {
            matches!(date_spec, Some(DateSpec::Tonight)).then_some(LocalClock::TONIGHT)
        });
        let date = date_spec.map(|spec| clock.date(spec, time)).transpose()?;
        let until = self
            .until
            .map(|(spec, _)| clock.date(spec, None))
            .transpose()?;
        if let Some((duration, _)) = self.later {
            let at = clock.now + duration;
            return Ok(Schedule::once(
                Due::parse_at(at, clock.zone).map_err(as_text_error)?,
            ));
        }
        let Some((spec, source)) = self.repeat else {
            let due = match (date, time) {
                (Some(date), Some(time)) => Some(clock.due_at(date, time)?),
                (Some(date), None) => Some(clock.due_on(date)?),
                (None, Some(time)) => Some(clock.due_at(clock.upcoming(time), time)?),
                (None, None) => None,
            };
            return Ok(Schedule {
                due,
                recurrence: None,
                until,
            });
        };
        let rule = Recurrence::parse(&rule_text(spec, until)).map_err(as_text_error)?;
        let first_day = date.unwrap_or(clock.today);
        let (start, after) = match time {
            Some(time) => {
                let start = clock.instant(first_day, time);
                let before_start = start - Duration::seconds(1);
                match date {
                    Some(_) => (start, before_start),
                    None => (start, before_start.max(clock.now)),
                }
            }
            None => {
                let start = Due::all_day(first_day, clock.zone).anchor();
                (start, start - Duration::seconds(1))
            }
        };
        let first = rule.next_after(start, clock.zone, after).ok_or_else(|| {
            refused(match self.until {
                Some((_, until)) => format!("{until:?} ends {source:?} before it first occurs"),
                None => format!("{source:?} never occurs"),
            })
        })?;
        let due = match time {
            Some(_) => Due::parse_at(first, clock.zone).map_err(as_text_error)?,
            None => clock.due_on(clock.local_date(first))?,
        };
        Ok(Schedule {
            due: Some(due),
            recurrence: Some(rule),
            until,
        })
    }
}

/// The RRULE text of a repeat rule, e.g. "FREQ=MONTHLY;BYMONTHDAY=1,-1".
fn rule_text(spec: &RepeatSpec, until: Option<NaiveDate>) -> String {
    let frequency = match spec.frequency {
        Frequency::Daily => "DAILY",
        Frequency::Weekly => "WEEKLY",
        Frequency::Monthly => "MONTHLY",
        Frequency::Yearly => "YEARLY",
    };
    let mut parts = vec![format!("FREQ={frequency}")];
    if spec.interval > 1 {
        parts.push(format!("INTERVAL={}", spec.interval));
    }
    if !spec.days.is_empty() {
        let days: Vec<String> = spec
            .days
            .iter()
            .map(|(nth, day)| {
                let code = &day.to_string().to_uppercase()[..2];
                nth.map_or_else(|| code.to_owned(), |nth| format!("{nth}{code}"))
            })
            .collect();
        parts.push(format!("BYDAY={}", days.join(",")));
    }
    if !spec.month_days.is_empty() {
        let days: Vec<String> = spec.month_days.iter().map(i8::to_string).collect();
        parts.push(format!("BYMONTHDAY={}", days.join(",")));
    }
    if let Some(until) = until {
        parts.push(format!("UNTIL={}", until.format("%Y%m%d")));
    }
    parts.join(";")
}
