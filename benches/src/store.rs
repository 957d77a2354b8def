//! A store of generated tasks for the benchmarks that read the event store
//! (rebuild, export): a template task goes through GraphQL once per kind of
//! change, so the store holds a real event of each kind; then N tasks of five
//! events each (created, priority set, tags changed, edited, then completed
//! or given a due date) are generated from those templates in SQL. The
//! generated events are plain, as events stored before sealing began: SQL
//! holds no data key, and a box copied to another task would not open
//! (docs/adr/0014). What opening costs per event is `./dev bench sealing`'s.

use anyhow::Context;
use serde_json::json;
use sqlx::PgPool;

use crate::{bench_token, graphql};

/// Events per generated task.
pub const EVENTS_PER_TASK: i64 = 5;

/// The events a template task stored, one per kind of change, by type.
pub async fn template_task(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let token = bench_token("bench")?;
    let created = graphql(
        client,
        url,
        &token,
        "mutation { createTask(input: {title: \"template\", description: \"a template task\", tags: [\"bench\"]}) { taskId } }",
        json!({}),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let id = created["data"]["createTask"]["taskId"]
        .as_str()
        .context("a task id")?
        .to_owned();
    for change in [
        "updateTask(input: {id: $id, title: \"template edited\"}) { version }",
        "setPriority(id: $id, priority: HIGH) { version }",
        "addTags(id: $id, tags: [\"work\"]) { version }",
        "setDueDate(id: $id, dueAt: \"2027-01-15T09:00:00Z\") { version }",
        "completeTask(id: $id) { version }",
    ] {
        graphql(
            client,
            url,
            &token,
            &format!("mutation($id: ID!) {{ {change} }}"),
            json!({ "id": id }),
        )
        .await
        .map_err(anyhow::Error::msg)?;
    }
    Ok(id)
}

/// `tasks` tasks of five events each, generated from the template's events
/// ten thousand tasks per statement, owned by `<owners>0` to
/// `<owners><users - 1>`.
pub async fn store(
    pool: &PgPool,
    template: &str,
    tasks: i64,
    users: i64,
    owners: &str,
) -> anyhow::Result<()> {
    const CHUNK: i64 = 10_000;
    let mut stored = 0;
    while stored < tasks {
        let chunk = (tasks - stored).min(CHUNK);
        sqlx::query(
            "WITH words (w) AS (VALUES (ARRAY['budget', 'report', 'call', 'dentist', 'groceries',
                     'invoice', 'plan', 'review', 'meeting', 'garden', 'taxes', 'car', 'birthday',
                     'flight', 'paint', 'Müller', 'café', 'naïve', 'übung', 'straße'])),
                  tasks AS (
                 SELECT i, gen_random_uuid()::text AS id, $5 || (i % $3) AS owner,
                        'task ' || i || ' ' || w[1 + i % 20] || ' ' || w[1 + (i / 20) % 20] AS title
                   FROM generate_series($1::bigint, $2::bigint) AS i, words)
             INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, metadata)
             SELECT 'Task', n.id, k.seq, t.event_type, t.event_version,
                    CASE t.event_type
                      WHEN 'TaskCreated' THEN jsonb_build_object('TaskCreated',
                          (t.payload::jsonb -> 'TaskCreated') - 'sealed'
                          || jsonb_build_object('task_id', n.id, 'user_id', n.owner,
                                                'title', n.title, 'description', 'a template task',
                                                'tags', jsonb_build_array('bench')))
                      WHEN 'TaskEdited' THEN jsonb_build_object('TaskEdited',
                          (t.payload::jsonb -> 'TaskEdited') - 'sealed'
                          || jsonb_build_object('title', n.title || ' (edited)',
                                                'description', 'a template task'))
                      WHEN 'TaskTagsChanged' THEN jsonb_build_object('TaskTagsChanged',
                          (t.payload::jsonb -> 'TaskTagsChanged') - 'sealed'
                          || jsonb_build_object('tags', jsonb_build_array('bench', 'work')))
                      ELSE t.payload::jsonb
                    END::json,
                    jsonb_set(t.metadata::jsonb, '{user_id}', to_jsonb(n.owner))::json
               FROM tasks AS n
               CROSS JOIN (VALUES (1, 'TaskCreated'), (2, 'TaskPrioritySet'),
                                  (3, 'TaskTagsChanged'), (4, 'TaskEdited'), (5, NULL)) AS k (seq, kind)
               JOIN events AS t
                 ON t.aggregate_type = 'Task' AND t.aggregate_id = $4
                AND t.event_type = coalesce(k.kind, CASE WHEN n.i % 2 = 0 THEN 'TaskCompleted'
                                                         ELSE 'TaskDueDateSet' END)
              ORDER BY n.i, k.seq",
        )
        .bind(stored)
        .bind(stored + chunk - 1)
        .bind(users)
        .bind(template)
        .bind(owners)
        .execute(pool)
        .await?;
        stored += chunk;
        eprint!("\rstoring tasks: {stored}/{tasks}");
    }
    eprintln!();
    Ok(())
}
