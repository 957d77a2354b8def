//! Upgrading a read model that already holds tasks: what later migrations
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
