//! The pages a browser opens, in a real headless browser: Debian's chromium
//! driven by playwright-core (`tests/browser/`, installed by `./dev test`),
//! with every request beyond 127.0.0.1 refused.

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::header;
use taskledger::Roles;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use crate::helpers::{error_code, free_address, fresh_settings, start_api, TestApp};

/// Runs `tests/browser/SCRIPT BASE_URL` with node; panics with its output
/// unless it succeeds.
fn run_browser_script(script: &str, base_url: &str) {
    let dir = crate::helpers::repository_root().join("tests/browser");
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

/// The page's lists panel in headless Chromium, two people in two browser
/// contexts (`tests/browser/lists.mjs`): a list created and shared, the
/// invitation shown to its invitee and accepted, both pages showing both
/// members, a task one adds to the list shown on the other's page, and the
/// list and its task gone from the page of a member who left.
#[tokio::test(flavor = "multi_thread")]
async fn the_page_shares_a_list_between_two_people() {
    let app = TestApp::spawn().await;
    let address = app.address.clone();
    tokio::task::spawn_blocking(move || run_browser_script("lists.mjs", &address))
        .await
        .unwrap();
}

/// Quick add on the page (`tests/browser/quick-add.mjs`): a line of text
/// becomes a task whose due date, repeat, reminder, priority and tags the
/// list shows.
#[tokio::test(flavor = "multi_thread")]
async fn the_page_quick_adds_a_task_and_shows_its_due_date_repeat_and_reminder() {
    let app = TestApp::spawn_roles(Roles::ALL).await;
    let address = app.address.clone();
    tokio::task::spawn_blocking(move || run_browser_script("quick-add.mjs", &address))
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

/// The page in three tabs of headless Chromium (`tests/browser/app.mjs`):
/// one browser notification per reminder on time, changes in another tab
/// within 3 s, and reconnection after the API process restarts on the
/// same port. The API runs as a process of its own so it can be restarted;
/// the other roles run here.
#[tokio::test(flavor = "multi_thread")]
async fn the_page_notifies_once_across_tabs_streams_changes_and_survives_an_api_restart() {
    let settings = fresh_settings().await;
    let shutdown = CancellationToken::new();
    let backend = Roles {
        api: false,
        ..Roles::ALL
    };
    let _backend = taskledger::start(&settings, backend, shutdown.clone())
        .await
        .expect("the other roles start");
    let address = free_address();
    let mut api = start_api(&settings, &address).await;

    let dir = crate::helpers::repository_root().join("tests/browser");
    let mut browser = tokio::process::Command::new("node")
        .arg("app.mjs")
        .arg(format!("http://{address}"))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (./dev test installs it)");
    let mut stdin = browser.stdin.take().unwrap();
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let mut said = Vec::new();
    let run = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.trim() == "RESTART-API" {
                api.start_kill().unwrap();
                api.wait().await.unwrap();
                tokio::time::sleep(Duration::from_millis(500)).await;
                api = start_api(&settings, &address).await;
                stdin.write_all(b"restarted\n").await.unwrap();
            }
            said.push(line);
        }
        browser.wait_with_output().await.unwrap()
    };
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser test ends within two minutes");
    let said = said.join("\n");
    assert!(
        output.status.success(),
        "app.mjs failed:\n{said}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{said}");
    assert!(said.contains("OK notification after"), "{said}");
    shutdown.cancel();
}
