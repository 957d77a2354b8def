//! The phrases quick add reads. The text is split into words (a quoted span or
//! an escaped `#`, `!` or `"` makes its word literal), then read left to right:
//! each phrase found is set aside, every other word is kept for the title.

use std::ops::Range;

use chrono::{Duration, NaiveDate, NaiveTime, Weekday};

use crate::values::{Priority, Tag};
use crate::ValidationError;

/// A date as written, resolved against the clock only once the whole text is
/// read, because whether "fri" can still mean today depends on the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DateSpec {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Frequency {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

/// A repeat rule as written; it becomes an RRULE once its end date is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RepeatSpec {
    pub frequency: Frequency,
    pub interval: u32,
    /// BYDAY: a weekday, with an ordinal within the month ("-1FR") or without.
    pub days: Vec<(Option<i8>, Weekday)>,
    /// BYMONTHDAY, -1 being the last day.
    pub month_days: Vec<i8>,
    /// "every dec 24": the yearly rule's date, which is also its first due date.
    pub on: Option<DateSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RemindSpec {
    Before {
        minutes: u32,
    },
    At {
        date: Option<DateSpec>,
        time: NaiveTime,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Phrase {
    Tag(Tag),
    Priority(Priority),
    Date(DateSpec),
    Time(NaiveTime),
    /// "in 2 hours": an exact instant from now.
    Later(Duration),
    Repeat(RepeatSpec),
    Until(DateSpec),
    Remind(RemindSpec),
}

#[derive(Debug)]
pub(super) struct Found {
    pub phrase: Phrase,
    /// Where in the text it was written.
    pub span: Range<usize>,
}

#[derive(Debug)]
pub(super) struct Reading {
    pub found: Vec<Found>,
    pub title_words: Vec<String>,
}

pub(super) fn read(text: &str) -> Result<Reading, ValidationError> {
    let words = split(text);
    let reading = Reader {
        text,
        words: &words,
        until_allowed: true,
    }
    .scan()?;
    let has = |test: fn(&Phrase) -> bool| reading.found.iter().any(|f| test(&f.phrase));
    // "work until fri" has no repeat rule to end: read it again with "until" as a word.
    if has(|p| matches!(p, Phrase::Until(_))) && !has(|p| matches!(p, Phrase::Repeat(_))) {
        return Reader {
            text,
            words: &words,
            until_allowed: false,
        }
        .scan();
    }
    Ok(reading)
}

#[derive(Debug)]
struct Word {
    span: Range<usize>,
    /// As it goes into the title: escapes undone, whitespace in quotes collapsed.
    text: String,
    /// Lower-cased for matching; `None` for a literal word, which matches nothing.
    key: Option<String>,
}

const ESCAPABLE: [char; 3] = ['#', '!', '"'];

fn split(text: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        if c.is_whitespace() {
            at += c.len_utf8();
            continue;
        }
        let start = at;
        let mut word = String::new();
        let mut literal = false;
        while let Some(c) = text[at..].chars().next() {
            if c.is_whitespace() {
                break;
            }
            let rest = &text[at..];
            if let Some(escaped) = escaped_char(rest) {
                word.push(escaped);
                literal = true;
                at += 2;
                continue;
            }
            if c == '"' {
                if let Some(close) = closing_quote(&rest[1..]) {
                    let inside = rest[1..=close].replace("\\\"", "\"");
                    word.push('"');
                    word.push_str(&inside.split_whitespace().collect::<Vec<_>>().join(" "));
                    word.push('"');
                    literal = true;
                    at += close + 2;
                    continue;
                }
            }
            word.push(c);
            at += c.len_utf8();
        }
        words.push(Word {
            span: start..at,
            key: (!literal).then(|| word.to_lowercase()),
            text: word,
        });
    }
    words
}

fn escaped_char(rest: &str) -> Option<char> {
    let mut chars = rest.chars();
    (chars.next()? == '\\')
        .then(|| chars.next())
        .flatten()
        .filter(|c| ESCAPABLE.contains(c))
}

/// Where the quote closing a span starts (relative to `inside`), skipping `\"`.
fn closing_quote(inside: &str) -> Option<usize> {
    let bytes = inside.as_bytes();
    (0..bytes.len()).find(|&i| bytes[i] == b'"' && (i == 0 || bytes[i - 1] != b'\\'))
}

/// A phrase and the index of the word after it.
type Match<T> = Option<(T, usize)>;

struct Reader<'a> {
    text: &'a str,
    words: &'a [Word],
    until_allowed: bool,
}

impl Reader<'_> {
    fn scan(&self) -> Result<Reading, ValidationError> {
        let mut found = Vec::new();
        let mut title_words = Vec::new();
        let mut i = 0;
        while i < self.words.len() {
            match self.phrase_at(i)? {
                Some((phrase, end)) => {
                    found.push(Found {
                        phrase,
                        span: self.words[i].span.start..self.words[end - 1].span.end,
                    });
                    i = end;
                }
                None => {
                    title_words.push(self.words[i].text.clone());
                    i += 1;
                }
            }
        }
        Ok(Reading { found, title_words })
    }

    fn phrase_at(&self, i: usize) -> Result<Match<Phrase>, ValidationError> {
        if let Some((tag, end)) = self.tag_at(i) {
            return Ok(Some((Phrase::Tag(tag), end)));
        }
        if let Some(priority) = self.key(i).and_then(priority) {
            return Ok(Some((Phrase::Priority(priority), i + 1)));
        }
        if let Some((spec, end)) = self.reminder_at(i)? {
            return Ok(Some((Phrase::Remind(spec), end)));
        }
        if let Some((spec, end)) = self.repeat_at(i)? {
            return Ok(Some((Phrase::Repeat(spec), end)));
        }
        if self.until_allowed && self.is(i, &["until"]) {
            if let Some((date, end)) = self.date_core(i + 1, true)? {
                return Ok(Some((Phrase::Until(date), end)));
            }
        }
        if let Some(found) = self.ahead_at(i) {
            return Ok(Some(found));
        }
        if let Some((date, end)) = self.date_at(i)? {
            return Ok(Some((Phrase::Date(date), end)));
        }
        Ok(self.time_at(i).map(|(time, end)| (Phrase::Time(time), end)))
    }

    fn key(&self, i: usize) -> Option<&str> {
        self.words.get(i)?.key.as_deref()
    }

    fn is(&self, i: usize, options: &[&str]) -> bool {
        self.key(i).is_some_and(|key| options.contains(&key))
    }

    fn source(&self, words: Range<usize>) -> &str {
        &self.text[self.words[words.start].span.start..self.words[words.end - 1].span.end]
    }

    /// A tag needs a letter, so "issue #42" keeps its number in the title.
    fn tag_at(&self, i: usize) -> Match<Tag> {
        let word = self.words.get(i)?;
        word.key.as_ref()?;
        let name = word.text.strip_prefix('#')?;
        if !name.chars().any(char::is_alphabetic) {
            return None;
        }
        Tag::parse(name).ok().map(|tag| (tag, i + 1))
    }

    /// "remind me 30 min before", "remind me at 8am", "remind me fri 8am".
    fn reminder_at(&self, i: usize) -> Result<Match<RemindSpec>, ValidationError> {
        if !self.is(i, &["remind"]) {
            return Ok(None);
        }
        let mut j = i + 1;
        if self.is(j, &["me"]) {
            j += 1;
        }
        if let Some(((amount, unit), end)) = self.amount_at(j) {
            return Ok(unit
                .minutes(amount)
                .filter(|_| self.is(end, &["before"]))
                .map(|minutes| (RemindSpec::Before { minutes }, end + 1)));
        }
        let (mut date, j) = match self.date_at(j)? {
            Some((date, end)) => (Some(date), end),
            None => (None, j),
        };
        let Some((time, mut end)) = self.time_at(j) else {
            return Ok(None);
        };
        if date.is_none() {
            if let Some((after, after_end)) = self.date_at(end)? {
                date = Some(after);
                end = after_end;
            }
        }
        Ok(Some((RemindSpec::At { date, time }, end)))
    }

    fn repeat_at(&self, i: usize) -> Result<Match<RepeatSpec>, ValidationError> {
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

    /// "in 3 days" (a date), "in 2 hours" or "in 30 min" (an instant).
    fn ahead_at(&self, i: usize) -> Match<Phrase> {
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
    fn amount_at(&self, i: usize) -> Match<(u32, Unit)> {
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

    /// A date, optionally after "on", "by", "due" or "starting"; after one of
    /// those even "sat", "sun" and "wed" are weekdays, and "the 24th" a date.
    fn date_at(&self, i: usize) -> Result<Match<DateSpec>, ValidationError> {
        if self.is(i, &["on", "by", "due", "starting"]) {
            if let Some(found) = self.date_core(i + 1, true)? {
                return Ok(Some(found));
            }
        }
        self.date_core(i, false)
    }

    fn date_core(
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
    fn calendar_date_at(&self, i: usize) -> Result<Match<DateSpec>, ValidationError> {
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

    /// "9am", "9:30 pm", "17:30", "noon", "at 17". A bare hour from 1 to 12
    /// ("at 5") could be morning or evening, so it is not read as a time.
    fn time_at(&self, i: usize) -> Match<NaiveTime> {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
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
    fn minutes(self, amount: u32) -> Option<u32> {
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

/// "30min", "2h", "3d", "1w".
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

fn frequency_unit(key: &str) -> Option<Frequency> {
    Some(match key {
        "day" | "days" => Frequency::Daily,
        "week" | "weeks" => Frequency::Weekly,
        "month" | "months" => Frequency::Monthly,
        "year" | "years" => Frequency::Yearly,
        _ => return None,
    })
}

/// At least 1: "2", "two".
fn count(key: &str) -> Option<u32> {
    const WORDS: [&str; 12] = [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve",
    ];
    let n = match WORDS.iter().position(|word| *word == key) {
        Some(index) => u32::try_from(index).ok()? + 1,
        None => digits(key, 4)?,
    };
    (n >= 1).then_some(n)
}

/// Only ASCII digits, at most `max_len` of them.
fn digits(key: &str, max_len: usize) -> Option<u32> {
    (!key.is_empty() && key.len() <= max_len && key.bytes().all(|b| b.is_ascii_digit()))
        .then(|| key.parse().ok())
        .flatten()
}

fn year(key: &str) -> Option<i32> {
    (key.len() == 4)
        .then(|| digits(key, 4))
        .flatten()
        .and_then(|year| i32::try_from(year).ok())
}

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
fn day_ordinal(key: &str) -> Option<u32> {
    let number = ["st", "nd", "rd", "th"]
        .iter()
        .find_map(|suffix| key.strip_suffix(suffix))?;
    digits(number, 2).filter(|day| (1..=31).contains(day))
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

/// "wed", "sat" and "sun" are also English words ("sun cream"), so they are
/// weekdays only where a weekday is expected: after "on", "every", "next"...
fn weekday(key: &str, expected: bool) -> Option<Weekday> {
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

fn priority(key: &str) -> Option<Priority> {
    Some(match key {
        "!low" | "!4" => Priority::Low,
        "!medium" | "!med" | "!3" => Priority::Medium,
        "!high" | "!2" => Priority::High,
        "!urgent" | "!1" => Priority::Urgent,
        _ => return None,
    })
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

fn twelve_hour(hour: u32, minute: u32, pm: bool) -> Option<NaiveTime> {
    if !(1..=12).contains(&hour) {
        return None;
    }
    NaiveTime::from_hms_opt(hour % 12 + if pm { 12 } else { 0 }, minute, 0)
}

fn not_a_date(source: &str) -> ValidationError {
    ValidationError::new("text", format!("{source:?} is not a date"))
}
