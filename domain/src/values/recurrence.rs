use chrono::{DateTime, Utc};
use rrule::{RRule, RRuleSet, Unvalidated};
use serde::{Deserialize, Serialize};

use super::TimeZone;
use crate::ValidationError;

/// A repeat rule: the RFC 5545 RRULE subset FREQ (DAILY, WEEKLY, MONTHLY,
/// YEARLY), INTERVAL, BYDAY (with ordinals such as `1MO`, `-1FR`), BYMONTHDAY,
/// COUNT and UNTIL. Evaluated in the task's zone, so 09:00 stays 09:00 local
/// across daylight-saving changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Recurrence(String);

const ALLOWED_PARTS: [&str; 7] = [
    "FREQ",
    "INTERVAL",
    "BYDAY",
    "BYMONTHDAY",
    "COUNT",
    "UNTIL",
    "WKST",
];
const FREQUENCIES: [&str; 4] = ["DAILY", "WEEKLY", "MONTHLY", "YEARLY"];
/// How many occurrences are examined to find the next one.
const SEARCH_LIMIT: usize = 50_000;

impl Recurrence {
    pub const MAX_CHARS: usize = 200;

    /// Parses the rule's text. Whether it has any occurrence depends on where
    /// the series starts: see [`Recurrence::ensure_occurs`].
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let text = raw.trim();
        let text = text
            .strip_prefix("RRULE:")
            .unwrap_or(text)
            .to_ascii_uppercase();
        if text.is_empty() || text.len() > Self::MAX_CHARS {
            return Err(invalid(format!(
                "must be 1 to {} characters",
                Self::MAX_CHARS
            )));
        }
        let mut frequency = None;
        let (mut count, mut until) = (false, false);
        for part in text.split(';') {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| invalid(format!("{part:?} is not KEY=VALUE")))?;
            if !ALLOWED_PARTS.contains(&key) {
                return Err(invalid(format!(
                    "{key} is not supported; use FREQ, INTERVAL, BYDAY, BYMONTHDAY, COUNT, UNTIL"
                )));
            }
            match key {
                "FREQ" => frequency = Some(value.to_owned()),
                "COUNT" => {
                    count = true;
                    if value.parse::<u32>().map_or(true, |n| n == 0) {
                        return Err(invalid("COUNT must be a whole number of at least 1"));
                    }
                }
                "UNTIL" => until = true,
                _ => {}
            }
        }
        match frequency.as_deref() {
            Some(f) if FREQUENCIES.contains(&f) => {}
            Some(f) => {
                return Err(invalid(format!(
                    "FREQ={f} is not supported; use DAILY, WEEKLY, MONTHLY or YEARLY"
                )))
            }
            None => return Err(invalid("FREQ is required")),
        }
        if count && until {
            return Err(invalid("COUNT and UNTIL cannot both be given"));
        }
        let rule = Self(text);
        rule.build(DateTime::UNIX_EPOCH, TimeZone::UTC)?;
        Ok(rule)
    }

    /// Refuses a rule with no occurrence for a series starting at `start`, such
    /// as one whose UNTIL lies before it.
    pub fn ensure_occurs(
        &self,
        start: DateTime<Utc>,
        zone: TimeZone,
    ) -> Result<(), ValidationError> {
        let set = self.build(start, zone)?;
        if set.into_iter().next().is_none() {
            return Err(invalid(if self.0.contains("UNTIL=") {
                "UNTIL is before the first occurrence"
            } else {
                "the rule has no occurrences"
            }));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn build(&self, start: DateTime<Utc>, zone: TimeZone) -> Result<RRuleSet, ValidationError> {
        let rule: RRule<Unvalidated> = self
            .with_until_in_utc(zone)
            .parse()
            .map_err(|e: rrule::RRuleError| invalid(e.to_string()))?;
        let dt_start = start.with_timezone(&rrule::Tz::from(zone.tz()));
        rule.build(dt_start).map_err(|e| invalid(e.to_string()))
    }

    /// The rule's text with a date-only `UNTIL` (the form RFC 5545 asks for
    /// with an all-day start) read as the end of that day in the task's zone,
    /// written in UTC, as the rule engine wants it with a zoned start.
    fn with_until_in_utc(&self, zone: TimeZone) -> String {
        self.0
            .split(';')
            .map(|part| match part.strip_prefix("UNTIL=") {
                Some(date) if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) => {
                    chrono::NaiveDate::parse_from_str(date, "%Y%m%d")
                        .ok()
                        .and_then(|day| day.and_hms_opt(23, 59, 59))
                        .and_then(|end| end.and_local_timezone(zone.tz()).latest())
                        .map_or_else(
                            || part.to_owned(),
                            |end| {
                                format!(
                                    "UNTIL={}",
                                    end.with_timezone(&Utc).format("%Y%m%dT%H%M%SZ")
                                )
                            },
                        )
                }
                _ => part.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    /// The first occurrence of the series that began at `start` strictly after
    /// `after`, or `None` once COUNT or UNTIL ends the series.
    pub fn next_after(
        &self,
        start: DateTime<Utc>,
        zone: TimeZone,
        after: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let set = self.build(start, zone).ok()?;
        set.into_iter()
            .take(SEARCH_LIMIT)
            .map(|at| at.with_timezone(&Utc))
            .find(|at| *at > after)
    }

    /// Every occurrence of the series, up to `limit`.
    pub fn occurrences(
        &self,
        start: DateTime<Utc>,
        zone: TimeZone,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        self.build(start, zone)
            .map(|set| {
                set.into_iter()
                    .take(limit)
                    .map(|at| at.with_timezone(&Utc))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn invalid(reason: impl Into<std::borrow::Cow<'static, str>>) -> ValidationError {
    ValidationError::new("recurrence", reason)
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, TimeZone as _, Timelike, Weekday};
    use proptest::prelude::*;

    use super::*;

    fn zone(name: &str) -> TimeZone {
        TimeZone::parse(name).unwrap()
    }

    fn local_nine(name: &str, y: i32, m: u32, d: u32) -> DateTime<Utc> {
        zone(name)
            .tz()
            .with_ymd_and_hms(y, m, d, 9, 0, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn refuses_what_the_subset_does_not_cover() {
        let start = local_nine("UTC", 2026, 1, 5);
        for bad in [
            "",
            "FREQ=HOURLY",
            "FREQ=DAILY;BYHOUR=9",
            "INTERVAL=2",
            "FREQ=DAILY;COUNT=0",
            "FREQ=DAILY;COUNT=2;UNTIL=20270101T000000Z",
            "FREQ=DAILY;UNTIL=20200101T000000Z",
            "FREQ=DAILY;INTERVAL=x",
            "nonsense",
        ] {
            let err = Recurrence::parse(bad)
                .and_then(|rule| rule.ensure_occurs(start, TimeZone::UTC))
                .unwrap_err();
            assert_eq!(err.field, "recurrence", "{bad}");
        }
    }

    #[test]
    fn a_date_only_until_ends_an_all_day_series_on_that_local_day() {
        // An all-day task from 1 April 2027 in Berlin: its rule is read from
        // local midnight, and UNTIL=20270403 takes in the 3rd.
        let berlin = zone("Europe/Berlin");
        let start = berlin
            .tz()
            .with_ymd_and_hms(2027, 4, 1, 0, 0, 0)
            .single()
            .unwrap()
            .with_timezone(&Utc);
        let rule = Recurrence::parse("FREQ=DAILY;UNTIL=20270403").unwrap();
        rule.ensure_occurs(start, berlin).unwrap();
        let days: Vec<u32> = rule
            .occurrences(start, berlin, 10)
            .iter()
            .map(|at| at.with_timezone(&berlin.tz()).day())
            .collect();
        assert_eq!(days, [1, 2, 3]);
        assert_eq!(
            rule.as_str(),
            "FREQ=DAILY;UNTIL=20270403",
            "kept as written"
        );
    }

    #[test]
    fn weekly_on_mondays_and_last_friday_of_the_month() {
        let start = local_nine("Europe/Berlin", 2026, 1, 5); // a Monday
        let weekly = Recurrence::parse("FREQ=WEEKLY;BYDAY=MO").unwrap();
        let next = weekly
            .next_after(start, zone("Europe/Berlin"), start)
            .unwrap();
        assert_eq!(next, local_nine("Europe/Berlin", 2026, 1, 12));

        let monthly = Recurrence::parse("RRULE:FREQ=MONTHLY;BYDAY=-1FR").unwrap();
        let first = monthly
            .next_after(start, zone("Europe/Berlin"), start)
            .unwrap();
        assert_eq!(first, local_nine("Europe/Berlin", 2026, 1, 30));
    }

    #[test]
    fn count_ends_the_series() {
        let start = local_nine("UTC", 2026, 1, 1);
        let rule = Recurrence::parse("FREQ=DAILY;COUNT=3").unwrap();
        let day3 = local_nine("UTC", 2026, 1, 3);
        assert_eq!(rule.next_after(start, TimeZone::UTC, day3), None);
    }

    const ZONES: [&str; 3] = ["Europe/Berlin", "America/New_York", "Australia/Sydney"];

    fn rules() -> impl Strategy<Value = String> {
        let freq = prop_oneof![
            Just("FREQ=DAILY"),
            Just("FREQ=WEEKLY"),
            Just("FREQ=WEEKLY;BYDAY=MO,WE,FR"),
            Just("FREQ=MONTHLY;BYMONTHDAY=1,15"),
            Just("FREQ=MONTHLY;BYDAY=1MO"),
            Just("FREQ=MONTHLY;BYDAY=-1FR"),
            Just("FREQ=YEARLY"),
        ];
        (freq, 1u16..4, prop::option::of(1u32..20)).prop_map(|(f, interval, count)| {
            let mut rule = format!("{f};INTERVAL={interval}");
            if let Some(count) = count {
                rule.push_str(&format!(";COUNT={count}"));
            }
            rule
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Walking a series with `next_after` visits exactly the rule's
        /// occurrences, each strictly later, never past COUNT, and always at
        /// 09:00 local time whatever the daylight-saving changes in between.
        #[test]
        fn next_occurrences_follow_the_rule_in_local_time(
            rule in rules(),
            zone_index in 0usize..3,
            day_offset in 0u32..365,
        ) {
            let name = ZONES[zone_index];
            let zone = zone(name);
            let first_day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(u64::from(day_offset));
            let start = local_nine(name, first_day.year(), first_day.month(), first_day.day());
            let recurrence = Recurrence::parse(&rule).unwrap();
            recurrence.ensure_occurs(start, zone).unwrap();
            let expected = recurrence.occurrences(start, zone, 41);
            let mut walked = Vec::new();
            let mut current = start;
            while walked.len() < 40 {
                let Some(next) = recurrence.next_after(start, zone, current) else { break };
                prop_assert!(next > current, "{next} is not after {current}");
                let local = next.with_timezone(&zone.tz());
                prop_assert_eq!((local.hour(), local.minute()), (9, 0), "{} drifted to {}", rule, local);
                if rule.contains("BYDAY=MO,WE,FR") {
                    prop_assert!(matches!(local.weekday(), Weekday::Mon | Weekday::Wed | Weekday::Fri));
                }
                if rule.contains("BYMONTHDAY=1,15") {
                    prop_assert!(local.day() == 1 || local.day() == 15);
                }
                walked.push(next);
                current = next;
            }
            let mut on_rule: Vec<_> = expected.into_iter().filter(|at| *at > start).collect();
            on_rule.truncate(40);
            prop_assert_eq!(&walked, &on_rule, "walking the series differs from the rule's occurrences");
            if let Some(count) = rule.split("COUNT=").nth(1).and_then(|c| c.parse::<usize>().ok()) {
                prop_assert!(walked.len() < count.max(1) + 1);
            }
        }

        #[test]
        fn until_is_never_passed(days in 1i64..120, zone_index in 0usize..3) {
            let name = ZONES[zone_index];
            let zone = zone(name);
            let start = local_nine(name, 2026, 3, 1);
            let until = (start + chrono::Duration::days(days)).format("%Y%m%dT%H%M%SZ").to_string();
            let recurrence = Recurrence::parse(&format!("FREQ=DAILY;UNTIL={until}")).unwrap();
            recurrence.ensure_occurs(start, zone).unwrap();
            let limit = start + chrono::Duration::days(days);
            let mut current = start;
            let mut seen = 0;
            while let Some(next) = recurrence.next_after(start, zone, current) {
                prop_assert!(next <= limit);
                current = next;
                seen += 1;
                prop_assert!(seen <= days + 1);
            }
        }
    }
}
