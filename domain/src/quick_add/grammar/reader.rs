//! Reading the words from the left. At each word the parts are tried in turn,
//! the ones led by a mark or a keyword (`#`, `!`, "remind", "every", "until",
//! "in") before plain dates and times, and the first that matches takes its
//! words: "remind me fri 8am" is one reminder and "every dec 24" one repeat
//! rule, not a due date besides. A word no part takes goes into the title.

use std::ops::Range;

use chrono::{Duration, NaiveTime};

use super::cursor::{Match, Reader};
use super::dates::DateSpec;
use super::reminders::RemindSpec;
use super::repeats::RepeatSpec;
use super::tags_and_priority::priority;
use super::words::split;
use crate::values::{Priority, Tag};
use crate::ValidationError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::quick_add) enum Phrase {
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
pub(in crate::quick_add) struct Found {
    pub phrase: Phrase,
    /// Where in the text it was written.
    pub span: Range<usize>,
}

#[derive(Debug)]
pub(in crate::quick_add) struct Reading {
    pub found: Vec<Found>,
    pub title_words: Vec<String>,
}

pub(in crate::quick_add) fn read(text: &str) -> Result<Reading, ValidationError> {
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
        if let Some((date, end)) = self.until_at(i)? {
            return Ok(Some((Phrase::Until(date), end)));
        }
        if let Some(found) = self.ahead_at(i) {
            return Ok(Some(found));
        }
        if let Some((date, end)) = self.date_at(i)? {
            return Ok(Some((Phrase::Date(date), end)));
        }
        Ok(self.time_at(i).map(|(time, end)| (Phrase::Time(time), end)))
    }
}

/// For the parts' tests: each phrase read from `text`, with its source text.
#[cfg(test)]
pub(super) fn phrases(text: &str) -> Vec<(Phrase, &str)> {
    let reading = read(text).unwrap_or_else(|e| panic!("{text:?} was refused: {e}"));
    reading
        .found
        .into_iter()
        .map(|found| (found.phrase, &text[found.span]))
        .collect()
}

/// For the parts' tests: the title words of `text`, joined.
#[cfg(test)]
pub(super) fn title(text: &str) -> String {
    read(text).unwrap().title_words.join(" ")
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveTime, Weekday};

    use super::{phrases, title, Phrase};
    use crate::quick_add::grammar::dates::DateSpec;

    #[test]
    fn a_phrase_spans_its_words_as_written_spaces_included() {
        assert_eq!(
            phrases("pay  ON   Fri  9 PM"),
            [
                (Phrase::Date(DateSpec::Weekday(Weekday::Fri)), "ON   Fri"),
                (
                    Phrase::Time(NaiveTime::from_hms_opt(21, 0, 0).unwrap()),
                    "9 PM"
                ),
            ]
        );
        assert_eq!(title("pay  ON   Fri  9 PM"), "pay");
    }

    #[test]
    fn a_literal_word_is_never_a_phrase() {
        assert_eq!(phrases("\"tomorrow\" \\#home \"9am\""), []);
        assert_eq!(
            title("\"tomorrow\" \\#home \"9am\""),
            "\"tomorrow\" #home \"9am\""
        );
    }

    #[test]
    fn until_before_its_repeat_rule_still_ends_it() {
        let read = phrases("until fri stretch every day");
        assert_eq!(read.len(), 2, "{read:?}");
        assert_eq!(
            read[0],
            (Phrase::Until(DateSpec::Weekday(Weekday::Fri)), "until fri")
        );
        assert!(
            matches!(read[1], (Phrase::Repeat(_), "every day")),
            "{read:?}"
        );
        assert_eq!(title("until fri stretch every day"), "stretch");
    }
}
