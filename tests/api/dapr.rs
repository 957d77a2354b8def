//! The app's side of Dapr's contracts, called over HTTP as a sidecar calls
//! it: the `reminder-tick` cron binding on every role, and secrets read from
//! the sidecar's secrets API (answered here by a stand-in that speaks Dapr's
//! documented `GET /v1.0/secrets/<store>/<key>`, as no sidecar runs here).

use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sqlx::postgres::PgListener;
use taskledger::{Roles, Settings};

use crate::helpers::TestApp;

#[tokio::test]
async fn the_cron_binding_wakes_the_schedulers_from_a_worker_process() {
    let app = TestApp::spawn_roles(Roles::API).await;
    let mut settings = app.settings.clone();
    settings.common.http_addr = "127.0.0.1:0".into();
    let stop = tokio_util::sync::CancellationToken::new();
    let running = taskledger::start(&settings, Roles::SCHEDULER, stop.clone())
        .await
        .unwrap();
    let scheduler = format!("http://{}", running.ops_address.unwrap());

    let mut listener = PgListener::connect_with(&app.pool).await.unwrap();
    listener.listen("taskledger_reminders").await.unwrap();
    // Not on the public API: only Dapr's sidecar beside a worker calls it.
    let public = app
        .client
        .post(format!("{}/reminder-tick", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    for base in [scheduler.as_str()] {
        let url = format!("{base}/reminder-tick");
        // Dapr asks first whether the app takes the binding.
        let asked = app
            .client
            .request(reqwest::Method::OPTIONS, &url)
            .send()
            .await
            .unwrap();
        assert_eq!(asked.status(), 200, "{url}");
        // Dapr fires it on every replica: twice is as good as once.
        for _ in 0..2 {
            let fired = app.client.post(&url).json(&json!({})).send().await.unwrap();
            assert_eq!(fired.status(), 200, "{url}");
            let woke = tokio::time::timeout(Duration::from_secs(5), listener.recv())
                .await
                .expect("the schedulers' channel is notified")
                .unwrap();
            assert_eq!(woke.payload(), "tick");
        }
    }
    // Other methods on the binding are refused.
    let wrong = app
        .client
        .get(format!("{scheduler}/reminder-tick"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 405);
    stop.cancel();
    running.wait().await.unwrap();
}

/// A stand-in for the sidecar's secrets API holding `secrets` in store
/// `kubernetes`, answering at once.
async fn sidecar(secrets: &'static [(&'static str, &'static str)]) -> String {
    sidecar_after(secrets, Duration::ZERO).await
}

/// The same, listening only after `delay` (a sidecar still starting).
async fn sidecar_after(
    secrets: &'static [(&'static str, &'static str)],
    delay: Duration,
) -> String {
    let app = Router::new().route(
        "/v1.0/secrets/{store}/{key}",
        get(
            move |Path((store, key)): Path<(String, String)>| async move {
                match secrets.iter().find(|(k, _)| *k == key) {
                    Some((k, v)) if store == "kubernetes" => Ok(Json(json!({ *k: v }))),
                    _ => Err((
                        StatusCode::INTERNAL_SERVER_ERROR,
                        Json(json!({ "errorCode": "ERR_SECRET_GET" })),
                    )),
                }
            },
        ),
    );
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        axum::serve(listener, app).await
    });
    if delay.is_zero() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    format!("http://{address}")
}

#[tokio::test]
async fn secrets_not_in_the_environment_come_from_the_dapr_sidecar() {
    let url = sidecar(&[
        ("database-url", "postgres://from-dapr@db/taskledger"),
        ("master-key", "bWFzdGVyIGtleSBmcm9tIHRoZSBrdWJlcm5ldGVzIHN0"),
        ("jwt-secret", "a jwt secret from the kubernetes store"),
    ])
    .await;
    let mut settings = Settings::local();
    settings.common.dapr_secret_store = Some("kubernetes".into());
    taskledger::dapr::fill_secrets(&mut settings, &url)
        .await
        .unwrap();
    assert_eq!(
        settings.common.database_url.as_deref(),
        Some("postgres://from-dapr@db/taskledger")
    );
    assert_eq!(
        settings.api.jwt_secret.as_deref(),
        Some("a jwt secret from the kubernetes store")
    );
    assert_eq!(
        settings.common.master_key.as_deref(),
        Some("bWFzdGVyIGtleSBmcm9tIHRoZSBrdWJlcm5ldGVzIHN0")
    );

    // A sidecar that starts after the app is waited for.
    let late = sidecar_after(
        &[
            ("database-url", "postgres://late@db/x"),
            ("master-key", "late"),
            ("jwt-secret", "late"),
        ],
        Duration::from_secs(2),
    )
    .await;
    let mut settings = Settings::local();
    settings.common.dapr_secret_store = Some("kubernetes".into());
    taskledger::dapr::fill_secrets(&mut settings, &late)
        .await
        .unwrap();
    assert_eq!(
        settings.common.database_url.as_deref(),
        Some("postgres://late@db/x")
    );

    // What the environment gives wins; without a store nothing is asked.
    let mut given = Settings::local();
    given.common.dapr_secret_store = Some("kubernetes".into());
    given.common.database_url = Some("postgres://given@db/x".into());
    given.common.master_key = Some("given".into());
    given.api.jwt_secret = Some("given".into());
    taskledger::dapr::fill_secrets(&mut given, "http://127.0.0.1:9")
        .await
        .unwrap();
    assert_eq!(
        given.common.database_url.as_deref(),
        Some("postgres://given@db/x")
    );
    let mut plain = Settings::local();
    taskledger::dapr::fill_secrets(&mut plain, "http://127.0.0.1:9")
        .await
        .unwrap();
    assert!(plain.common.database_url.is_none());

    // A missing secret or store stops the start with a message naming it.
    let partial = sidecar(&[("database-url", "postgres://x@db/y"), ("master-key", "k")]).await;
    let mut settings = Settings::local();
    settings.common.dapr_secret_store = Some("kubernetes".into());
    let error = taskledger::dapr::fill_secrets(&mut settings, &partial)
        .await
        .unwrap_err();
    assert!(format!("{error:#}").contains("jwt-secret"), "{error:#}");
    let mut settings = Settings::local();
    settings.common.dapr_secret_store = Some("vault".into());
    let error = taskledger::dapr::fill_secrets(&mut settings, &partial)
        .await
        .unwrap_err();
    assert!(format!("{error:#}").contains("vault"), "{error:#}");
}
