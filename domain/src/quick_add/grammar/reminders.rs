//! Reminders, led by "remind" or "remind me": "30 min before" the due time, or
//! at a time ("at 8am"), optionally on a date ("fri 8am", "8am fri"). The lead
//! word keeps a reminder's date and time apart from the task's own. A reminder
//! fires at an instant, so one without a time is not read as one; one before
//! the due time is counted in minutes, as months and years have no fixed length.

use chrono::NaiveTime;

use super::cursor::{Match, Reader};
use super::dates::DateSpec;
use crate::ValidationError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::quick_add) enum RemindSpec {
    Before {
        minutes: u32,
    },
    At {
        date: Option<DateSpec>,
        time: NaiveTime,
    },
}

impl Reader<'_> {
    /// "remind me 30 min before", "remind me at 8am", "remind me fri 8am".
    pub(super) fn reminder_at(&self, i: usize) -> Result<Match<RemindSpec>, ValidationError> {
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
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveTime, Weekday};

    use super::RemindSpec;
    use crate::quick_add::grammar::dates::DateSpec;
    use crate::quick_add::grammar::reader::{phrases, title, Phrase};

    fn eight(pm: bool) -> NaiveTime {
        NaiveTime::from_hms_opt(if pm { 20 } else { 8 }, 0, 0).unwrap()
    }

    #[test]
    fn a_date_may_come_before_or_after_the_time() {
        let friday = RemindSpec::At {
            date: Some(DateSpec::Weekday(Weekday::Fri)),
            time: eight(false),
        };
        for text in [
            "remind me fri 8am",
            "remind me 8am fri",
            "remind me on fri at 8am",
        ] {
            assert_eq!(
                phrases(&format!("call {text}")),
                [(Phrase::Remind(friday.clone()), text)]
            );
        }
        let saturday = RemindSpec::At {
            date: Some(DateSpec::Weekday(Weekday::Sat)),
            time: eight(true),
        };
        assert_eq!(
            phrases("call remind 8pm on sat"),
            [(Phrase::Remind(saturday), "remind 8pm on sat")]
        );
    }

    #[test]
    fn before_needs_a_fixed_length_and_the_word_before() {
        assert_eq!(
            phrases("call remind 2h before"),
            [(
                Phrase::Remind(RemindSpec::Before { minutes: 120 }),
                "remind 2h before"
            )]
        );
        for text in ["call remind me 1 month before", "call remind me 30 min"] {
            assert_eq!(phrases(text), [], "{text:?}");
            assert_eq!(title(text), text);
        }
    }

    #[test]
    fn without_a_time_it_is_no_reminder() {
        assert_eq!(
            phrases("call remind me fri"),
            [(Phrase::Date(DateSpec::Weekday(Weekday::Fri)), "fri")]
        );
        assert_eq!(title("call remind me fri"), "call remind me");
    }
}
