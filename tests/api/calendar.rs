//! The calendar feed: a secret URL per user, read by an independent iCalendar
//! parser and checked field by field against the tasks, across a DST change;
//! rotated, unknown and malformed secrets all get the same bare 404.

use chrono::{TimeZone, Utc};
use icalendar::parser::{read_calendar, unfold, Component};
use rrule::RRuleSet;
use serde_json::{json, Value};
use taskledger::Roles;

use crate::helpers::{assert_no_errors, TestApp};

const FEED: &str = "{ calendarFeed { url eventsUrl } }";
const ROTATE: &str = "mutation { rotateCalendarFeed { url eventsUrl } }";

async fn create(app: &TestApp, token: &str, input: Value) -> (String, i64) {
    let body = app
        .graphql(
            Some(token),
            "mutation($input: CreateTaskInput!) { createTask(input: $input) { taskId version } }",
            json!({ "input": input }),
        )
        .await;
    assert_no_errors(&body);
    let created = &body["data"]["createTask"];
    let id = created["taskId"].as_str().unwrap().to_owned();
    let version = created["version"].as_i64().unwrap();
    app.task_at_version(token, &id, version).await;
    (id, version)
}

async fn fetch(app: &TestApp, url: &str) -> (u16, String) {
    let response = app.client.get(url).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn property<'a>(
    component: &'a Component<'a>,
    name: &str,
) -> Option<&'a icalendar::parser::Property<'a>> {
    component.properties.iter().find(|p| p.name == name)
}

fn value(component: &Component<'_>, name: &str) -> String {
    property(component, name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .val
        .to_string()
}

fn parameter(component: &Component<'_>, name: &str, key: &str) -> Option<String> {
    property(component, name)?
        .params
        .iter()
        .find(|p| p.key == key)
        .and_then(|p| p.val.as_ref())
        .map(|v| v.to_string())
}

#[tokio::test]
async fn each_user_subscribes_to_their_open_due_tasks_by_a_secret_url() {
    let app = TestApp::spawn_roles(Roles::ALL).await;
    let (alice, bob) = (app.token("alice"), app.token("bob"));

    // Daily at 09:00 Berlin time from 26 March 2027, across the spring change.
    let (standup, standup_version) = create(
        &app,
        &alice,
        json!({
            "title": "Standup; daily, short",
            "dueAt": "2027-03-26T08:00:00Z",
            "timeZone": "Europe/Berlin",
            "recurrence": "FREQ=DAILY",
            "reminders": [{ "minutesBefore": 15 }, { "at": "2027-03-25T20:00:00Z" }],
            "tags": ["work/team"],
            "priority": "HIGH",
        }),
    )
    .await;
    let (taxes, _) = create(
        &app,
        &alice,
        json!({
            "title": "File taxes", "dueDate": "2027-05-31", "timeZone": "America/New_York",
            "reminders": [{ "minutesBefore": 60 }],
        }),
    )
    .await;
    let (done, _) = create(
        &app,
        &alice,
        json!({ "title": "Done already", "dueAt": "2027-01-01T10:00:00Z" }),
    )
    .await;
    let body = app
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { completeTask(id: $id) { version } }",
            json!({ "id": done }),
        )
        .await;
    assert_no_errors(&body);
    let version = body["data"]["completeTask"]["version"].as_i64().unwrap();
    app.task_at_version(&alice, &done, version).await;
    create(&app, &alice, json!({ "title": "No due date" })).await;
    // Any storable date: the feed's zone rules stay bounded, and an instant
    // outside them is written in UTC.
    let (ancient, _) = create(
        &app,
        &alice,
        json!({ "title": "Ancient", "dueAt": "0001-06-01T10:00:00Z", "timeZone": "Europe/Berlin" }),
    )
    .await;
    let (bobs, _) = create(
        &app,
        &bob,
        json!({ "title": "Bob's dentist", "dueAt": "2027-04-01T07:00:00Z" }),
    )
    .await;

    let feed = app.graphql(Some(&alice), FEED, json!({})).await;
    assert_no_errors(&feed);
    let url = feed["data"]["calendarFeed"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        url.starts_with(&app.address) && url.ends_with(".ics"),
        "{url}"
    );
    let again = app.graphql(Some(&alice), FEED, json!({})).await;
    assert_eq!(
        again["data"]["calendarFeed"]["url"],
        url.as_str(),
        "the URL stays until rotated"
    );

    let response = app.client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/calendar; charset=utf-8"
    );
    let etag = response.headers()["etag"].clone();
    let text = response.text().await.unwrap();
    assert!(
        text.lines().all(|line| line.len() <= 75),
        "lines are folded"
    );
    let unfolded = unfold(&text);
    let calendar = read_calendar(&unfolded).expect("an RFC 5545 calendar");
    // The parser answers the VCALENDAR's own components.
    let root = &calendar;
    let version = root
        .properties
        .iter()
        .find(|p| p.name == "VERSION")
        .expect("VERSION");
    assert_eq!(version.val.to_string(), "2.0");
    let todos: Vec<&Component> = root
        .components
        .iter()
        .filter(|c| c.name == "VTODO")
        .collect();
    assert_eq!(todos.len(), 3, "open tasks with due dates only:\n{text}");
    for id in [&done, &bobs] {
        assert!(
            !text.contains(id.as_str()),
            "{id} must not be in Alice's feed"
        );
    }

    let todo = |id: &str| {
        *todos
            .iter()
            .find(|t| value(t, "UID") == format!("{id}@taskledger"))
            .unwrap()
    };
    let standup_todo = todo(&standup);
    // Escaped in the feed (`Standup\\; daily\\, short`), read back as typed.
    assert!(text.contains("SUMMARY:Standup\\; daily\\, short"));
    assert_eq!(value(standup_todo, "SUMMARY"), "Standup; daily, short");
    assert_eq!(value(standup_todo, "DUE"), "20270326T090000");
    assert_eq!(
        parameter(standup_todo, "DUE", "TZID").as_deref(),
        Some("Europe/Berlin")
    );
    assert_eq!(value(standup_todo, "DTSTART"), "20270326T090000");
    assert_eq!(
        parameter(standup_todo, "DTSTART", "TZID").as_deref(),
        Some("Europe/Berlin")
    );
    assert_eq!(value(standup_todo, "RRULE"), "FREQ=DAILY");
    assert_eq!(value(standup_todo, "SEQUENCE"), standup_version.to_string());
    assert_eq!(value(standup_todo, "PRIORITY"), "3");
    assert_eq!(value(standup_todo, "CATEGORIES"), "work/team");
    assert!(value(standup_todo, "LAST-MODIFIED").ends_with('Z'));
    let alarms: Vec<&Component> = standup_todo
        .components
        .iter()
        .filter(|c| c.name == "VALARM")
        .collect();
    assert_eq!(alarms.len(), 2);
    let triggers: Vec<String> = alarms.iter().map(|a| value(a, "TRIGGER")).collect();
    assert!(triggers.contains(&"-PT15M".to_owned()), "{triggers:?}");
    assert!(
        triggers.contains(&"20270325T200000Z".to_owned()),
        "{triggers:?}"
    );

    // The zone's rules are in the feed, and the rule expands across the
    // change: 09:00 local is 08:00 UTC before 28 March and 07:00 after.
    let zone = root
        .components
        .iter()
        .find(|c| c.name == "VTIMEZONE" && value(c, "TZID") == "Europe/Berlin")
        .expect("a VTIMEZONE for Europe/Berlin");
    let daylight = zone
        .components
        .iter()
        .find(|c| c.name == "DAYLIGHT" && value(c, "DTSTART") == "20270328T020000")
        .expect("the 2027 change to summer time");
    assert_eq!(
        (
            value(daylight, "TZOFFSETFROM"),
            value(daylight, "TZOFFSETTO")
        ),
        ("+0100".into(), "+0200".into())
    );
    let rule = format!(
        "DTSTART;TZID=Europe/Berlin:{}\nRRULE:{};COUNT=4",
        value(standup_todo, "DTSTART"),
        value(standup_todo, "RRULE")
    );
    let occurrences: Vec<_> = rule
        .parse::<RRuleSet>()
        .unwrap()
        .all(10)
        .dates
        .iter()
        .map(|d| d.with_timezone(&Utc))
        .collect();
    assert_eq!(
        occurrences,
        [
            Utc.with_ymd_and_hms(2027, 3, 26, 8, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2027, 3, 27, 8, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2027, 3, 28, 7, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2027, 3, 29, 7, 0, 0).unwrap(),
        ]
    );

    // Due by the end of 31 May: the day starts it, the next one ends it, and
    // an hour before is an hour before that end.
    let taxes_todo = todo(&taxes);
    assert_eq!(value(taxes_todo, "DTSTART"), "20270531");
    assert_eq!(value(taxes_todo, "DUE"), "20270601");
    let alarm = taxes_todo
        .components
        .iter()
        .find(|c| c.name == "VALARM")
        .unwrap();
    assert_eq!(value(alarm, "TRIGGER"), "-PT60M");
    assert_eq!(
        parameter(alarm, "TRIGGER", "RELATED").as_deref(),
        Some("END")
    );
    let ancient_todo = todo(&ancient);
    assert_eq!(value(ancient_todo, "DUE"), "00010601T100000Z");
    assert!(
        property(ancient_todo, "DTSTART").is_none(),
        "a one-off to-do has DUE alone"
    );
    assert_eq!(
        parameter(taxes_todo, "DUE", "VALUE").as_deref(),
        Some("DATE")
    );

    // An unchanged feed answers 304 to a client that has it.
    let unchanged = app
        .client
        .get(&url)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);

    // The same feed as events, for calendars that show no to-dos.
    let events_url = feed["data"]["calendarFeed"]["eventsUrl"].as_str().unwrap();
    let (status, events) = fetch(&app, events_url).await;
    assert_eq!(status, 200);
    let unfolded = unfold(&events);
    let parsed = read_calendar(&unfolded).unwrap();
    let vevents: Vec<&Component> = parsed
        .components
        .iter()
        .filter(|c| c.name == "VEVENT")
        .collect();
    assert_eq!(vevents.len(), 3);
    let standup_event = vevents
        .iter()
        .find(|e| value(e, "UID").starts_with(&standup))
        .unwrap();
    assert_eq!(value(standup_event, "DTEND"), "20270326T093000");

    // Bob's feed is his own.
    let bob_feed = app.graphql(Some(&bob), FEED, json!({})).await;
    let bob_url = bob_feed["data"]["calendarFeed"]["url"].as_str().unwrap();
    assert_ne!(bob_url, url);
    let (_, bob_text) = fetch(&app, bob_url).await;
    assert!(bob_text.contains(&bobs) && !bob_text.contains(&standup));

    // Rotating: the old URL is gone at once, and every wrong secret gets the
    // same bare answer.
    let rotated = app.graphql(Some(&alice), ROTATE, json!({})).await;
    assert_no_errors(&rotated);
    let new_url = rotated["data"]["rotateCalendarFeed"]["url"]
        .as_str()
        .unwrap();
    assert_ne!(new_url, url);
    assert_eq!(fetch(&app, new_url).await.0, 200);
    let secret_len = url.rsplit('/').next().unwrap().len() - ".ics".len();
    let unknown = format!("{}/calendar/{}.ics", app.address, "0".repeat(secret_len));
    let malformed = format!("{}/calendar/..%2F..%2Fetc%2Fpasswd.ics", app.address);
    for wrong in [url.as_str(), unknown.as_str(), malformed.as_str()] {
        assert_eq!(
            fetch(&app, wrong).await,
            (404, "not found\n".to_owned()),
            "{wrong}"
        );
    }
    let (status, _) = fetch(&app, &format!("{new_url}?components=both")).await;
    assert_eq!(status, 400);

    // Without a token there is no feed to hand out.
    let anonymous = app.graphql(None, FEED, json!({})).await;
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
}
