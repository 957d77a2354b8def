use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::Due;
use crate::ValidationError;

/// When to remind: at an instant, or some minutes before the due time (so it
/// moves when the due date moves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reminder {
    At(DateTime<Utc>),
    MinutesBefore(u32),
}

impl Reminder {
    /// At most a year ahead of the due time.
    pub const MAX_MINUTES_BEFORE: u32 = 366 * 24 * 60;

    /// When this reminder fires for a task due at `due`, if it can.
    pub fn fires_at(&self, due: Option<&Due>) -> Option<DateTime<Utc>> {
        match *self {
            Self::At(at) => Some(at),
            Self::MinutesBefore(minutes) => {
                due.map(|due| due.instant() - Duration::minutes(i64::from(minutes)))
            }
        }
    }
}

/// A task's reminders: unique, at most [`Reminders::MAX`], each able to fire.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Reminders(Vec<Reminder>);

impl Reminders {
    pub const MAX: usize = 10;

    pub fn parse(mut reminders: Vec<Reminder>, due: Option<&Due>) -> Result<Self, ValidationError> {
        reminders.sort();
        reminders.dedup();
        if reminders.len() > Self::MAX {
            return Err(ValidationError::new(
                "reminders",
                format!("a task has at most {} reminders", Self::MAX),
            ));
        }
        for reminder in &reminders {
            if let Reminder::At(at) = reminder {
                super::due::ensure_storable_year("reminders", chrono::Datelike::year(at))?;
            }
            if let Reminder::MinutesBefore(minutes) = reminder {
                if due.is_none() {
                    return Err(ValidationError::new(
                        "reminders",
                        "a reminder relative to the due time needs a due date",
                    ));
                }
                if *minutes > Reminder::MAX_MINUTES_BEFORE {
                    return Err(ValidationError::new(
                        "reminders",
                        "a reminder may be at most 366 days before the due time",
                    ));
                }
            }
        }
        Ok(Self(reminders))
    }

    pub fn as_slice(&self) -> &[Reminder] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn has_offsets(&self) -> bool {
        self.0
            .iter()
            .any(|r| matches!(r, Reminder::MinutesBefore(_)))
    }

    /// The earliest firing time not before `now`: reminders already past never
    /// fire retroactively.
    pub fn next_after(&self, now: DateTime<Utc>, due: Option<&Due>) -> Option<DateTime<Utc>> {
        self.0
            .iter()
            .filter_map(|r| r.fires_at(due))
            .filter(|at| *at >= now)
            .min()
    }

    /// The reminders of a next occurrence `shift` later: offsets stay as they
    /// are, absolute reminders move with the due time.
    pub fn shifted(&self, shift: Duration) -> Self {
        Self(
            self.0
                .iter()
                .map(|r| match *r {
                    Reminder::At(at) => Reminder::At(at + shift),
                    offset => offset,
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::values::TimeZone as Zone;

    #[test]
    fn offsets_need_a_due_date_and_follow_it() {
        assert_eq!(
            Reminders::parse(vec![Reminder::MinutesBefore(30)], None)
                .unwrap_err()
                .field,
            "reminders"
        );
        let due = Due::at(
            Utc.with_ymd_and_hms(2026, 5, 1, 9, 0, 0).unwrap(),
            Zone::UTC,
        );
        let reminders = Reminders::parse(vec![Reminder::MinutesBefore(30)], Some(&due)).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
        assert_eq!(
            reminders.next_after(now, Some(&due)),
            Some(Utc.with_ymd_and_hms(2026, 5, 1, 8, 30, 0).unwrap())
        );
        let later = due.moved_to(due.instant() + Duration::days(1));
        assert_eq!(
            reminders.next_after(now, Some(&later)),
            Some(Utc.with_ymd_and_hms(2026, 5, 2, 8, 30, 0).unwrap())
        );
    }

    #[test]
    fn past_reminders_never_fire() {
        let past = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap();
        let reminders = Reminders::parse(vec![Reminder::At(past)], None).unwrap();
        assert_eq!(reminders.next_after(Utc::now(), None), None);
    }
}
