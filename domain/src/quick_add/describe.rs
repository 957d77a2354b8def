//! Saying what each phrase became, in words a client can show next to the text
//! ("due Thu 2027-03-25 15:00 (America/New_York)", "monthly on the 1st"), so
//! the user can check the reading and quote a phrase that was meant literally.
//! Dates are shown resolved, with weekday and zone, not echoed as typed.

use chrono::NaiveDate;

use super::clock::LocalClock;
use super::grammar::{DateSpec, Found, Frequency, Phrase, RepeatSpec};
use super::schedule::Schedule;
use super::{Understood, UnderstoodKind};
use crate::values::{Due, DueWhen, Reminder};

/// Says what each phrase became. The due date is shown once: by the date
/// phrase, else by the time, else by the repeat rule that chose it.
pub(super) fn describe(
    text: &str,
    found: &[Found],
    clock: &LocalClock,
    schedule: &Schedule,
    reminders: &[Reminder],
) -> Vec<Understood> {
    let has = |test: fn(&Phrase) -> bool| found.iter().any(|f| test(&f.phrase));
    let has_date = has(|p| matches!(p, Phrase::Date(_) | Phrase::Later(_)));
    let has_time = has(|p| matches!(p, Phrase::Time(_)));
    let due = schedule
        .due
        .as_ref()
        .map(|due| format!("due {}", clock.describe_due(due)))
        .unwrap_or_default();
    let mut reminders = reminders.iter();
    found
        .iter()
        .map(|Found { phrase, span }| {
            let (kind, meaning) = match phrase {
                Phrase::Tag(tag) => (UnderstoodKind::Tag, format!("tag {}", tag.as_str())),
                Phrase::Priority(priority) => (
                    UnderstoodKind::Priority,
                    format!("priority {}", format!("{priority:?}").to_uppercase()),
                ),
                Phrase::Date(_) | Phrase::Later(_) => (UnderstoodKind::Due, due.clone()),
                Phrase::Time(time) if has_date => {
                    (UnderstoodKind::Time, format!("at {}", time.format("%H:%M")))
                }
                Phrase::Time(_) => (UnderstoodKind::Time, due.clone()),
                Phrase::Repeat(spec) if has_date || has_time => {
                    (UnderstoodKind::Recurrence, describe_rule(spec))
                }
                Phrase::Repeat(spec) => (
                    UnderstoodKind::Recurrence,
                    format!("{}, first {due}", describe_rule(spec)),
                ),
                Phrase::Until(_) => (
                    UnderstoodKind::Recurrence,
                    schedule.until.map_or_else(String::new, |until| {
                        format!("until {}", until.format("%a %Y-%m-%d"))
                    }),
                ),
                Phrase::Remind(_) => (
                    UnderstoodKind::Reminder,
                    match reminders.next() {
                        Some(Reminder::MinutesBefore(minutes)) => {
                            format!("remind {} before", duration_words(*minutes))
                        }
                        Some(Reminder::At(at)) => format!(
                            "remind {} ({})",
                            at.with_timezone(&clock.zone.tz())
                                .format("%a %Y-%m-%d %H:%M"),
                            clock.zone
                        ),
                        None => String::new(),
                    },
                ),
            };
            Understood {
                kind,
                source: text[span.clone()].to_owned(),
                meaning,
            }
        })
        .collect()
}

impl LocalClock {
    fn describe_due(&self, due: &Due) -> String {
        match due.when {
            DueWhen::At(at) => format!(
                "{} ({})",
                at.with_timezone(&self.zone.tz())
                    .format("%a %Y-%m-%d %H:%M"),
                self.zone
            ),
            DueWhen::Date(date) => {
                format!("{} (all day, {})", date.format("%a %Y-%m-%d"), self.zone)
            }
        }
    }
}

/// "monthly on the 1st", "every 2 weeks on Mon and Thu", "yearly on Dec 24".
fn describe_rule(spec: &RepeatSpec) -> String {
    let unit = match spec.frequency {
        Frequency::Daily => ("daily", "days"),
        Frequency::Weekly => ("weekly", "weeks"),
        Frequency::Monthly => ("monthly", "months"),
        Frequency::Yearly => ("yearly", "years"),
    };
    let mut text = match spec.interval {
        1 => unit.0.to_owned(),
        n => format!("every {n} {}", unit.1),
    };
    let days: Vec<String> = spec
        .days
        .iter()
        .map(|(nth, day)| match nth {
            None => day.to_string(),
            Some(-1) => format!("the last {day}"),
            Some(nth) => format!("the {} {day}", ordinal(i64::from(*nth))),
        })
        .collect();
    let month_days: Vec<String> = spec
        .month_days
        .iter()
        .map(|day| match day {
            -1 => "the last day".to_owned(),
            day => format!("the {}", ordinal(i64::from(*day))),
        })
        .collect();
    for list in [days, month_days] {
        if let Some((last, rest)) = list.split_last() {
            text.push_str(" on ");
            if !rest.is_empty() {
                text.push_str(&rest.join(", "));
                text.push_str(" and ");
            }
            text.push_str(last);
        }
    }
    match spec.on {
        Some(DateSpec::MonthDay { month, day }) => {
            if let Some(date) = NaiveDate::from_ymd_opt(2000, month, day) {
                text.push_str(&format!(" on {}", date.format("%b %-d")));
            }
        }
        Some(DateSpec::Exact(date)) => text.push_str(&format!(" on {}", date.format("%b %-d"))),
        _ => {}
    }
    text
}

fn ordinal(n: i64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// "30 min", "1 hour", "2 days".
fn duration_words(minutes: u32) -> String {
    let (amount, unit) = match minutes {
        m if m > 0 && m % (24 * 60) == 0 => (m / (24 * 60), "day"),
        m if m > 0 && m % 60 == 0 => (m / 60, "hour"),
        m => return format!("{m} min"),
    };
    format!("{amount} {unit}{}", if amount == 1 { "" } else { "s" })
}
