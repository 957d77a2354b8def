//! Quick add phrase by phrase, on a fixed clock: Wednesday 2027-03-24 10:00 UTC,
//! which is 11:00 in Berlin (before its spring-forward on the 28th) and 06:00 in
//! New York (already on summer time).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone as _, Utc};

use super::*;

const NOW: &str = "2027-03-24T10:00:00Z";
const UTC: &str = "UTC";
const BERLIN: &str = "Europe/Berlin";
const NEW_YORK: &str = "America/New_York";

fn instant(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn zone(name: &str) -> TimeZone {
    TimeZone::parse(name).unwrap()
}

fn local(zone_name: &str, local: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
    zone(zone_name)
        .tz()
        .from_local_datetime(&naive)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

fn day(date: &str) -> NaiveDate {
    NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap()
}

enum When {
    /// Local time in the row's zone.
    At(&'static str),
    Utc(&'static str),
    Day(&'static str),
}

enum Remind {
    Before(u32),
    /// Local time in the row's zone.
    At(&'static str),
}

/// One phrase and everything it should give; what a row does not name must be
/// absent (no due date, no rule, no tags, no priority, no reminders).
struct Row {
    text: &'static str,
    title: &'static str,
    zone: &'static str,
    now: &'static str,
    due: Option<When>,
    rule: Option<&'static str>,
    tags: Vec<&'static str>,
    priority: Priority,
    reminders: Vec<Remind>,
}

fn row(text: &'static str, title: &'static str) -> Row {
    Row {
        text,
        title,
        zone: UTC,
        now: NOW,
        due: None,
        rule: None,
        tags: Vec::new(),
        priority: Priority::None,
        reminders: Vec::new(),
    }
}

impl Row {
    fn zone(mut self, zone: &'static str) -> Self {
        self.zone = zone;
        self
    }
    fn now(mut self, now: &'static str) -> Self {
        self.now = now;
        self
    }
    fn at(mut self, local: &'static str) -> Self {
        self.due = Some(When::At(local));
        self
    }
    fn at_utc(mut self, utc: &'static str) -> Self {
        self.due = Some(When::Utc(utc));
        self
    }
    fn on(mut self, date: &'static str) -> Self {
        self.due = Some(When::Day(date));
        self
    }
    fn rule(mut self, rule: &'static str) -> Self {
        self.rule = Some(rule);
        self
    }
    fn tags(mut self, tags: &[&'static str]) -> Self {
        self.tags = tags.to_vec();
        self
    }
    fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }
    fn remind(mut self, reminder: Remind) -> Self {
        self.reminders.push(reminder);
        self
    }

    fn check(&self) {
        let text = self.text;
        let zone = zone(self.zone);
        let read = quick_add(text, instant(self.now), zone)
            .unwrap_or_else(|e| panic!("{text:?} was refused: {e}"));
        assert_eq!(read.title.as_str(), self.title, "title of {text:?}");
        let due = self.due.as_ref().map(|when| match when {
            When::At(at) => Due::at(local(self.zone, at), zone),
            When::Utc(at) => Due::at(instant(at), zone),
            When::Day(date) => Due::all_day(day(date), zone),
        });
        assert_eq!(read.details.due, due, "due of {text:?}");
        assert_eq!(
            read.details.recurrence.as_ref().map(Recurrence::as_str),
            self.rule,
            "rule of {text:?}"
        );
        assert_eq!(
            read.details.tags.to_strings(),
            self.tags,
            "tags of {text:?}"
        );
        assert_eq!(read.details.priority, self.priority, "priority of {text:?}");
        let mut reminders: Vec<Reminder> = self
            .reminders
            .iter()
            .map(|r| match r {
                Remind::Before(minutes) => Reminder::MinutesBefore(*minutes),
                Remind::At(at) => Reminder::At(local(self.zone, at)),
            })
            .collect();
        reminders.sort();
        assert_eq!(read.details.reminders, reminders, "reminders of {text:?}");
        assert_eq!(read.details.description, None);
        if let (Some(rule), Some(due)) = (&read.details.recurrence, &read.details.due) {
            // The due date is the series' first occurrence, as the aggregate reads it.
            assert_eq!(
                rule.occurrences(due.anchor(), zone, 1),
                [due.anchor()],
                "{text:?} is due off its own rule"
            );
        }
        for understood in &read.understood {
            assert!(text.contains(&understood.source), "{understood:?}");
            assert!(!understood.meaning.is_empty(), "{understood:?}");
        }
    }
}

fn dates() -> Vec<Row> {
    vec![
        row("buy milk today", "buy milk").on("2027-03-24"),
        row("buy milk tomorrow", "buy milk").on("2027-03-25"),
        row("Buy Milk TOMORROW", "Buy Milk").on("2027-03-25"),
        row("buy milk tmrw", "buy milk").on("2027-03-25"),
        row("call mom fri", "call mom").on("2027-03-26"),
        row("call mom Friday", "call mom").on("2027-03-26"),
        row("prepare monday slides", "prepare slides").on("2027-03-29"),
        // "wed", "sat", "sun" are words too; they are weekdays only after "on" and the like.
        row("call mom wed", "call mom wed"),
        row("buy sun cream", "buy sun cream"),
        row("call mom on wed", "call mom").on("2027-03-24"),
        row("hike on sat", "hike").on("2027-03-27"),
        row("call mom wednesday", "call mom").on("2027-03-24"),
        row("call mom wednesday 9am", "call mom").at("2027-03-31 09:00"),
        row("call mom wednesday 3pm", "call mom").at("2027-03-24 15:00"),
        row("standup next monday", "standup").on("2027-03-29"),
        row("report next friday", "report").on("2027-04-02"),
        row("report next wed", "report").on("2027-03-31"),
        row("report this friday", "report").on("2027-03-26"),
        row("review next week", "review").on("2027-03-29"),
        row("taxes next month", "taxes").on("2027-04-01"),
        row("plan next year", "plan").on("2028-01-01"),
        row("water plants in 3 days", "water plants").on("2027-03-27"),
        row("renew passport in 2 weeks", "renew passport").on("2027-04-07"),
        row("renew passport in two weeks", "renew passport").on("2027-04-07"),
        row("dentist in 2 months", "dentist").on("2027-05-24"),
        row("check oven in 1 hour", "check oven").at_utc("2027-03-24T11:00:00Z"),
        row("check oven in an hour", "check oven").at_utc("2027-03-24T11:00:00Z"),
        row("tea in 30 min", "tea").at_utc("2027-03-24T10:30:00Z"),
        row("tea in 45min", "tea").at_utc("2027-03-24T10:45:00Z"),
        row("gifts dec 24", "gifts").on("2027-12-24"),
        row("gifts 24 dec", "gifts").on("2027-12-24"),
        row("gifts December 24th", "gifts").on("2027-12-24"),
        row("gifts 24th of december", "gifts").on("2027-12-24"),
        row("party mar 20", "party").on("2028-03-20"),
        row("party mar 24", "party").on("2027-03-24"),
        row("party mar 24 9am", "party").at("2028-03-24 09:00"),
        row("flight 2027-06-15", "flight").on("2027-06-15"),
        row("flight 2027-01-15", "flight").on("2027-01-15"),
        row("flight jan 15 2028", "flight").on("2028-01-15"),
        row("flight Dec 24, 2027", "flight").on("2027-12-24"),
        row("flight dec 24, then hotel", "flight dec 24, then hotel"),
        row("pay invoice by fri", "pay invoice").on("2027-03-26"),
        row("pay invoice due fri", "pay invoice").on("2027-03-26"),
        row("rent on the 1st", "rent").on("2027-04-01"),
        row("rent on the 31st", "rent").on("2027-03-31"),
        row("pay rent by the 1st", "pay rent").on("2027-04-01"),
        row("read the 24th chapter", "read the 24th chapter"),
        row("leap day feb 29", "leap day").on("2028-02-29"),
        row("may the force be with you", "may the force be with you"),
        row("may 5 cinco de mayo", "cinco de mayo").on("2027-05-05"),
        row("march on", "march on"),
        row("next steps this week", "next steps this week"),
        row("every little thing", "every little thing"),
        row("sort # and ! keys", "sort # and ! keys"),
    ]
}

fn times() -> Vec<Row> {
    vec![
        row("call bob 9am", "call bob").at("2027-03-25 09:00"),
        row("call bob 11am", "call bob").at("2027-03-24 11:00"),
        row("call bob 9:30pm", "call bob").at("2027-03-24 21:30"),
        row("call bob 9:30 PM", "call bob").at("2027-03-24 21:30"),
        row("call bob 17:30", "call bob").at("2027-03-24 17:30"),
        row("call bob at 5 pm", "call bob").at("2027-03-24 17:00"),
        row("lunch noon", "lunch").at("2027-03-24 12:00"),
        row("lunch 12pm", "lunch").at("2027-03-24 12:00"),
        row("backup midnight", "backup").at("2027-03-25 00:00"),
        row("backup 12am", "backup").at("2027-03-25 00:00"),
        // No am or pm: could be either, so it stays in the title.
        row("meet at 5", "meet at 5"),
        row("meet at 17", "meet").at("2027-03-24 17:00"),
        // A colon reads as a 24-hour clock.
        row("call bob 5:30", "call bob").at("2027-03-25 05:30"),
        row("call bob tomorrow at 9am", "call bob").at("2027-03-25 09:00"),
        row("call bob at 9am tomorrow", "call bob").at("2027-03-25 09:00"),
        row("call bob fri 9am", "call bob").at("2027-03-26 09:00"),
        row("party tonight", "party").at("2027-03-24 20:00"),
        row("party tonight 9pm", "party").at("2027-03-24 21:00"),
        row("release 13pm", "release 13pm"),
        row("buy 5 apples", "buy 5 apples"),
        row("call bob today 9am", "call bob").at("2027-03-24 09:00"),
    ]
}

fn zones_and_daylight_saving() -> Vec<Row> {
    vec![
        row("call bob 9am", "call bob")
            .zone(BERLIN)
            .at_utc("2027-03-25T08:00:00Z"),
        row("call bob 9am", "call bob")
            .zone(NEW_YORK)
            .at_utc("2027-03-24T13:00:00Z"),
        row("dinner today 7pm", "dinner")
            .zone(NEW_YORK)
            .at_utc("2027-03-24T23:00:00Z"),
        row("report fri", "report").zone(NEW_YORK).on("2027-03-26"),
        // 02:00 UTC on the 25th is still the 24th in New York.
        row("call tomorrow", "call")
            .zone(NEW_YORK)
            .now("2027-03-25T02:00:00Z")
            .on("2027-03-25"),
        row("call tomorrow", "call")
            .now("2027-03-25T02:00:00Z")
            .on("2027-03-26"),
        // Berlin skips 02:00-03:00 on 28 March: 02:30 becomes 03:30 CEST.
        row("standup sunday 2:30am", "standup")
            .zone(BERLIN)
            .at_utc("2027-03-28T01:30:00Z"),
        row("standup tomorrow 2:30am", "standup")
            .zone(BERLIN)
            .now("2027-03-27T10:00:00Z")
            .at_utc("2027-03-28T01:30:00Z"),
        row("standup 2027-03-28 9am", "standup")
            .zone(BERLIN)
            .at_utc("2027-03-28T07:00:00Z"),
        row("standup 2027-03-27 9am", "standup")
            .zone(BERLIN)
            .at_utc("2027-03-27T08:00:00Z"),
        // Berlin repeats 02:00-03:00 on 31 October: the first 02:30 is meant.
        row("backup 2027-10-31 2:30am", "backup")
            .zone(BERLIN)
            .at_utc("2027-10-31T00:30:00Z"),
        row("backup 2027-10-31 3:30am", "backup")
            .zone(BERLIN)
            .at_utc("2027-10-31T02:30:00Z"),
        row("backup nov 7 1:30am", "backup")
            .zone(NEW_YORK)
            .at_utc("2027-11-07T05:30:00Z"),
        row("standup every day 9am", "standup")
            .zone(BERLIN)
            .now("2027-03-27T10:00:00Z")
            .at_utc("2027-03-28T07:00:00Z")
            .rule("FREQ=DAILY"),
    ]
}

fn repeats() -> Vec<Row> {
    vec![
        row(
            "pay rent every month on the 1st 9am #home !high",
            "pay rent",
        )
        .zone(BERLIN)
        .at_utc("2027-04-01T07:00:00Z")
        .rule("FREQ=MONTHLY;BYMONTHDAY=1")
        .tags(&["home"])
        .priority(Priority::High),
        row("pay rent every month on the 1st", "pay rent")
            .zone(NEW_YORK)
            .on("2027-04-01")
            .rule("FREQ=MONTHLY;BYMONTHDAY=1"),
        row("water plants every day", "water plants")
            .on("2027-03-24")
            .rule("FREQ=DAILY"),
        row("water plants daily", "water plants")
            .on("2027-03-24")
            .rule("FREQ=DAILY"),
        row("every other day stretch", "stretch")
            .on("2027-03-24")
            .rule("FREQ=DAILY;INTERVAL=2"),
        row("stretch every weekday", "stretch")
            .on("2027-03-24")
            .rule("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
        row("stretch every weekday 9am", "stretch")
            .at("2027-03-25 09:00")
            .rule("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
        row("sync every 2 weeks on mon and thu", "sync")
            .on("2027-03-25")
            .rule("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH"),
        row("sync every 2 weeks on thu, mon", "sync")
            .on("2027-03-25")
            .rule("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH"),
        row("clean every last friday", "clean")
            .on("2027-03-26")
            .rule("FREQ=MONTHLY;BYDAY=-1FR"),
        row("team lunch every first monday", "team lunch")
            .on("2027-04-05")
            .rule("FREQ=MONTHLY;BYDAY=1MO"),
        row("team lunch every month on the 2nd tuesday", "team lunch")
            .on("2027-04-13")
            .rule("FREQ=MONTHLY;BYDAY=2TU"),
        row("bins every monday", "bins")
            .on("2027-03-29")
            .rule("FREQ=WEEKLY;BYDAY=MO"),
        row("bins every mon 7am", "bins")
            .at("2027-03-29 07:00")
            .rule("FREQ=WEEKLY;BYDAY=MO"),
        row("bins every other sun", "bins")
            .on("2027-03-28")
            .rule("FREQ=WEEKLY;INTERVAL=2;BYDAY=SU"),
        row("yoga every tuesday and thursday 6pm", "yoga")
            .at("2027-03-25 18:00")
            .rule("FREQ=WEEKLY;BYDAY=TU,TH"),
        row("review weekly", "review")
            .on("2027-03-24")
            .rule("FREQ=WEEKLY"),
        row("invoice monthly", "invoice")
            .on("2027-03-24")
            .rule("FREQ=MONTHLY"),
        row("birthday every year", "birthday")
            .on("2027-03-24")
            .rule("FREQ=YEARLY"),
        row("checkup yearly", "checkup")
            .on("2027-03-24")
            .rule("FREQ=YEARLY"),
        row("gifts every dec 24", "gifts")
            .on("2027-12-24")
            .rule("FREQ=YEARLY"),
        row("every year on dec 24 gifts", "gifts")
            .on("2027-12-24")
            .rule("FREQ=YEARLY"),
        // Months without a 31st are skipped, as RFC 5545 says.
        row("pay every month on the 31st", "pay")
            .on("2027-03-31")
            .rule("FREQ=MONTHLY;BYMONTHDAY=31"),
        row("close books every month on the last day", "close books")
            .on("2027-03-31")
            .rule("FREQ=MONTHLY;BYMONTHDAY=-1"),
        row("pay every month on the 1st and 15th", "pay")
            .on("2027-04-01")
            .rule("FREQ=MONTHLY;BYMONTHDAY=1,15"),
        row("standup every day 9am until fri", "standup")
            .at("2027-03-25 09:00")
            .rule("FREQ=DAILY;UNTIL=20270326"),
        row("bins every monday starting apr 12", "bins")
            .on("2027-04-12")
            .rule("FREQ=WEEKLY;BYDAY=MO"),
        row("bins every monday starting apr 14", "bins")
            .on("2027-04-19")
            .rule("FREQ=WEEKLY;BYDAY=MO"),
        row("Every Day 8am take pills", "take pills")
            .at("2027-03-25 08:00")
            .rule("FREQ=DAILY"),
        // Hours are not a repeat unit: nothing is understood.
        row("meds every 8 hours", "meds every 8 hours"),
        row("work until fri", "work until").on("2027-03-26"),
    ]
}

fn reminders() -> Vec<Row> {
    vec![
        row("dentist tomorrow 3pm remind me 30 min before", "dentist")
            .at("2027-03-25 15:00")
            .remind(Remind::Before(30)),
        row("dentist tomorrow 3pm remind me 1 hour before", "dentist")
            .at("2027-03-25 15:00")
            .remind(Remind::Before(60)),
        row(
            "dentist tomorrow 3pm remind me 30min before remind me 2 days before",
            "dentist",
        )
        .at("2027-03-25 15:00")
        .remind(Remind::Before(30))
        .remind(Remind::Before(2 * 24 * 60)),
        row("dentist fri remind at 8am", "dentist")
            .on("2027-03-26")
            .remind(Remind::At("2027-03-26 08:00")),
        row("call bank remind me at 8am", "call bank").remind(Remind::At("2027-03-25 08:00")),
        row("call bank remind me at 3pm", "call bank").remind(Remind::At("2027-03-24 15:00")),
        row("call bank remind me tomorrow at 8am", "call bank")
            .remind(Remind::At("2027-03-25 08:00")),
        row("dentist tomorrow 3pm remind me at 8am", "dentist")
            .zone(BERLIN)
            .at("2027-03-25 15:00")
            .remind(Remind::At("2027-03-25 08:00")),
        row("remind me to call at 5", "remind me to call at 5"),
    ]
}

fn tags_priorities_and_text() -> Vec<Row> {
    vec![
        row("plan #work/projects", "plan").tags(&["work/projects"]),
        row("plan #Work #home", "plan").tags(&["home", "work"]),
        row("fix issue #42", "fix issue #42"),
        row("plan #a..b", "plan #a..b"),
        row("fix it !urgent", "fix it").priority(Priority::Urgent),
        row("fix it !1", "fix it").priority(Priority::Urgent),
        row("fix it !2", "fix it").priority(Priority::High),
        row("fix it !3", "fix it").priority(Priority::Medium),
        row("fix it !4", "fix it").priority(Priority::Low),
        row("fix it !low", "fix it").priority(Priority::Low),
        row("fix it !MEDIUM", "fix it").priority(Priority::Medium),
        row("fix it !high and !high", "fix it and").priority(Priority::High),
        row("fix it !important", "fix it !important"),
        row("quote \"#notatag\"", "quote \"#notatag\""),
        row("tweet \\#launch tomorrow", "tweet #launch").on("2027-03-25"),
        row("shout \\!high", "shout !high"),
        row(
            "read \"next monday blues\" fri",
            "read \"next monday blues\"",
        )
        .on("2027-03-26"),
        row(
            "watch \"the   day after tomorrow\"",
            "watch \"the day after tomorrow\"",
        ),
        row("say \"it's \\\"fine\\\"\"", "say \"it's \"fine\"\""),
        row("buy 6\" pipe tomorrow", "buy 6\" pipe").on("2027-03-25"),
        row("  lots \t of \n space   tomorrow  ", "lots of space").on("2027-03-25"),
        row("Überweisung an Jörg morgen", "Überweisung an Jörg morgen"),
        row("日本語のタスク tomorrow", "日本語のタスク").on("2027-03-25"),
        row("café avec Zoë vendredi #privé", "café avec Zoë vendredi").tags(&["privé"]),
        row(
            "call mom tomorrow, then shop",
            "call mom tomorrow, then shop",
        ),
    ]
}

#[test]
fn reads_each_phrase_as_documented() {
    let rows: Vec<Row> = [
        dates(),
        times(),
        zones_and_daylight_saving(),
        repeats(),
        reminders(),
        tags_priorities_and_text(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(rows.len() >= 140, "{} rows", rows.len());
    for row in &rows {
        row.check();
    }
}

#[test]
fn refuses_with_a_reason_on_the_text() {
    let long_title = format!("{} tomorrow", "x".repeat(201));
    let many_tags: String = (0..21).map(|n| format!("#t{n} ")).collect::<String>() + "plan";
    let cases: Vec<(String, &str)> = vec![
        ("tomorrow 9am".into(), "leaves no title"),
        ("#home !high".into(), "leaves no title"),
        ("".into(), "must say what the task is"),
        ("   ".into(), "must say what the task is"),
        ("x".repeat(501), "at most 500 characters"),
        (
            "call mom tomorrow fri".into(),
            "\"tomorrow\" and \"fri\" both give the due date",
        ),
        ("fix !high !low".into(), "both give the priority"),
        ("call 9am 5pm".into(), "both give the time"),
        ("check in 2 hours 9am".into(), "both give the time"),
        ("check in 2 hours tomorrow".into(), "both give the due date"),
        (
            "gifts every dec 24 tomorrow".into(),
            "both give the due date",
        ),
        (
            "stretch every day every week".into(),
            "both give the repeat rule",
        ),
        ("gifts feb 30".into(), "\"feb 30\" is not a date"),
        ("gifts 31 april".into(), "is not a date"),
        ("flight 2027-02-29".into(), "\"2027-02-29\" is not a date"),
        ("flight feb 29 2027".into(), "is not a date"),
        ("flight 2027-13-01".into(), "is not a date"),
        ("call remind me 30 min before".into(), "needs a due date"),
        (
            "call tomorrow 9am remind me 400 days before".into(),
            "366 days",
        ),
        (
            "standup every day until 2027-03-01".into(),
            "before it first occurs",
        ),
        ("stretch every day in 2 hours".into(), "starts on a day"),
        ("plan in 9999 years".into(), "years 1 to 9999"),
        (long_title, "title: must be at most 200 characters"),
        (many_tags, "tags: a task has at most 20 tags"),
        ("ping \u{7}bell".into(), "control characters"),
        (
            "pay every 12 months on the 31st starting apr 1".into(),
            "never occurs",
        ),
    ];
    for (text, reason) in cases {
        let error = quick_add(&text, instant(NOW), zone(BERLIN)).unwrap_err();
        assert_eq!(error.field, "text", "{text:?}");
        assert!(
            error.reason.contains(reason),
            "{text:?}: {:?} does not say {reason:?}",
            error.reason
        );
    }
}

#[test]
fn reads_text_up_to_the_limit_and_no_further() {
    let padded = |chars: usize| format!("buy milk{}tomorrow", " ".repeat(chars - 16));
    assert_eq!(padded(500).chars().count(), QuickAdd::MAX_TEXT_CHARS);
    let read = quick_add(&padded(500), instant(NOW), TimeZone::UTC).unwrap();
    assert_eq!(read.title.as_str(), "buy milk");
    let error = quick_add(&padded(501), instant(NOW), TimeZone::UTC).unwrap_err();
    assert_eq!(error.field, "text");
    // Characters are counted, not bytes.
    let accented = format!("{} tomorrow", "é".repeat(190));
    assert!(accented.len() > 380 && quick_add(&accented, instant(NOW), TimeZone::UTC).is_ok());
}

#[test]
fn lists_what_it_understood_in_the_words_written() {
    let read = quick_add(
        "pay rent every month on the 1st 9am #home !high",
        instant(NOW),
        zone(BERLIN),
    )
    .unwrap();
    let understood: Vec<(UnderstoodKind, &str, &str)> = read
        .understood
        .iter()
        .map(|u| (u.kind, u.source.as_str(), u.meaning.as_str()))
        .collect();
    assert_eq!(
        understood,
        [
            (
                UnderstoodKind::Recurrence,
                "every month on the 1st",
                "monthly on the 1st"
            ),
            (
                UnderstoodKind::Time,
                "9am",
                "due Thu 2027-04-01 09:00 (Europe/Berlin)"
            ),
            (UnderstoodKind::Tag, "#home", "tag home"),
            (UnderstoodKind::Priority, "!high", "priority HIGH"),
        ]
    );

    let read = quick_add(
        "Dentist  TOMORROW at 3pm remind me 1 hour before",
        instant(NOW),
        zone(NEW_YORK),
    )
    .unwrap();
    let understood: Vec<(UnderstoodKind, &str, &str)> = read
        .understood
        .iter()
        .map(|u| (u.kind, u.source.as_str(), u.meaning.as_str()))
        .collect();
    assert_eq!(
        understood,
        [
            (
                UnderstoodKind::Due,
                "TOMORROW",
                "due Thu 2027-03-25 15:00 (America/New_York)"
            ),
            (UnderstoodKind::Time, "at 3pm", "at 15:00"),
            (
                UnderstoodKind::Reminder,
                "remind me 1 hour before",
                "remind 1 hour before"
            ),
        ]
    );
}

#[test]
fn describes_rules_and_their_first_due_date() {
    for (text, meaning) in [
        (
            "sync every 2 weeks on mon and thu",
            "every 2 weeks on Mon and Thu, first due Thu 2027-03-25 (all day, UTC)",
        ),
        (
            "clean every last friday",
            "monthly on the last Fri, first due Fri 2027-03-26 (all day, UTC)",
        ),
        (
            "gifts every dec 24",
            "yearly on Dec 24, first due Fri 2027-12-24 (all day, UTC)",
        ),
        (
            "pay every month on the 1st and 15th",
            "monthly on the 1st and the 15th, first due Thu 2027-04-01 (all day, UTC)",
        ),
        (
            "close every month on the last day",
            "monthly on the last day, first due Wed 2027-03-31 (all day, UTC)",
        ),
        (
            "standup every weekday",
            "weekly on Mon, Tue, Wed, Thu and Fri, first due Wed 2027-03-24 (all day, UTC)",
        ),
    ] {
        let read = quick_add(text, instant(NOW), TimeZone::UTC).unwrap();
        assert_eq!(read.understood[0].meaning, meaning, "{text:?}");
    }
    let read = quick_add(
        "standup every day 9am until fri",
        instant(NOW),
        TimeZone::UTC,
    )
    .unwrap();
    let until = &read.understood[2];
    assert_eq!(
        (until.kind, until.source.as_str(), until.meaning.as_str()),
        (
            UnderstoodKind::Recurrence,
            "until fri",
            "until Fri 2027-03-26"
        )
    );
    let read = quick_add("tea in 30 min", instant(NOW), zone(BERLIN)).unwrap();
    assert_eq!(
        read.understood[0].meaning,
        "due Wed 2027-03-24 11:30 (Europe/Berlin)"
    );
}

#[test]
fn every_31st_skips_short_months_and_the_last_day_does_not() {
    let berlin = zone(BERLIN);
    let next_three = |text: &str| -> Vec<String> {
        let read = quick_add(text, instant(NOW), berlin).unwrap();
        let due = read.details.due.unwrap();
        read.details
            .recurrence
            .unwrap()
            .occurrences(due.anchor(), berlin, 3)
            .iter()
            .map(|at| at.with_timezone(&berlin.tz()).format("%m-%d").to_string())
            .collect()
    };
    assert_eq!(
        next_three("pay every month on the 31st"),
        ["03-31", "05-31", "07-31"]
    );
    assert_eq!(
        next_three("pay every month on the last day"),
        ["03-31", "04-30", "05-31"]
    );
}

#[test]
fn a_weekday_today_counts_until_its_time_has_passed() {
    // Friday 2027-03-26, 10:00 UTC.
    let friday = instant("2027-03-26T10:00:00Z");
    let due = |text: &str| quick_add(text, friday, TimeZone::UTC).unwrap().details.due;
    let at = |rfc3339: &str| Some(Due::at(instant(rfc3339), TimeZone::UTC));
    assert_eq!(
        due("demo fri"),
        Some(Due::all_day(day("2027-03-26"), TimeZone::UTC))
    );
    assert_eq!(due("demo fri 4pm"), at("2027-03-26T16:00:00Z"));
    assert_eq!(due("demo fri 9am"), at("2027-04-02T09:00:00Z"));
    assert_eq!(due("demo 10am"), at("2027-03-27T10:00:00Z"));
    assert_eq!(
        due("demo next fri"),
        Some(Due::all_day(day("2027-04-02"), TimeZone::UTC))
    );
}

#[test]
fn what_it_reads_makes_a_task_the_aggregate_accepts() {
    use std::sync::Arc;

    use cqrs_es::test::TestFramework;

    use crate::values::{TaskId, UserId};
    use crate::{Task, TaskCommand, TaskEvent, TaskServices};

    struct Fixed;
    impl crate::Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            instant(NOW)
        }
    }
    let read = quick_add(
        "pay rent every month on the 1st 9am remind me 1 day before #home !high",
        instant(NOW),
        zone(BERLIN),
    )
    .unwrap();
    let due = read.details.due;
    let events = TestFramework::<Task>::with(TaskServices::new(Arc::new(Fixed)))
        .given_no_previous_events()
        .when(TaskCommand::Create {
            task_id: TaskId::new(),
            owner: UserId::parse("alice").unwrap(),
            title: read.title,
            details: read.details,
        })
        .inspect_result()
        .unwrap();
    let [TaskEvent::TaskCreated {
        due: created_due,
        series: Some(series),
        reminders,
        ..
    }] = events.as_slice()
    else {
        panic!("{events:?}");
    };
    assert_eq!(*created_due, due);
    assert_eq!(series.start, instant("2027-04-01T07:00:00Z"));
    assert_eq!(
        reminders.next_after(instant(NOW), due.as_ref()),
        Some(instant("2027-03-31T07:00:00Z"))
    );
}

use proptest::strategy::Strategy as _;

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any mix of keywords and odd characters is read or refused, never a
    /// panic, and a reading keeps what it understood traceable to the text.
    #[test]
    fn any_text_is_read_or_refused(
        words in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(vec![
                    "every", "on", "the", "1st", "31st", "last", "day", "week", "month", "year",
                    "mon", "sun", "and", "other", "2", "in", "hours", "at", "5", "9am", "17:30",
                    "noon", "tomorrow", "next", "fri", "dec", "24", "feb", "29", "2027-03-28",
                    "2:30am", "remind", "me", "before", "until", "#home", "!high", "!1",
                    "\\#x", "\"", "weekday", "starting", "tonight", "may",
                ]).prop_map(str::to_owned),
                "[a-zA-Z0-9#!:\"\\\\ é日-]{0,8}",
            ],
            0..16,
        ),
        zone_index in 0usize..3,
        minutes in 0i64..(2 * 366 * 24 * 60),
    ) {
        let text = words.join(" ");
        let zone = zone([UTC, BERLIN, NEW_YORK][zone_index]);
        let now = instant(NOW) + chrono::Duration::minutes(minutes);
        match quick_add(&text, now, zone) {
            Ok(read) => {
                proptest::prop_assert!(!read.title.as_str().is_empty());
                for understood in &read.understood {
                    proptest::prop_assert!(text.contains(&understood.source));
                }
                if read.details.recurrence.is_some() {
                    proptest::prop_assert!(read.details.due.is_some());
                }
            }
            Err(error) => proptest::prop_assert_eq!(error.field, "text"),
        }
    }
}
