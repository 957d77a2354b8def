//! The shared-tasks benchmark: a list of 50 members and 10,000 tasks beside
//! a personal Inbox of 10,000 tasks, in the same run. Each read kind goes
//! through GraphQL for a member of the list (their Inbox and the list: two
//! keys, each walked in its index order and merged) and for the owner of
//! the personal Inbox (one key, the baseline); each write (a title change)
//! goes to a task in the list by an editor (the commit checks their
//! membership in its statement) and to a personal task by its owner; the
//! search is one word found in 6% of each side's tasks. Each kind runs in
//! rounds, the sides taking turns to go first. The figure is the median of
//! the rounds' shared ÷ personal rates: the aim is within 10 % (issue 27).
//!
//! Run with `./dev bench shared-tasks` (release build, real Postgres).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use benches::chart::{BarChart, ChartsDir};
use benches::{bench_token, closed_loop, graphql, BenchApp, Latencies, Services};
use clap::Parser;
use serde_json::{json, Value};
use sqlx::PgPool;
use taskledger::Roles;

#[derive(Parser)]
#[command(about = "Shared lists: a member's reads and writes beside a personal Inbox's")]
struct Args {
    /// Tasks in the shared list, and in the personal Inbox.
    #[arg(long, default_value_t = 10_000)]
    tasks: i64,
    /// Members of the shared list, its owner among them (50 at most).
    #[arg(long, default_value_t = 50)]
    members: usize,
    /// Tasks each side's writes go to (made through the API).
    #[arg(long, default_value_t = 200)]
    written_tasks: usize,
    /// Seconds each kind runs, for each side, in each round.
    #[arg(long, default_value_t = 4)]
    seconds: u64,
    /// Rounds of each kind, the two sides taking turns to go first: the
    /// figure is the median of the rounds' ratios, so a drift in the
    /// machine's load falls on both sides.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    #[command(flatten)]
    services: Services,
    #[command(flatten)]
    charts: ChartsDir,
    /// Keep the database afterwards.
    #[arg(long)]
    keep: bool,
}

/// The personal Inbox's owner, the list's owner, and the member measured.
const SOLO: &str = "solo";
const OWNER: &str = "member-0";
const MEMBER: &str = "member-1";

const PAGE: &str = "query($filter: TaskFilter, $search: TaskSearch) {
    tasks(first: 20, filter: $filter, search: $search) {
      nodes { id title priority tags dueAt listId } pageInfo { hasNextPage endCursor } } }";
const STATS: &str = "{ taskStats { open completed overdue dueToday } }";
const UPDATE: &str =
    "mutation($id: ID!, $title: String!) { updateTask(input: {id: $id, title: $title}) { version } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    infra::tls::install_crypto_provider();
    let args = Args::parse();
    if !(2..=50).contains(&args.members) {
        bail!("--members must be 2 to 50");
    }
    let app = BenchApp::start(&args.services, Roles::API, 20).await?;
    let result = run(&args, &app).await;
    app.stop(args.keep).await?;
    result
}

async fn run(args: &Args, app: &BenchApp) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let token = |user: &str| bench_token(user);
    let list = share(&client, &app.url, args.members).await?;
    load(&app.pool, args, list).await?;
    let (solo, member) = (Arc::new(token(SOLO)?), Arc::new(token(MEMBER)?));

    let window = Duration::from_secs(args.seconds);
    println!(
        "# Shared list of {} members and {} tasks beside a personal Inbox of {} tasks; {} clients, {} rounds of {} s per kind and side",
        args.members, args.tasks, args.tasks, args.clients, args.rounds, args.seconds
    );
    println!();
    println!("| kind | personal req/s | p50 ms | p99 ms | shared req/s | p50 ms | p99 ms | shared ÷ personal: req/s (rounds' median, range), p50 |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let reads = [
        ("first page, SMART", PAGE, json!({}), json!({})),
        (
            "first page of one list",
            PAGE,
            json!({ "filter": { "listIds": [inbox_of(SOLO)] } }),
            json!({ "filter": { "listIds": [list.to_string()] } }),
        ),
        (
            "full-text search",
            PAGE,
            json!({ "search": { "query": "budget" } }),
            json!({ "search": { "query": "budget" } }),
        ),
        ("taskStats", STATS, json!({}), json!({})),
    ];
    let mut chart = BarChart::new(
        format!(
            "Shared list ({} members, {} tasks) beside a personal Inbox: requests/s",
            args.members, args.tasks
        ),
        "requests/s",
    );
    let mut failures = 0;
    for (name, query, personal_vars, shared_vars) in reads {
        let compared = compare(args.rounds, |side| {
            let (token, variables) = match side {
                Side::Personal => (&solo, personal_vars.clone()),
                Side::Shared => (&member, shared_vars.clone()),
            };
            measure(args.clients, window, &client, &app.url, token, move |_| {
                (query, variables.clone())
            })
        })
        .await;
        failures += compared.row(name);
        chart = chart
            .series("personal", [(name, compared.mine.1)])
            .series("shared", [(name, compared.ours.1)]);
    }
    // Writes after the reads: a reader who just wrote waits for the read
    // model to show their writes, and no projection runs here.
    let personal = make_tasks(&client, &app.url, &solo, None, args.written_tasks).await?;
    let shared = make_tasks(&client, &app.url, &member, Some(list), args.written_tasks).await?;
    let writes = |ids: Arc<Vec<String>>| {
        move |n: u64| {
            let id = &ids[n as usize % ids.len()];
            (UPDATE, json!({ "id": id, "title": format!("renamed {n}") }))
        }
    };
    let (personal, shared) = (Arc::new(personal), Arc::new(shared));
    let compared = compare(args.rounds, |side| {
        let (token, ids) = match side {
            Side::Personal => (&solo, personal.clone()),
            Side::Shared => (&member, shared.clone()),
        };
        measure(args.clients, window, &client, &app.url, token, writes(ids))
    })
    .await;
    failures += compared.row("updateTask (a title)");
    chart = chart
        .series("personal", [("updateTask", compared.mine.1)])
        .series("shared", [("updateTask", compared.ours.1)]);
    args.charts.write(&[("shared-tasks", &chart)])?;
    if failures > 0 {
        bail!("{failures} requests failed; the figures above are not valid");
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Side {
    Personal,
    Shared,
}

/// One kind measured on both sides: each side's latencies over every round
/// with its median rate, and each round's shared ÷ personal rate.
struct Compared {
    mine: (Latencies, f64),
    ours: (Latencies, f64),
    ratios: Vec<f64>,
}

/// `rounds` rounds of `measure_side` on each side, taking turns to go first.
async fn compare<F, Fut>(rounds: usize, measure_side: F) -> Compared
where
    F: Fn(Side) -> Fut,
    Fut: std::future::Future<Output = (Latencies, f64)>,
{
    let (mut mine, mut ours) = (Latencies::default(), Latencies::default());
    let (mut my_rates, mut our_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds.max(1) {
        let order = if round % 2 == 0 {
            [Side::Personal, Side::Shared]
        } else {
            [Side::Shared, Side::Personal]
        };
        let mut rates = [0.0; 2];
        for side in order {
            let (latencies, rate) = measure_side(side).await;
            let (all, slot) = match side {
                Side::Personal => (&mut mine, 0),
                Side::Shared => (&mut ours, 1),
            };
            all.merge(&latencies);
            rates[slot] = rate;
        }
        my_rates.push(rates[0]);
        our_rates.push(rates[1]);
        ratios.push(rates[1] / rates[0].max(f64::MIN_POSITIVE));
    }
    Compared {
        mine: (mine, median(my_rates)),
        ours: (ours, median(our_rates)),
        ratios,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

impl Compared {
    /// Prints the kind's row; answers how many requests failed.
    fn row(&self, name: &str) -> u64 {
        let (mine, ours) = (&self.mine, &self.ours);
        let low = self.ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let high = self.ratios.iter().copied().fold(0.0, f64::max);
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} ({low:.2}–{high:.2}), {:.2} |",
            mine.1,
            mine.0.millis(0.5),
            mine.0.millis(0.99),
            ours.1,
            ours.0.millis(0.5),
            ours.0.millis(0.99),
            median(self.ratios.clone()),
            ours.0.millis(0.5) / mine.0.millis(0.5).max(f64::MIN_POSITIVE),
        );
        mine.0.errors + ours.0.errors
    }
}

fn inbox_of(user: &str) -> String {
    domain::list::inbox_of(&domain::values::UserId::parse(user).expect("a user id")).to_string()
}

/// A list of `members` (its owner, `MEMBER` an editor, the rest viewers),
/// made through the API as people would.
async fn share(client: &reqwest::Client, url: &str, members: usize) -> anyhow::Result<uuid::Uuid> {
    let owner = bench_token(OWNER)?;
    let created = graphql(
        client,
        url,
        &owner,
        "mutation { createList(input: {name: \"Household\"}) { listId } }",
        json!({}),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let list = created["data"]["createList"]["listId"]
        .as_str()
        .context("a list id")?
        .to_owned();
    for n in 1..members {
        let user = format!("member-{n}");
        let role = if n == 1 { "EDITOR" } else { "VIEWER" };
        let invited = graphql(
            client,
            url,
            &owner,
            "mutation($l: ID!, $u: String!, $r: ListRole!) { inviteToList(listId: $l, userId: $u, role: $r) { invitationId } }",
            json!({ "l": list, "u": user, "r": role }),
        )
        .await
        .map_err(anyhow::Error::msg)?;
        let invitation = invited["data"]["inviteToList"]["invitationId"].clone();
        graphql(
            client,
            url,
            &bench_token(&user)?,
            "mutation($id: ID!) { acceptInvitation(id: $id) { version } }",
            json!({ "id": invitation }),
        )
        .await
        .map_err(anyhow::Error::msg)?;
    }
    Ok(list.parse()?)
}

/// `args.tasks` tasks in the list and as many in `SOLO`'s Inbox, and a
/// hundred in `MEMBER`'s own Inbox, written straight into the read model
/// (this measures reads, not projection), with their counts and words.
async fn load(pool: &PgPool, args: &Args, list: uuid::Uuid) -> anyhow::Result<()> {
    let started = Instant::now();
    for (key, owner, list_id, tasks) in [
        (
            format!("list {list}"),
            OWNER.to_owned(),
            list.to_string(),
            args.tasks,
        ),
        (SOLO.to_owned(), SOLO.to_owned(), inbox_of(SOLO), args.tasks),
        (MEMBER.to_owned(), MEMBER.to_owned(), inbox_of(MEMBER), 100),
    ] {
        sqlx::query(
            "INSERT INTO task_list (id, user_id, owner, list_id, title, description, status, version,
                                    created_at, updated_at, priority, tags, due_at, time_zone, reminders)
             SELECT gen_random_uuid(), $1, $2, $3::uuid,
                    w[1 + (g * 7) % 50] || ' ' || w[1 + (g * 13) % 50] || ' ' || w[1 + (g * 31) % 50],
                    CASE WHEN g % 3 = 0 THEN 'notes about ' || w[1 + g % 50] END,
                    CASE WHEN g % 5 = 0 THEN 'completed' ELSE 'open' END, 1,
                    now() - g * interval '1 minute', now(), g % 5,
                    CASE WHEN g % 2 = 0 THEN ARRAY[t[1 + g % 10]] ELSE '{}' END,
                    CASE WHEN g % 10 < 7 THEN now() + (g % 730 - 365) * interval '1 day' END,
                    'Europe/Berlin', '[]'::jsonb
               FROM generate_series(1, $4::bigint) AS g,
                    (SELECT '{alpha,bravo,charlie,delta,echo,foxtrot,golf,hotel,india,juliet,kilo,lima,mike,november,oscar,papa,quebec,romeo,sierra,tango,uniform,victor,whiskey,xray,yankee,zulu,report,invoice,meeting,review,budget,design,deploy,release,backup,garden,groceries,dentist,birthday,flight,hotel,laundry,plumber,insurance,taxes,passport,visa,recipe,workout,doctor}'::text[] AS w,
                            '{work,work/clients,work/internal,home,home/garden,errands,errands/shop,health,travel,finance}'::text[] AS t) AS vocabulary",
        )
        .bind(&key)
        .bind(&owner)
        .bind(&list_id)
        .bind(tasks)
        .execute(pool)
        .await?;
    }
    benches::settle_task_list(pool).await?;
    eprintln!("loaded in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `count` tasks made through the API by `token`'s user, in `list` (or
/// their Inbox): the tasks the write kinds change.
async fn make_tasks(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    list: Option<uuid::Uuid>,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let body = graphql(
            client,
            url,
            token,
            "mutation($t: String!, $l: ID) { createTask(input: {title: $t, listId: $l}) { taskId } }",
            json!({ "t": format!("written {n}"), "l": list.map(|l| l.to_string()) }),
        )
        .await
        .map_err(anyhow::Error::msg)?;
        ids.push(
            body["data"]["createTask"]["taskId"]
                .as_str()
                .context("a task id")?
                .to_owned(),
        );
    }
    Ok(ids)
}

/// `clients` closed loops for `window` through GraphQL as `token`'s user,
/// the `n`th request of all sending the operation `operation(n)` gives.
async fn measure<F>(
    clients: usize,
    window: Duration,
    client: &reqwest::Client,
    url: &str,
    token: &Arc<String>,
    operation: F,
) -> (Latencies, f64)
where
    F: Fn(u64) -> (&'static str, Value) + Send + Sync + Clone + 'static,
{
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (client, url, token) = (client.clone(), url.to_owned(), token.clone());
    closed_loop(clients, window, move || {
        let n = sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (query, variables) = operation(n);
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        async move {
            graphql(&client, &url, &token, query, variables)
                .await
                .map(drop)
        }
    })
    .await
}
