//! Due dates: relative days ("today", "tomorrow", "next week", "this fri"),
//! weekdays, days of the month ("on the 24th") and calendar dates ("dec 24",
//! "24th of december", "2027-01-15"). A date is kept as written, as a
//! [`DateSpec`], because whether "fri" still means today depends on a time that
//! may come later in the text. Words that are also English ("may", "sun",
//! "the 24th") are dates only where the context makes them one.

use chrono::{NaiveDate, Weekday};

use super::cursor::{Match, Reader};
use super::numbers::digits;
use crate::ValidationError;

/// A date as written, resolved against the clock only once the whole text is
/// read, because whether "fri" can still mean today depends on the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::quick_add) enum DateSpec {
    Today,
    /// Today, at 20:00 unless a time is given.
    Tonight,
    Tomorrow,
    /// The next such weekday, today included.
    Weekday(Weekday),
    /// That weekday in the week (Monday to Sunday) after this one.
    NextWeekday(Weekday),
    NextWeek,
    NextMonth,
    NextYear,
    AheadDays(u32),
    AheadMonths(u32),
    /// A month and day without a year: the next time it comes round.
    MonthDay {
        month: u32,
        day: u32,
    },
    /// "on the 24th", "by the 1st": the next such day of a month.
    DayOfMonth(u32),
    Exact(NaiveDate),
}

impl Reader<'_> {
    /// A date, optionally after "on", "by", "due" or "starting"; after one of
    /// those even "sat", "sun" and "wed" are weekdays, and "the 24th" a date.
    pub(super) fn date_at(&self, i: usize) -> Result<Match<DateSpec>, ValidationError> {
        if self.is(i, &["on", "by", "due", "starting"]) {
            if let Some(found) = self.date_core(i + 1, true)? {
                return Ok(Some(found));
            }
        }
        self.date_core(i, false)
    }

    /// A date without its preposition; `after_preposition` says one came before.
    pub(super) fn date_core(
        &self,
        i: usize,
        after_preposition: bool,
    ) -> Result<Match<DateSpec>, ValidationError> {
        let Some(key) = self.key(i) else {
            return Ok(None);
        };
        let simple = match key {
            "today" => Some(DateSpec::Today),
            "tonight" => Some(DateSpec::Tonight),
            "tomorrow" | "tmrw" => Some(DateSpec::Tomorrow),
            _ => None,
        };
        if let Some(date) = simple {
            return Ok(Some((date, i + 1)));
        }
        if key == "next" || key == "this" {
            let next = key == "next";
            let after = self.key(i + 1);
            if let Some(day) = after.and_then(|after| weekday(after, true)) {
                let date = if next {
                    DateSpec::NextWeekday(day)
                } else {
                    DateSpec::Weekday(day)
                };
                return Ok(Some((date, i + 2)));
            }
            let period = match after {
                Some("week") if next => Some(DateSpec::NextWeek),
                Some("month") if next => Some(DateSpec::NextMonth),
                Some("year") if next => Some(DateSpec::NextYear),
                _ => None,
            };
            return Ok(period.map(|date| (date, i + 2)));
        }
        if let Some(found) = self.calendar_date_at(i)? {
            return Ok(Some(found));
        }
        if let Some(day) = weekday(key, after_preposition) {
            return Ok(Some((DateSpec::Weekday(day), i + 1)));
        }
        if after_preposition && key == "the" {
            if let Some(day) = self.key(i + 1).and_then(day_ordinal) {
                return Ok(Some((DateSpec::DayOfMonth(day), i + 2)));
            }
        }
        Ok(None)
    }

    /// "2027-01-15", "dec 24", "24 dec", "24th of december", "dec 24 2027".
    /// A month name alone is not a date ("may the force").
    pub(super) fn calendar_date_at(&self, i: usize) -> Result<Match<DateSpec>, ValidationError> {
        let Some(key) = self.key(i) else {
            return Ok(None);
        };
        if let Some((year, month, day)) = iso_date(key) {
            return match NaiveDate::from_ymd_opt(year, month, day) {
                Some(date) => Ok(Some((DateSpec::Exact(date), i + 1))),
                None => Err(not_a_date(self.source(i..i + 1))),
            };
        }
        if let Some(month) = month(key) {
            if let Some(day_key) = self.key(i + 1) {
                // "dec 24, 2027": a comma after the day only before a year.
                let (day_key, comma) = match day_key.strip_suffix(',') {
                    Some(day_key) => (day_key, true),
                    None => (day_key, false),
                };
                let year_follows = self.key(i + 2).and_then(year).is_some();
                if let Some(day) = day_number(day_key).filter(|_| !comma || year_follows) {
                    return self.month_day(month, day, i, i + 2).map(Some);
                }
            }
        }
        if let Some(day) = day_number(key) {
            let j = if self.is(i + 1, &["of"]) {
                i + 2
            } else {
                i + 1
            };
            if let Some(month) = self.key(j).and_then(month) {
                return self.month_day(month, day, i, j + 1).map(Some);
            }
        }
        Ok(None)
    }

    /// A month and day read from words `start..end`, with the year after them
    /// if one follows. A day the month never has is refused, not left in the
    /// title: "feb 30" was meant as a date, and a wrong one.
    fn month_day(
        &self,
        month: u32,
        day: u32,
        start: usize,
        end: usize,
    ) -> Result<(DateSpec, usize), ValidationError> {
        if let Some(year) = self.key(end).and_then(year) {
            return NaiveDate::from_ymd_opt(year, month, day)
                .map(|date| (DateSpec::Exact(date), end + 1))
                .ok_or_else(|| not_a_date(self.source(start..end + 1)));
        }
        // Any year's: 29 February is a date, and comes round in a leap year.
        match NaiveDate::from_ymd_opt(2000, month, day) {
            Some(_) => Ok((DateSpec::MonthDay { month, day }, end)),
            None => Err(not_a_date(self.source(start..end))),
        }
    }
}

/// Four digits.
fn year(key: &str) -> Option<i32> {
    (key.len() == 4)
        .then(|| digits(key, 4))
        .flatten()
        .and_then(|year| i32::try_from(year).ok())
}

/// "2027-01-15" as its three numbers, not yet checked to be a date.
fn iso_date(key: &str) -> Option<(i32, u32, u32)> {
    let bytes = key.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    Some((
        year(&key[..4])?,
        digits(&key[5..7], 2)?,
        digits(&key[8..], 2)?,
    ))
}

/// "24" or "24th", 1 to 31.
fn day_number(key: &str) -> Option<u32> {
    digits(key, 2)
        .or_else(|| day_ordinal(key))
        .filter(|day| (1..=31).contains(day))
}

/// "1st", "22nd", "24th", 1 to 31; the suffix is not checked against the number.
pub(super) fn day_ordinal(key: &str) -> Option<u32> {
    let number = ["st", "nd", "rd", "th"]
        .iter()
        .find_map(|suffix| key.strip_suffix(suffix))?;
    digits(number, 2).filter(|day| (1..=31).contains(day))
}

/// "wed", "sat" and "sun" are also English words ("sun cream"), so they are
/// weekdays only where a weekday is expected: after "on", "every", "next"...
pub(super) fn weekday(key: &str, expected: bool) -> Option<Weekday> {
    use Weekday::*;
    Some(match key {
        "monday" | "mon" => Mon,
        "tuesday" | "tue" | "tues" => Tue,
        "wednesday" => Wed,
        "wed" if expected => Wed,
        "thursday" | "thu" | "thur" | "thurs" => Thu,
        "friday" | "fri" => Fri,
        "saturday" => Sat,
        "sat" if expected => Sat,
        "sunday" => Sun,
        "sun" if expected => Sun,
        _ => return None,
    })
}

fn month(key: &str) -> Option<u32> {
    Some(match key {
        "jan" | "january" => 1,
        "feb" | "february" => 2,
        "mar" | "march" => 3,
        "apr" | "april" => 4,
        "may" => 5,
        "jun" | "june" => 6,
        "jul" | "july" => 7,
        "aug" | "august" => 8,
        "sep" | "sept" | "september" => 9,
        "oct" | "october" => 10,
        "nov" | "november" => 11,
        "dec" | "december" => 12,
        _ => return None,
    })
}

fn not_a_date(source: &str) -> ValidationError {
    ValidationError::new("text", format!("{source:?} is not a date"))
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, Weekday};

    use super::DateSpec;
    use crate::quick_add::grammar::reader::{phrases, read, title, Phrase};

    fn date(text: &str) -> Vec<(DateSpec, &str)> {
        phrases(text)
            .into_iter()
            .map(|(phrase, source)| match phrase {
                Phrase::Date(date) => (date, source),
                other => panic!("{text:?}: {other:?} is not a date"),
            })
            .collect()
    }

    #[test]
    fn relative_days_and_weeks() {
        assert_eq!(
            date("go this fri"),
            [(DateSpec::Weekday(Weekday::Fri), "this fri")]
        );
        assert_eq!(
            date("go next sun"),
            [(DateSpec::NextWeekday(Weekday::Sun), "next sun")]
        );
        assert_eq!(date("go next month"), [(DateSpec::NextMonth, "next month")]);
        assert_eq!(
            date("go on tomorrow"),
            [(DateSpec::Tomorrow, "on tomorrow")]
        );
        assert_eq!(date("go tonight"), [(DateSpec::Tonight, "tonight")]);
        assert_eq!(date("go this month"), []);
        assert_eq!(title("go this month"), "go this month");
    }

    #[test]
    fn a_day_of_the_month_needs_a_preposition() {
        assert_eq!(
            date("pay by the 31st"),
            [(DateSpec::DayOfMonth(31), "by the 31st")]
        );
        // The suffix is not checked against the number.
        assert_eq!(
            date("pay on the 2st"),
            [(DateSpec::DayOfMonth(2), "on the 2st")]
        );
        assert_eq!(date("pay on the 32nd"), []);
        assert_eq!(date("pay the 1st"), []);
    }

    #[test]
    fn calendar_dates_in_either_order_with_an_optional_year() {
        let dec_24 = DateSpec::MonthDay { month: 12, day: 24 };
        assert_eq!(date("go 24 of dec"), [(dec_24.clone(), "24 of dec")]);
        assert_eq!(
            date("go sept 3"),
            [(DateSpec::MonthDay { month: 9, day: 3 }, "sept 3")]
        );
        let exact = DateSpec::Exact(NaiveDate::from_ymd_opt(2028, 12, 24).unwrap());
        assert_eq!(date("go 24th dec 2028"), [(exact, "24th dec 2028")]);
        // A year is four digits; "27" stays in the title.
        assert_eq!(date("go dec 24 27"), [(dec_24, "dec 24")]);
        assert_eq!(title("go dec 24 27"), "go 27");
        assert_eq!(date("go 32 dec"), []);
        assert_eq!(date("go dec"), []);
    }

    #[test]
    fn a_date_that_cannot_be_is_refused_quoting_it() {
        for (text, quoted) in [
            ("go 2027-04-31", "\"2027-04-31\""),
            ("go 30 feb", "\"30 feb\""),
            ("go feb 29 2027", "\"feb 29 2027\""),
        ] {
            let error = read(text).unwrap_err();
            assert_eq!(error.field, "text");
            assert_eq!(error.reason, format!("{quoted} is not a date"), "{text:?}");
        }
    }
}
