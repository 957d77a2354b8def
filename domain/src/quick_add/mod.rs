//! Quick add: one line such as "pay rent every month on the 1st 9am #home !high"
//! read into a new task, listing what was understood; the clock and zone come in.
//! Hand-written, not `interim`: that reads a whole string as one date, not phrases in a title.

mod grammar;
#[cfg(test)]
mod tests;

use chrono::{
    DateTime, Datelike, Days, Duration, NaiveDate, NaiveTime, Offset, TimeZone as _, Utc,
};

use crate::values::{
    Due, DueWhen, Priority, Recurrence, Reminder, Reminders, Tag, TagSet, TaskTitle, TimeZone,
};
use crate::{NewTask, ValidationError};
use grammar::{DateSpec, Found, Frequency, Phrase, RemindSpec, RepeatSpec};

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
        .collect::<Result<Vec<_>, _>>()?;
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
        },
        understood,
    })
}

/// The phrases found, at most one of each kind that can only be set once.
#[derive(Default)]
struct Plan<'a> {
    date: Option<(&'a DateSpec, &'a str)>,
    time: Option<(NaiveTime, &'a str)>,
    later: Option<(Duration, &'a str)>,
    repeat: Option<(&'a RepeatSpec, &'a str)>,
    until: Option<(&'a DateSpec, &'a str)>,
    priority: Option<(Priority, &'a str)>,
    tags: Vec<Tag>,
    reminders: Vec<(&'a RemindSpec, &'a str)>,
}

impl<'a> Plan<'a> {
    fn gather(text: &'a str, found: &'a [Found]) -> Result<Self, ValidationError> {
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

    fn due_date_source(&self) -> Option<&'a str> {
        let yearly_on = self.repeat.filter(|(spec, _)| spec.on.is_some());
        self.date
            .map(|d| d.1)
            .or(self.later.map(|l| l.1))
            .or(yearly_on.map(|r| r.1))
    }

    fn schedule(&self, clock: &LocalClock) -> Result<Schedule, ValidationError> {
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

struct Schedule {
    due: Option<Due>,
    recurrence: Option<Recurrence>,
    until: Option<NaiveDate>,
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

/// Now, as seen from the user's zone.
struct LocalClock {
    now: DateTime<Utc>,
    zone: TimeZone,
    today: NaiveDate,
}

impl LocalClock {
    const TONIGHT: NaiveTime = NaiveTime::from_hms_opt(20, 0, 0).expect("20:00 is a time");

    fn new(now: DateTime<Utc>, zone: TimeZone) -> Self {
        Self {
            now,
            zone,
            today: now.with_timezone(&zone.tz()).date_naive(),
        }
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.zone.tz()).date_naive()
    }

    /// A local date and time as an instant. A time skipped by a daylight-saving
    /// change is read with the offset before the change, as RFC 5545 reads
    /// DTSTART, so 02:30 in a one-hour gap is 03:30; a time that happens twice
    /// is the first.
    fn instant(&self, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
        let tz = self.zone.tz();
        let local = date.and_time(time);
        if let Some(at) = tz.from_local_datetime(&local).earliest() {
            return at.with_timezone(&Utc);
        }
        let offset_before = tz
            .offset_from_utc_datetime(&(local - Duration::days(1)))
            .fix()
            .local_minus_utc();
        Utc.from_utc_datetime(&(local - Duration::seconds(i64::from(offset_before))))
    }

    fn passed(&self, time: Option<NaiveTime>) -> bool {
        time.is_some_and(|time| self.instant(self.today, time) <= self.now)
    }

    /// Today if `time` is still ahead, else tomorrow.
    fn upcoming(&self, time: NaiveTime) -> NaiveDate {
        if self.passed(Some(time)) {
            self.today + Days::new(1)
        } else {
            self.today
        }
    }

    fn date(&self, spec: &DateSpec, time: Option<NaiveTime>) -> Result<NaiveDate, ValidationError> {
        let today = self.today;
        let today_counts = !self.passed(time);
        let to_come = |date: &NaiveDate| *date > today || (*date == today && today_counts);
        let monday = today - Days::new(u64::from(today.weekday().num_days_from_monday()));
        let next_monday = monday + Days::new(7);
        let date = match *spec {
            DateSpec::Today | DateSpec::Tonight => Some(today),
            DateSpec::Tomorrow => today.checked_add_days(Days::new(1)),
            DateSpec::Weekday(day) => {
                let ahead =
                    (day.num_days_from_monday() + 7 - today.weekday().num_days_from_monday()) % 7;
                let ahead = if ahead == 0 && !today_counts {
                    7
                } else {
                    ahead
                };
                today.checked_add_days(Days::new(u64::from(ahead)))
            }
            DateSpec::NextWeekday(day) => {
                next_monday.checked_add_days(Days::new(u64::from(day.num_days_from_monday())))
            }
            DateSpec::NextWeek => Some(next_monday),
            DateSpec::NextMonth => today
                .with_day(1)
                .and_then(|first| first.checked_add_months(chrono::Months::new(1))),
            DateSpec::NextYear => NaiveDate::from_ymd_opt(today.year() + 1, 1, 1),
            DateSpec::AheadDays(days) => today.checked_add_days(Days::new(u64::from(days))),
            DateSpec::AheadMonths(months) => today.checked_add_months(chrono::Months::new(months)),
            DateSpec::MonthDay { month, day } => (today.year()..=today.year() + 8)
                .filter_map(|year| NaiveDate::from_ymd_opt(year, month, day))
                .find(to_come),
            DateSpec::DayOfMonth(day) => (0..=12)
                .filter_map(|ahead| {
                    let month = today
                        .with_day(1)?
                        .checked_add_months(chrono::Months::new(ahead))?;
                    month.with_day(day)
                })
                .find(to_come),
            DateSpec::Exact(date) => Some(date),
        };
        date.ok_or_else(|| refused("names a date too far ahead"))
    }

    fn due_at(&self, date: NaiveDate, time: NaiveTime) -> Result<Due, ValidationError> {
        Due::parse_at(self.instant(date, time), self.zone).map_err(as_text_error)
    }

    fn due_on(&self, date: NaiveDate) -> Result<Due, ValidationError> {
        Due::parse_all_day(date, self.zone).map_err(as_text_error)
    }

    /// A reminder at a time without a date is on the due date, or without one
    /// the next time that time comes.
    fn reminder(
        &self,
        spec: &RemindSpec,
        source: &str,
        due: Option<&Due>,
    ) -> Result<Reminder, ValidationError> {
        match spec {
            RemindSpec::Before { minutes } => match due {
                Some(_) => Ok(Reminder::MinutesBefore(*minutes)),
                None => Err(refused(format!(
                    "{source:?} needs a due date to count back from, e.g. \"tomorrow 9am\""
                ))),
            },
            RemindSpec::At { date, time } => {
                let day = match (date, due) {
                    (Some(date), _) => self.date(date, Some(*time))?,
                    (None, Some(due)) => match due.when {
                        DueWhen::At(at) => self.local_date(at),
                        DueWhen::Date(date) => date,
                    },
                    (None, None) => self.upcoming(*time),
                };
                Ok(Reminder::At(self.instant(day, *time)))
            }
        }
    }

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

/// Says what each phrase became. The due date is shown once: by the date
/// phrase, else by the time, else by the repeat rule that chose it.
fn describe(
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

/// "30 min", "1 hour", "2 days".
fn duration_words(minutes: u32) -> String {
    let (amount, unit) = match minutes {
        m if m > 0 && m % (24 * 60) == 0 => (m / (24 * 60), "day"),
        m if m > 0 && m % 60 == 0 => (m / 60, "hour"),
        m => return format!("{m} min"),
    };
    format!("{amount} {unit}{}", if amount == 1 { "" } else { "s" })
}

fn conflict(first: &str, second: &str, what: &str) -> ValidationError {
    refused(format!(
        "{first:?} and {second:?} both give the {what}; keep one, or quote the one meant for the title"
    ))
}

fn refused(reason: impl Into<std::borrow::Cow<'static, str>>) -> ValidationError {
    ValidationError::new("text", reason)
}

/// The one input is the text, so a refusal from a value type is reported
/// against it, naming the value.
fn as_text_error(error: ValidationError) -> ValidationError {
    refused(format!("{}: {}", error.field, error.reason))
}
