use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};

use super::TimeZone;
use crate::ValidationError;

/// When a task is due: an instant, or a whole day, always in the user's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Due {
    #[serde(flatten)]
    pub when: DueWhen,
    pub time_zone: TimeZone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DueWhen {
    At(DateTime<Utc>),
    /// All day: due by the end of that day where the user lives.
    Date(NaiveDate),
}

/// Dates outside years 1 to 9999 are refused: nothing downstream can store them.
pub(crate) fn ensure_storable_year(field: &'static str, year: i32) -> Result<(), ValidationError> {
    if !(1..=9999).contains(&year) {
        return Err(ValidationError::new(
            field,
            "must be in the years 1 to 9999",
        ));
    }
    Ok(())
}

impl Due {
    /// A due date from client input: within years 1 to 9999.
    pub fn parse_at(at: DateTime<Utc>, time_zone: TimeZone) -> Result<Self, ValidationError> {
        ensure_storable_year("dueAt", at.year())?;
        Ok(Self::at(at, time_zone))
    }

    pub fn parse_all_day(date: NaiveDate, time_zone: TimeZone) -> Result<Self, ValidationError> {
        ensure_storable_year("dueDate", date.year())?;
        Ok(Self::all_day(date, time_zone))
    }

    pub fn at(at: DateTime<Utc>, time_zone: TimeZone) -> Self {
        Self {
            when: DueWhen::At(at),
            time_zone,
        }
    }

    pub fn all_day(date: NaiveDate, time_zone: TimeZone) -> Self {
        Self {
            when: DueWhen::Date(date),
            time_zone,
        }
    }

    /// The instant the task falls due: for an all-day task, the end of that
    /// day (the next local midnight) in its zone.
    pub fn instant(&self) -> DateTime<Utc> {
        match self.when {
            DueWhen::At(at) => at,
            DueWhen::Date(date) => {
                let next_day = date.checked_add_days(Days::new(1)).unwrap_or(date);
                local_midnight(next_day, self.time_zone)
            }
        }
    }

    /// Where a recurrence rule is read from: the instant itself, or for an
    /// all-day task the start of its day, so that the rule's days are the
    /// task's days.
    pub fn anchor(&self) -> DateTime<Utc> {
        match self.when {
            DueWhen::At(at) => at,
            DueWhen::Date(date) => local_midnight(date, self.time_zone),
        }
    }

    /// The same kind of due date at another anchor (see [`Due::anchor`]).
    pub fn moved_to(&self, anchor: DateTime<Utc>) -> Self {
        match self.when {
            DueWhen::At(_) => Self::at(anchor, self.time_zone),
            DueWhen::Date(_) => {
                let date = anchor.with_timezone(&self.time_zone.tz()).date_naive();
                Self::all_day(date, self.time_zone)
            }
        }
    }

    pub fn date(&self) -> Option<NaiveDate> {
        match self.when {
            DueWhen::Date(date) => Some(date),
            DueWhen::At(_) => None,
        }
    }
}

/// The first instant of `date` in `zone` (where midnight is skipped by a DST
/// change, the first instant after the gap).
fn local_midnight(date: NaiveDate, zone: TimeZone) -> DateTime<Utc> {
    let tz = zone.tz();
    let mut time = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    for _ in 0..4 {
        if let Some(local) = tz.from_local_datetime(&time).earliest() {
            return local.with_timezone(&Utc);
        }
        time += chrono::Duration::minutes(30);
    }
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_all_day_task_is_due_at_the_end_of_the_local_day() {
        let berlin = TimeZone::parse("Europe/Berlin").unwrap();
        let due = Due::all_day(NaiveDate::from_ymd_opt(2026, 7, 3).unwrap(), berlin);
        // Midnight between 3 and 4 July in Berlin (UTC+2) is 22:00 UTC on the 3rd.
        assert_eq!(due.instant().to_rfc3339(), "2026-07-03T22:00:00+00:00");
        assert_eq!(due.moved_to(due.anchor()), due);
        assert_eq!(due.anchor().to_rfc3339(), "2026-07-02T22:00:00+00:00");
    }
}
