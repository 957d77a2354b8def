//! Tasks in shared lists (issue 27, docs/adr/0016), tried as each role
//! would: the owner, an editor, a viewer, a removed member, an invitee who
//! has not answered, and a stranger, on every task query and mutation, the
//! counts, search, history, the calendar feed and the live feed. A task in
//! a list the caller does not belong to answers as a missing one
//! (`NOT_FOUND`, `null`, absent); one they see but may not change is
//! `FORBIDDEN`. Then the race: a removal committed while the removed member
//! writes to the list's task.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    assert_no_errors, counter_at, error_code, eventually, free_address, graphql_at,
    read_model_disagreements, start_api, TestApp,
};
use crate::ws_client::GqlSocket;

const REMOVE: &str =
    "mutation($list: ID!, $user: String!) { removeMember(listId: $list, userId: $user) { version } }";
const ARCHIVE: &str = "mutation($id: ID!) { archiveList(id: $id) { version } }";
const CREATE_IN: &str = "mutation($title: String!, $list: ID, $tags: [String!]) {
    createTask(input: {title: $title, listId: $list, tags: $tags}) { taskId version } }";
const TASK: &str = "query($id: ID!) { task(id: $id) { id title version listId owner assignee } }";
const UPDATE: &str = "mutation($id: ID!, $title: String!) { updateTask(input: {id: $id, title: $title}) { version } }";
const COMPLETE: &str = "mutation($id: ID!) { completeTask(id: $id) { version } }";
const DELETE: &str = "mutation($id: ID!) { deleteTask(id: $id) { version } }";
const MOVE: &str =
    "mutation($id: ID!, $list: ID!) { moveTask(id: $id, listId: $list) { version } }";
const ASSIGN: &str =
    "mutation($id: ID!, $user: String!) { assignTask(id: $id, userId: $user) { version } }";
const UNASSIGN: &str = "mutation($id: ID!) { unassignTask(id: $id) { version } }";
const HISTORY: &str =
    "query($id: ID!) { taskHistory(id: $id) { edges { node { eventType actor } } } }";
const LISTED: &str = "query($lists: [ID!]) {
    tasks(filter: {listIds: $lists}, first: 100) { totalCount nodes { id listId } } }";
const SEARCH: &str = "query($q: String!) { tasks(search: {query: $q}) { nodes { id } } }";
const TAGS: &str = "{ tags { tag open total } taskStats { open } }";
const INBOX: &str = "{ inboxId }";
const CHANGES: &str =
    "subscription { taskChanges { kind taskId version task { id title listId } } }";

async fn code(app: &TestApp, token: &str, query: &str, variables: Value) -> String {
    let body = app.graphql(Some(token), query, variables).await;
    error_code(&body)
        .unwrap_or_else(|| panic!("not refused: {body}"))
        .to_owned()
}

/// `token`'s view of task `id` once it shows `version`, or `None` if it
/// never does within 15 s (the suite's heaviest tests, a secured broker's
/// among them, can hold the projection back for several seconds).
async fn seen_at(app: &TestApp, token: &str, id: &str, version: i64) -> Option<Value> {
    eventually(Duration::from_secs(15), || async {
        let task = app.data(token, TASK, json!({ "id": id })).await["task"].clone();
        (task["version"].as_i64() >= Some(version)).then_some(task)
    })
    .await
}

struct Cast {
    list: String,
    ann: String,
    eve: String,
    vic: String,
    rob: String,
    ivy: String,
    zed: String,
}

/// ann owns "Groceries"; eve edits; vic views; rob edited and was removed;
/// ivy is invited and has not answered; zed is a stranger.
async fn cast(app: &TestApp) -> Cast {
    let [ann, eve, vic, rob, ivy, zed] =
        ["ann", "eve", "vic", "rob", "ivy", "zed"].map(|user| app.token(user));
    let list = app.new_list(&ann, "Groceries").await;
    app.join(&ann, &list, "eve", "EDITOR").await;
    app.join(&ann, &list, "vic", "VIEWER").await;
    app.join(&ann, &list, "rob", "EDITOR").await;
    app.data(&ann, REMOVE, json!({ "list": list, "user": "rob" }))
        .await;
    app.invite(&ann, &list, "ivy", "EDITOR").await;
    Cast {
        list,
        ann,
        eve,
        vic,
        rob,
        ivy,
        zed,
    }
}

fn created(data: &Value) -> (String, i64) {
    let created = &data["createTask"];
    (
        created["taskId"].as_str().unwrap().to_owned(),
        created["version"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn a_shared_lists_tasks_are_its_members_and_no_one_elses() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (milk, _) = created(
        &app.data(
            &c.ann,
            CREATE_IN,
            json!({ "title": "oat milk", "list": c.list, "tags": ["dairy"] }),
        )
        .await,
    );
    // An editor adds one too, and changes the owner's.
    let bread = app.task_in(&c.eve, &c.list, "rye bread").await;
    app.data(
        &c.eve,
        UPDATE,
        json!({ "id": milk, "title": "oat milk, two" }),
    )
    .await;

    // Every member sees both, at the same version; the owner is who made it.
    for token in [&c.ann, &c.eve, &c.vic] {
        let task = seen_at(&app, token, &milk, 2)
            .await
            .expect("a member sees the list's task");
        assert_eq!(task["title"], "oat milk, two");
        assert_eq!(task["listId"], json!(c.list));
        assert_eq!(task["owner"], "ann");
        let bread = seen_at(&app, token, &bread, 1).await.unwrap();
        assert_eq!(bread["owner"], "eve");
        let listed = app.data(token, LISTED, json!({ "lists": [c.list] })).await;
        assert_eq!(listed["tasks"]["totalCount"], 2, "{listed}");
        let found = app.data(token, SEARCH, json!({ "q": "milk" })).await;
        assert_eq!(found["tasks"]["nodes"][0]["id"], json!(milk));
        let counted = app.data(token, TAGS, json!({})).await;
        assert_eq!(
            counted["tags"],
            json!([{ "tag": "dairy", "open": 1, "total": 1 }])
        );
        assert_eq!(counted["taskStats"]["open"], 2);
        let history = app.data(token, HISTORY, json!({ "id": milk })).await;
        let actors: Vec<&Value> = history["taskHistory"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["node"]["actor"])
            .collect();
        assert_eq!(actors, [&json!("ann"), &json!("eve")]);
    }

    // Nobody else: not the removed member, the invitee or a stranger.
    for token in [&c.rob, &c.ivy, &c.zed] {
        let task = app.data(token, TASK, json!({ "id": milk })).await;
        assert_eq!(task["task"], Value::Null);
        let listed = app.data(token, LISTED, json!({ "lists": null })).await;
        assert_eq!(listed["tasks"]["totalCount"], 0, "{listed}");
        let narrowed = app.data(token, LISTED, json!({ "lists": [c.list] })).await;
        assert_eq!(narrowed["tasks"]["totalCount"], 0);
        let found = app.data(token, SEARCH, json!({ "q": "milk" })).await;
        assert_eq!(found["tasks"]["nodes"], json!([]));
        assert_eq!(app.data(token, TAGS, json!({})).await["tags"], json!([]));
        let history = app.data(token, HISTORY, json!({ "id": milk })).await;
        assert_eq!(history["taskHistory"], Value::Null);
        // Every write answers as if there were no such task or list.
        for (query, variables) in [
            (UPDATE, json!({ "id": milk, "title": "mine" })),
            (COMPLETE, json!({ "id": milk })),
            (DELETE, json!({ "id": milk })),
            (UNASSIGN, json!({ "id": milk })),
            (ASSIGN, json!({ "id": milk, "user": "zed" })),
            (MOVE, json!({ "id": milk, "list": c.list })),
        ] {
            assert_eq!(code(&app, token, query, variables).await, "NOT_FOUND");
        }
        let into = json!({ "title": "sneaked in", "list": c.list });
        assert_eq!(code(&app, token, CREATE_IN, into).await, "NOT_FOUND");
    }

    // The viewer reads and changes nothing.
    for (query, variables) in [
        (UPDATE, json!({ "id": milk, "title": "viewer's" })),
        (COMPLETE, json!({ "id": milk })),
        (DELETE, json!({ "id": milk })),
        (ASSIGN, json!({ "id": milk, "user": "vic" })),
        (CREATE_IN, json!({ "title": "viewer's", "list": c.list })),
    ] {
        assert_eq!(code(&app, &c.vic, query, variables).await, "FORBIDDEN");
    }
    // Nothing the refused wrote is stored.
    let writers: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT metadata ->> 'user_id' FROM events
          WHERE aggregate_type = 'Task' ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(writers, ["ann", "eve"]);
    // The read model agrees with the store, each writer's events counted
    // as applied (what a read of one's own writes waits for).
    let agreed = eventually(Duration::from_secs(10), || async {
        read_model_disagreements(&app.pool)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    assert!(
        agreed.is_some(),
        "{:?}",
        read_model_disagreements(&app.pool).await
    );
}

#[tokio::test]
async fn moves_and_assignments_follow_the_list_and_show_who_did_them() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (id, _) = app.create_task(&c.ann, "plan the party").await;
    let inbox = app.data(&c.ann, INBOX, json!({})).await["inboxId"].clone();
    assert_eq!(
        seen_at(&app, &c.ann, &id, 1).await.unwrap()["listId"],
        inbox
    );
    // The Inbox's id is the one the read model derived for every older task.
    let derived: uuid::Uuid = sqlx::query_scalar(
        "SELECT uuid_generate_v5('6f1c2b7e-8d0a-4c61-9e57-3a2d1b4f7c90', 'inbox:' || 'ann')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(json!(derived.to_string()), inbox);

    // Not to someone else's Inbox, nor to a list the mover is not in.
    let eves_inbox = app.data(&c.eve, INBOX, json!({})).await["inboxId"].clone();
    for target in [&eves_inbox, &json!(uuid::Uuid::new_v4().to_string())] {
        let refused = code(&app, &c.ann, MOVE, json!({ "id": id, "list": target })).await;
        assert_eq!(refused, "NOT_FOUND");
    }
    // Into the shared list: now every member's.
    app.data(&c.ann, MOVE, json!({ "id": id, "list": c.list }))
        .await;
    assert!(seen_at(&app, &c.eve, &id, 2).await.is_some());
    // Only a member can be given it.
    for stranger in ["zed", "rob", "ivy"] {
        let refused = code(&app, &c.eve, ASSIGN, json!({ "id": id, "user": stranger })).await;
        assert_eq!(refused, "VALIDATION", "{stranger}");
    }
    app.data(&c.eve, ASSIGN, json!({ "id": id, "user": "vic" }))
        .await;
    let task = seen_at(&app, &c.vic, &id, 3).await.unwrap();
    assert_eq!(task["assignee"], "vic");
    // The editor takes it to her own Inbox: hers, unassigned, nobody else's.
    app.data(&c.eve, MOVE, json!({ "id": id, "list": eves_inbox }))
        .await;
    let task = seen_at(&app, &c.eve, &id, 4).await.unwrap();
    assert_eq!(
        (&task["owner"], &task["assignee"], &task["listId"]),
        (&json!("eve"), &Value::Null, &eves_inbox)
    );
    for token in [&c.ann, &c.vic] {
        let gone = eventually(Duration::from_secs(5), || async {
            let task = app.data(token, TASK, json!({ "id": id })).await;
            task["task"].is_null().then_some(())
        })
        .await;
        assert!(gone.is_some(), "a task in eve's Inbox is hers alone");
        let refused = code(&app, token, COMPLETE, json!({ "id": id })).await;
        assert_eq!(refused, "NOT_FOUND");
    }
    // History: who moved and assigned it, and when.
    let history = app.data(&c.eve, HISTORY, json!({ "id": id })).await;
    let steps: Vec<(String, String)> = history["taskHistory"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["eventType"].as_str().unwrap().to_owned(),
                e["node"]["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("TaskCreated", "ann"),
            ("TaskMoved", "ann"),
            ("TaskAssigned", "eve"),
            ("TaskMoved", "eve"),
        ]
        .map(|(t, a)| (t.to_owned(), a.to_owned()))
    );
}

#[tokio::test]
async fn an_archived_lists_tasks_are_read_only() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let id = app.task_in(&c.ann, &c.list, "last").await;
    // Quick add takes the list too.
    let quick = app.data(&c.eve,
        "mutation($l: ID) { quickAdd(text: \"pack sunscreen tomorrow 9am\", listId: $l) { taskId } }",
        json!({ "l": c.list }),
    )
    .await;
    let quick = quick["quickAdd"]["taskId"].as_str().unwrap().to_owned();
    assert_eq!(
        seen_at(&app, &c.ann, &quick, 1).await.unwrap()["listId"],
        json!(c.list)
    );
    app.data(&c.ann, ARCHIVE, json!({ "id": c.list })).await;
    for token in [&c.ann, &c.eve] {
        let body = app
            .graphql(Some(token), COMPLETE, json!({ "id": id }))
            .await;
        assert_eq!(error_code(&body), Some("CONFLICT"), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["reason"], "LIST_ARCHIVED");
    }
    assert!(
        seen_at(&app, &c.vic, &id, 1).await.is_some(),
        "still readable"
    );
}

/// A removal committed while the removed editor keeps writing to the list's
/// task: every write of theirs commits before the removal or is refused.
#[tokio::test(flavor = "multi_thread")]
async fn no_task_write_of_a_removed_member_lands_after_the_removal() {
    let app = TestApp::spawn().await;
    let (ann, eve) = (app.token("ann"), app.token("eve"));
    let list = app.new_list(&ann, "Chores").await;
    app.join(&ann, &list, "eve", "EDITOR").await;
    let id = app.task_in(&ann, &list, "dishes").await;
    let edits = async {
        let mut outcomes = Vec::new();
        for n in 0..40 {
            let started = std::time::Instant::now();
            let body = app
                .graphql(
                    Some(&eve),
                    UPDATE,
                    json!({ "id": id, "title": format!("eve {n}") }),
                )
                .await;
            outcomes.push((started, error_code(&body).map(str::to_owned)));
        }
        outcomes
    };
    let removal = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        app.data(&ann, REMOVE, json!({ "list": list, "user": "eve" }))
            .await;
        std::time::Instant::now()
    };
    let (outcomes, removed) = tokio::join!(edits, removal);
    // Applied until the removal, then NOT_FOUND, never FORBIDDEN or else;
    // and every edit sent after the removal answered is refused.
    let first_refusal = outcomes
        .iter()
        .position(|(_, code)| code.is_some())
        .unwrap_or(outcomes.len());
    assert!(
        outcomes[first_refusal..]
            .iter()
            .all(|(_, code)| code.as_deref() == Some("NOT_FOUND")),
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .filter(|(started, _)| *started > removed)
            .all(|(_, code)| code.as_deref() == Some("NOT_FOUND")),
        "an edit sent after the removal committed was applied"
    );
    assert!(
        first_refusal < outcomes.len(),
        "the removal came after every edit"
    );
    // What eve wrote is the task's last state as the store holds it: the
    // events stored are exactly the edits answered as applied.
    let applied = outcomes.iter().filter(|(_, code)| code.is_none()).count() as i64;
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'Task' AND aggregate_id = $1
            AND metadata ->> 'user_id' = 'eve'",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored, applied);
}

/// One member's change reaches another member's `taskChanges`; a removed
/// member hears nothing of the list from the removal on.
#[tokio::test]
async fn every_member_hears_the_lists_changes_until_removed() {
    let app = TestApp::spawn().await;
    let (ann, eve) = (app.token("ann"), app.token("eve"));
    let list = app.new_list(&ann, "Trip").await;
    app.join(&ann, &list, "eve", "EDITOR").await;
    let mut socket = GqlSocket::connect(&app.address, &eve).await;
    socket.subscribe("1", CHANGES, json!({})).await;
    // The live feed may start after the subscription: wait for it to carry
    // eve's own change before listening for ann's.
    let (own, _) = app.create_task(&eve, "pack").await;
    assert!(heard(&mut socket, &own).await.is_some());

    let shared = app.task_in(&ann, &list, "tickets").await;
    let change = heard(&mut socket, &shared)
        .await
        .expect("ann's change reaches eve");
    assert_eq!(change["task"]["listId"], json!(list));

    app.data(&ann, REMOVE, json!({ "list": list, "user": "eve" }))
        .await;
    app.complete_task(&ann, &shared).await;
    // Ann's change is published before eve's next own one (one partition
    // orders them): eve hears her own, and nothing of ann's before it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (later, _) = app.create_task(&eve, "after").await;
    loop {
        let payload = socket
            .next_payload("1", Duration::from_secs(10))
            .await
            .expect("eve's own change");
        let change = &payload["data"]["taskChanges"];
        assert_ne!(
            change["taskId"],
            json!(shared),
            "a removed member heard {change}"
        );
        if change["taskId"] == json!(later) {
            break;
        }
    }
    let leaked: i64 = sqlx::query_scalar("SELECT count(*) FROM task_list WHERE id = $1::uuid")
        .bind(&shared)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(leaked, 1, "the task itself stays the list's");
    let task = app.data(&eve, TASK, json!({ "id": shared })).await;
    assert_eq!(task["task"], Value::Null);
}

/// The next `taskChanges` change of task `id` on `socket`, others passed over.
async fn heard(socket: &mut GqlSocket, id: &str) -> Option<Value> {
    loop {
        let payload = socket.next_payload("1", Duration::from_secs(10)).await?;
        let change = &payload["data"]["taskChanges"];
        if change["taskId"] == json!(id) {
            return Some(change.clone());
        }
    }
}

/// A member's pages over their Inbox and two shared lists (each walked in
/// its own index order, then merged) are the one sorted listing of all
/// three, forwards and backwards, with filters and searches; a list they do
/// not belong to adds nothing.
#[tokio::test]
async fn a_members_pages_over_inbox_and_lists_are_one_sorted_listing() {
    let app = TestApp::spawn().await;
    let (ann, bob) = (app.token("ann"), app.token("bob"));
    // ann's Inbox, two lists she views, and one of bob's she is not in.
    let mut keys = vec!["ann".to_owned()];
    for name in ["Home", "Work", "Bob's own"] {
        let list = app.new_list(&bob, name).await;
        if name != "Bob's own" {
            app.join(&bob, &list, "ann", "VIEWER").await;
        }
        keys.push(format!("list {list}"));
    }
    // Written straight into the read model: this tests the query side.
    for (n, key) in keys.iter().enumerate() {
        sqlx::query(
            "INSERT INTO task_list (id, user_id, owner, list_id, title, status, version, created_at,
                                    updated_at, priority, due_at, tags)
             SELECT gen_random_uuid(), $1, 'bob', gen_random_uuid(),
                    CASE WHEN g % 6 = 0 THEN 'common chore, common ' WHEN g % 3 = 0 THEN 'common chore '
                         ELSE 'other errand ' END || $2 || ' ' || g,
                    CASE WHEN g % 4 = 0 THEN 'completed' ELSE 'open' END, 1,
                    now() - (g * 7 + $2) * interval '1 minute', now(), g % 5,
                    CASE WHEN g % 2 = 0 THEN now() + (g % 13) * interval '1 day' END,
                    CASE WHEN g % 5 = 0 THEN ARRAY['home'] ELSE '{}' END
               FROM generate_series(1, $3) AS g",
        )
        .bind(key)
        .bind(n as i32)
        .bind(if n == 0 { 40 } else { 60 })
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let readable = &keys[..3];
    let reference = |order: &'static str, condition: &'static str| {
        let pool = app.pool.clone();
        let readable = readable.to_vec();
        async move {
            let key = match order {
                "SMART" => "sort_priority, sort_due, sort_created",
                "DUE_ASC" => "sort_due",
                "CREATED_DESC" => "sort_created",
                _ => "lower(title) COLLATE \"C\"",
            };
            let ids: Vec<uuid::Uuid> = sqlx::query_scalar(&format!(
                "SELECT id FROM task_list WHERE user_id = ANY($1) AND deleted_at IS NULL
                    AND {condition} ORDER BY {key}, id"
            ))
            .bind(&readable)
            .fetch_all(&pool)
            .await
            .unwrap();
            ids.into_iter().map(|id| id.to_string()).collect::<Vec<_>>()
        }
    };
    for (arguments, condition) in [
        (json!({}), "true"),
        (
            json!({ "filter": { "status": ["OPEN"] } }),
            "status = 'open'",
        ),
        (
            json!({ "filter": { "tags": { "containsAll": ["home"] } } }),
            "tags @> ARRAY['home']",
        ),
        (
            json!({ "search": { "query": "common" } }),
            "title LIKE 'common %'",
        ),
        (
            json!({ "search": { "query": "comm", "mode": "PREFIX" } }),
            "title LIKE 'common %'",
        ),
        (
            json!({ "search": { "query": "comon", "mode": "FUZZY" } }),
            "title LIKE 'common %'",
        ),
    ] {
        for order in ["SMART", "DUE_ASC", "CREATED_DESC", "TITLE_ASC"] {
            let expected = reference(order, condition).await;
            assert!(expected.len() > 20, "{condition}: {}", expected.len());
            let mut arguments = arguments.clone();
            arguments["orderBy"] = json!(order);
            for backwards in [false, true] {
                let seen = app
                    .all_task_ids(&ann, arguments.clone(), 9, backwards)
                    .await;
                assert_eq!(seen, expected, "{arguments} backwards: {backwards}");
            }
        }
    }
    // Best match first: each task ranked by its own list's words, as a
    // reader of that list alone would rank it (a title saying "common"
    // twice first).
    let ranked: Vec<(String, String)> = sqlx::query_as(
        "SELECT id::text, title FROM task_list
          WHERE user_id = ANY($1) AND deleted_at IS NULL AND title LIKE 'common %'
          ORDER BY ts_rank(search, owner_tsquery(user_id, websearch_to_tsquery('english', 'common'))) DESC, id",
    )
    .bind(readable)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(
        ranked[0].1.starts_with("common chore, common"),
        "{ranked:?}"
    );
    assert!(
        ranked[ranked.len() - 1].1.starts_with("common chore "),
        "{ranked:?}"
    );
    let expected: Vec<String> = ranked.into_iter().map(|(id, _)| id).collect();
    for backwards in [false, true] {
        let arguments = json!({ "search": { "query": "common" }, "orderBy": "RELEVANCE" });
        let seen = app.all_task_ids(&ann, arguments, 9, backwards).await;
        assert_eq!(seen, expected, "relevance, backwards: {backwards}");
    }
}

/// An erased member's tasks in a shared list go from every member's view,
/// with the list's counts and search words; the other members' stay.
#[tokio::test]
async fn an_erased_members_tasks_leave_the_shared_list() {
    let app = TestApp::spawn().await;
    let (ann, eve) = (app.token("ann"), app.token("eve"));
    let list = app.new_list(&ann, "Garden").await;
    app.join(&ann, &list, "eve", "EDITOR").await;
    let (eves, _) = created(
        &app.data(
            &eve,
            CREATE_IN,
            json!({ "title": "prune the quincunx", "list": list, "tags": ["trees"] }),
        )
        .await,
    );
    let (anns, _) = created(
        &app.data(
            &ann,
            CREATE_IN,
            json!({ "title": "water the roses", "list": list, "tags": ["trees"] }),
        )
        .await,
    );
    assert!(seen_at(&app, &ann, &eves, 1).await.is_some());
    assert!(seen_at(&app, &ann, &anns, 1).await.is_some());

    app.erase("eve").await;
    let gone = eventually(Duration::from_secs(10), || async {
        let listed = app.data(&ann, LISTED, json!({ "lists": [list] })).await;
        // The page and its count are two reads: both must show one task.
        let page = listed["tasks"]["nodes"].as_array().map(Vec::len);
        (listed["tasks"]["totalCount"] == 1 && page == Some(1)).then_some(listed)
    })
    .await
    .expect("the erased member's task leaves ann's view");
    assert_eq!(gone["tasks"]["nodes"][0]["id"], json!(anns));
    let found = app.data(&ann, SEARCH, json!({ "q": "quincunx" })).await;
    assert_eq!(found["tasks"]["nodes"], json!([]));
    let counted = app.data(&ann, TAGS, json!({})).await;
    assert_eq!(
        counted["tags"],
        json!([{ "tag": "trees", "open": 1, "total": 1 }])
    );
    assert_eq!(counted["taskStats"]["open"], 1);
    let held: i64 =
        sqlx::query_scalar("SELECT count(*) FROM task_list WHERE title LIKE '%quincunx%'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(held, 0, "no read model keeps what the erased member typed");
}

/// A task in a list ann owns and eve edits, titled by `typist`, then
/// changed 24 times by `sealer`, whose commit of its 25th event takes its
/// snapshot, sealed with their key; the task's id.
async fn snapshot_sealed_by(app: &TestApp, typist: &str, sealer: &str, title: &str) -> String {
    let ann = app.token("ann");
    let list = app.new_list(&ann, "Kitchen").await;
    app.join(&ann, &list, "eve", "EDITOR").await;
    let id = app.task_in(&app.token(typist), &list, title).await;
    for n in 0..24 {
        let priority = ["LOW", "HIGH"][n % 2];
        app.data(
            &app.token(sealer),
            "mutation($id: ID!, $p: Priority!) { setPriority(id: $id, priority: $p) { version } }",
            json!({ "id": id, "p": priority }),
        )
        .await;
    }
    let sealed_by: Option<String> =
        sqlx::query_scalar("SELECT sealed_by FROM task_snapshots WHERE aggregate_id = $1")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(sealed_by.as_deref(), Some(sealer));
    id
}

/// A task's snapshot taken by one member's commit is sealed with their key;
/// after their erasure it is passed over, and the task is folded from its
/// events, so what the others typed (and its next occurrence) survives.
#[tokio::test]
async fn a_snapshot_sealed_by_an_erased_member_is_passed_over() {
    let app = TestApp::spawn().await;
    let id = snapshot_sealed_by(&app, "ann", "eve", "descale the kettle").await;
    app.erase("eve").await;
    let repository = event_store::repository::EventRepository::new(app.pool.clone());
    let (task, version) = repository.load::<domain::Task>(&id).await.unwrap();
    assert_eq!((task.title(), version), ("descale the kettle", 25));
}

/// What a member typed does not outlive their erasure inside a snapshot
/// another member's commit sealed with that member's own key.
#[tokio::test]
async fn a_snapshot_holding_an_erased_members_text_goes_with_their_key() {
    let app = TestApp::spawn().await;
    let id = snapshot_sealed_by(&app, "eve", "ann", "the quokka canary").await;
    app.erase("eve").await;
    let snapshots: i64 =
        sqlx::query_scalar("SELECT count(*) FROM task_snapshots WHERE aggregate_id = $1")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        snapshots, 0,
        "the snapshot with eve's text went with her key"
    );
    let repository = event_store::repository::EventRepository::new(app.pool.clone());
    let (task, version) = repository.load::<domain::Task>(&id).await.unwrap();
    assert_eq!(
        (task.title(), version),
        ("", 25),
        "eve's title reads as erased"
    );
}

/// Bad list ids and filters get a clear VALIDATION naming the field, and a
/// filter names at most 20 lists.
#[tokio::test]
async fn bad_list_ids_are_refused_by_name() {
    let app = TestApp::spawn().await;
    let ann = app.token("ann");
    let id = app.create_task(&ann, "mine").await.0;
    for (query, variables, field) in [
        (
            CREATE_IN,
            json!({ "title": "x", "list": "not-a-uuid" }),
            "listId",
        ),
        (MOVE, json!({ "id": id, "list": "not-a-uuid" }), "listId"),
        (LISTED, json!({ "lists": ["not-a-uuid"] }), "listIds"),
        (
            LISTED,
            json!({ "lists": vec![uuid::Uuid::nil().to_string(); 21] }),
            "listIds",
        ),
        (
            "{ tasks(filter: {or: [{listIds: []}]}) { totalCount } }",
            json!({}),
            "filter.listIds",
        ),
        (ASSIGN, json!({ "id": id, "user": "has space" }), "userId"),
    ] {
        let body = app.graphql(Some(&ann), query, variables).await;
        assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body}");
    }
}

/// What an erased member typed is not kept warm either: another member's
/// next commands on the task, in the process that held it (the one that
/// erased, or another that heard of it), decide on the task as the store now
/// reads it, so its next snapshot (sealed with their own key) holds none of
/// it.
#[tokio::test(flavor = "multi_thread")]
async fn a_task_kept_warm_forgets_an_erased_members_text() {
    let app = TestApp::spawn().await;
    let other = format!("http://{}", free_address());
    let _other = start_api(&app.settings, other.trim_start_matches("http://")).await;
    for (n, process) in [app.address.clone(), other].into_iter().enumerate() {
        let (ann, eve) = (format!("ann{n}"), format!("eve{n}"));
        let list = app.new_list(&app.token(&ann), "Pantry").await;
        app.join(&app.token(&ann), &list, &eve, "EDITOR").await;
        let id = app
            .task_in(&app.token(&eve), &list, "the wombat canary")
            .await;
        let set_priority = |n: usize| {
            let (ann, id, process) = (app.token(&ann), id.clone(), process.clone());
            let client = app.client.clone();
            async move {
                let priority = ["LOW", "HIGH"][n % 2];
                let (_, body, _) = graphql_at(
                    &client,
                    &process,
                    &ann,
                    "mutation($id: ID!, $p: Priority!) { setPriority(id: $id, priority: $p) { version } }",
                    json!({ "id": id, "p": priority }),
                    None,
                )
                .await;
                assert_no_errors(&body);
            }
        };
        // Ann's first command keeps the task warm in that process.
        set_priority(0).await;
        app.erase(&eve).await;
        if n == 1 {
            // The other process hears of the erasure as it commits.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // Her next ones reach the 25th event, whose commit takes a snapshot.
        for n in 1..24 {
            set_priority(n).await;
        }
        let sealed_by: Option<String> =
            sqlx::query_scalar("SELECT sealed_by FROM task_snapshots WHERE aggregate_id = $1")
                .bind(&id)
                .fetch_optional(&app.pool)
                .await
                .unwrap()
                .flatten();
        assert_eq!(sealed_by, Some(ann.clone()), "ann's commit took it");
        let repository = event_store::repository::EventRepository::new(app.pool.clone());
        let (task, version) = repository.load::<domain::Task>(&id).await.unwrap();
        assert_eq!(
            (task.title(), version),
            ("", 25),
            "on {process}: eve's title reads as erased, from ann's snapshot too"
        );
    }
}

/// What an erased member typed into another member's task (a new title)
/// leaves the read models too, whether they were still a member or had
/// been removed before their erasure.
#[tokio::test]
async fn an_erased_members_edit_of_anothers_task_leaves_the_read_models() {
    let app = TestApp::spawn().await;
    for removed_first in [false, true] {
        let (ann, eve) = (
            app.token("ann"),
            app.token(if removed_first { "eve1" } else { "eve0" }),
        );
        let who = if removed_first { "eve1" } else { "eve0" };
        let list = app.new_list(&ann, "Shed").await;
        app.join(&ann, &list, who, "EDITOR").await;
        let id = app.task_in(&ann, &list, "oil the hinges").await;
        let canary = format!("the platypus canary {removed_first}");
        app.data(&eve, UPDATE, json!({ "id": id, "title": canary }))
            .await;
        let seen = seen_at(&app, &ann, &id, 2)
            .await
            .expect("ann sees eve's edit");
        assert_eq!(seen["title"], json!(canary));
        if removed_first {
            app.data(&ann, REMOVE, json!({ "list": list, "user": who }))
                .await;
        }
        app.erase(who).await;
        let kept = eventually(Duration::from_secs(10), || async {
            let held: i64 = sqlx::query_scalar("SELECT count(*) FROM task_list WHERE title = $1")
                .bind(&canary)
                .fetch_one(&app.pool)
                .await
                .unwrap();
            (held == 0).then_some(())
        })
        .await;
        assert!(
            kept.is_some(),
            "removed first: {removed_first}: a task_list row still holds what the erased member typed"
        );
        // A task with an erased writer's events is kept by no read model
        // (as a rebuild keeps none); the store still holds it, the erased
        // text read as erased, and its owner's next command is applied to
        // no row without error.
        assert_eq!(
            app.data(&ann, TASK, json!({ "id": id })).await["task"],
            Value::Null
        );
        let repository = event_store::repository::EventRepository::new(app.pool.clone());
        let (task, _) = repository.load::<domain::Task>(&id).await.unwrap();
        assert_eq!(task.title(), "");
        app.data(&ann, UPDATE, json!({ "id": id, "title": "oiled" }))
            .await;
        // Counted as applied all the same: ann's reads do not wait for it.
        let counts = || async {
            sqlx::query_as::<_, (Option<i64>, Option<i64>)>(
                "SELECT user_events_stored('ann', 1000000),
                        (SELECT events FROM task_stats WHERE user_id = 'ann')",
            )
            .fetch_one(&app.pool)
            .await
            .unwrap()
        };
        let agreed = eventually(Duration::from_secs(10), || async {
            let (stored, applied) = counts().await;
            (stored == applied).then_some(())
        })
        .await;
        assert!(
            agreed.is_some(),
            "ann's events stored, applied: {:?}",
            counts().await
        );
        assert_eq!(
            app.data(&ann, TASK, json!({ "id": id })).await["task"],
            Value::Null
        );
    }
}

/// Erasures before projections migration 2019 dropped only their users' own
/// tasks; the upgrade drops the others they typed into.
#[tokio::test]
async fn the_upgrade_drops_what_users_erased_before_it_typed_into_anothers_task() {
    let mut app = TestApp::spawn().await;
    let (ann, eve) = (app.token("ann"), app.token("eve"));
    let list = app.new_list(&ann, "Attic").await;
    app.join(&ann, &list, "eve", "EDITOR").await;
    let id = app.task_in(&ann, &list, "sort the boxes").await;
    app.data(
        &eve,
        UPDATE,
        json!({ "id": id, "title": "the echidna canary" }),
    )
    .await;
    assert!(seen_at(&app, &ann, &id, 2).await.is_some());
    app.stop().await;
    // An erasure as it was: the key gone, the other tasks' rows kept; and
    // the database as migration 2018 left it.
    for statement in [
        "DELETE FROM user_keys WHERE user_id = 'eve'",
        "DROP FUNCTION task_list_drop(uuid[])",
        "DROP FUNCTION event_reads_erased(text, json, text)",
        "DROP TABLE task_list_gone",
        "DELETE FROM _sqlx_migrations WHERE version = 2019",
    ] {
        sqlx::query(statement).execute(&app.pool).await.unwrap();
    }
    let kept = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM task_list WHERE title LIKE '%echidna%'")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(
        kept(app.pool.clone()).await,
        1,
        "the hole the upgrade mends"
    );
    projections::migrate(&app.pool).await.unwrap();
    assert_eq!(kept(app.pool.clone()).await, 0);
    let gone: Option<i64> =
        sqlx::query_scalar("SELECT version FROM task_list_gone WHERE id = $1::uuid")
            .bind(&id)
            .fetch_optional(&app.pool)
            .await
            .unwrap();
    assert_eq!(gone, Some(2));
}

/// A rebuild keeps no task an erased member typed into either, and counts
/// the other members' events on it as the projection does: the rebuilt
/// read model agrees with the store as the live one did.
#[tokio::test]
async fn a_rebuild_after_an_erasure_agrees_with_the_store() {
    let app = TestApp::spawn().await;
    let (ann, eve) = (app.token("ann"), app.token("eve"));
    let list = app.new_list(&ann, "Cellar").await;
    app.join(&ann, &list, "eve", "EDITOR").await;
    let id = app.task_in(&ann, &list, "label the jars").await;
    app.data(
        &eve,
        UPDATE,
        json!({ "id": id, "title": "the quoll canary" }),
    )
    .await;
    assert!(seen_at(&app, &ann, &id, 2).await.is_some());
    app.erase("eve").await;
    // Applied to no row, and counted.
    app.data(&ann, UPDATE, json!({ "id": id, "title": "labelled" }))
        .await;
    app.create_task(&ann, "stack the crates").await;
    let agree = || async {
        eventually(Duration::from_secs(10), || async {
            read_model_disagreements(&app.pool)
                .await
                .is_empty()
                .then_some(())
        })
        .await
        .is_some()
    };
    assert!(
        agree().await,
        "{:?}",
        read_model_disagreements(&app.pool).await
    );
    let (ok, _, errors) = crate::rebuild::rebuild_of(&app, "task-list").await;
    assert!(ok, "{errors}");
    assert!(
        agree().await,
        "{:?}",
        read_model_disagreements(&app.pool).await
    );
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM task_list WHERE title LIKE '%quoll%'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(held, 0);
}

/// How often `address`'s process looked a caller's lists up (`read`) or
/// knew them to be none (`kept`).
async fn readers_lookups(client: &reqwest::Client, address: &str, outcome: &str) -> u64 {
    let series = format!("taskledger_readers_lookups_total{{outcome=\"{outcome}\"}}");
    counter_at(client, address, &series).await
}

/// A user in no shared list is read without a look-up of their lists; a
/// list they join shows at once where they joined and, within moments, in
/// another API process, which hears of the join; a member is looked up on
/// every read, never kept, so their removal holds from its commit.
#[tokio::test(flavor = "multi_thread")]
async fn a_user_in_no_list_reads_without_a_look_up_and_a_list_joined_shows_everywhere() {
    let app = TestApp::spawn().await;
    let other = format!("http://{}", free_address());
    let _other = start_api(&app.settings, other.trim_start_matches("http://")).await;
    let (ann, bob) = (app.token("ann"), app.token("bob"));
    let list = app.new_list(&ann, "Pantry").await;
    let shared = app.task_in(&ann, &list, "oat milk").await;
    seen_at(&app, &ann, &shared, 1)
        .await
        .expect("the list's task is in the read model");
    let bobs_tasks = |process: String| {
        let (client, bob) = (app.client.clone(), bob.clone());
        async move {
            let (_, body, _) = graphql_at(
                &client,
                &process,
                &bob,
                "{ tasks(first: 100) { nodes { id } } }",
                json!({}),
                None,
            )
            .await;
            assert_no_errors(&body);
            body["data"]["tasks"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|node| node["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };

    // In no list: after a first look-up, each process knows it.
    for process in [app.address.clone(), other.clone()] {
        let kept = eventually(Duration::from_secs(10), || async {
            assert!(bobs_tasks(process.clone()).await.is_empty());
            let kept = readers_lookups(&app.client, &process, "kept").await;
            (kept > 0).then_some(kept)
        })
        .await
        .expect("a user in no list is read without a look-up");
        let read = readers_lookups(&app.client, &process, "read").await;
        for _ in 0..3 {
            bobs_tasks(process.clone()).await;
        }
        assert_eq!(
            readers_lookups(&app.client, &process, "kept").await,
            kept + 3
        );
        assert_eq!(readers_lookups(&app.client, &process, "read").await, read);
    }

    // Bob joins where this test runs: he sees the list's task at once there,
    // and soon in the other process, which heard of the join.
    app.join(&ann, &list, "bob", "VIEWER").await;
    assert_eq!(bobs_tasks(app.address.clone()).await, vec![shared.clone()]);
    eventually(Duration::from_secs(5), || async {
        (bobs_tasks(other.clone()).await == vec![shared.clone()]).then_some(())
    })
    .await
    .expect("the other process shows the list bob joined");
    // A member is looked up on every read.
    let (kept, read) = (
        readers_lookups(&app.client, &other, "kept").await,
        readers_lookups(&app.client, &other, "read").await,
    );
    for _ in 0..3 {
        assert_eq!(bobs_tasks(other.clone()).await, vec![shared.clone()]);
    }
    assert_eq!(readers_lookups(&app.client, &other, "kept").await, kept);
    assert_eq!(readers_lookups(&app.client, &other, "read").await, read + 3);

    // Removed, he reads nothing of the list from the removal's commit on,
    // in either process.
    app.data(&ann, REMOVE, json!({ "list": list, "user": "bob" }))
        .await;
    for process in [other, app.address.clone()] {
        assert!(bobs_tasks(process).await.is_empty());
    }
}

/// A task an erased member typed into keeps no reminder, also past its next
/// snapshot, taken after the erasure under the owner's key (which reads
/// whole): the reminders projection folds it from its first event from then
/// on, as a rebuild does.
#[tokio::test]
async fn a_task_an_erased_member_typed_into_keeps_no_reminder_past_its_next_snapshot() {
    let app = TestApp::spawn().await;
    let (ann, eve) = (app.token("ann"), app.token("eve"));
    let list = app.new_list(&ann, "Pantry").await;
    app.join(&ann, &list, "eve", "EDITOR").await;
    let id = app.task_in(&ann, &list, "ann's own").await;
    app.data(&eve, UPDATE, json!({ "id": id, "title": "eve typed this" }))
        .await;
    app.erase("eve").await;
    // Its second sweep done: what follows is the projection's own doing,
    // not a sweep's deleting what it wrote meanwhile.
    let completed = eventually(Duration::from_secs(30), || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT coalesce(bool_and(completed_at IS NOT NULL), false) FROM erasures WHERE user_id = 'eve'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
        .then_some(())
    })
    .await;
    assert!(completed.is_some(), "eve's erasure never completed");
    // Ann's commands take it past its 25th event (a snapshot), then give it
    // a reminder an hour ahead.
    let mut version = 0;
    for n in 0..30 {
        let priority = ["LOW", "HIGH"][n % 2];
        version = app
            .data(
                &ann,
                "mutation($id: ID!, $p: Priority!) { setPriority(id: $id, priority: $p) { version } }",
                json!({ "id": id, "p": priority }),
            )
            .await["setPriority"]["version"]
            .as_i64()
            .unwrap();
    }
    // The projection holds the task past its snapshot before the reminder
    // comes: its next fold could start there.
    held_erased(&app, &id, version).await;
    let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let version = app
        .data(
            &ann,
            "mutation($id: ID!, $at: DateTime!) { setReminders(id: $id, reminders: [{at: $at}]) { version } }",
            json!({ "id": id, "at": at }),
        )
        .await["setReminders"]["version"]
        .as_i64()
        .unwrap();
    assert!(version > 26, "the task has a snapshot: {version}");
    assert!(
        held_erased(&app, &id, version).await,
        "the projection knows a writer of the task was erased"
    );
    let reminders: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reminders WHERE task_id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        reminders, 0,
        "a task an erased member typed into keeps no reminder"
    );
}

/// Whether the reminders projection, once it holds task `id` at `version`,
/// knows a writer of it was erased.
async fn held_erased(app: &TestApp, id: &str, version: i64) -> bool {
    eventually(Duration::from_secs(15), || async {
        sqlx::query_as::<_, (i64, bool)>(
            "SELECT version, erased FROM reminder_tasks WHERE task_id = $1::uuid",
        )
        .bind(id)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
        .and_then(|(held, erased)| (held == version).then_some(erased))
    })
    .await
    .expect("the reminders projection applies the owner's commands")
}

/// A reminder goes to whoever set it only while they may read its task: one
/// an editor set in a shared list is not sent once the list's owner takes
/// the task into her own Inbox, where what she types is hers alone.
#[tokio::test]
async fn a_reminder_is_not_sent_once_its_task_moved_into_anothers_inbox() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let id = app.task_in(&c.ann, &c.list, "the party").await;
    // Set by eve, they fire to eve (not to whoever owns the task).
    let at = chrono::Utc::now() + chrono::Duration::seconds(4);
    app.data(
        &c.eve,
        "mutation($id: ID!, $at: DateTime!) { setReminders(id: $id, reminders: [{at: $at}]) { version } }",
        json!({ "id": id, "at": at.to_rfc3339() }),
    )
    .await;
    let anns_inbox = app.data(&c.ann, INBOX, json!({})).await["inboxId"].clone();
    app.data(&c.ann, MOVE, json!({ "id": id, "list": anns_inbox }))
        .await;
    assert!(seen_at(&app, &c.ann, &id, 3).await.is_some());
    app.data(
        &c.ann,
        UPDATE,
        json!({ "id": id, "title": "ann's own plans" }),
    )
    .await;
    let status = eventually(Duration::from_secs(20), || async {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM reminders WHERE task_id = $1::uuid")
                .bind(&id)
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        status.filter(|s| s != "pending")
    })
    .await;
    assert_eq!(status.as_deref(), Some("missed"), "eve's reminder was sent");
    let inbox = app
        .data(
            &c.eve,
            "{ notifications(first: 50) { edges { node { taskId title } } } }",
            json!({}),
        )
        .await;
    let about_it: Vec<&Value> = inbox["notifications"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|edge| edge["node"]["taskId"] == json!(id))
        .collect();
    assert!(about_it.is_empty(), "eve was told: {about_it:?}");
}

/// An edit carries only the fields it changes, so a member's text is not
/// copied into another's event: after the typist's erasure the task's
/// history and its state at any instant hold none of it.
#[tokio::test]
async fn an_edit_of_one_field_copies_no_other_members_text() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let canary = format!("canary-{}", uuid::Uuid::new_v4().simple());
    let id = app.task_in(&c.eve, &c.list, &canary).await;
    app.data(
        &c.ann,
        "mutation($id: ID!) { updateTask(input: {id: $id, description: \"bring napkins\"}) { version } }",
        json!({ "id": id }),
    )
    .await;
    app.erase("eve").await;
    let seen = app
        .data(
            &c.ann,
            "query($id: ID!, $at: DateTime!) {
                taskHistory(id: $id) { edges { node { eventType actor changes { field old new } } } }
                taskAsOf(id: $id, at: $at) { title description version } }",
            json!({ "id": id, "at": chrono::Utc::now().to_rfc3339() }),
        )
        .await;
    let text = seen.to_string();
    assert_eq!(seen["taskAsOf"]["version"], 2, "{text}");
    assert_eq!(seen["taskAsOf"]["description"], "bring napkins", "{text}");
    assert!(!text.contains(&canary), "eve's title outlived her: {text}");
}

/// A task that leaves a shared list is announced, live, to the members who
/// no longer read it, by its id alone; whoever took it hears it changed, and
/// no one else hears anything.
#[tokio::test]
async fn members_hear_a_task_leave_their_list_by_its_id_alone() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let mut sockets = Vec::new();
    for token in [&c.vic, &c.eve, &c.zed] {
        let mut socket = GqlSocket::connect(&app.address, token).await;
        socket.subscribe("c", CHANGES, json!({})).await;
        sockets.push(socket);
    }
    let [vics, eves, zeds] = &mut sockets[..] else {
        unreachable!()
    };
    // Heard live by vic: this process handed it out, and knows its readers.
    let id = app.task_in(&c.ann, &c.list, "the shared one").await;
    let created = change_of(vics, &id, |change| change["kind"] == "CHANGED").await;
    assert_eq!(created["task"]["listId"], json!(c.list), "{created}");
    let eves_inbox = app.data(&c.eve, INBOX, json!({})).await["inboxId"].clone();
    app.data(&c.eve, MOVE, json!({ "id": id, "list": eves_inbox }))
        .await;
    let told = change_of(vics, &id, |change| change["kind"] != "CHANGED").await;
    assert_eq!(
        told,
        json!({ "kind": "REMOVED", "taskId": id, "version": null, "task": null })
    );
    let hers = change_of(eves, &id, |change| change["task"]["listId"] == eves_inbox).await;
    assert_eq!(hers["kind"], "CHANGED", "{hers}");
    // A stranger hears nothing of it (a RESYNC, if any, names no task).
    while let Some(frame) = zeds.next(Duration::from_millis(500)).await {
        assert!(
            !format!("{frame:?}").contains(&id),
            "zed heard of it: {frame:?}"
        );
    }
}

/// The first change of task `id` on `socket`'s feed `c` that `wanted`
/// holds for, within 15 s (a `RESYNC` and other changes passed over).
async fn change_of(socket: &mut GqlSocket, id: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    loop {
        let change = socket
            .next_payload("c", Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("no change of {id} came"))["data"]["taskChanges"]
            .clone();
        if change["taskId"] == id && wanted(&change) {
            return change;
        }
    }
}
