//! The pages a browser opens, in a real headless browser: Debian's chromium
//! driven by playwright-core (`tests/browser/`, installed by `./dev test`),
//! with every request beyond 127.0.0.1 refused.

use std::path::Path;
use std::process::Command;

use reqwest::header;
use taskledger::Roles;

use crate::helpers::{error_code, TestApp};

/// Runs `tests/browser/SCRIPT BASE_URL` with node; panics with its output
/// unless it succeeds.
fn run_browser_script(script: &str, base_url: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: ./dev test installs it (npm ci in tests/browser)"
    );
    let output = Command::new("node")
        .arg(script)
        .arg(base_url)
        .current_dir(&dir)
        .output()
        .expect("node runs (./dev test installs it)");
    assert!(
        output.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn graphiql_loads_the_schema_docs_in_chromium_from_our_own_server_alone() {
    let app = TestApp::spawn_roles(Roles::API).await;
    let address = app.address.clone();
    tokio::task::spawn_blocking(move || run_browser_script("graphiql.mjs", &address))
        .await
        .unwrap();
}

#[tokio::test]
async fn graphiql_assets_are_served_gzipped_under_a_same_origin_policy() {
    let app = TestApp::spawn_roles(Roles::API).await;
    let page = app
        .client
        .get(format!("{}/graphql", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("https://"),
        "the page names another origin: {html}"
    );

    let script = app
        .client
        .get(format!("{}/graphiql/graphiql.min.js", app.address))
        .header(header::ACCEPT_ENCODING, "gzip, deflate")
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert_eq!(script.headers()[header::CONTENT_ENCODING], "gzip");
    let bytes = script.bytes().await.unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "a gzip stream");

    let plain = app
        .client
        .get(format!("{}/graphiql/graphiql.min.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 406);
    assert_eq!(error_code(&plain.json().await.unwrap()), Some("VALIDATION"));

    let missing = app
        .client
        .get(format!("{}/graphiql/..%2Fsecret", app.address))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        error_code(&missing.json().await.unwrap()),
        Some("NOT_FOUND")
    );
}
