//! The shared-lists benchmark: how soon a removed member stops hearing of a
//! list, with 1,000 members' sockets. `taskledger all` runs as the release
//! binary in a process of its own. Lists of 50 (the most a list holds: an
//! owner and 49 members) give 1,000 members, each with a WebSocket
//! subscribed to `listChanges`. Then, while every owner renames its list
//! every second (`--rename-every-ms`; a change every member hears), the
//! owners remove their
//! members one by one at a steady rate. For each removal: the time from the
//! `removeMember` answer (its commit acknowledged) to the removed member's
//! socket receiving its `ListMemberRemoved`; and whether anything of that
//! list reached them after it (a leak). The baseline, in the same run: the
//! time from a rename's answer to each member's receipt of it.
//!
//! Run with `./dev bench lists`; `--help` for the knobs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use benches::chart::{BarChart, ChartsDir};
use benches::{bench_token, graphql, ChildApp, Latencies, Services};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(about = "Shared lists: removal to the removed member's socket, with 1,000 members")]
struct Args {
    /// Members in all, each with a socket.
    #[arg(long, default_value_t = 1000)]
    members: usize,
    /// Removals per second, across every list.
    #[arg(long, default_value_t = 50)]
    removals_per_second: u64,
    /// Each owner renames its list this often meanwhile (a change every
    /// member hears).
    #[arg(long, default_value_t = 1000)]
    rename_every_ms: u64,
    #[command(flatten)]
    services: Services,
    #[command(flatten)]
    charts: ChartsDir,
}

/// Members of one list besides its owner (a list holds 50 at most).
const PER_LIST: usize = 49;
const LIST_CHANGES: &str = "subscription { listChanges { listId event version userId } }";

/// What one member's socket heard: each list change with when it arrived.
type Heard = Arc<Mutex<Vec<(String, String, i64, Option<String>, Instant)>>>;

/// One member's socket, subscribed to `listChanges`, its messages recorded.
async fn listen(address: &str, token: &str, heard: Heard) -> anyhow::Result<()> {
    let mut request = format!("ws://{address}/graphql/ws").into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (socket, _) = tokio_tungstenite::connect_async(request).await?;
    let (mut sink, mut stream) = socket.split();
    let init =
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}});
    sink.send(Message::Text(init.to_string().into())).await?;
    match stream.next().await {
        Some(Ok(Message::Text(text))) if text.contains("connection_ack") => {}
        other => bail!("no connection_ack: {other:?}"),
    }
    let subscribe = json!({"id": "l", "type": "subscribe", "payload": {"query": LIST_CHANGES}});
    sink.send(Message::Text(subscribe.to_string().into()))
        .await?;
    tokio::spawn(async move {
        let _sink = sink; // the socket stays open as long as it reads
        while let Some(Ok(message)) = stream.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let at = Instant::now();
            let Ok(message) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let change = &message["payload"]["data"]["listChanges"];
            let (Some(list), Some(event)) = (change["listId"].as_str(), change["event"].as_str())
            else {
                continue;
            };
            heard.lock().unwrap().push((
                list.to_owned(),
                event.to_owned(),
                change["version"].as_i64().unwrap_or_default(),
                change["userId"].as_str().map(str::to_owned),
                at,
            ));
        }
    });
    Ok(())
}

async fn run(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    graphql(client, url, token, query, variables)
        .await
        .map_err(anyhow::Error::msg)
        .map(|body| body["data"].clone())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    infra::tls::install_crypto_provider();
    let args = Args::parse();
    let env = [("TASKLEDGER_MAX_CONNECTIONS", "8192".to_owned())];
    let app = ChildApp::start(&args.services, &env).await?;
    app.with(async |app| measure(&args, app).await).await
}

struct List {
    id: String,
    owner: String,
    members: Vec<String>,
}

async fn measure(args: &Args, app: &ChildApp) -> anyhow::Result<()> {
    let url = app.graphql_url();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let lists_count = args.members.div_ceil(PER_LIST);
    println!(
        "# Shared lists: {} members on {lists_count} lists, one socket each; `taskledger all` (release, its own process)",
        args.members
    );
    println!();

    // The lists, their members invited and joined (not measured).
    let mut lists = Vec::with_capacity(lists_count);
    let mut tokens: HashMap<String, String> = HashMap::new();
    let mut member = 0;
    for n in 0..lists_count {
        let owner = format!("owner-{n}");
        let owner_token = bench_token(&owner)?;
        let created = run(
            &client,
            &url,
            &owner_token,
            "mutation($n: String!) { createList(input: {name: $n}) { listId } }",
            json!({ "n": format!("list {n}") }),
        )
        .await?;
        let id = created["createList"]["listId"]
            .as_str()
            .context("a list id")?
            .to_owned();
        let mut members = Vec::new();
        while members.len() < PER_LIST && member < args.members {
            let user = format!("member-{member}");
            member += 1;
            let token = bench_token(&user)?;
            let invited = run(&client, &url, &owner_token, "mutation($l: ID!, $u: String!) { inviteToList(listId: $l, userId: $u, role: EDITOR) { invitationId } }", json!({ "l": id, "u": user })).await?;
            let invitation = invited["inviteToList"]["invitationId"].clone();
            run(
                &client,
                &url,
                &token,
                "mutation($i: ID!) { acceptInvitation(id: $i) { version } }",
                json!({ "i": invitation }),
            )
            .await?;
            tokens.insert(user.clone(), token);
            members.push(user);
            // Within the owner's budget (50 requests/s).
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tokens.insert(owner.clone(), owner_token);
        lists.push(List { id, owner, members });
    }

    // Every member's socket.
    let mut heard: HashMap<String, Heard> = HashMap::new();
    for list in &lists {
        for user in &list.members {
            let log: Heard = Arc::default();
            listen(&app.address, &tokens[user], log.clone()).await?;
            heard.insert(user.clone(), log);
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("{} sockets subscribed to listChanges.", heard.len());

    // Renames per list (every member hears each), and removals
    // at the given rate across lists, until every member is removed.
    let renames: Arc<Mutex<Vec<(String, i64, Instant)>>> = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut renamers = tokio::task::JoinSet::new();
    let every = Duration::from_millis(args.rename_every_ms);
    for list in &lists {
        let (client, url, token, id) = (
            client.clone(),
            url.clone(),
            tokens[&list.owner].clone(),
            list.id.clone(),
        );
        let (renames, stop) = (renames.clone(), stop.clone());
        renamers.spawn(async move {
            let mut n = 0;
            while !stop.is_cancelled() {
                if let Ok(data) = run(
                    &client,
                    &url,
                    &token,
                    "mutation($l: ID!, $n: String!) { renameList(id: $l, name: $n) { version } }",
                    json!({ "l": id, "n": format!("renamed {n}") }),
                )
                .await
                {
                    let version = data["renameList"]["version"].as_i64().unwrap_or_default();
                    renames
                        .lock()
                        .unwrap()
                        .push((id.clone(), version, Instant::now()));
                }
                n += 1;
                tokio::time::sleep(every).await;
            }
        });
    }
    let mut removals: Vec<(String, String, Instant)> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(
        1.0 / args.removals_per_second as f64,
    ));
    let mut failed = 0;
    let longest = lists.iter().map(|l| l.members.len()).max().unwrap_or(0);
    let started = Instant::now();
    for round in 0..longest {
        for list in &lists {
            let Some(user) = list.members.get(round) else {
                continue;
            };
            tick.tick().await;
            match run(&client, &url, &tokens[&list.owner], "mutation($l: ID!, $u: String!) { removeMember(listId: $l, userId: $u) { version } }", json!({ "l": list.id, "u": user })).await {
                Ok(_) => removals.push((list.id.clone(), user.clone(), Instant::now())),
                Err(_) => failed += 1,
            }
        }
    }
    let removing = started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    while renamers.join_next().await.is_some() {}

    // Removal → the removed member's socket, and anything after it.
    let mut removal = Latencies::default();
    let (mut missed, mut leaks) = (0, 0);
    for (list, user, answered) in &removals {
        let log = heard[user].lock().unwrap();
        let at = log.iter().find(|(l, event, _, about, _)| {
            l == list && event == "ListMemberRemoved" && about.as_deref() == Some(user.as_str())
        });
        match at {
            Some((_, _, version, _, at)) => {
                removal.record(at.saturating_duration_since(*answered));
                leaks += log
                    .iter()
                    .filter(|(l, _, v, _, _)| l == list && v > version)
                    .count();
            }
            None => missed += 1,
        }
    }
    // Baseline: a rename's answer → each member still in the list hearing it.
    let mut rename = Latencies::default();
    let renames = renames.lock().unwrap();
    for (list, version, answered) in renames.iter() {
        for log in heard.values() {
            let log = log.lock().unwrap();
            if let Some((.., at)) = log
                .iter()
                .find(|(l, e, v, _, _)| l == list && e == "ListRenamed" && v == version)
            {
                rename.record(at.saturating_duration_since(*answered));
            }
        }
    }
    println!(
        "{} removals in {:.1} s ({} failed) while {} renames ran (one per list every {} ms); {} deliveries of renames to members.",
        removals.len(),
        removing.as_secs_f64(),
        failed,
        renames.len(),
        args.rename_every_ms,
        rename.count()
    );
    println!();
    println!("| measured | count | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| removal → the removed member's socket | {} | {:.1} | {:.1} | {:.1} |",
        removal.count(),
        removal.millis(0.5),
        removal.millis(0.99),
        removal.millis(1.0)
    );
    println!(
        "| a rename → each member's socket (baseline) | {} | {:.1} | {:.1} | {:.1} |",
        rename.count(),
        rename.millis(0.5),
        rename.millis(0.99),
        rename.millis(1.0)
    );
    println!();
    println!("Removed members who never heard of their removal: {missed}; changes of a list that reached a member after their removal: {leaks}.");
    args.charts.write(&[(
        "lists-removal",
        &BarChart::new("Shared lists: to the member's socket, 1,000 members", "ms")
            .series(
                "p50",
                [
                    ("removal".to_owned(), removal.millis(0.5)),
                    ("rename (baseline)".to_owned(), rename.millis(0.5)),
                ],
            )
            .series(
                "p99",
                [
                    ("removal".to_owned(), removal.millis(0.99)),
                    ("rename (baseline)".to_owned(), rename.millis(0.99)),
                ],
            ),
    )])?;
    if missed > 0 || leaks > 0 || failed > 0 {
        bail!("{missed} removals unheard, {leaks} leaks, {failed} removals failed");
    }
    Ok(())
}
