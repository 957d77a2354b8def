//! The task list query surface: filters, search, sort presets, cursors,
//! counts, limits and read-your-writes; and a randomized comparison of every
//! page against a plain in-memory reference.

use std::cmp::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::helpers::{assert_no_errors, error_code, TestApp};

const CREATE: &str =
    "mutation($input: CreateTaskInput!) { createTask(input: $input) { taskId version } }";
const PAGE: &str = "query($filter: TaskFilter, $search: TaskSearch, $orderBy: TaskOrder, $first: Int, $after: String) {
    tasks(filter: $filter, search: $search, orderBy: $orderBy, first: $first, after: $after) {
      nodes { id } pageInfo { hasNextPage endCursor } } }";
const FIELDS: &str = "id title priority tags dueAt createdAt updatedAt completed recurrence version
    reminders { minutesBefore }";

async fn create(app: &TestApp, token: &str, input: Value) -> String {
    let body = app
        .graphql(Some(token), CREATE, json!({ "input": input }))
        .await;
    assert_no_errors(&body);
    let id = body["data"]["createTask"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    app.task_at_version(token, &id, 1).await;
    id
}

async fn ids(app: &TestApp, token: &str, variables: Value) -> Vec<String> {
    let body = app.graphql(Some(token), PAGE, variables).await;
    assert_no_errors(&body);
    body["data"]["tasks"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn search_finds_words_prefixes_and_typos_and_ranks_by_relevance() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let milk = create(&app, &alice, json!({ "title": "Buy milk and bread" })).await;
    let report = create(
        &app,
        &alice,
        json!({ "title": "Write quarterly report", "description": "milk the numbers" }),
    )
    .await;
    let clients = create(
        &app,
        &alice,
        json!({ "title": "Call back", "tags": ["work/clients"] }),
    )
    .await;
    let bob = app.token("bob");
    create(&app, &bob, json!({ "title": "Buy milk too" })).await;

    let search = |query: &str, mode: &str| json!({ "search": { "query": query, "mode": mode } });
    // Full text: the title match ranks above the description match; bob's task never shows.
    assert_eq!(
        ids(&app, &alice, search("milk", "FULL_TEXT")).await,
        vec![milk.clone(), report.clone()]
    );
    assert_eq!(
        ids(&app, &alice, search("milk -bread", "FULL_TEXT")).await,
        vec![report.clone()]
    );
    // Nothing to look up, only to leave out: still alice's tasks alone.
    let mut without_bread = ids(&app, &alice, search("-bread", "FULL_TEXT")).await;
    without_bread.sort();
    let mut expected = vec![report.clone(), clients.clone()];
    expected.sort();
    assert_eq!(without_bread, expected);
    assert_eq!(
        ids(&app, &alice, search("\"quarterly report\"", "FULL_TEXT")).await,
        vec![report.clone()]
    );
    assert_eq!(
        ids(&app, &alice, search("bread or quarterly", "FULL_TEXT"))
            .await
            .len(),
        2
    );
    // Tags are searchable, category parts too.
    assert_eq!(
        ids(&app, &alice, search("clients", "FULL_TEXT")).await,
        vec![clients.clone()]
    );
    // Type-ahead.
    assert_eq!(
        ids(&app, &alice, search("quart", "PREFIX")).await,
        vec![report.clone()]
    );
    assert_eq!(
        ids(&app, &alice, search("bu mi", "PREFIX")).await,
        vec![milk.clone()]
    );
    // Typos.
    assert_eq!(
        ids(&app, &alice, search("quartrly", "FUZZY")).await,
        vec![report.clone()]
    );
    assert_eq!(
        ids(&app, &alice, search("quartrly reprt", "FUZZY")).await,
        vec![report.clone()]
    );
    // Every typed word must be matched; bob's words are not alice's.
    assert!(ids(&app, &alice, search("quartrly brede", "FUZZY"))
        .await
        .is_empty());
    assert!(ids(&app, &alice, search("tooo", "FUZZY")).await.is_empty());
    // Nothing for nonsense or for punctuation alone, and a search too long is refused.
    for mode in ["FULL_TEXT", "PREFIX", "FUZZY"] {
        assert!(ids(&app, &alice, search("zzzzqqq", mode)).await.is_empty());
        assert!(ids(&app, &alice, search("!!! '' \\", mode))
            .await
            .is_empty());
    }
    let body = app
        .graphql(Some(&alice), PAGE, search(&"x".repeat(201), "FULL_TEXT"))
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"));
    assert_eq!(body["errors"][0]["extensions"]["field"], "search.query");
}

#[tokio::test]
async fn cursors_are_bound_to_their_query_and_limits_are_enforced() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    for n in 0..3 {
        create(&app, &alice, json!({ "title": format!("t{n}") })).await;
    }
    let body = app.graphql(Some(&alice), PAGE, json!({ "first": 1 })).await;
    let cursor = body["data"]["tasks"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = app
        .graphql(
            Some(&alice),
            PAGE,
            json!({ "first": 1, "after": cursor, "orderBy": "TITLE_ASC" }),
        )
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "after");

    let too_deep =
        json!({ "not": { "not": { "not": { "not": { "not": { "isRecurring": true } } } } } });
    let many: Vec<Value> = (0..41).map(|_| json!({ "hasReminders": true })).collect();
    let long_in: Vec<&str> = vec!["LOW"; 21];
    for (filter, field) in [
        (too_deep, "filter"),
        (
            json!({ "and": [{ "and": many[..20] }, { "and": many[20..40] }, { "hasReminders": false }] }),
            "filter",
        ),
        (
            json!({ "priority": { "in": long_in } }),
            "filter.priority.in",
        ),
        (
            json!({ "tags": { "containsAny": ["bad tag"] } }),
            "filter.tags.containsAny",
        ),
        (
            json!({ "due": { "between": { "after": "2030-01-01T00:00:00Z" } } }),
            "filter.due.between",
        ),
    ] {
        let body = app
            .graphql(Some(&alice), PAGE, json!({ "filter": filter }))
            .await;
        assert_eq!(error_code(&body), Some("VALIDATION"), "{filter}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
    let body = app
        .graphql(Some(&alice), PAGE, json!({ "orderBy": "RELEVANCE" }))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "orderBy");
    let body = app
        .graphql(
            Some(&alice),
            "{ tasks(first: 2, last: 2) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"));
}

#[tokio::test]
async fn counts_tags_stats_and_read_your_writes() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let past = "2020-01-01T00:00:00Z";
    let a = create(&app, &alice, json!({ "title": "a", "priority": "HIGH", "tags": ["work/clients", "home"], "dueAt": past })).await;
    create(
        &app,
        &alice,
        json!({ "title": "b", "priority": "HIGH", "tags": ["home"] }),
    )
    .await;
    let c = create(&app, &alice, json!({ "title": "c", "tags": ["work"] })).await;
    for (mutation, id) in [
        (
            "mutation($id: ID!) { completeTask(id: $id) { version } }",
            &c,
        ),
        ("mutation($id: ID!) { deleteTask(id: $id) { version } }", &c),
    ] {
        let body = app
            .graphql(Some(&alice), mutation, json!({ "id": id }))
            .await;
        assert_no_errors(&body);
    }
    // Read-your-writes: wait for the deletion (version 3) before counting.
    let body = app
        .graphql(
            Some(&alice),
            "query($id: ID!) { tasks(waitForTask: $id, waitForVersion: 3) { totalCount stale } }",
            json!({ "id": c }),
        )
        .await;
    assert_no_errors(&body);
    assert_eq!(
        body["data"]["tasks"],
        json!({ "totalCount": 2, "stale": false })
    );

    let body = app
        .graphql(
            Some(&alice),
            "{ taskStats { open completed deleted overdue dueToday openByPriority { none high } }
               tags { tag open total } }",
            json!({}),
        )
        .await;
    assert_no_errors(&body);
    assert_eq!(
        body["data"]["taskStats"],
        json!({ "open": 2, "completed": 0, "deleted": 1, "overdue": 1, "dueToday": 0,
                "openByPriority": { "none": 0, "high": 2 } })
    );
    assert_eq!(
        body["data"]["tags"],
        json!([
            { "tag": "home", "open": 2, "total": 2 },
            { "tag": "work/clients", "open": 1, "total": 1 },
        ])
    );
    let trash = ids(&app, &alice, json!({ "filter": { "status": ["DELETED"] } })).await;
    assert_eq!(trash, vec![c.clone()]);
    let category = ids(
        &app,
        &alice,
        json!({ "filter": { "tags": { "category": "work" } } }),
    )
    .await;
    assert_eq!(category, vec![a.clone()]);

    // A version the read model never reaches: answered after the bound, marked stale.
    let body = app
        .graphql(
            Some(&alice),
            "query($id: ID!) { tasks(waitForTask: $id, waitForVersion: 99) { stale } }",
            json!({ "id": a }),
        )
        .await;
    assert_eq!(body["data"]["tasks"]["stale"], true);
}

/// A small deterministic generator, so a failure replays the same way.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const WORDS: [&str; 6] = ["alpha", "bravo", "delta", "kilo", "lima", "oscar"];
const TAGS: [&str; 5] = ["work", "work/clients", "home", "errands/shop", "fun"];
const PRIORITIES: [&str; 5] = ["NONE", "LOW", "MEDIUM", "HIGH", "URGENT"];
const ORDERS: [&str; 6] = [
    "SMART",
    "DUE_ASC",
    "PRIORITY_DESC",
    "CREATED_DESC",
    "UPDATED_DESC",
    "TITLE_ASC",
];

#[derive(Debug, Clone)]
struct Model {
    id: String,
    title: String,
    priority: i64,
    tags: Vec<String>,
    due: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    completed: bool,
    deleted: bool,
    recurring: bool,
    reminders: bool,
}

fn model(node: &Value, deleted: bool) -> Model {
    let time = |v: &Value| {
        v.as_str()
            .map(|s| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
    };
    Model {
        id: node["id"].as_str().unwrap().to_owned(),
        title: node["title"].as_str().unwrap().to_owned(),
        priority: PRIORITIES
            .iter()
            .position(|p| *p == node["priority"])
            .unwrap() as i64,
        tags: node["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect(),
        due: time(&node["dueAt"]),
        created: time(&node["createdAt"]).unwrap(),
        updated: time(&node["updatedAt"]).unwrap(),
        completed: node["completed"] == true,
        deleted,
        recurring: !node["recurrence"].is_null(),
        reminders: !node["reminders"].as_array().unwrap().is_empty(),
    }
}

/// A random filter and the same predicate in Rust.
/// The reference's version of a filter.
type Predicate = Box<dyn Fn(&Model) -> bool>;

fn random_filter(rng: &mut Rng, depth: u32) -> (Value, Predicate) {
    let now = Utc::now();
    match rng.below(if depth > 1 { 8 } else { 12 }) {
        0 => {
            let p = rng.below(5) as i64;
            (
                json!({ "priority": { "gte": PRIORITIES[p as usize] } }),
                Box::new(move |m| m.priority >= p),
            )
        }
        1 => {
            let p = rng.below(5) as i64;
            (
                json!({ "priority": { "eq": PRIORITIES[p as usize] } }),
                Box::new(move |m| m.priority == p),
            )
        }
        2 => {
            let tag = rng.pick(&TAGS).to_string();
            (
                json!({ "tags": { "containsAny": [tag.clone()] } }),
                Box::new(move |m| m.tags.contains(&tag)),
            )
        }
        3 => {
            let category = rng.pick(&["work", "errands", "home"]).to_string();
            (
                json!({ "tags": { "category": category.clone() } }),
                Box::new(move |m| {
                    m.tags
                        .iter()
                        .any(|t| *t == category || t.starts_with(&format!("{category}/")))
                }),
            )
        }
        4 => (
            json!({ "due": { "none": true } }),
            Box::new(|m| m.due.is_none()),
        ),
        5 => (
            json!({ "due": { "overdue": true } }),
            Box::new(move |m| !m.completed && m.due.is_some_and(|d| d < now)),
        ),
        6 => {
            let flag = rng.chance(50);
            (
                json!({ "isRecurring": flag }),
                Box::new(move |m| m.recurring == flag),
            )
        }
        7 => {
            let flag = rng.chance(50);
            (
                json!({ "hasReminders": flag }),
                Box::new(move |m| m.reminders == flag),
            )
        }
        8 => {
            let (a, fa) = random_filter(rng, depth + 1);
            let (b, fb) = random_filter(rng, depth + 1);
            (json!({ "or": [a, b] }), Box::new(move |m| fa(m) || fb(m)))
        }
        11 => {
            let statuses: Vec<&str> = ["OPEN", "COMPLETED", "DELETED"]
                .into_iter()
                .filter(|_| rng.chance(50))
                .collect();
            let wanted = statuses.clone();
            (
                json!({ "status": statuses }),
                Box::new(move |m| {
                    wanted.contains(&match (m.deleted, m.completed) {
                        (true, _) => "DELETED",
                        (false, true) => "COMPLETED",
                        (false, false) => "OPEN",
                    })
                }),
            )
        }
        9 => {
            let (a, fa) = random_filter(rng, depth + 1);
            (json!({ "not": a }), Box::new(move |m| !fa(m)))
        }
        _ => {
            let (a, fa) = random_filter(rng, depth + 1);
            let (b, fb) = random_filter(rng, depth + 1);
            (json!({ "and": [a, b] }), Box::new(move |m| fa(m) && fb(m)))
        }
    }
}

fn compare(order: &str, a: &Model, b: &Model) -> Ordering {
    let due = |m: &Model| m.due.map_or(i64::MAX, |d| d.timestamp_micros());
    let key = match order {
        "SMART" => (-a.priority, due(a), -a.created.timestamp_micros()).cmp(&(
            -b.priority,
            due(b),
            -b.created.timestamp_micros(),
        )),
        "DUE_ASC" => due(a).cmp(&due(b)),
        "PRIORITY_DESC" => (-a.priority, -a.created.timestamp_micros())
            .cmp(&(-b.priority, -b.created.timestamp_micros())),
        "CREATED_DESC" => b.created.cmp(&a.created),
        "UPDATED_DESC" => b.updated.cmp(&a.updated),
        "TITLE_ASC" => a
            .title
            .to_lowercase()
            .as_bytes()
            .cmp(b.title.to_lowercase().as_bytes()),
        other => panic!("no reference for {other}"),
    };
    key.then_with(|| a.id.cmp(&b.id))
}

#[tokio::test]
async fn every_page_matches_an_in_memory_reference() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut ids_made = Vec::new();
    for n in 0..36 {
        let title = format!("{} {} {n}", rng.pick(&WORDS), rng.pick(&WORDS));
        let mut input = json!({ "title": title, "priority": rng.pick(&PRIORITIES) });
        let tags: Vec<&str> = TAGS.iter().copied().filter(|_| rng.chance(30)).collect();
        input["tags"] = json!(tags);
        if rng.chance(65) {
            let year = if rng.chance(30) { 2020 } else { 2035 };
            input["dueAt"] = json!(format!(
                "{year}-0{}-1{}T0{}:00:00Z",
                1 + rng.below(9),
                rng.below(9),
                rng.below(9)
            ));
            if rng.chance(30) {
                input["recurrence"] = json!("FREQ=WEEKLY");
            }
            if rng.chance(40) {
                input["reminders"] = json!([{ "minutesBefore": 15 }]);
            }
        }
        let id = create(&app, &alice, input).await;
        if rng.chance(25) {
            let body = app
                .graphql(
                    Some(&alice),
                    "mutation($id: ID!) { completeTask(id: $id, stopRepeating: true) { version } }",
                    json!({ "id": id }),
                )
                .await;
            assert_no_errors(&body);
            app.task_at_version(&alice, &id, 2).await;
        } else if rng.chance(10) {
            let body = app
                .graphql(
                    Some(&alice),
                    "mutation($id: ID!) { deleteTask(id: $id) { version } }",
                    json!({ "id": id }),
                )
                .await;
            assert_no_errors(&body);
        }
        ids_made.push(id);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let snapshot = |filter: Value| {
        let app = &app;
        let alice = &alice;
        async move {
            let query = format!("query($filter: TaskFilter) {{ tasks(first: 100, filter: $filter) {{ nodes {{ {FIELDS} }} }} }}");
            let body = app
                .graphql(Some(alice), &query, json!({ "filter": filter }))
                .await;
            assert_no_errors(&body);
            body["data"]["tasks"]["nodes"].as_array().unwrap().clone()
        }
    };
    // The descriptions changed between the pages of the round before: each
    // task's latest version.
    let mut changed: std::collections::HashMap<String, i64> = Default::default();
    for round in 0..40 {
        // The reference reads the same data the API holds once the read model
        // has applied every change made so far; what it checks is the
        // filtering, searching, ordering and paging.
        for (id, version) in changed.drain() {
            app.task_at_version(&alice, &id, version).await;
        }
        let mut models: Vec<Model> = snapshot(json!(null))
            .await
            .iter()
            .map(|n| model(n, false))
            .collect();
        models.extend(
            snapshot(json!({ "status": ["DELETED"] }))
                .await
                .iter()
                .map(|n| model(n, true)),
        );
        assert_eq!(
            models.len(),
            ids_made.len(),
            "every task is in the read model"
        );

        let (filter, predicate) = random_filter(&mut rng, 0);
        let order = *rng.pick(&ORDERS);
        let search_word = rng.chance(25).then(|| rng.pick(&WORDS).to_string());
        let page_size = 1 + rng.below(7) as i64;
        // Trashed tasks are listed only by a filter that speaks of status.
        let with_trash = filter.to_string().contains("status");
        let mut expected: Vec<&Model> = models
            .iter()
            .filter(|m| (with_trash || !m.deleted) && predicate(m))
            .filter(|m| {
                search_word
                    .as_ref()
                    .is_none_or(|w| m.title.split(' ').any(|t| t == w))
            })
            .collect();
        expected.sort_by(|a, b| compare(order, a, b));
        let expected: Vec<String> = expected.iter().map(|m| m.id.clone()).collect();

        let search = search_word
            .as_ref()
            .map(|w| json!({ "query": w, "mode": "FULL_TEXT" }));
        let body = app
            .graphql(
                Some(&alice),
                "query($filter: TaskFilter, $search: TaskSearch) { tasks(first: 1, filter: $filter, search: $search) { totalCount } }",
                json!({ "filter": filter, "search": search }),
            )
            .await;
        assert_no_errors(&body);
        assert_eq!(
            body["data"]["tasks"]["totalCount"],
            expected.len(),
            "round {round}: totalCount of filter {filter} search {search_word:?}"
        );

        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut variables =
                json!({ "filter": filter, "orderBy": order, "first": page_size, "after": after });
            if let Some(search) = &search {
                variables["search"] = search.clone();
            }
            let body = app.graphql(Some(&alice), PAGE, variables).await;
            assert_no_errors(&body);
            let page = &body["data"]["tasks"];
            for node in page["nodes"].as_array().unwrap() {
                seen.push(node["id"].as_str().unwrap().to_owned());
            }
            if page["pageInfo"]["hasNextPage"] == false {
                break;
            }
            after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
            assert!(
                seen.len() <= expected.len(),
                "round {round}: more pages than tasks"
            );
            // Between pages, change a field outside every sort key and filter:
            // the pages must not drift.
            if order != "UPDATED_DESC" && search_word.is_none() {
                let victim = rng.pick(&ids_made).clone();
                let body = app.graphql(
                    Some(&alice),
                    "mutation($id: ID!, $d: String) { updateTask(input: {id: $id, description: $d}) { version } }",
                    json!({ "id": victim, "d": format!("note {round}") }),
                )
                .await;
                if let Some(version) = body["data"]["updateTask"]["version"].as_i64() {
                    let latest = changed.entry(victim).or_default();
                    *latest = (*latest).max(version);
                }
            }
        }
        assert_eq!(
            seen, expected,
            "round {round}: filter {filter} order {order} search {search_word:?} pages of {page_size}"
        );
    }
}

#[tokio::test]
async fn searches_in_an_index_order_give_the_same_pages_for_common_and_rare_words() {
    // Enough tasks that a search in index order reads only the first part of
    // them: a common word fills its pages from there, a rare one is found
    // through the word index. Written straight into the read model, as this
    // tests the query side alone.
    let app = TestApp::spawn().await;
    let carol = app.token("carol");
    sqlx::query(
        "INSERT INTO task_list (id, user_id, owner, list_id, title, status, version, created_at,
                                updated_at, priority, due_at)
         SELECT gen_random_uuid(), 'carol', 'carol',
                uuid_generate_v5('6f1c2b7e-8d0a-4c61-9e57-3a2d1b4f7c90', 'inbox:carol'),
                CASE WHEN n % 2 = 0 THEN 'common chore ' ELSE 'other chore ' END
                || CASE WHEN n % 250 = 7 THEN 'rarest ' ELSE '' END || n,
                'open', 1, now() - n * interval '1 minute', now(), n % 5,
                CASE WHEN n % 3 > 0 THEN now() + (n % 17) * interval '1 day' END
           FROM generate_series(1, 3000) AS n",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let reference = |word: &'static str, order: &'static str| {
        let pool = app.pool.clone();
        async move {
            let key = match order {
                "SMART" => "sort_priority, sort_due, sort_created",
                "DUE_ASC" => "sort_due",
                _ => "lower(title) COLLATE \"C\"",
            };
            let ids: Vec<uuid::Uuid> = sqlx::query_scalar(&format!(
                "SELECT id FROM task_list WHERE user_id = 'carol' AND title ~ ('\\m' || $1 || '\\M')
                  ORDER BY {key}, id"
            ))
            .bind(word)
            .fetch_all(&pool)
            .await
            .unwrap();
            ids.into_iter().map(|id| id.to_string()).collect::<Vec<_>>()
        }
    };
    for (search, word) in [
        (json!({ "query": "comm", "mode": "PREFIX" }), "common"),
        (json!({ "query": "rare", "mode": "PREFIX" }), "rarest"),
        (json!({ "query": "comon", "mode": "FUZZY" }), "common"),
        (json!({ "query": "rarst", "mode": "FUZZY" }), "rarest"),
    ] {
        for order in ["SMART", "DUE_ASC", "TITLE_ASC"] {
            let expected = reference(word, order).await;
            assert!(expected.len() >= 12, "{word}: {} tasks", expected.len());
            for backwards in [false, true] {
                assert_eq!(
                    app.all_task_ids(
                        &carol,
                        json!({ "search": search, "orderBy": order }),
                        20,
                        backwards
                    )
                    .await,
                    expected,
                    "{search} in {order}, backwards: {backwards}"
                );
            }
        }
    }
    // Both ways of reaching the rows were taken, and operators can see how often.
    let metrics = reqwest::get(format!("{}/metrics", app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for plan in ["window", "matches"] {
        assert!(
            metrics.contains(&format!(
                "taskledger_listing_queries_total{{plan=\"{plan}\"}}"
            )),
            "{plan}: {metrics}"
        );
    }
}

#[tokio::test]
async fn a_word_too_long_to_index_is_left_out_of_search_not_out_of_the_read_model() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    // Long enough to be a word to_tsvector keeps, too long to carry the
    // owner's key within Postgres's lexeme limit.
    let description = format!("{} findme", "a".repeat(2040));
    let id = create(
        &app,
        &alice,
        json!({ "title": "Paste the token", "description": description }),
    )
    .await;
    assert_eq!(
        ids(
            &app,
            &alice,
            json!({ "search": { "query": "findme", "mode": "FULL_TEXT" } })
        )
        .await,
        vec![id]
    );
}
