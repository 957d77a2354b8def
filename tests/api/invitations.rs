//! An invitation to a list is a notification in the invitee's inbox and on
//! their `notificationReceived` feed (issue 27, projections migration 2015),
//! and nobody else's. It names the list only while the invitee may see it,
//! takes `markNotificationsRead` as a reminder does, refuses a snooze, and
//! leaves with the invitee's erasure.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{error_code, TestApp};
use crate::ws_client::GqlSocket;

const RENAME: &str =
    "mutation($id: ID!, $name: String!) { renameList(id: $id, name: $name) { version } }";
const ACCEPT: &str = "mutation($id: ID!) { acceptInvitation(id: $id) { listId } }";
const DECLINE: &str = "mutation($id: ID!) { declineInvitation(id: $id) { listId } }";
const FIELDS: &str = "id kind taskId title remindAt firedAt read \
                      invitation { id listId listName role from invitedAt }";
const RECEIVED: &str =
    "subscription { notificationReceived { id kind taskId title invitation { listId listName role from } } }";
const MARK: &str = "mutation($ids: [ID!]!) { markNotificationsRead(ids: $ids) }";
const SNOOZE: &str = "mutation($id: ID!) { snoozeReminder(notificationId: $id, minutes: 5) }";

/// The caller's inbox: its notifications, newest first, and the unread count.
async fn inbox(app: &TestApp, token: &str) -> (Vec<Value>, i64) {
    let data = app.data(token,
        &format!(
            "{{ unreadNotificationCount notifications(first: 50) {{ edges {{ node {{ {FIELDS} }} }} }} }}"
        ),
        json!({}),
    )
    .await;
    let nodes = data["notifications"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"].clone())
        .collect();
    (nodes, data["unreadNotificationCount"].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invitation_reaches_the_invitees_inbox_and_feed_and_no_one_elses() {
    let app = TestApp::spawn().await;
    let (ann, bob, zed) = (app.token("ann"), app.token("bob"), app.token("zed"));
    let mut bobs = GqlSocket::connect(&app.address, &bob).await;
    bobs.subscribe("b", RECEIVED, json!({})).await;
    let mut zeds = GqlSocket::connect(&app.address, &zed).await;
    zeds.subscribe("z", RECEIVED, json!({})).await;
    let mut anns = GqlSocket::connect(&app.address, &ann).await;
    anns.subscribe("a", RECEIVED, json!({})).await;
    // The subscriptions are joined before the invitation.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let list = app.new_list(&ann, "Garden").await;
    let invitation = app.invite(&ann, &list, "bob", "EDITOR").await;

    // Live: bob's feed tells of it, with the list named.
    let live = bobs
        .next_payload("b", Duration::from_secs(5))
        .await
        .expect("bob's feed tells of his invitation")["data"]["notificationReceived"]
        .clone();
    assert_eq!(live["id"], json!(invitation));
    assert_eq!(live["kind"], json!("INVITATION"));
    assert_eq!(live["taskId"], Value::Null);
    assert_eq!(live["title"], json!("Garden"));
    assert_eq!(
        live["invitation"],
        json!({ "listId": list, "listName": "Garden", "role": "EDITOR", "from": "ann" })
    );
    for (socket, id, who) in [
        (&mut zeds, "z", "a stranger"),
        (&mut anns, "a", "the inviter"),
    ] {
        assert!(
            socket
                .next_payload(id, Duration::from_millis(500))
                .await
                .is_none(),
            "{who} hears nothing of bob's invitation"
        );
    }

    // The inbox: bob's alone, unread.
    let (notes, unread) = inbox(&app, &bob).await;
    assert_eq!(unread, 1);
    assert_eq!(notes.len(), 1);
    let note = &notes[0];
    assert_eq!(note["id"], json!(invitation));
    assert_eq!(note["kind"], json!("INVITATION"));
    assert_eq!(note["taskId"], Value::Null);
    assert_eq!(note["title"], json!("Garden"));
    assert_eq!(note["read"], json!(false));
    assert_eq!(note["invitation"]["id"], json!(invitation));
    assert_eq!(note["invitation"]["listName"], json!("Garden"));
    assert_eq!(note["invitation"]["role"], json!("EDITOR"));
    assert_eq!(note["invitation"]["from"], json!("ann"));
    assert_eq!(note["remindAt"], note["firedAt"]);
    for token in [&ann, &zed] {
        assert_eq!(inbox(&app, token).await, (vec![], 0));
    }

    // Nobody else marks it read; it is no reminder to snooze.
    assert_eq!(
        app.data(&zed, MARK, json!({ "ids": [invitation] })).await["markNotificationsRead"],
        json!(0)
    );
    let body = app
        .graphql(Some(&zed), SNOOZE, json!({ "id": invitation }))
        .await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    let body = app
        .graphql(Some(&bob), SNOOZE, json!({ "id": invitation }))
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("invitation"),
        "{body}"
    );
    assert_eq!(
        app.data(&bob, MARK, json!({ "ids": [invitation] })).await["markNotificationsRead"],
        json!(1)
    );
    assert_eq!(inbox(&app, &bob).await.1, 0);

    // The notification's id answers the invitation; a member sees the
    // list's name as it is now.
    app.data(&bob, ACCEPT, json!({ "id": invitation })).await;
    app.data(&ann, RENAME, json!({ "id": list, "name": "Vegetables" }))
        .await;
    let (notes, _) = inbox(&app, &bob).await;
    assert_eq!(notes[0]["title"], json!("Vegetables"));
    assert_eq!(notes[0]["read"], json!(true));
}

/// Once the invitee declined, or the list is no longer theirs to see, the
/// notification stays but names nothing of the list; an erased invitee's
/// inbox goes with them.
#[tokio::test(flavor = "multi_thread")]
async fn an_invitation_names_the_list_only_while_the_invitee_may_see_it() {
    let app = TestApp::spawn().await;
    let (ann, cat) = (app.token("ann"), app.token("cat"));
    let list = app.new_list(&ann, "Secret plans").await;
    let first = app.invite(&ann, &list, "cat", "VIEWER").await;
    assert_eq!(
        inbox(&app, &cat).await.0[0]["invitation"]["listName"],
        json!("Secret plans")
    );
    app.data(&cat, DECLINE, json!({ "id": first })).await;
    app.data(&ann, RENAME, json!({ "id": list, "name": "Renamed after" }))
        .await;
    let (notes, unread) = inbox(&app, &cat).await;
    assert_eq!(unread, 1, "declining reads nothing");
    assert_eq!(notes[0]["title"], json!(""));
    assert_eq!(notes[0]["invitation"]["listName"], json!(""));
    assert_eq!(notes[0]["invitation"]["role"], json!("VIEWER"));

    // Invited again: a second notification, which names it again.
    let second = app.invite(&ann, &list, "cat", "EDITOR").await;
    let (notes, unread) = inbox(&app, &cat).await;
    assert_eq!(unread, 2);
    assert_eq!(notes[0]["id"], json!(second));
    assert_eq!(notes[0]["title"], json!("Renamed after"));
    assert_eq!(notes[1]["id"], json!(first));
    assert_eq!(
        notes[1]["title"],
        json!("Renamed after"),
        "while an invitation waits, every notification of the list names it"
    );

    // Erased, cat's inbox goes with her.
    app.erase("cat").await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications WHERE user_id = 'cat'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}
