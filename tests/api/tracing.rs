//! Traces over OTLP: `taskledger all` as a process of its own exports to a
//! collector stand-in (OTLP/HTTP JSON, as an OpenTelemetry Collector takes
//! it), and one request's trace runs through the GraphQL request and the
//! command, is stored with the event, travels in the CloudEvents message, and
//! is linked from the relay's publish and each projection's apply.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::helpers::{eventually, fresh_settings, read_topic, role_process};

/// Every span exported so far, flattened out of the OTLP requests.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Value>>>);

impl Collector {
    async fn start(&self) -> String {
        let spans = self.0.clone();
        let app = Router::new().route(
            "/v1/traces",
            post(move |Json(body): Json<Value>| async move {
                let mut spans = spans.lock().unwrap();
                for resource in body["resourceSpans"].as_array().into_iter().flatten() {
                    let service = resource["resource"]["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|a| a["key"] == "service.name")
                        .map(|a| a["value"]["stringValue"].clone())
                        .unwrap_or_default();
                    for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                        for span in scope["spans"].as_array().into_iter().flatten() {
                            let mut span = span.clone();
                            span["service"] = service.clone();
                            spans.push(span);
                        }
                    }
                }
                Json(json!({}))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}")
    }

    fn spans(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }
}

fn linked_to(span: &Value, trace_id: &str) -> bool {
    span["links"].as_array().into_iter().flatten().any(|link| {
        link["traceId"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(trace_id))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn one_request_is_one_trace_from_graphql_through_the_topic_to_the_projections() {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let settings = fresh_settings().await;
    let address = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    let mut command = role_process(&settings, "all");
    command
        .env("TASKLEDGER_HTTP_ADDR", &address)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .env("RUST_LOG", "info,sqlx=warn,rdkafka=warn");
    let _taskledger = command.spawn().expect("taskledger starts");
    let client = reqwest::Client::new();
    eventually(Duration::from_secs(30), || async {
        let answer = client.get(format!("http://{address}/healthz")).send().await;
        answer.is_ok_and(|r| r.status() == 200).then_some(())
    })
    .await
    .expect("taskledger answers");

    // The caller traces its own request.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let token = api_core::auth::TokenVerifier::new(&api_core::auth::JwtSecret::local_development())
        .issue(
            &domain::values::UserId::parse("alice").unwrap(),
            chrono::Duration::minutes(5),
        );
    let answer: Value = client
        .post(format!("http://{address}/graphql"))
        .bearer_auth(token)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({ "query": "mutation { createTask(input: {title: \"Traced\"}) { taskId } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let task_id = answer["data"]["createTask"]["taskId"]
        .as_str()
        .expect("created")
        .to_owned();

    // The message carries the trace, as the CloudEvents tracing extension.
    let messages = read_topic(
        &settings.common.kafka(),
        &settings.common.task_events_topic,
        Duration::from_secs(20),
        |m| !m.is_empty(),
    )
    .await;
    let message = messages
        .iter()
        .map(|m| m.json())
        .find(|m| m["subject"] == task_id.as_str())
        .expect("published");
    let traceparent = message["traceparent"]
        .as_str()
        .expect("a traceparent attribute");
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "{traceparent}"
    );

    // The request, its command, the relay's publish and the projections' applies.
    let spans = eventually(Duration::from_secs(20), || async {
        let spans = collector.spans();
        let in_trace = |name: &str| {
            spans.iter().any(|s| {
                s["name"] == name
                    && s["traceId"]
                        .as_str()
                        .is_some_and(|t| t.eq_ignore_ascii_case(trace_id))
            })
        };
        let linked = |name: &str| {
            spans
                .iter()
                .any(|s| s["name"] == name && linked_to(s, trace_id))
        };
        (in_trace("graphql") && in_trace("execute") && linked("publish") && linked("apply_batch"))
            .then_some(spans)
    })
    .await
    .unwrap_or_else(|| {
        let names: Vec<Value> = collector
            .spans()
            .iter()
            .map(|s| json!([s["name"], s["traceId"]]))
            .collect();
        panic!("the trace did not reach every stage; spans seen: {names:?}")
    });
    let graphql = spans
        .iter()
        .find(|s| {
            s["name"] == "graphql"
                && s["traceId"]
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case(trace_id))
        })
        .unwrap();
    assert_eq!(
        graphql["parentSpanId"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("00f067aa0ba902b7")
    );
    assert_eq!(graphql["service"], "taskledger-all");
}
