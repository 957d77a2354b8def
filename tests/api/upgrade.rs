//! Upgrading a database that already holds tasks: what later migrations
//! derive from stored rows must match what they derive for new ones.

use serde_json::{json, Value};
use taskledger::Roles;

use crate::helpers::{assert_no_errors, fresh_settings, TestApp};

/// Fresh settings and a pool on their database, the event store migrated
/// (the read model not yet).
async fn fresh_store() -> (taskledger::Settings, sqlx::PgPool) {
    let settings = fresh_settings().await;
    let pool = event_store::connect(settings.common.database_url().unwrap(), 2)
        .await
        .unwrap();
    event_store::migrate(&pool).await.unwrap();
    (settings, pool)
}

#[tokio::test]
async fn owner_keyed_search_word_lists_and_kept_counts_are_derived_for_existing_tasks() {
    let (settings, pool) = fresh_store().await;
    // The read model as the search-and-sort migration (2003) left it, with tasks in it.
    let mut before = projections::migrator();
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version <= 2003)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO task_list (id, user_id, title, description, status, version, created_at, updated_at,
                                priority, deleted_at)
         VALUES (gen_random_uuid(), 'alice', 'Write quarterly report', 'milk the numbers', 'open', 1, now() - interval '4 min', now(), 3, NULL),
                (gen_random_uuid(), 'alice', 'Buy milk', NULL, 'completed', 2, now() - interval '3 min', now(), 1, NULL),
                (gen_random_uuid(), 'alice', 'Renew passport', NULL, 'completed', 3, now() - interval '2 min', now(), 1, now()),
                (gen_random_uuid(), 'bob', 'Buy milk too', NULL, 'open', 1, now() - interval '1 min', now(), 0, NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    // Starting Taskledger applies the rest.
    let app = TestApp::spawn_with(settings, Roles::API).await;
    let alice = app.token("alice");
    let titles = |variables: Value| {
        let (app, alice) = (&app, &alice);
        async move {
            let body = app
                .graphql(
                    Some(alice),
                    "query($filter: TaskFilter, $search: TaskSearch) {
                       tasks(filter: $filter, search: $search) { totalCount nodes { title } } }",
                    variables,
                )
                .await;
            assert_no_errors(&body);
            let titles: Vec<String> = body["data"]["tasks"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["title"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(body["data"]["tasks"]["totalCount"], titles.len());
            titles
        }
    };
    let search = |query: &str, mode: &str| json!({ "search": { "query": query, "mode": mode } });
    assert_eq!(
        titles(search("milk", "FULL_TEXT")).await,
        ["Buy milk", "Write quarterly report"]
    );
    assert_eq!(
        titles(search("quartrly", "FUZZY")).await,
        ["Write quarterly report"]
    );
    assert_eq!(
        titles(json!({ "filter": { "status": ["DELETED"] }, "search": { "query": "pasport", "mode": "FUZZY" } })).await,
        ["Renew passport"]
    );
    assert_eq!(titles(search("too", "PREFIX")).await, Vec::<String>::new());
    // Kept counts, per status and priority, for tasks stored before (newest first).
    assert_eq!(
        titles(
            json!({ "filter": { "status": ["COMPLETED", "DELETED"], "priority": { "eq": "LOW" } } })
        )
        .await,
        ["Renew passport", "Buy milk"]
    );
    let body = app
        .graphql(
            Some(&alice),
            "{ a: tasks(filter: { status: [DELETED] }) { totalCount }
               b: tasks(filter: { status: [COMPLETED], priority: { gte: LOW } }) { totalCount }
               c: tasks(filter: { not: { priority: { in: [HIGH] } } }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_no_errors(&body);
    assert_eq!(
        body["data"],
        json!({ "a": { "totalCount": 1 }, "b": { "totalCount": 1 }, "c": { "totalCount": 1 } })
    );
}

/// Migration 2016 keys the search words with `replace` instead of 2008's
/// regular expression: for hostile titles, random printable text and words
/// too long to carry the key, both give the same vector.
#[tokio::test]
async fn owner_keyed_words_are_the_same_without_the_regular_expression() {
    let (_, pool) = fresh_store().await;
    projections::migrator().run(&pool).await.unwrap();
    let mut db = pool.acquire().await.unwrap();
    sqlx::raw_sql(
        r#"CREATE FUNCTION pg_temp.keyed_by_regex(owner text, doc tsvector) RETURNS tsvector
               LANGUAGE sql IMMUTABLE STRICT
               RETURN regexp_replace(
                   CASE WHEN octet_length(doc::text) < 2046 - octet_length(owner_key(owner)) THEN doc
                        ELSE ts_delete(doc, ARRAY(SELECT lexeme FROM unnest(doc)
                                   WHERE octet_length(lexeme) > 2046 - octet_length(owner_key(owner))))
                   END::text,
                   '''((?:[^''\\]|''''|\\.)*)''', '''' || owner_key(owner) || '\1''', 'g')::tsvector;
           CREATE TEMP TABLE texts (body text);
           INSERT INTO texts VALUES
               ($$it's O'Neil's "quoted" text$$), ($$back\slash a\ b c\'d \\\\ '' ' '$$),
               ($$http://example.com/a b/c?x=1 'y z' mail: a.b@c.d /usr/local/bin file.txt$$),
               ($$ünïcödé façade straße 日本語 テスト 🎉 'ß'$$), ($$    $$), ($$''''$$), ($$a' 'b$$),
               ($$-1.5e10 3.14 v1.2.3 foo-bar-baz x_y_z <b>tag</b> &amp;$$), ($$\' \'' \\' $$),
               (repeat('abcdefghij', 300)), (repeat('a', 2040) || ' findme'), (repeat('word ', 600));
           SELECT setseed(0.25);
           INSERT INTO texts
           SELECT string_agg(chr(32 + (random() * 94)::int), '')
             FROM generate_series(1, 2000) AS t, generate_series(1, 60) AS c GROUP BY t;"#,
    )
    .execute(&mut *db)
    .await
    .unwrap();
    let (texts, differ): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE owner_tsvector(owner, doc)
                                           IS DISTINCT FROM pg_temp.keyed_by_regex(owner, doc))
           FROM (SELECT 'user' || length(body) AS owner,
                        setweight(to_tsvector('english', body), 'A')
                        || setweight(to_tsvector('simple', body), 'B') AS doc
                   FROM texts) AS words",
    )
    .fetch_one(&mut *db)
    .await
    .unwrap();
    assert_eq!(texts, 2012);
    assert_eq!(differ, 0, "vectors that differ, of {texts}");
}

/// Migration 2017 counts the word list only for titles whose changes do not
/// cancel, and groups changes before counting them: after statements that
/// insert, complete, rename, retag, move and trash many tasks at once, the
/// kept counts, tag counts and word list are still a recount of the rows.
#[tokio::test]
async fn kept_counts_and_the_word_list_stay_a_recount_of_the_rows() {
    let (_, pool) = fresh_store().await;
    projections::migrator().run(&pool).await.unwrap();
    let statements = [
        "INSERT INTO task_list (id, user_id, owner, list_id, title, description, status, version,
                                created_at, updated_at, priority, tags)
         SELECT gen_random_uuid(), 'user' || (n % 5), 'user' || (n % 5), gen_random_uuid(),
                (ARRAY['Buy milk', 'Write the report', 'buy oat milk', 'Call Ann', 'report milk'])[1 + n % 5]
                    || CASE WHEN n % 7 = 0 THEN ' ' || n ELSE '' END,
                NULL, 'open', 1, now(), now(), n % 5,
                CASE n % 4 WHEN 0 THEN ARRAY['home'] WHEN 1 THEN ARRAY['work', 'home']
                           WHEN 2 THEN ARRAY[]::text[] ELSE ARRAY['work', 'work'] END
           FROM generate_series(1, 300) AS n",
        // Completions: the title stays, the status moves.
        "UPDATE task_list SET status = 'completed', version = version + 1 WHERE priority IN (1, 3)",
        // Renames, some to a title another task has.
        "UPDATE task_list SET title = CASE WHEN priority = 0 THEN 'Buy milk' ELSE title || ' again' END,
                              version = version + 1
          WHERE title LIKE '%milk%'",
        // Retags, a move to another key, and trash, in one statement.
        "UPDATE task_list SET tags = CASE WHEN status = 'open' THEN ARRAY['errand'] ELSE tags END,
                              user_id = CASE WHEN title LIKE 'Call%' THEN 'user9' ELSE user_id END,
                              deleted_at = CASE WHEN priority = 4 THEN now() END,
                              version = version + 1
          WHERE true",
        // Back out of the trash, completed again, renamed back.
        "UPDATE task_list SET deleted_at = NULL, status = 'open', title = replace(title, ' again', ''),
                              version = version + 1
          WHERE deleted_at IS NOT NULL OR title LIKE '%report%'",
    ];
    for statement in statements {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    let differences = |kept: String, recount: String| {
        let pool = pool.clone();
        async move {
            let sql = format!(
                "SELECT count(*) FROM (({kept} EXCEPT {recount}) UNION ALL ({recount} EXCEPT {kept})) AS d"
            );
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    // The count of each priority, 0 to 4, among the rows that `filter` holds.
    let by_priority = |filter: &str| {
        let ranks: Vec<String> = (0..5)
            .map(|rank| format!("count(*) FILTER (WHERE {filter} AND priority = {rank})"))
            .collect();
        format!("ARRAY[{}]", ranks.join(", "))
    };
    let (open, completed, trashed) = (
        "deleted_at IS NULL AND status = 'open'",
        "deleted_at IS NULL AND status = 'completed'",
        "deleted_at IS NOT NULL",
    );
    let stats = differences(
        "SELECT user_id, open, completed, deleted, open_by_priority, completed_by_priority,
                deleted_by_priority
           FROM task_stats WHERE open + completed + deleted > 0"
            .to_owned(),
        format!(
            "SELECT user_id, count(*) FILTER (WHERE {open}), count(*) FILTER (WHERE {completed}),
                    count(*) FILTER (WHERE {trashed}), {}, {}, {}
               FROM task_list GROUP BY user_id",
            by_priority(open),
            by_priority(completed),
            by_priority(trashed)
        ),
    )
    .await;
    let tags = differences(
        "SELECT user_id, tag, open, total FROM tag_counts WHERE total <> 0".to_owned(),
        "SELECT t.user_id, tag, count(*) FILTER (WHERE t.status = 'open'), count(*)
           FROM task_list AS t, LATERAL (SELECT DISTINCT unnest(t.tags) AS tag) AS tags
          WHERE t.deleted_at IS NULL GROUP BY t.user_id, tag"
            .to_owned(),
    )
    .await;
    let words = differences(
        "SELECT user_id, word, tasks FROM task_words WHERE tasks <> 0".to_owned(),
        "SELECT user_id, word, count(*) FROM task_list, title_words(title) AS word GROUP BY 1, 2"
            .to_owned(),
    )
    .await;
    assert_eq!(
        (stats, tags, words),
        (0, 0, 0),
        "rows that differ from a recount"
    );
    let counted: i64 =
        sqlx::query_scalar("SELECT sum(open + completed + deleted)::bigint FROM task_stats")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(counted, 300);
}

#[tokio::test]
async fn each_users_writes_counted_by_their_inserts_are_counted_again_for_the_relay() {
    let settings = fresh_settings().await;
    let pool = event_store::connect(settings.common.database_url().unwrap(), 2)
        .await
        .unwrap();
    // The event store as it was while every insert counted its own events.
    let mut before = event_store::migrator();
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 1016)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&pool).await.unwrap();
    let insert = |user: &'static str, events: i32| {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             SELECT 'Task', gen_random_uuid()::text, 1, 'TaskCreated', '1.0', '{}', json_build_object('user_id', $1::text)
               FROM generate_series(1, $2)",
        )
        .bind(user)
        .bind(events)
    };
    insert("alice", 3).execute(&pool).await.unwrap();
    insert("bob", 2).execute(&pool).await.unwrap();
    event_store::migrate(&pool).await.unwrap();

    // Each user's stored events, as a read of their own writes counts them
    // (what the relay counted, and theirs after it), and as the relay
    // counted them. Where the count stands depends on every database's open
    // transactions (the horizon is the cluster's), so only the stored events
    // are compared until the relay's count is moved past them all.
    let counts = |pool: &sqlx::PgPool| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (String, i64, i64)>(
                "SELECT user_id, coalesce(w.events, 0), user_events_stored(user_id, 1000000)
                   FROM (VALUES ('alice'), ('bob')) AS u (user_id)
                   LEFT JOIN user_writes w USING (user_id)
                  ORDER BY user_id",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    let stored = |counts: Vec<(String, i64, i64)>| {
        counts
            .into_iter()
            .map(|(user, _, stored)| (user, stored))
            .collect::<Vec<_>>()
    };
    let count_through_the_last = || {
        sqlx::query(
            "SELECT user_writes_count_through(transaction_id, global_position)
               FROM events ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
        )
    };
    assert_eq!(
        stored(counts(&pool).await),
        [("alice".to_owned(), 3), ("bob".to_owned(), 2)]
    );
    // A later event is found after the count, until the relay counts it.
    insert("alice", 1).execute(&pool).await.unwrap();
    assert_eq!(
        stored(counts(&pool).await),
        [("alice".to_owned(), 4), ("bob".to_owned(), 2)]
    );
    count_through_the_last().execute(&pool).await.unwrap();
    assert_eq!(
        counts(&pool).await,
        [("alice".to_owned(), 4, 4), ("bob".to_owned(), 2, 2)]
    );
    // An erased user's count starts again at nothing, also with events of
    // theirs not yet counted.
    insert("bob", 1).execute(&pool).await.unwrap();
    sqlx::query("SELECT user_writes_forget('bob')")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(counts(&pool).await[1], ("bob".to_owned(), -1, 0));
    count_through_the_last().execute(&pool).await.unwrap();
    assert_eq!(counts(&pool).await[1], ("bob".to_owned(), 0, 0));
}
