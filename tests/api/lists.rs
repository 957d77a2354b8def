//! Lists people share (issue 27, docs/adr/0015), tried as each role would:
//! the owner, an editor, a viewer, a removed member, an invitee who has not
//! answered, and a stranger, on every list mutation and query. Each is
//! allowed exactly where the role table in docs/api.md says, and refused
//! alike elsewhere: a list the caller does not belong to is `NOT_FOUND`
//! whoever they are, one they belong to but may not change `FORBIDDEN`.
//! Then the races: a removal committed while the removed member writes, and
//! an ownership transfer racing a removal.

use serde_json::{json, Value};

use std::time::Duration;

use crate::helpers::{error_code, eventually, read_topic, TestApp};

const CREATE: &str =
    "mutation($name: String!) { createList(input: {name: $name}) { listId version } }";
const RENAME: &str =
    "mutation($id: ID!, $name: String!) { renameList(id: $id, name: $name) { listId version } }";
const ARCHIVE: &str = "mutation($id: ID!) { archiveList(id: $id) { listId version } }";
const INVITE: &str = "mutation($list: ID!, $user: String!, $role: ListRole!) { inviteToList(listId: $list, userId: $user, role: $role) { invitationId } }";
const ACCEPT: &str = "mutation($id: ID!) { acceptInvitation(id: $id) { listId version } }";
const DECLINE: &str = "mutation($id: ID!) { declineInvitation(id: $id) { listId version } }";
const CHANGE: &str = "mutation($list: ID!, $user: String!, $role: ListRole!) { changeMemberRole(listId: $list, userId: $user, role: $role) { version } }";
const REMOVE: &str = "mutation($list: ID!, $user: String!) { removeMember(listId: $list, userId: $user) { version } }";
const LEAVE: &str = "mutation($list: ID!) { leaveList(listId: $list) { version } }";
const TRANSFER: &str = "mutation($list: ID!, $user: String!) { transferListOwnership(listId: $list, userId: $user) { version } }";
const LISTS: &str = "{ lists { id name role archived version members { userId role } } }";
const INVITATIONS: &str = "{ invitations { id listId listName role from invitedAt } }";

/// The code of the refusal, checking that a refusal carries nothing else.
async fn refused(app: &TestApp, token: &str, query: &str, variables: Value) -> String {
    let body = app.graphql(Some(token), query, variables).await;
    assert!(
        body["data"].is_null()
            || body["data"]
                .as_object()
                .is_some_and(|d| d.values().all(Value::is_null)),
        "{body}"
    );
    error_code(&body)
        .unwrap_or_else(|| panic!("not refused: {body}"))
        .to_owned()
}

struct Cast {
    list: String,
    ann: String,
    eve: String,
    vic: String,
    rob: String,
    ivy: String,
    zed: String,
    ivys_invitation: String,
}

/// ann owns "Groceries"; eve edits; vic views; rob was an editor and is
/// removed; ivy is invited and has not answered; zed is a stranger.
async fn cast(app: &TestApp) -> Cast {
    let [ann, eve, vic, rob, ivy, zed] =
        ["ann", "eve", "vic", "rob", "ivy", "zed"].map(|user| app.token(user));
    let created = app.data(&ann, CREATE, json!({ "name": "Groceries" })).await;
    assert_eq!(created["createList"]["version"], json!(1));
    let list = created["createList"]["listId"].as_str().unwrap().to_owned();
    for (user, token, role) in [
        ("eve", &eve, "EDITOR"),
        ("vic", &vic, "VIEWER"),
        ("rob", &rob, "EDITOR"),
    ] {
        let id = app.invite(&ann, &list, user, role).await;
        app.data(token, ACCEPT, json!({ "id": id })).await;
    }
    app.data(&ann, REMOVE, json!({ "list": list, "user": "rob" }))
        .await;
    let ivys_invitation = app.invite(&ann, &list, "ivy", "EDITOR").await;
    Cast {
        list,
        ann,
        eve,
        vic,
        rob,
        ivy,
        zed,
        ivys_invitation,
    }
}

#[tokio::test]
async fn each_role_sees_and_does_exactly_what_the_role_table_says() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;

    // Who sees the list, and as what.
    let seen = app.data(&c.ann, LISTS, json!({})).await;
    let list = &seen["lists"][0];
    assert_eq!(list["name"], json!("Groceries"));
    assert_eq!(list["role"], json!("OWNER"));
    assert_eq!(
        list["members"],
        json!([
            { "userId": "ann", "role": "OWNER" },
            { "userId": "eve", "role": "EDITOR" },
            { "userId": "vic", "role": "VIEWER" },
        ])
    );
    for (token, role) in [(&c.eve, "EDITOR"), (&c.vic, "VIEWER")] {
        let seen = app.data(token, LISTS, json!({})).await;
        assert_eq!(seen["lists"][0]["role"], json!(role));
        assert_eq!(seen["lists"][0]["id"], json!(c.list));
    }
    for token in [&c.rob, &c.ivy, &c.zed] {
        assert_eq!(app.data(token, LISTS, json!({})).await["lists"], json!([]));
    }
    // Only the invitee sees the invitation.
    let waiting = app.data(&c.ivy, INVITATIONS, json!({})).await;
    assert_eq!(waiting["invitations"][0]["id"], json!(c.ivys_invitation));
    assert_eq!(waiting["invitations"][0]["listName"], json!("Groceries"));
    assert_eq!(waiting["invitations"][0]["role"], json!("EDITOR"));
    assert_eq!(waiting["invitations"][0]["from"], json!("ann"));
    for token in [&c.ann, &c.eve, &c.rob, &c.zed] {
        assert_eq!(
            app.data(token, INVITATIONS, json!({})).await["invitations"],
            json!([])
        );
    }

    // Every management mutation: the owner may; an editor and a viewer are
    // FORBIDDEN; the removed, the invitee and the stranger find no list.
    let manage = [
        (
            INVITE,
            json!({ "list": c.list, "user": "newcomer", "role": "VIEWER" }),
        ),
        (
            CHANGE,
            json!({ "list": c.list, "user": "vic", "role": "EDITOR" }),
        ),
        (REMOVE, json!({ "list": c.list, "user": "vic" })),
        (TRANSFER, json!({ "list": c.list, "user": "eve" })),
        (ARCHIVE, json!({ "id": c.list })),
    ];
    for (query, variables) in &manage {
        for token in [&c.eve, &c.vic] {
            assert_eq!(
                refused(&app, token, query, variables.clone()).await,
                "FORBIDDEN",
                "{query}"
            );
        }
        for token in [&c.rob, &c.ivy, &c.zed] {
            assert_eq!(
                refused(&app, token, query, variables.clone()).await,
                "NOT_FOUND",
                "{query}"
            );
        }
    }
    // Renaming: the owner and an editor; a viewer is FORBIDDEN.
    let rename = |name: &str| json!({ "id": c.list, "name": name });
    app.data(&c.ann, RENAME, rename("Food")).await;
    app.data(&c.eve, RENAME, rename("Shopping")).await;
    assert_eq!(
        refused(&app, &c.vic, RENAME, rename("Mine")).await,
        "FORBIDDEN"
    );
    for token in [&c.rob, &c.ivy, &c.zed] {
        assert_eq!(
            refused(&app, token, RENAME, rename("Mine")).await,
            "NOT_FOUND"
        );
    }
    // Leaving: members may, but not the owner; the rest find no list.
    let owner_leaves = app
        .graphql(Some(&c.ann), LEAVE, json!({ "list": c.list }))
        .await;
    assert_eq!(error_code(&owner_leaves), Some("CONFLICT"));
    assert_eq!(
        owner_leaves["errors"][0]["extensions"]["reason"],
        json!("LIST_RULE")
    );
    for token in [&c.rob, &c.ivy, &c.zed] {
        assert_eq!(
            refused(&app, token, LEAVE, json!({ "list": c.list })).await,
            "NOT_FOUND"
        );
    }

    // A missing list reads exactly as another's; a malformed id is invalid.
    let unknown = uuid::Uuid::new_v4().to_string();
    let missing = app
        .graphql(Some(&c.zed), RENAME, json!({ "id": unknown, "name": "x" }))
        .await;
    let hidden = app
        .graphql(Some(&c.zed), RENAME, json!({ "id": c.list, "name": "x" }))
        .await;
    assert_eq!(
        missing["errors"][0]["message"],
        hidden["errors"][0]["message"]
    );
    assert_eq!(
        missing["errors"][0]["extensions"],
        hidden["errors"][0]["extensions"]
    );
    assert_eq!(
        refused(
            &app,
            &c.ann,
            RENAME,
            json!({ "id": "not-an-id", "name": "x" })
        )
        .await,
        "VALIDATION"
    );
    assert_eq!(
        refused(&app, &c.ann, CREATE, json!({ "name": "   " })).await,
        "VALIDATION"
    );
    assert_eq!(
        refused(&app, &c.ann, CREATE, json!({ "name": "x".repeat(101) })).await,
        "VALIDATION"
    );
    assert_eq!(
        refused(
            &app,
            &c.ann,
            INVITE,
            json!({ "list": c.list, "user": "eve", "role": "OWNER" })
        )
        .await,
        "CONFLICT"
    );
    assert_eq!(
        refused(
            &app,
            &c.ann,
            INVITE,
            json!({ "list": c.list, "user": "", "role": "VIEWER" })
        )
        .await,
        "VALIDATION"
    );
    // Nobody but anonymous callers is refused as unauthenticated.
    let anonymous = app.graphql(None, LISTS, json!({})).await;
    assert_eq!(error_code(&anonymous), Some("UNAUTHENTICATED"));

    // Only its invitee answers an invitation; once.
    for token in [&c.ann, &c.eve, &c.zed] {
        assert_eq!(
            refused(&app, token, ACCEPT, json!({ "id": c.ivys_invitation })).await,
            "NOT_FOUND"
        );
    }
    app.data(&c.ivy, DECLINE, json!({ "id": c.ivys_invitation }))
        .await;
    assert_eq!(
        refused(&app, &c.ivy, ACCEPT, json!({ "id": c.ivys_invitation })).await,
        "NOT_FOUND"
    );
    assert_eq!(app.data(&c.ivy, LISTS, json!({})).await["lists"], json!([]));

    // The owner manages: a role changed, ownership handed on (one owner,
    // the old one an editor), a member removed, the list archived.
    app.data(
        &c.ann,
        CHANGE,
        json!({ "list": c.list, "user": "vic", "role": "EDITOR" }),
    )
    .await;
    app.data(&c.ann, TRANSFER, json!({ "list": c.list, "user": "eve" }))
        .await;
    let members = app.data(&c.eve, LISTS, json!({})).await["lists"][0]["members"].clone();
    assert_eq!(
        members,
        json!([
            { "userId": "eve", "role": "OWNER" },
            { "userId": "ann", "role": "EDITOR" },
            { "userId": "vic", "role": "EDITOR" },
        ])
    );
    assert_eq!(
        refused(&app, &c.ann, ARCHIVE, json!({ "id": c.list })).await,
        "FORBIDDEN"
    );
    app.data(&c.vic, LEAVE, json!({ "list": c.list })).await;
    app.data(&c.eve, ARCHIVE, json!({ "id": c.list })).await;
    let archived = app.data(&c.ann, LISTS, json!({})).await;
    assert_eq!(archived["lists"][0]["archived"], json!(true));
    assert_eq!(archived["lists"][0]["name"], json!("Shopping"));
    let late = app
        .graphql(
            Some(&c.eve),
            INVITE,
            json!({ "list": c.list, "user": "zed", "role": "VIEWER" }),
        )
        .await;
    assert_eq!(
        late["errors"][0]["extensions"]["reason"],
        json!("LIST_ARCHIVED")
    );

    // What a user typed is sealed in the store: the name is not there in
    // the clear.
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT payload::text FROM events WHERE aggregate_type = 'List' AND aggregate_id = $1",
    )
    .bind(&c.list)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(stored.len() >= 10, "every change is an event");
    assert!(
        stored
            .iter()
            .all(|p| !p.contains("Groceries") && !p.contains("Shopping")),
        "{stored:?}"
    );

    // The list's events travel on task-events beside the tasks'; the
    // projections pass them over: tasks written after them are listed, and
    // nothing went to the dead letters.
    for n in 0..6 {
        app.create_task(&c.zed, &format!("after the lists {n}"))
            .await;
    }
    let listed = eventually(Duration::from_secs(20), || async {
        let data = app
            .data(&c.zed, "{ tasks(first: 10) { totalCount } }", json!({}))
            .await;
        (data["tasks"]["totalCount"] == json!(6)).then_some(())
    })
    .await;
    assert!(
        listed.is_some(),
        "the tasks after the list events are listed"
    );
    let topic = &app.settings.common.task_events_topic;
    // Every list event and task creation is on the topic (16 and 6), and
    // none went to the dead letters.
    let read = read_topic(&app.kafka(), topic, Duration::from_secs(20), |m| {
        m.len() >= 22
    })
    .await;
    assert_eq!(read.len(), 22, "every event reaches task-events");
    let dead = read_topic(
        &app.kafka(),
        &infra::kafka::dead_letter_topic(topic),
        Duration::from_secs(3),
        |m| !m.is_empty(),
    )
    .await;
    assert!(
        dead.is_empty(),
        "list events were dead-lettered: {}",
        dead.len()
    );
}

/// A removal committed while the removed member keeps renaming: no rename of
/// theirs is stored after the removal.
#[tokio::test(flavor = "multi_thread")]
async fn no_write_of_a_removed_member_lands_after_the_removal() {
    let app = TestApp::spawn().await;
    let (ann, eve) = (app.token("ann"), app.token("eve"));
    let list = app.new_list(&ann, "Chores").await;
    let id = app.invite(&ann, &list, "eve", "EDITOR").await;
    app.data(&eve, ACCEPT, json!({ "id": id })).await;

    let renames = async {
        let mut outcomes = Vec::new();
        for n in 0..40 {
            let body = app
                .graphql(
                    Some(&eve),
                    RENAME,
                    json!({ "id": list, "name": format!("eve {n}") }),
                )
                .await;
            outcomes.push(error_code(&body).map(str::to_owned));
        }
        outcomes
    };
    let removal = async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        app.data(&ann, REMOVE, json!({ "list": list, "user": "eve" }))
            .await
    };
    let (outcomes, _) = tokio::join!(renames, removal);
    // Applied until the removal, then NOT_FOUND, never FORBIDDEN or else.
    let first_refusal = outcomes
        .iter()
        .position(Option::is_some)
        .unwrap_or(outcomes.len());
    assert!(
        outcomes[first_refusal..]
            .iter()
            .all(|o| o.as_deref() == Some("NOT_FOUND")),
        "{outcomes:?}"
    );
    let (removed_at, last_rename): (i64, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT sequence FROM events WHERE aggregate_type = 'List' AND aggregate_id = $1
                    AND event_type = 'ListMemberRemoved'),
                (SELECT max(sequence) FROM events WHERE aggregate_type = 'List' AND aggregate_id = $1
                    AND event_type = 'ListRenamed')",
    )
    .bind(&list)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        last_rename.is_none_or(|last| last < removed_at),
        "a rename landed after the removal"
    );
    let members: Vec<String> =
        sqlx::query_scalar("SELECT user_id FROM list_members WHERE list_id = $1::uuid")
            .bind(&list)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(members, vec!["ann".to_owned()]);
}

/// An ownership transfer racing a removal of the same member: one of the two
/// wins, and the list ends with exactly one owner, who is a member.
#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_racing_a_removal_leaves_one_owner() {
    let app = TestApp::spawn().await;
    let (ann, eve) = (app.token("ann"), app.token("eve"));
    for round in 0..5 {
        let list = app.new_list(&ann, &format!("race {round}")).await;
        let id = app.invite(&ann, &list, "eve", "EDITOR").await;
        app.data(&eve, ACCEPT, json!({ "id": id })).await;
        let (transfer, removal) = tokio::join!(
            app.graphql(Some(&ann), TRANSFER, json!({ "list": list, "user": "eve" })),
            app.graphql(Some(&ann), REMOVE, json!({ "list": list, "user": "eve" })),
        );
        let won = [&transfer, &removal]
            .iter()
            .filter(|b| b.get("errors").is_none())
            .count();
        assert_eq!(won, 1, "{transfer} {removal}");
        let owners: Vec<(String, String)> = sqlx::query_as(
            "SELECT user_id, role FROM list_members WHERE list_id = $1::uuid AND role = 'OWNER'",
        )
        .bind(&list)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        assert_eq!(owners.len(), 1, "{owners:?}");
        if transfer.get("errors").is_none() {
            assert_eq!(owners[0].0, "eve");
            assert_eq!(error_code(&removal), Some("FORBIDDEN"));
        } else {
            assert_eq!(owners[0].0, "ann");
        }
    }
}

/// An erased user leaves every list (docs/adr/0015): a list they owned
/// passes to its editor, one they were alone in is archived, their waiting
/// invitation is declined, and the names they typed read as empty.
#[tokio::test(flavor = "multi_thread")]
async fn an_erased_user_leaves_their_lists_and_ownership_passes_on() {
    let app = TestApp::spawn().await;
    let (ann, eve, bob) = (app.token("ann"), app.token("eve"), app.token("bob"));
    let shared = app.new_list(&ann, "Family").await;
    let id = app.invite(&ann, &shared, "eve", "EDITOR").await;
    app.data(&eve, ACCEPT, json!({ "id": id })).await;
    let alone = app.new_list(&ann, "Diary").await;
    let bobs = app.new_list(&bob, "Bob's").await;
    app.invite(&bob, &bobs, "ann", "VIEWER").await;

    app.erase("ann").await;

    let eves = app.data(&eve, LISTS, json!({})).await;
    assert_eq!(eves["lists"][0]["id"], json!(shared));
    assert_eq!(eves["lists"][0]["role"], json!("OWNER"));
    assert_eq!(
        eves["lists"][0]["members"],
        json!([{ "userId": "eve", "role": "OWNER" }])
    );
    assert_eq!(
        eves["lists"][0]["name"],
        json!(""),
        "the name ann typed is erased"
    );
    let (archived, members): (bool, i64) = sqlx::query_as(
        "SELECT archived, (SELECT count(*) FROM list_members WHERE list_id = $1::uuid)
           FROM lists WHERE list_id = $1::uuid",
    )
    .bind(&alone)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(archived, "a list she was alone in is archived");
    assert_eq!(members, 1);
    let waiting: i64 =
        sqlx::query_scalar("SELECT count(*) FROM list_invitations WHERE user_id = 'ann'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(waiting, 0, "her invitation was declined");
    let bobs_list = app.data(&bob, LISTS, json!({})).await;
    assert_eq!(
        bobs_list["lists"][0]["members"],
        json!([{ "userId": "bob", "role": "OWNER" }])
    );
    assert_eq!(
        bobs_list["lists"][0]["name"],
        json!("Bob's"),
        "bob's own text stays"
    );
    assert_eq!(
        app.data(&ann, INVITATIONS, json!({})).await["invitations"],
        json!([])
    );
}

const LIST_CHANGES: &str = "subscription { listChanges { kind listId event version userId } }";

/// The next list change on `socket` (subscription `id`), within 5 s.
async fn next_list_change(socket: &mut crate::ws_client::GqlSocket, id: &str) -> Value {
    socket
        .next_payload(id, Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("no list change on {id}"))["data"]["listChanges"]
        .clone()
}

/// `listChanges` tells every member of a change as it commits, an invitee
/// of their invitation, and a removed member of their removal, after which
/// nothing more of that list reaches them; a stranger hears nothing.
#[tokio::test(flavor = "multi_thread")]
async fn list_changes_reach_every_member_and_stop_at_a_removal() {
    use crate::ws_client::GqlSocket;

    let app = TestApp::spawn().await;
    // The API hears list changes once its listener is listening; a socket
    // that subscribed before is told to ask again (a resync), not a change.
    let listening = crate::helpers::eventually(Duration::from_secs(10), || async {
        let listening: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                             WHERE datname = current_database()
                               AND state = 'idle'
                               AND query ILIKE 'LISTEN%taskledger_lists%')",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        listening.then_some(())
    })
    .await;
    assert!(listening.is_some(), "the API listens for list changes");
    let (ann, bob, zed) = (app.token("ann"), app.token("bob"), app.token("zed"));
    let mut anns = GqlSocket::connect(&app.address, &ann).await;
    anns.subscribe("a", LIST_CHANGES, json!({})).await;
    let mut bobs = GqlSocket::connect(&app.address, &bob).await;
    bobs.subscribe("b", LIST_CHANGES, json!({})).await;
    let mut zeds = GqlSocket::connect(&app.address, &zed).await;
    zeds.subscribe("z", LIST_CHANGES, json!({})).await;
    // The subscriptions are joined before the changes below.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let list = app.new_list(&ann, "Garden").await;
    let created = next_list_change(&mut anns, "a").await;
    assert_eq!(created["event"], json!("ListCreated"));
    assert_eq!(created["listId"], json!(list));

    let invitation = app.invite(&ann, &list, "bob", "EDITOR").await;
    for (socket, id) in [(&mut anns, "a"), (&mut bobs, "b")] {
        let invited = next_list_change(socket, id).await;
        assert_eq!(invited["event"], json!("ListMemberInvited"));
        assert_eq!(invited["userId"], json!("bob"));
        assert_eq!(invited["version"], json!(2));
    }
    app.data(&bob, ACCEPT, json!({ "id": invitation })).await;
    app.data(&ann, RENAME, json!({ "id": list, "name": "Vegetables" }))
        .await;
    for (socket, id) in [(&mut anns, "a"), (&mut bobs, "b")] {
        assert_eq!(
            next_list_change(socket, id).await["event"],
            json!("ListInvitationAccepted")
        );
        assert_eq!(
            next_list_change(socket, id).await["event"],
            json!("ListRenamed")
        );
    }

    // Removed: bob hears of it, then nothing more of the list.
    let started = std::time::Instant::now();
    app.data(&ann, REMOVE, json!({ "list": list, "user": "bob" }))
        .await;
    let removed = next_list_change(&mut bobs, "b").await;
    assert_eq!(removed["event"], json!("ListMemberRemoved"));
    assert_eq!(removed["userId"], json!("bob"));
    eprintln!(
        "removal to the removed member's socket: {:?}",
        started.elapsed()
    );
    assert_eq!(
        next_list_change(&mut anns, "a").await["event"],
        json!("ListMemberRemoved")
    );
    app.data(&ann, RENAME, json!({ "id": list, "name": "Secret" }))
        .await;
    assert_eq!(
        next_list_change(&mut anns, "a").await["event"],
        json!("ListRenamed")
    );
    assert!(
        bobs.next_payload("b", Duration::from_secs(1))
            .await
            .is_none(),
        "a removed member hears nothing more of the list"
    );
    assert!(
        zeds.next_payload("z", Duration::from_millis(200))
            .await
            .is_none(),
        "a stranger hears nothing"
    );
}

/// The list's events so far.
async fn list_sequence(app: &TestApp, list: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(max(sequence), 0) FROM events
          WHERE aggregate_type = 'List' AND aggregate_id = $1",
    )
    .bind(list)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// The list's snapshot: its sequence and whose key sealed it.
async fn list_snapshot(app: &TestApp, list: &str) -> Option<(i64, Option<String>)> {
    sqlx::query_as(
        "SELECT sequence, sealed_by FROM task_snapshots
          WHERE aggregate_type = 'List' AND aggregate_id = $1",
    )
    .bind(list)
    .fetch_optional(&app.pool)
    .await
    .unwrap()
}

/// Renames `list` by `owner`'s user, alternating two names with `word` in
/// them, until it holds `events` events.
async fn rename_until(app: &TestApp, owner: &str, list: &str, word: &str, events: i64) {
    while list_sequence(app, list).await < events {
        let n = list_sequence(app, list).await;
        let name = format!("{word} {}", ["one", "two"][(n % 2) as usize]);
        app.data(owner, RENAME, json!({ "id": list, "name": name }))
            .await;
    }
}

/// A list's folded state every 25 events, sealed like its events: a list
/// renamed for years loads one snapshot and what came after it, and one
/// that no longer reads is passed over.
#[tokio::test]
async fn a_list_with_a_long_history_loads_from_its_snapshot() {
    let app = TestApp::spawn().await;
    let ann = app.token("ann");
    let list = app.new_list(&ann, "Errands").await;
    rename_until(&app, &ann, &list, "Errands", 60).await;
    assert_eq!(
        list_snapshot(&app, &list).await,
        Some((50, Some("ann".to_owned())))
    );
    let clear: bool = sqlx::query_scalar(
        "SELECT state::text LIKE '%Errands%' FROM task_snapshots WHERE aggregate_id = $1",
    )
    .bind(&list)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(!clear, "the name is sealed in the snapshot");

    let renamed = app
        .data(&ann, RENAME, json!({ "id": list, "name": "Weekend" }))
        .await;
    assert_eq!(renamed["renameList"]["version"], 61);
    // A snapshot of another shape (the list changed since) is passed over.
    sqlx::query("UPDATE task_snapshots SET state = '{\"shape\": \"old\"}' WHERE aggregate_id = $1")
        .bind(&list)
        .execute(&app.pool)
        .await
        .unwrap();
    let renamed = app
        .data(&ann, RENAME, json!({ "id": list, "name": "Errands" }))
        .await;
    assert_eq!(renamed["renameList"]["version"], 62);
    let lists = app.data(&ann, LISTS, json!({})).await;
    assert_eq!(lists["lists"][0]["name"], "Errands");
}

/// A list ann owns, named by her, whose snapshot eve's accepting took
/// (sealed with eve's key, holding ann's name); its id.
async fn list_snapshot_sealed_by_eve(app: &TestApp, word: &str) -> String {
    let (ann, eve) = (app.token("ann"), app.token("eve"));
    let list = app.new_list(&ann, &format!("{word} one")).await;
    rename_until(app, &ann, &list, word, 23).await;
    let invitation = app.invite(&ann, &list, "eve", "EDITOR").await;
    app.data(&eve, ACCEPT, json!({ "id": invitation })).await;
    assert_eq!(
        list_snapshot(app, &list).await,
        Some((25, Some("eve".to_owned())))
    );
    list
}

/// What the owner typed does not outlive her erasure inside a list's
/// snapshot a member's commit sealed with his own key.
#[tokio::test(flavor = "multi_thread")]
async fn a_lists_snapshot_holding_an_erased_owners_name_goes_with_her_key() {
    let app = TestApp::spawn().await;
    let list = list_snapshot_sealed_by_eve(&app, "quokka").await;
    app.erase("ann").await;
    assert_eq!(
        list_snapshot(&app, &list).await,
        None,
        "the snapshot with ann's name went with her key"
    );
    // Eve, the owner now, goes on with the list, folded from its events.
    let eve = app.token("eve");
    let renamed = app
        .data(&eve, RENAME, json!({ "id": list, "name": "Eve's" }))
        .await;
    let expected = list_sequence(&app, &list).await;
    assert_eq!(renamed["renameList"]["version"], expected);
}

/// A list's snapshot sealed by a member who is then erased is passed over:
/// the list is folded from its events, and the name its owner typed stays.
#[tokio::test(flavor = "multi_thread")]
async fn a_lists_snapshot_sealed_by_an_erased_member_is_passed_over() {
    let app = TestApp::spawn().await;
    let list = list_snapshot_sealed_by_eve(&app, "wombat").await;
    app.erase("eve").await;
    let store = cqrs_es::persist::PersistedEventStore::<_, domain::list::List>::new_snapshot_store(
        event_store::repository::EventRepository::new(app.pool.clone()),
        event_store::repository::SNAPSHOT_EVERY,
    );
    let loaded = cqrs_es::EventStore::load_aggregate(&store, &list)
        .await
        .unwrap();
    assert_eq!(
        loaded.aggregate.name(),
        "wombat one",
        "the name ann typed last"
    );
    assert_eq!(
        i64::try_from(loaded.current_sequence).unwrap(),
        list_sequence(&app, &list).await
    );
}
