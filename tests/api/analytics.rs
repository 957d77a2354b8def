//! The example analytics consumer (`analytics-example/`) on the real broker:
//! the whole history from a new group, each completion once however often it
//! is delivered, and each message checked against the published schema.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use analytics_example::{completions_per_day, run, Counters};
use chrono::Utc;
use rdkafka::producer::FutureRecord;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::helpers::{assert_no_errors, eventually, TestApp};

#[tokio::test]
async fn completions_per_day_count_each_completion_once_from_the_whole_history() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let complete = "mutation($id: ID!) { completeTask(id: $id) { version } }";
    for (token, title) in [(&alice, "a1"), (&alice, "a2"), (&bob, "b1")] {
        let (id, _) = app.create_task(token, title).await;
        assert_no_errors(&app.graphql(Some(token), complete, json!({"id": id})).await);
    }
    app.create_task(&bob, "never done").await;
    // A message that does not match the published schema.
    app.kafka()
        .producer()
        .unwrap()
        .send(
            FutureRecord::to(&app.settings.common.task_events_topic)
                .key("x")
                .payload(
                    r#"{"specversion": "1.0", "id": "x", "data": {"event_type": "TaskCompleted"}}"#,
                ),
            Duration::from_secs(5),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();

    // Started after the fact, with a group of its own: the whole history.
    let consume = |group: &'static str, counters: Arc<Counters>, stop: CancellationToken| {
        let (pool, kafka, topic) = (
            app.pool.clone(),
            app.kafka(),
            app.settings.common.task_events_topic.clone(),
        );
        tokio::spawn(async move { run(pool, kafka, &topic, group, counters, stop).await })
    };
    let first = Arc::new(Counters::default());
    let stop = CancellationToken::new();
    let running = consume("analytics-first", first.clone(), stop.clone());
    // 4 creations, 3 completions, 1 forged message.
    eventually(Duration::from_secs(20), || async {
        (first.messages.load(Ordering::Relaxed) >= 8).then_some(())
    })
    .await
    .expect("the consumer reads the whole history");
    stop.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(
        first.invalid.load(Ordering::Relaxed),
        1,
        "the forged message failed the schema"
    );
    assert_eq!(first.completions.load(Ordering::Relaxed), 3);
    let today = Utc::now().date_naive();
    let expected = vec![(today, "alice".to_owned(), 2), (today, "bob".to_owned(), 1)];
    assert_eq!(completions_per_day(&app.pool).await.unwrap(), expected);

    // Everything delivered again (a second group into the same table): no
    // completion counts twice.
    let again = Arc::new(Counters::default());
    let stop = CancellationToken::new();
    let running = consume("analytics-again", again.clone(), stop.clone());
    eventually(Duration::from_secs(20), || async {
        (again.messages.load(Ordering::Relaxed) >= 8).then_some(())
    })
    .await
    .expect("the second group reads the whole history too");
    stop.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(
        again.completions.load(Ordering::Relaxed),
        0,
        "all recognised"
    );
    assert_eq!(completions_per_day(&app.pool).await.unwrap(), expected);
}
