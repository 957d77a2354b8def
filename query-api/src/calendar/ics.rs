//! Writes a user's open tasks as an RFC 5545 calendar: a VTODO (or a VEVENT,
//! for clients that show only events) per task, with the zone's rules as a
//! VTIMEZONE so local times stay local across daylight-saving changes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{
    DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone as _, Utc,
};
use chrono_tz::{OffsetComponents, OffsetName, Tz};
use domain::values::{Due, DueWhen, Priority, Reminder};
use projections::TaskRow;

/// Which component each task becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Components {
    /// VTODO: what task-aware clients (Thunderbird, Apple Reminders, Tasks.org) read.
    Todos,
    /// VEVENT: for clients that show only events (Google Calendar, Outlook).
    Events,
}

/// How long a timed task's event lasts in `Events` mode.
const EVENT_MINUTES: i64 = 30;
/// The zone rules written cover a year before now to five years ahead (or
/// to the latest due date, at most ten years ahead): clients expand repeats
/// with them. Bounded, whatever dates the tasks hold.
const ZONE_YEARS_BEHIND: i64 = 1;
const ZONE_YEARS_AHEAD: i64 = 5;
const ZONE_YEARS_AHEAD_AT_MOST: i64 = 10;
/// Zones beyond this many in one feed are written in UTC instead.
const MAX_ZONES: usize = 20;

/// The instants the written zone rules cover.
struct Window {
    from: DateTime<Utc>,
    until: DateTime<Utc>,
}

impl Window {
    fn holds(&self, at: DateTime<Utc>) -> bool {
        self.from <= at && at < self.until
    }
}

/// The calendar of `tasks` (each open, with a due date) as of `now`.
pub fn calendar(
    name: &str,
    tasks: &[TaskRow],
    components: Components,
    now: DateTime<Utc>,
) -> String {
    let mut out = Lines::default();
    out.line("BEGIN:VCALENDAR");
    out.line("VERSION:2.0");
    out.line("PRODID:-//Taskledger//Taskledger calendar feed//EN");
    out.line("CALSCALE:GREGORIAN");
    out.line("METHOD:PUBLISH");
    out.property("X-WR-CALNAME", &text(name));
    out.line("REFRESH-INTERVAL;VALUE=DURATION:PT15M");
    out.line("X-PUBLISHED-TTL:PT15M");

    let year = Duration::days(366);
    let latest = tasks
        .iter()
        .filter_map(|task| task.due().map(|due| due.instant()))
        .max()
        .unwrap_or(now);
    let window = Window {
        from: now - year * ZONE_YEARS_BEHIND as i32,
        until: latest.clamp(
            now + year * ZONE_YEARS_AHEAD as i32,
            now + year * ZONE_YEARS_AHEAD_AT_MOST as i32,
        ),
    };
    // Only timed tasks name a zone: a date is the same date everywhere.
    let mut zones = BTreeMap::new();
    for task in tasks {
        if let Some(Due {
            when: DueWhen::At(_),
            time_zone,
        }) = task.due()
        {
            let zone = time_zone.tz();
            if zone != Tz::UTC && (zones.len() < MAX_ZONES || zones.contains_key(zone.name())) {
                zones.insert(zone.name(), zone);
            }
        }
    }
    for zone in zones.values() {
        write_zone(&mut out, *zone, &window);
    }
    for task in tasks {
        if let Some(due) = task.due() {
            let zone = Some(due.time_zone.tz()).filter(|zone| zones.contains_key(zone.name()));
            write_task(&mut out, task, &due, zone, &window, components, now);
        }
    }
    out.line("END:VCALENDAR");
    out.0
}

fn write_task(
    out: &mut Lines,
    task: &TaskRow,
    due: &Due,
    zone: Option<Tz>,
    window: &Window,
    components: Components,
    now: DateTime<Utc>,
) {
    let kind = match components {
        Components::Todos => "VTODO",
        Components::Events => "VEVENT",
    };
    out.line(&format!("BEGIN:{kind}"));
    out.property("UID", &format!("{}@taskledger", task.id));
    out.property("DTSTAMP", &utc(now));
    out.property("CREATED", &utc(task.created_at));
    out.property("LAST-MODIFIED", &utc(task.updated_at));
    // Each change of the task raises its version, so clients replace their copy.
    out.property("SEQUENCE", &task.version.to_string());
    out.property("SUMMARY", &text(&task.title));
    if let Some(description) = &task.description {
        out.property("DESCRIPTION", &text(description));
    }
    if !task.tags.is_empty() {
        let tags: Vec<String> = task.tags.iter().map(|t| text(t)).collect();
        out.property("CATEGORIES", &tags.join(","));
    }
    if task.priority != Priority::None {
        out.property("PRIORITY", &ical_priority(task.priority).to_string());
    }
    let repeats = task.recurrence.is_some();
    match due.when {
        DueWhen::At(at) => {
            // A repeat is expanded in local time, so its start keeps the zone;
            // a one-off instant the zone rules do not cover, or one that a
            // fall-back hour makes ambiguous, is written in UTC.
            let zone = zone.filter(|zone| repeats || (window.holds(at) && !ambiguous(at, *zone)));
            let value = date_time(at, zone);
            match components {
                Components::Todos => {
                    // A to-do repeats from DTSTART; a one-off needs only DUE
                    // (RFC 5545 wants DUE after DTSTART, so a repeating one
                    // starts at its due time, as Apple Reminders writes it).
                    if repeats {
                        out.line(&format!("DTSTART{value}"));
                    }
                    out.line(&format!("DUE{value}"));
                }
                Components::Events => {
                    out.line(&format!("DTSTART{value}"));
                    let end = date_time(at + Duration::minutes(EVENT_MINUTES), zone);
                    out.line(&format!("DTEND{end}"));
                }
            }
        }
        DueWhen::Date(day) => {
            // Due by the end of the day: the day starts it, the next day's
            // start ends it, so "minutes before" counts back from the end.
            let next = day.succ_opt().unwrap_or(day);
            out.line(&format!("DTSTART;VALUE=DATE:{}", date(day)));
            match components {
                Components::Todos => out.line(&format!("DUE;VALUE=DATE:{}", date(next))),
                Components::Events => out.line(&format!("DTEND;VALUE=DATE:{}", date(next))),
            }
        }
    }
    if let Some(rule) = &task.recurrence {
        out.line(&format!(
            "RRULE:{}",
            series_rule(rule, task.occurrence, due, zone)
        ));
    }
    if components == Components::Todos {
        out.line("STATUS:NEEDS-ACTION");
    }
    for reminder in task.reminders().as_slice() {
        out.line("BEGIN:VALARM");
        out.line("ACTION:DISPLAY");
        out.property("DESCRIPTION", &text(&task.title));
        match reminder {
            Reminder::MinutesBefore(minutes) => {
                // Relative to the due time, so it moves with each occurrence:
                // DUE of a to-do, the start of a timed event, the end of a day.
                let related = match (components, due.when) {
                    (Components::Events, DueWhen::At(_)) => "START",
                    _ => "END",
                };
                out.line(&format!("TRIGGER;RELATED={related}:-PT{minutes}M"));
            }
            Reminder::At(at) => out.line(&format!("TRIGGER;VALUE=DATE-TIME:{}", utc(*at))),
        }
        out.line("END:VALARM");
    }
    out.line(&format!("END:{kind}"));
}

/// Whether the local time of `at` in `zone` happens twice (a fall-back hour).
fn ambiguous(at: DateTime<Utc>, zone: Tz) -> bool {
    let local = at.with_timezone(&zone).naive_local();
    matches!(zone.from_local_datetime(&local), LocalResult::Ambiguous(..))
}

/// The rule as this occurrence starts it: the series' `COUNT` less the
/// occurrences before this one, and `UNTIL` of the same kind as the start
/// (a date for a day, a UTC time otherwise; RFC 5545 §3.3.10).
fn series_rule(rule: &str, occurrence: Option<i32>, due: &Due, zone: Option<Tz>) -> String {
    let before = i64::from(occurrence.unwrap_or(1).max(1) - 1);
    let parts: Vec<String> = rule
        .trim_start_matches("RRULE:")
        .split(';')
        .map(|part| match part.split_once('=') {
            Some(("COUNT", count)) => match count.parse::<i64>() {
                Ok(count) => format!("COUNT={}", (count - before).max(1)),
                Err(_) => part.to_owned(),
            },
            Some(("UNTIL", until)) => format!("UNTIL={}", until_for(until, due, zone)),
            _ => part.to_owned(),
        })
        .collect();
    parts.join(";")
}

fn until_for(until: &str, due: &Due, zone: Option<Tz>) -> String {
    let as_date = NaiveDate::parse_from_str(until.get(..8).unwrap_or(until), "%Y%m%d");
    let as_instant = NaiveDateTime::parse_from_str(until.trim_end_matches('Z'), "%Y%m%dT%H%M%S");
    match (due.when, as_date, as_instant) {
        // A day's repeats end on a date: the zone's date of the instant.
        (DueWhen::Date(_), _, Ok(instant)) => date(
            instant
                .and_utc()
                .with_timezone(&due.time_zone.tz())
                .date_naive(),
        ),
        // A timed repeat ends at an instant: the end of the named day.
        (DueWhen::At(_), Ok(day), Err(_)) => {
            let end = day.and_hms_opt(23, 59, 59).unwrap_or_default();
            let zone = zone.unwrap_or(due.time_zone.tz());
            let at = zone
                .from_local_datetime(&end)
                .earliest()
                .map_or_else(|| end.and_utc(), |at| at.with_timezone(&Utc));
            utc(at)
        }
        _ => until.to_owned(),
    }
}

/// RFC 5545 priorities: 1 is the highest, 9 the lowest, 0 none.
fn ical_priority(priority: Priority) -> u8 {
    match priority {
        Priority::Urgent => 1,
        Priority::High => 3,
        Priority::Medium => 5,
        Priority::Low => 9,
        Priority::None => 0,
    }
}

/// A value and its parameters after the property name: `;TZID=zone:local`,
/// or `:…Z` in UTC without a zone.
fn date_time(at: DateTime<Utc>, zone: Option<Tz>) -> String {
    match zone {
        Some(zone) if zone != Tz::UTC => {
            let local = at.with_timezone(&zone).naive_local();
            format!(";TZID={}:{}", zone.name(), local.format("%Y%m%dT%H%M%S"))
        }
        _ => format!(":{}", utc(at)),
    }
}

fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

fn date(day: NaiveDate) -> String {
    day.format("%Y%m%d").to_string()
}

/// The zone's offsets from `from` to `until`: one observance for where the
/// window starts, then one per change of offset, each with the local time it
/// takes effect (in the offset before it, as RFC 5545 says).
fn write_zone(out: &mut Lines, zone: Tz, window: &Window) {
    let (from, until) = (window.from, window.until);
    out.line("BEGIN:VTIMEZONE");
    out.property("TZID", zone.name());
    let first = zone.offset_from_utc_datetime(&from.naive_utc());
    let first_seconds = first.fix().local_minus_utc();
    observance(
        out,
        &first,
        first_seconds,
        from.with_timezone(&zone).naive_local(),
    );
    let mut before = first_seconds;
    for (at, offset) in transitions(zone, from, until) {
        let after = offset.fix().local_minus_utc();
        let local_before = at.naive_utc() + Duration::seconds(i64::from(before));
        observance(out, &offset, before, local_before);
        before = after;
    }
    out.line("END:VTIMEZONE");
}

fn observance(
    out: &mut Lines,
    offset: &<Tz as chrono::TimeZone>::Offset,
    from_seconds: i32,
    starts: NaiveDateTime,
) {
    let kind = if offset.dst_offset().is_zero() {
        "STANDARD"
    } else {
        "DAYLIGHT"
    };
    out.line(&format!("BEGIN:{kind}"));
    out.property("DTSTART", &starts.format("%Y%m%dT%H%M%S").to_string());
    out.property("TZOFFSETFROM", &utc_offset(from_seconds));
    out.property("TZOFFSETTO", &utc_offset(offset.fix().local_minus_utc()));
    if let Some(name) = offset.abbreviation() {
        out.property("TZNAME", &text(name));
    }
    out.line(&format!("END:{kind}"));
}

/// Each instant in `[from, until)` where `zone` changes offset, with the
/// offset from then on: found day by day, then to the minute.
fn transitions(
    zone: Tz,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, <Tz as chrono::TimeZone>::Offset)> {
    let offset_at = |at: DateTime<Utc>| zone.offset_from_utc_datetime(&at.naive_utc());
    let mut found = Vec::new();
    let mut day_start = from;
    while day_start < until {
        let day_end = day_start + Duration::days(1);
        let before = offset_at(day_start);
        if offset_at(day_end).fix() != before.fix() {
            let (mut low, mut high) = (day_start, day_end);
            while high - low > Duration::minutes(1) {
                let middle = low + (high - low) / 2;
                if offset_at(middle).fix() == before.fix() {
                    low = middle;
                } else {
                    high = middle;
                }
            }
            // Transitions fall on whole minutes.
            let at = DateTime::from_timestamp(high.timestamp() / 60 * 60, 0).unwrap_or(high);
            let at = if offset_at(at).fix() == before.fix() {
                high
            } else {
                at
            };
            found.push((at, offset_at(at)));
        }
        day_start = day_end;
    }
    found
}

fn utc_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let seconds = seconds.abs();
    format!("{sign}{:02}{:02}", seconds / 3600, seconds % 3600 / 60)
}

/// TEXT escaping (RFC 5545 §3.3.11).
fn text(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            ';' => escaped.push_str("\\;"),
            ',' => escaped.push_str("\\,"),
            '\n' => escaped.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => escaped.push(c),
        }
    }
    escaped
}

/// Content lines ending in CRLF, folded at 75 octets without splitting a
/// character (RFC 5545 §3.1).
#[derive(Default)]
struct Lines(String);

impl Lines {
    fn property(&mut self, name: &str, value: &str) {
        self.line(&format!("{name}:{value}"));
    }

    fn line(&mut self, line: &str) {
        let mut width = 0;
        for c in line.chars() {
            if width + c.len_utf8() > 75 {
                self.0.push_str("\r\n ");
                width = 1;
            }
            self.0.push(c);
            width += c.len_utf8();
        }
        let _ = write!(self.0, "\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_fold_at_75_octets_without_splitting_characters() {
        let mut lines = Lines::default();
        lines.property("SUMMARY", &"ü".repeat(60));
        for line in lines.0.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{line:?} is {} octets", line.len());
        }
        let unfolded = lines.0.replace("\r\n ", "");
        assert_eq!(unfolded, format!("SUMMARY:{}\r\n", "ü".repeat(60)));
    }

    #[test]
    fn text_escapes_what_rfc_5545_reserves() {
        assert_eq!(text("a;b,c\\d\ne"), "a\\;b\\,c\\\\d\\ne");
    }

    #[test]
    fn berlin_changes_offset_at_the_2027_transitions() {
        let from = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        let until = Utc.with_ymd_and_hms(2028, 1, 1, 0, 0, 0).unwrap();
        let found = transitions(chrono_tz::Europe::Berlin, from, until);
        let instants: Vec<_> = found.iter().map(|(at, _)| *at).collect();
        assert_eq!(
            instants,
            [
                Utc.with_ymd_and_hms(2027, 3, 28, 1, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2027, 10, 31, 1, 0, 0).unwrap(),
            ]
        );
        let mut out = Lines::default();
        write_zone(&mut out, chrono_tz::Europe::Berlin, &Window { from, until });
        assert!(out.0.contains("BEGIN:DAYLIGHT\r\nDTSTART:20270328T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n"), "{}", out.0);
        assert!(out.0.contains("BEGIN:STANDARD\r\nDTSTART:20271031T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\n"), "{}", out.0);
    }

    fn due_at(zone: Tz) -> Due {
        Due::at(
            Utc.with_ymd_and_hms(2027, 3, 26, 8, 0, 0).unwrap(),
            domain::values::TimeZone::parse(zone.name()).unwrap(),
        )
    }

    #[test]
    fn a_later_occurrence_counts_only_what_is_left_of_the_series() {
        let due = due_at(chrono_tz::Europe::Berlin);
        assert_eq!(
            series_rule("FREQ=DAILY;COUNT=5", Some(1), &due, None),
            "FREQ=DAILY;COUNT=5"
        );
        assert_eq!(
            series_rule("FREQ=DAILY;COUNT=5", Some(3), &due, None),
            "FREQ=DAILY;COUNT=3"
        );
        assert_eq!(
            series_rule("FREQ=DAILY;COUNT=5", Some(9), &due, None),
            "FREQ=DAILY;COUNT=1"
        );
        assert_eq!(
            series_rule("RRULE:FREQ=WEEKLY;BYDAY=MO", None, &due, None),
            "FREQ=WEEKLY;BYDAY=MO"
        );
    }

    #[test]
    fn until_takes_the_kind_of_the_start() {
        let berlin = chrono_tz::Europe::Berlin;
        // A timed start in Berlin: the end of 30 June there, in UTC.
        let timed = due_at(berlin);
        assert_eq!(
            series_rule("FREQ=DAILY;UNTIL=20270630", None, &timed, Some(berlin)),
            "FREQ=DAILY;UNTIL=20270630T215959Z"
        );
        assert_eq!(
            series_rule(
                "FREQ=DAILY;UNTIL=20270630T120000Z",
                None,
                &timed,
                Some(berlin)
            ),
            "FREQ=DAILY;UNTIL=20270630T120000Z"
        );
        // A day: the date in the task's zone.
        let day = Due::all_day(
            NaiveDate::from_ymd_opt(2027, 3, 26).unwrap(),
            domain::values::TimeZone::parse("America/New_York").unwrap(),
        );
        assert_eq!(
            series_rule("FREQ=DAILY;UNTIL=20270701T020000Z", None, &day, None),
            "FREQ=DAILY;UNTIL=20270630"
        );
    }

    #[test]
    fn the_second_of_two_equal_local_times_is_ambiguous() {
        let berlin = chrono_tz::Europe::Berlin;
        // 02:30 on 31 October 2027 happens at 00:30 and at 01:30 UTC.
        assert!(ambiguous(
            Utc.with_ymd_and_hms(2027, 10, 31, 1, 30, 0).unwrap(),
            berlin
        ));
        assert!(!ambiguous(
            Utc.with_ymd_and_hms(2027, 10, 31, 3, 30, 0).unwrap(),
            berlin
        ));
    }

    #[test]
    fn a_zone_without_changes_has_one_observance() {
        let from = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        let mut out = Lines::default();
        let until = from + Duration::days(3000);
        write_zone(&mut out, chrono_tz::Asia::Kolkata, &Window { from, until });
        assert_eq!(out.0.matches("BEGIN:STANDARD").count(), 1);
        assert!(out.0.contains("TZOFFSETTO:+0530"));
    }
}
