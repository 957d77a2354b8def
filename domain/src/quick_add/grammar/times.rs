//! Times of day: "9am", "9:30 pm", "17:30", "noon", "midnight", "at 17". A
//! number alone is often part of the title ("buy 5 apples", "at 5"), so a time
//! needs something that marks it as one: a meridiem, a colon, a name, or "at"
//! before an hour that can only be one time of day.

use chrono::NaiveTime;

use super::cursor::{Match, Reader};
use super::numbers::digits;

impl Reader<'_> {
    /// "9am", "9:30 pm", "17:30", "noon", "at 17". A bare hour from 1 to 12
    /// ("at 5") could be morning or evening, so it is not read as a time.
    pub(super) fn time_at(&self, i: usize) -> Match<NaiveTime> {
        if !self.is(i, &["at"]) {
            return self.clock_at(i);
        }
        if let Some(found) = self.clock_at(i + 1) {
            return Some(found);
        }
        let hour = digits(self.key(i + 1)?, 2)?;
        (hour == 0 || (13..=23).contains(&hour))
            .then(|| NaiveTime::from_hms_opt(hour, 0, 0))
            .flatten()
            .map(|time| (time, i + 2))
    }

    /// A time without "at"; the meridiem may be its own word ("9 pm").
    fn clock_at(&self, i: usize) -> Match<NaiveTime> {
        let key = self.key(i)?;
        match key {
            "noon" | "midday" => return Some((NaiveTime::from_hms_opt(12, 0, 0)?, i + 1)),
            "midnight" => return Some((NaiveTime::MIN, i + 1)),
            _ => {}
        }
        let (body, meridiem) = split_meridiem(key);
        let (hour, minute, colon) = hour_minute(body)?;
        if let Some(pm) = meridiem {
            return twelve_hour(hour, minute, pm).map(|time| (time, i + 1));
        }
        if let Some(pm) = self.key(i + 1).and_then(|next| match split_meridiem(next) {
            ("", meridiem) => meridiem,
            _ => None,
        }) {
            return twelve_hour(hour, minute, pm).map(|time| (time, i + 2));
        }
        colon
            .then(|| NaiveTime::from_hms_opt(hour, minute, 0))
            .flatten()
            .map(|time| (time, i + 1))
    }
}

/// "9pm" → ("9", Some(true)); "am" → ("", Some(false)); "9" → ("9", None).
fn split_meridiem(key: &str) -> (&str, Option<bool>) {
    for (suffix, pm) in [("a.m.", false), ("p.m.", true), ("am", false), ("pm", true)] {
        if let Some(body) = key.strip_suffix(suffix) {
            return (body, Some(pm));
        }
    }
    (key, None)
}

/// "9" → (9, 0, false); "09:30" → (9, 30, true).
fn hour_minute(body: &str) -> Option<(u32, u32, bool)> {
    match body.split_once(':') {
        Some((hour, minute)) if minute.len() == 2 => {
            Some((digits(hour, 2)?, digits(minute, 2)?, true))
        }
        Some(_) => None,
        None => Some((digits(body, 2)?, 0, false)),
    }
}

/// 12am is midnight and 12pm noon; "13pm" and "0am" are not times.
fn twelve_hour(hour: u32, minute: u32, pm: bool) -> Option<NaiveTime> {
    if !(1..=12).contains(&hour) {
        return None;
    }
    NaiveTime::from_hms_opt(hour % 12 + if pm { 12 } else { 0 }, minute, 0)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveTime;

    use crate::quick_add::grammar::reader::{phrases, title, Phrase};

    fn at(hour: u32, minute: u32) -> Phrase {
        Phrase::Time(NaiveTime::from_hms_opt(hour, minute, 0).unwrap())
    }

    #[test]
    fn meridiems_with_or_without_dots_and_space() {
        for (text, phrase) in [
            ("9 a.m.", at(9, 0)),
            ("9p.m.", at(21, 0)),
            ("12:30am", at(0, 30)),
            ("12 PM", at(12, 0)),
            ("at 09:30", at(9, 30)),
            ("midday", at(12, 0)),
            ("at 0", at(0, 0)),
            ("at 23", at(23, 0)),
        ] {
            assert_eq!(phrases(&format!("go {text}")), [(phrase, text)], "{text:?}");
        }
    }

    #[test]
    fn what_is_not_a_time_stays_in_the_title() {
        for text in [
            "go 13:00pm",
            "go 0am",
            "go 9:60",
            "go 9:5",
            "go at 24",
            "go at 12",
            "go 5",
        ] {
            assert_eq!(phrases(text), [], "{text:?}");
            assert_eq!(title(text), text);
        }
    }
}
