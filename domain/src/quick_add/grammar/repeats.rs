//! Repeat rules: "daily", "weekly", "every 2 weeks on mon and thu", "every
//! month on the 1st and 15th", "every last friday", "every weekday", "every dec
//! 24", and "until fri" to end one. Each is read into a [`RepeatSpec`] whose
//! fields are the RRULE (RFC 5545) parts the rule will have, so turning it into
//! a rule is a spelling, not a second reading.

use chrono::Weekday;

use super::cursor::{Match, Reader};
use super::dates::{day_ordinal, weekday, DateSpec};
use super::numbers::count;
use crate::ValidationError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::quick_add) enum Frequency {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

/// A repeat rule as written; it becomes an RRULE once its end date is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::quick_add) struct RepeatSpec {
    pub frequency: Frequency,
    pub interval: u32,
    /// BYDAY: a weekday, with an ordinal within the month ("-1FR") or without.
    pub days: Vec<(Option<i8>, Weekday)>,
    /// BYMONTHDAY, -1 being the last day.
    pub month_days: Vec<i8>,
    /// "every dec 24": the yearly rule's date, which is also its first due date.
    pub on: Option<DateSpec>,
}

impl RepeatSpec {
    fn new(frequency: Frequency, interval: u32) -> Self {
        Self {
            frequency,
            interval,
            days: Vec::new(),
            month_days: Vec::new(),
            on: None,
        }
    }
}

impl Reader<'_> {
    pub(super) fn repeat_at(&self, i: usize) -> Result<Match<RepeatSpec>, ValidationError> {
        let frequency = match self.key(i) {
            Some("daily") => Frequency::Daily,
            Some("weekly") => Frequency::Weekly,
            Some("monthly") => Frequency::Monthly,
            Some("yearly" | "annually") => Frequency::Yearly,
            Some("every") => return self.every(i + 1),
            _ => return Ok(None),
        };
        Ok(Some((RepeatSpec::new(frequency, 1), i + 1)))
    }

    /// "until fri": the last day of a repeat rule. A line with no repeat rule is
    /// read again with "until" left to the title ("work until fri").
    pub(super) fn until_at(&self, i: usize) -> Result<Match<DateSpec>, ValidationError> {
        if !(self.until_allowed && self.is(i, &["until"])) {
            return Ok(None);
        }
        self.date_core(i + 1, true)
    }

    /// What follows "every": "2 weeks on mon and thu", "month on the 1st",
    /// "weekday", "last friday", "other day", "dec 24".
    fn every(&self, i: usize) -> Result<Match<RepeatSpec>, ValidationError> {
        if let Some((date, end)) = self.calendar_date_at(i)? {
            let mut spec = RepeatSpec::new(Frequency::Yearly, 1);
            spec.on = Some(date);
            return Ok(Some((spec, end)));
        }
        let (interval, j) = match self.key(i) {
            Some("other") => (2, i + 1),
            Some(key) => count(key).map_or((1, i), |n| (n, i + 1)),
            None => return Ok(None),
        };
        if let Some(frequency) = self.key(j).and_then(frequency_unit) {
            let mut spec = RepeatSpec::new(frequency, interval);
            let mut end = j + 1;
            if self.is(end, &["on"]) {
                match frequency {
                    Frequency::Weekly => {
                        if let Some((days, after)) = self.day_list(end + 1) {
                            spec.days = days.into_iter().map(|day| (None, day)).collect();
                            end = after;
                        }
                    }
                    Frequency::Monthly => {
                        if let Some((on, after)) = self.month_clause(end + 1) {
                            on.apply(&mut spec);
                            end = after;
                        }
                    }
                    Frequency::Daily | Frequency::Yearly => {}
                }
            }
            return Ok(Some((spec, end)));
        }
        if let Some((days, end)) = self.day_list(j) {
            let mut spec = RepeatSpec::new(Frequency::Weekly, interval);
            spec.days = days.into_iter().map(|day| (None, day)).collect();
            return Ok(Some((spec, end)));
        }
        if j != i {
            return Ok(None);
        }
        let weekly_on = |days: &[Weekday]| {
            let mut spec = RepeatSpec::new(Frequency::Weekly, 1);
            spec.days = days.iter().map(|day| (None, *day)).collect();
            Some((spec, i + 1))
        };
        match self.key(i) {
            Some("weekday" | "weekdays") => {
                use Weekday::*;
                return Ok(weekly_on(&[Mon, Tue, Wed, Thu, Fri]));
            }
            Some("weekend" | "weekends") => return Ok(weekly_on(&[Weekday::Sat, Weekday::Sun])),
            _ => {}
        }
        if let Some((item, end)) = self.month_item(i) {
            let mut spec = RepeatSpec::new(Frequency::Monthly, 1);
            MonthlyOn::from(item).apply(&mut spec);
            return Ok(Some((spec, self.of_the_month(end))));
        }
        Ok(None)
    }

    /// "mon", "mon and thu", "mon, wed, fri": weekdays in any order, each once.
    fn day_list(&self, i: usize) -> Match<Vec<Weekday>> {
        let listed = |i: usize| {
            self.key(i)
                .and_then(|key| weekday(key.strip_suffix(',').unwrap_or(key), true))
        };
        let mut days = vec![listed(i)?];
        let mut end = i + 1;
        loop {
            let next = if self.is(end, &["and", ",", "&"]) {
                end + 1
            } else {
                end
            };
            match listed(next) {
                Some(day) => {
                    days.push(day);
                    end = next + 1;
                }
                None => break,
            }
        }
        days.sort_by_key(Weekday::num_days_from_monday);
        days.dedup();
        Some((days, end))
    }

    /// After "every month on": "the 1st", "the 1st and 15th", "the last day",
    /// "the last friday", optionally ending "of the month".
    fn month_clause(&self, i: usize) -> Match<MonthlyOn> {
        let i = if self.is(i, &["the"]) { i + 1 } else { i };
        let (first, mut end) = self.month_item(i)?;
        let mut on = MonthlyOn::from(first);
        loop {
            let mut next = end;
            if self.is(next, &["and", ",", "&"]) {
                next += 1;
                if self.is(next, &["the"]) {
                    next += 1;
                }
            }
            match self.month_item(next) {
                Some((item, after)) if on.accepts(&item) => {
                    on.push(item);
                    end = after;
                }
                _ => break,
            }
        }
        Some((on, self.of_the_month(end)))
    }

    /// "1st", "last day", "last friday", "2nd tue".
    fn month_item(&self, i: usize) -> Match<MonthItem> {
        let key = self.key(i)?;
        if key == "last" && self.is(i + 1, &["day"]) {
            return Some((MonthItem::Day(-1), i + 2));
        }
        if let Some(nth) = weekday_ordinal(key) {
            if let Some(day) = self.key(i + 1).and_then(|next| weekday(next, true)) {
                return Some((MonthItem::Weekday(nth, day), i + 2));
            }
        }
        let day = day_ordinal(key)?;
        Some((MonthItem::Day(i8::try_from(day).ok()?), i + 1))
    }

    /// Past a trailing "of the month" ("of each month", "of every month"), if any.
    fn of_the_month(&self, i: usize) -> usize {
        let ends = self.is(i, &["of"])
            && self.is(i + 1, &["the", "each", "every"])
            && self.is(i + 2, &["month"]);
        if ends {
            i + 3
        } else {
            i
        }
    }
}

/// One day a monthly rule falls on: a day of the month, or the nth such weekday.
enum MonthItem {
    Day(i8),
    Weekday(i8, Weekday),
}

/// Days of the month or weekdays of the month, never both: an RRULE with both
/// would mean only the days that are both.
enum MonthlyOn {
    Days(Vec<i8>),
    Weekdays(Vec<(i8, Weekday)>),
}

impl From<MonthItem> for MonthlyOn {
    fn from(item: MonthItem) -> Self {
        match item {
            MonthItem::Day(day) => Self::Days(vec![day]),
            MonthItem::Weekday(nth, day) => Self::Weekdays(vec![(nth, day)]),
        }
    }
}

impl MonthlyOn {
    fn accepts(&self, item: &MonthItem) -> bool {
        matches!(
            (self, item),
            (Self::Days(_), MonthItem::Day(_)) | (Self::Weekdays(_), MonthItem::Weekday(..))
        )
    }

    fn push(&mut self, item: MonthItem) {
        match (self, item) {
            (Self::Days(days), MonthItem::Day(day)) if !days.contains(&day) => days.push(day),
            (Self::Weekdays(days), MonthItem::Weekday(nth, day)) if !days.contains(&(nth, day)) => {
                days.push((nth, day));
            }
            _ => {}
        }
    }

    fn apply(self, spec: &mut RepeatSpec) {
        match self {
            Self::Days(days) => spec.month_days = days,
            Self::Weekdays(days) => {
                spec.days = days
                    .into_iter()
                    .map(|(nth, day)| (Some(nth), day))
                    .collect();
            }
        }
    }
}

fn frequency_unit(key: &str) -> Option<Frequency> {
    Some(match key {
        "day" | "days" => Frequency::Daily,
        "week" | "weeks" => Frequency::Weekly,
        "month" | "months" => Frequency::Monthly,
        "year" | "years" => Frequency::Yearly,
        _ => return None,
    })
}

/// Which such weekday of the month: "first" to "fifth", "1st" to "5th", "last".
fn weekday_ordinal(key: &str) -> Option<i8> {
    Some(match key {
        "first" | "1st" => 1,
        "second" | "2nd" => 2,
        "third" | "3rd" => 3,
        "fourth" | "4th" => 4,
        "fifth" | "5th" => 5,
        "last" => -1,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use chrono::Weekday::{self, Fri, Mon, Sat, Sun, Wed};

    use super::{Frequency, RepeatSpec};
    use crate::quick_add::grammar::dates::DateSpec;
    use crate::quick_add::grammar::reader::{phrases, title, Phrase};

    fn rule(frequency: Frequency, interval: u32) -> RepeatSpec {
        RepeatSpec::new(frequency, interval)
    }

    fn weekly_on(days: &[Weekday]) -> RepeatSpec {
        let mut spec = rule(Frequency::Weekly, 1);
        spec.days = days.iter().map(|day| (None, *day)).collect();
        spec
    }

    fn monthly_on(days: &[i8]) -> RepeatSpec {
        let mut spec = rule(Frequency::Monthly, 1);
        spec.month_days = days.to_vec();
        spec
    }

    /// The one repeat rule read from `text`, with its source.
    fn repeat(text: &str) -> (RepeatSpec, &str) {
        match phrases(text).as_slice() {
            [(Phrase::Repeat(spec), source)] => (spec.clone(), source),
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn intervals_and_frequencies() {
        assert_eq!(
            repeat("go every 3 months"),
            (rule(Frequency::Monthly, 3), "every 3 months")
        );
        assert_eq!(
            repeat("go every two weeks"),
            (rule(Frequency::Weekly, 2), "every two weeks")
        );
        assert_eq!(
            repeat("go annually"),
            (rule(Frequency::Yearly, 1), "annually")
        );
        assert_eq!(
            repeat("go every weekend"),
            (weekly_on(&[Sat, Sun]), "every weekend")
        );
    }

    #[test]
    fn weekdays_are_sorted_and_each_named_once() {
        assert_eq!(
            repeat("go every fri, mon & wed"),
            (weekly_on(&[Mon, Wed, Fri]), "every fri, mon & wed")
        );
        assert_eq!(
            repeat("go every mon and mon"),
            (weekly_on(&[Mon]), "every mon and mon")
        );
    }

    #[test]
    fn month_days_keep_their_order_and_never_mix_with_weekdays() {
        assert_eq!(
            repeat("go every month on the 15th and the 1st and 15th of each month"),
            (
                monthly_on(&[15, 1]),
                "every month on the 15th and the 1st and 15th of each month"
            )
        );
        let read = phrases("go every month on the 1st and last friday");
        assert_eq!(
            read[0],
            (Phrase::Repeat(monthly_on(&[1])), "every month on the 1st")
        );
        assert_eq!(read[1], (Phrase::Date(DateSpec::Weekday(Fri)), "friday"));
        assert_eq!(
            title("go every month on the 1st and last friday"),
            "go and last"
        );
        assert_eq!(
            repeat("go every 15th of the month"),
            (monthly_on(&[15]), "every 15th of the month")
        );
    }

    #[test]
    fn on_belongs_to_weekly_and_monthly_rules_only() {
        let read = phrases("go every day on mon");
        assert_eq!(
            read,
            [
                (Phrase::Repeat(rule(Frequency::Daily, 1)), "every day"),
                (Phrase::Date(DateSpec::Weekday(Mon)), "on mon"),
            ]
        );
    }

    #[test]
    fn what_every_cannot_repeat_stays_in_the_title() {
        for text in [
            "go every 2 weekdays",
            "go every 8 hours",
            "go every so often",
        ] {
            assert_eq!(phrases(text), [], "{text:?}");
            assert_eq!(title(text), text);
        }
        let read = phrases("go every day until further notice");
        assert_eq!(
            read,
            [(Phrase::Repeat(rule(Frequency::Daily, 1)), "every day")]
        );
        assert_eq!(
            title("go every day until further notice"),
            "go until further notice"
        );
    }
}
