//! Lengths of time: "30 min", "30min", "2h", "an hour", "two weeks". They count
//! ahead from now ("in 3 days" is a date, "in 2 hours" an instant) or back from
//! the due time ("remind me 30 min before"). Minutes and hours name an instant,
//! days and longer a date, because "in 3 days" means that day, not that minute.

use chrono::Duration;

use super::cursor::{Match, Reader};
use super::dates::DateSpec;
use super::numbers::{count, digits};
use super::reader::Phrase;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Unit {
    /// How long before the due time a reminder is; months and years vary in
    /// length, so they are not offered.
    pub(super) fn minutes(self, amount: u32) -> Option<u32> {
        let per = match self {
            Self::Minute => 1,
            Self::Hour => 60,
            Self::Day => 24 * 60,
            Self::Week => 7 * 24 * 60,
            Self::Month | Self::Year => return None,
        };
        amount.checked_mul(per)
    }
}

impl Reader<'_> {
    /// "in 3 days" (a date), "in 2 hours" or "in 30 min" (an instant).
    pub(super) fn ahead_at(&self, i: usize) -> Match<Phrase> {
        if !self.is(i, &["in"]) {
            return None;
        }
        let ((amount, unit), end) = self.amount_at(i + 1)?;
        let phrase = match unit {
            Unit::Minute => Phrase::Later(Duration::minutes(i64::from(amount))),
            Unit::Hour => Phrase::Later(Duration::hours(i64::from(amount))),
            Unit::Day => Phrase::Date(DateSpec::AheadDays(amount)),
            Unit::Week => Phrase::Date(DateSpec::AheadDays(amount * 7)),
            Unit::Month => Phrase::Date(DateSpec::AheadMonths(amount)),
            Unit::Year => Phrase::Date(DateSpec::AheadMonths(amount * 12)),
        };
        Some((phrase, end))
    }

    /// "30 min", "30min", "an hour", "2 days".
    pub(super) fn amount_at(&self, i: usize) -> Match<(u32, Unit)> {
        let key = self.key(i)?;
        if let Some(compact) = compact_amount(key) {
            return Some((compact, i + 1));
        }
        let amount = match key {
            "a" | "an" => 1,
            _ => count(key)?,
        };
        let unit = unit(self.key(i + 1)?)?;
        Some(((amount, unit), i + 2))
    }
}

fn unit(key: &str) -> Option<Unit> {
    Some(match key {
        "min" | "mins" | "minute" | "minutes" => Unit::Minute,
        "h" | "hr" | "hrs" | "hour" | "hours" => Unit::Hour,
        "day" | "days" => Unit::Day,
        "wk" | "wks" | "week" | "weeks" => Unit::Week,
        "month" | "months" => Unit::Month,
        "yr" | "yrs" | "year" | "years" => Unit::Year,
        _ => return None,
    })
}

/// "30min", "2h", "3d", "1w". A bare "m" is minutes, never months.
fn compact_amount(key: &str) -> Option<(u32, Unit)> {
    let split = key.find(|c: char| !c.is_ascii_digit())?;
    let amount = digits(&key[..split], 4)?;
    let unit = match &key[split..] {
        "m" => Unit::Minute,
        "d" => Unit::Day,
        "w" => Unit::Week,
        rest => unit(rest)?,
    };
    Some((amount, unit))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::Unit;
    use crate::quick_add::grammar::dates::DateSpec;
    use crate::quick_add::grammar::reader::{phrases, title, Phrase};

    #[test]
    fn minutes_and_hours_ahead_are_an_instant_days_and_longer_a_date() {
        for (text, phrase) in [
            ("in 5m", Phrase::Later(Duration::minutes(5))),
            ("in 2h", Phrase::Later(Duration::hours(2))),
            ("in 3 hrs", Phrase::Later(Duration::hours(3))),
            ("in a minute", Phrase::Later(Duration::minutes(1))),
            ("in 1w", Phrase::Date(DateSpec::AheadDays(7))),
            ("in a week", Phrase::Date(DateSpec::AheadDays(7))),
            ("in 4d", Phrase::Date(DateSpec::AheadDays(4))),
            ("in 3 months", Phrase::Date(DateSpec::AheadMonths(3))),
            ("in 1 yr", Phrase::Date(DateSpec::AheadMonths(12))),
            ("in 2years", Phrase::Date(DateSpec::AheadMonths(24))),
        ] {
            assert_eq!(phrases(&format!("go {text}")), [(phrase, text)], "{text:?}");
        }
    }

    #[test]
    fn in_without_an_amount_is_a_title_word() {
        for text in [
            "go in the week",
            "go in 2",
            "go in two goes",
            "go in 10000 days",
        ] {
            assert_eq!(phrases(text), [], "{text:?}");
            assert_eq!(title(text), text);
        }
    }

    #[test]
    fn reminder_minutes_need_a_fixed_length() {
        assert_eq!(Unit::Minute.minutes(30), Some(30));
        assert_eq!(Unit::Hour.minutes(2), Some(120));
        assert_eq!(Unit::Day.minutes(1), Some(1440));
        assert_eq!(Unit::Week.minutes(2), Some(20_160));
        assert_eq!(Unit::Week.minutes(u32::MAX), None);
        assert_eq!(Unit::Month.minutes(1), None);
        assert_eq!(Unit::Year.minutes(1), None);
    }
}
