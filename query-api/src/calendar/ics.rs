//! Writes a user's open tasks as an RFC 5545 calendar: a VTODO (or a VEVENT,
//! for clients that show only events) per task, with the zone's rules as a
//! VTIMEZONE so local times stay local across daylight-saving changes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone as _, Utc};
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
/// The zone rules written reach this many years past now, so clients expand a
/// recurring task's future occurrences with the right offsets.
const ZONE_YEARS_AHEAD: i32 = 5;

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

    let mut zones = BTreeMap::new();
    let mut earliest = now;
    for task in tasks {
        if let Some(due) = task.due() {
            let zone = due.time_zone.tz();
            if zone != Tz::UTC || matches!(due.when, DueWhen::Date(_)) {
                zones.insert(zone.name(), zone);
            }
            earliest = earliest.min(due.instant());
        }
    }
    let until = now + Duration::days(366 * i64::from(ZONE_YEARS_AHEAD));
    for zone in zones.into_values() {
        write_zone(&mut out, zone, earliest - Duration::days(366), until);
    }
    for task in tasks {
        if let Some(due) = task.due() {
            write_task(&mut out, task, &due, components, now);
        }
    }
    out.line("END:VCALENDAR");
    out.0
}

fn write_task(
    out: &mut Lines,
    task: &TaskRow,
    due: &Due,
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
    let priority = Priority::from_rank(task.priority);
    if priority != Priority::None {
        out.property("PRIORITY", &ical_priority(priority).to_string());
    }
    let zone = due.time_zone.tz();
    match (due.when, components) {
        (DueWhen::At(at), Components::Todos) => {
            // Apple Reminders writes a timed to-do this way too: it starts
            // (and repeats from) the moment it is due.
            out.line(&format!("DTSTART{}", date_time(at, zone)));
            out.line(&format!("DUE{}", date_time(at, zone)));
        }
        (DueWhen::At(at), Components::Events) => {
            out.line(&format!("DTSTART{}", date_time(at, zone)));
            out.line(&format!(
                "DTEND{}",
                date_time(at + Duration::minutes(EVENT_MINUTES), zone)
            ));
        }
        (DueWhen::Date(day), Components::Todos) => {
            out.line(&format!("DTSTART;VALUE=DATE:{}", date(day)));
            out.line(&format!("DUE;VALUE=DATE:{}", date(day)));
        }
        (DueWhen::Date(day), Components::Events) => {
            out.line(&format!("DTSTART;VALUE=DATE:{}", date(day)));
            let next = day.succ_opt().unwrap_or(day);
            out.line(&format!("DTEND;VALUE=DATE:{}", date(next)));
        }
    }
    if let Some(rule) = &task.recurrence {
        out.line(&format!("RRULE:{}", rule.trim_start_matches("RRULE:")));
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
                // Relative to the due time, so it moves with each occurrence.
                let related = match components {
                    Components::Todos => "END",
                    Components::Events => "START",
                };
                out.line(&format!("TRIGGER;RELATED={related}:-PT{minutes}M"));
            }
            Reminder::At(at) => out.line(&format!("TRIGGER;VALUE=DATE-TIME:{}", utc(*at))),
        }
        out.line("END:VALARM");
    }
    out.line(&format!("END:{kind}"));
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

/// A value and its parameters after the property name: `:…Z` in UTC, else
/// `;TZID=zone:local`.
fn date_time(at: DateTime<Utc>, zone: Tz) -> String {
    if zone == Tz::UTC {
        return format!(":{}", utc(at));
    }
    let local = at.with_timezone(&zone).naive_local();
    format!(";TZID={}:{}", zone.name(), local.format("%Y%m%dT%H%M%S"))
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
fn write_zone(out: &mut Lines, zone: Tz, from: DateTime<Utc>, until: DateTime<Utc>) {
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
        write_zone(&mut out, chrono_tz::Europe::Berlin, from, until);
        assert!(out.0.contains("BEGIN:DAYLIGHT\r\nDTSTART:20270328T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n"), "{}", out.0);
        assert!(out.0.contains("BEGIN:STANDARD\r\nDTSTART:20271031T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\n"), "{}", out.0);
    }

    #[test]
    fn a_zone_without_changes_has_one_observance() {
        let from = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        let mut out = Lines::default();
        write_zone(
            &mut out,
            chrono_tz::Asia::Kolkata,
            from,
            from + Duration::days(3000),
        );
        assert_eq!(out.0.matches("BEGIN:STANDARD").count(), 1);
        assert!(out.0.contains("TZOFFSETTO:+0530"));
    }
}
