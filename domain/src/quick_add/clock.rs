//! Now as seen from the user's zone: what the dates, times and reminders read
//! from the text mean on the calendar. Everything that depends on the clock is
//! here, so the grammar stays a pure reading of words, and tests can fix `now`.

use chrono::{
    DateTime, Datelike, Days, Duration, NaiveDate, NaiveTime, Offset, TimeZone as _, Utc,
};

use super::grammar::{DateSpec, RemindSpec};
use super::{as_text_error, refused};
use crate::values::{Due, DueWhen, Reminder, TimeZone};
use crate::ValidationError;

pub(super) struct LocalClock {
    pub(super) now: DateTime<Utc>,
    pub(super) zone: TimeZone,
    pub(super) today: NaiveDate,
}

impl LocalClock {
    /// When "tonight" is, without a time.
    pub(super) const TONIGHT: NaiveTime =
        NaiveTime::from_hms_opt(20, 0, 0).expect("20:00 is a time");

    pub(super) fn new(now: DateTime<Utc>, zone: TimeZone) -> Self {
        Self {
            now,
            zone,
            today: now.with_timezone(&zone.tz()).date_naive(),
        }
    }

    pub(super) fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.zone.tz()).date_naive()
    }

    /// A local date and time as an instant. A time skipped by a daylight-saving
    /// change is read with the offset before the change, as RFC 5545 reads
    /// DTSTART, so 02:30 in a one-hour gap is 03:30; a time that happens twice
    /// is the first.
    pub(super) fn instant(&self, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
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
    pub(super) fn upcoming(&self, time: NaiveTime) -> NaiveDate {
        if self.passed(Some(time)) {
            self.today + Days::new(1)
        } else {
            self.today
        }
    }

    /// The day a date phrase names; `time` is the time it goes with, which
    /// decides whether today still counts for "fri" or "dec 24".
    pub(super) fn date(
        &self,
        spec: &DateSpec,
        time: Option<NaiveTime>,
    ) -> Result<NaiveDate, ValidationError> {
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

    pub(super) fn due_at(&self, date: NaiveDate, time: NaiveTime) -> Result<Due, ValidationError> {
        Due::parse_at(self.instant(date, time), self.zone).map_err(as_text_error)
    }

    pub(super) fn due_on(&self, date: NaiveDate) -> Result<Due, ValidationError> {
        Due::parse_all_day(date, self.zone).map_err(as_text_error)
    }

    /// A reminder at a time without a date is on the due date, or without one
    /// the next time that time comes.
    pub(super) fn reminder(
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
}
