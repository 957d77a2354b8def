//! `taskledger verify`: the read model against the event store, row by row.

use serde_json::json;
use taskledger::Settings;

use crate::helpers::{assert_no_errors, TestApp};

/// Runs `taskledger verify` on the settings' database: whether it passed,
/// and what it printed (standard output, then errors).
pub fn run_verify(settings: &Settings) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_taskledger"))
        .arg("verify")
        .env("TASKLEDGER_ENV", "local")
        .env(
            "DATABASE_URL",
            settings.common.database_url.as_deref().unwrap(),
        )
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test]
async fn verify_passes_on_a_faithful_read_model_and_names_every_row_that_is_not() {
    let app = TestApp::spawn().await;
    let alice = app.token("alice");
    let mut last = (String::new(), 0);
    for (n, input) in [
        json!({"title": "plain"}),
        json!({"title": "tagged", "tags": ["work/team", "home"], "priority": "URGENT"}),
        json!({"title": "due", "dueAt": "2027-03-26T08:00:00Z", "timeZone": "Europe/Berlin",
               "reminders": [{"minutesBefore": 30}], "recurrence": "FREQ=DAILY"}),
        json!({"title": "all day", "dueDate": "2027-10-31", "timeZone": "Europe/Berlin"}),
    ]
    .into_iter()
    .enumerate()
    {
        let body = app
            .graphql(
                Some(&alice),
                "mutation($input: CreateTaskInput!) { createTask(input: $input) { taskId version } }",
                json!({ "input": input }),
            )
            .await;
        assert_no_errors(&body);
        let id = body["data"]["createTask"]["taskId"]
            .as_str()
            .unwrap()
            .to_owned();
        let mutation = match n {
            0 => "mutation($id: ID!) { deleteTask(id: $id) { version } }",
            _ => "mutation($id: ID!) { completeTask(id: $id) { version } }",
        };
        let body = app
            .graphql(Some(&alice), mutation, json!({ "id": id }))
            .await;
        assert_no_errors(&body);
        last = (id, 2);
    }
    app.task_at_version(&alice, &last.0, last.1).await;
    // The recurring task's next occurrence, created by the processor a moment
    // after the completion: in the store, then in the read model.
    crate::helpers::eventually(std::time::Duration::from_secs(15), || async {
        let tasks: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT aggregate_id) FROM events WHERE aggregate_type = 'Task'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        (tasks == 5
            && crate::helpers::read_model_disagreements(&app.pool)
                .await
                .is_empty())
        .then_some(())
    })
    .await
    .expect("the read model catches up");

    let (passed, printed) = run_verify(&app.settings);
    assert!(passed, "{printed}");
    assert!(printed.contains("5 tasks"), "{printed}");
    assert!(printed.contains("0 differ"), "{printed}");

    // Tamper with one row and lose another: both named, and verify fails.
    let tampered: String = sqlx::query_scalar(
        "UPDATE task_list SET title = 'tampered' WHERE title = 'tagged' RETURNING id::text",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let lost: String =
        sqlx::query_scalar("DELETE FROM task_list WHERE title = 'plain' RETURNING id::text")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let (passed, printed) = run_verify(&app.settings);
    assert!(!passed, "{printed}");
    assert!(
        printed.contains(&format!(
            "task {tampered}: title: store \"tagged\", read model \"tampered\""
        )),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "task {lost}: in the event store, missing from the read model"
        )),
        "{printed}"
    );
    assert!(printed.contains("2 differ"), "{printed}");
}
