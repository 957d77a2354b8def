//! The read-path benchmark: 1,000,000 tasks (10,000 users, one of them with
//! 100,000), then each query kind through the GraphQL endpoint over HTTP with
//! concurrent clients, beside the same query run directly as SQL against the
//! same tables in the same run (the floor). Every query is the heavy user's:
//! the worst case of an owner-scoped query. The API runs as a process of its
//! own (the release `taskledger api`), so its CPU per request is its own.
//!
//! Run with `./dev bench read-path` (release build, real Postgres).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use benches::chart::{BarChart, Chart, ChartsDir, LineChart};
use benches::{
    bench_token, closed_loop, cpu_seconds, graphql, postgres_cpu_seconds, run_seconds, BenchApp,
    Latencies, Services,
};
use clap::Parser;
use projections::task_query::{self, Filter, ListQuery, Order, Readers, Search, SearchMode};
use query_api::read_pool::KeptPlans;
use serde_json::{json, Value};
use sqlx::PgPool;
use taskledger::Roles;

#[derive(Parser)]
#[command(about = "Read-path benchmark: GraphQL queries vs the same SQL at 1M tasks")]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    tasks: i64,
    #[arg(long, default_value_t = 10_000)]
    users: i64,
    #[arg(long, default_value_t = 100_000)]
    heavy_user_tasks: i64,
    /// Seconds each query kind runs, for each side.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent clients; a list (`2,4`) runs every kind at each count.
    #[arg(long, value_delimiter = ',', default_value = "2,4")]
    clients: Vec<usize>,
    #[command(flatten)]
    services: Services,
    #[command(flatten)]
    charts: ChartsDir,
    /// GraphQL documents the API keeps parsed (0: every request parses its
    /// document, as before they were kept).
    #[arg(long, default_value_t = server::documents::KEPT_DOCUMENTS)]
    kept_documents: usize,
    /// Only the query kinds whose names start with one of these
    /// (comma-separated; all by default): `--kinds "first page"`.
    #[arg(long, value_delimiter = ',')]
    kinds: Vec<String>,
    /// Keep the database afterwards (its name is printed).
    #[arg(long)]
    keep: bool,
    /// The API process's tokio worker threads (`TOKIO_WORKER_THREADS`; by
    /// default one per core).
    #[arg(long)]
    api_worker_threads: Option<usize>,
}

const HEAVY: &str = "heavy";
const WORDS: &str = "'{alpha,bravo,charlie,delta,echo,foxtrot,golf,hotel,india,juliet,kilo,lima,mike,november,oscar,papa,quebec,romeo,sierra,tango,uniform,victor,whiskey,xray,yankee,zulu,report,invoice,meeting,review,budget,design,deploy,release,backup,garden,groceries,dentist,birthday,flight,hotel,laundry,plumber,insurance,taxes,passport,visa,recipe,workout,doctor}'::text[]";
const TAGS: &str = "'{work,work/clients,work/internal,home,home/garden,errands,errands/shop,health,travel,finance}'::text[]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    infra::tls::install_crypto_provider();
    let args = Args::parse();
    // This process loads the read model and generates the load; the API
    // answering it runs in a process of its own, so each one's CPU is its own.
    let app = BenchApp::start(&args.services, Roles::API, 20).await?;
    let result = async {
        load(&app.pool, &args).await?;
        let mut env = vec![("TASKLEDGER_KEPT_DOCUMENTS", args.kept_documents.to_string())];
        if let Some(threads) = args.api_worker_threads {
            env.push(("TOKIO_WORKER_THREADS", threads.to_string()));
        }
        let (api_url, api_pid, _api) = app.api_process(&args.services, &env).await?;
        // The floor runs on pools set up exactly as the API's read pools.
        let url = app.settings.common.database_url()?;
        let pools = query_api::read_pool::ReadPoolSettings {
            max_connections: 8,
            ..app.settings.read_pool()
        };
        let read_pool = query_api::read_pool::connect(url, pools).await?;
        let kept_plans = query_api::read_pool::connect_kept(url, pools).await?;
        measure(&args, (&api_url, api_pid), &read_pool, &kept_plans).await
    }
    .await;
    app.stop(args.keep).await?;
    result
}

/// The namespace of Inbox ids (`domain::list::inbox_of`), as projections
/// migration 2014 names it.
const INBOX_NAMESPACE: &str = "6f1c2b7e-8d0a-4c61-9e57-3a2d1b4f7c90";

/// The task list's triggers that keep counts, disabled while loading.
const KEPT_TRIGGERS: [&str; 2] = ["task_list_kept_inserted", "task_list_kept_updated"];

/// Writes the read model directly (this measures reads, not projection), in
/// batches, printing progress with a rate.
async fn load(pool: &PgPool, args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    // Counts and word lists are rebuilt once at the end instead of row by row.
    for trigger in KEPT_TRIGGERS {
        sqlx::query(&format!("ALTER TABLE task_list DISABLE TRIGGER {trigger}"))
            .execute(pool)
            .await?;
    }
    let batch = 50_000;
    let mut done = 0;
    while done < args.tasks {
        let upto = (done + batch).min(args.tasks);
        sqlx::query(&format!(
            "INSERT INTO task_list (id, user_id, owner, list_id, title, description, status, version,
                                    created_at, updated_at, priority, tags, due_at, time_zone, reminders,
                                    deleted_at)
             SELECT gen_random_uuid(), who.u, who.u,
                    uuid_generate_v5('{INBOX_NAMESPACE}', 'inbox:' || who.u),
                    w[1 + (random() * 49)::int] || ' ' || w[1 + (random() * 49)::int] || ' ' || w[1 + (random() * 49)::int],
                    CASE WHEN random() < 0.3 THEN 'notes about ' || w[1 + (random() * 49)::int] END,
                    CASE WHEN random() < 0.8 THEN 'open' ELSE 'completed' END,
                    1, c, c,
                    (random() * 4)::int,
                    CASE WHEN random() < 0.3 THEN '{{}}'::text[]
                         WHEN random() < 0.7 THEN ARRAY[t[1 + (random() * 9)::int]]
                         ELSE ARRAY[t[1 + (random() * 9)::int], t[1 + (random() * 9)::int]] END,
                    CASE WHEN random() < 0.7 THEN now() + (random() * 730 - 365) * interval '1 day' END,
                    'Europe/Berlin',
                    '[]'::jsonb,
                    CASE WHEN random() < 0.02 THEN now() END
               FROM generate_series($1::bigint, $2::bigint) AS g,
                    LATERAL (SELECT now() - random() * interval '730 days' + g * interval '0 seconds' AS c) AS created,
                    LATERAL (SELECT CASE WHEN g <= $3 THEN '{HEAVY}' ELSE 'user-' || (g % ($4 - 1)) END AS u) AS who,
                    (SELECT {WORDS} AS w, {TAGS} AS t) AS vocabulary
             ON CONFLICT DO NOTHING"
        ))
        .bind(done + 1)
        .bind(upto)
        .bind(args.heavy_user_tasks)
        .bind(args.users)
        .execute(pool)
        .await?;
        done = upto;
        let rate = done as f64 / started.elapsed().as_secs_f64();
        let filled = (done * 30 / args.tasks) as usize;
        eprint!(
            "\rloading [{}{}] {done}/{} tasks, {rate:.0} tasks/s   ",
            "#".repeat(filled),
            " ".repeat(30 - filled),
            args.tasks
        );
    }
    eprintln!();
    for trigger in KEPT_TRIGGERS {
        sqlx::query(&format!("ALTER TABLE task_list ENABLE TRIGGER {trigger}"))
            .execute(pool)
            .await?;
    }
    // The triggers' work, done once and set-based.
    sqlx::query(
        "INSERT INTO task_stats (user_id, open, completed, deleted,
                                 open_by_priority, completed_by_priority, deleted_by_priority)
         SELECT user_id, sum(open), sum(completed), sum(deleted),
                array_agg(open ORDER BY rank), array_agg(completed ORDER BY rank), array_agg(deleted ORDER BY rank)
           FROM (SELECT user_id, rank,
                        count(*) FILTER (WHERE deleted_at IS NULL AND status = 'open' AND priority = rank) AS open,
                        count(*) FILTER (WHERE deleted_at IS NULL AND status = 'completed' AND priority = rank) AS completed,
                        count(*) FILTER (WHERE deleted_at IS NOT NULL AND priority = rank) AS deleted
                   FROM task_list, generate_series(0, 4) AS rank
                  GROUP BY user_id, rank) AS by_rank
          GROUP BY user_id",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "UPDATE task_stats s SET events = v.events
           FROM (SELECT user_id, sum(version) AS events FROM task_list GROUP BY user_id) AS v
          WHERE s.user_id = v.user_id",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO tag_counts (user_id, tag, open, total)
         SELECT user_id, tag, count(*) FILTER (WHERE status = 'open'), count(*)
           FROM task_list, unnest(tags) AS tag
          WHERE deleted_at IS NULL
          GROUP BY user_id, tag",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO task_words (user_id, word, tasks)
         SELECT user_id, word, count(*) FROM task_list, title_words(title) AS word GROUP BY 1, 2",
    )
    .execute(pool)
    .await?;
    benches::settle_task_list(pool).await?;
    eprintln!("loaded in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// A page of the heavy user's tasks, as the API's clients ask for it.
const PAGE: &str =
    "query($filter: TaskFilter, $search: TaskSearch, $orderBy: TaskOrder, $after: String) {
        tasks(first: 20, filter: $filter, search: $search, orderBy: $orderBy, after: $after) {
          nodes { id title priority tags dueAt } pageInfo { hasNextPage endCursor } } }";

struct Kind {
    name: &'static str,
    graphql: String,
    variables: Value,
    sql: ListQuery,
    count: bool,
}

fn kinds(deep_cursor: String, deep_from: task_query::Position) -> Vec<Kind> {
    use Order::{DueAsc, Relevance, Smart};
    use SearchMode::{FullText, Fuzzy, Prefix};

    let base = ListQuery {
        readers: Readers::inbox_of(HEAVY),
        filter: None,
        search: None,
        order: Smart,
        from: None,
        backwards: false,
        limit: 21,
    };
    let page = |name, variables, sql| Kind {
        name,
        graphql: PAGE.into(),
        variables,
        sql,
        count: false,
    };
    // A search the same through both doors; GraphQL names the order only
    // where it is not the API's default (best matches first for full text,
    // SMART for the others).
    let search = |name, words: &str, mode, order| {
        let (graphql_mode, default) = match mode {
            FullText => ("FULL_TEXT", Relevance),
            Prefix => ("PREFIX", Smart),
            Fuzzy => ("FUZZY", Smart),
        };
        let mut variables = json!({ "search": { "query": words, "mode": graphql_mode } });
        if order != default {
            variables["orderBy"] = json!(if order == Relevance {
                "RELEVANCE"
            } else {
                "SMART"
            });
        }
        let searched = Some(Search {
            query: words.into(),
            mode,
        });
        page(
            name,
            variables,
            ListQuery {
                search: searched,
                order,
                ..base.clone()
            },
        )
    };
    let total = |name, graphql: &str, filter| Kind {
        name,
        graphql: graphql.into(),
        variables: json!({}),
        sql: ListQuery {
            filter: Some(filter),
            ..base.clone()
        },
        count: true,
    };
    let tag_and_due = Filter::And(vec![
        Filter::TagsContainAny(vec!["work/clients".into()]),
        Filter::DueBefore("2030-01-01T00:00:00Z".parse().expect("a date")),
    ]);
    let open_high = Filter::And(vec![
        Filter::Status(vec![domain::TaskStatus::Open]),
        Filter::PriorityAtLeast(3),
    ]);
    let deep = ListQuery {
        from: Some(deep_from),
        ..base.clone()
    };
    let due_first = ListQuery {
        order: DueAsc,
        filter: Some(tag_and_due.clone()),
        ..base.clone()
    };
    vec![
        page("first page, SMART", json!({}), base.clone()),
        page("deep keyset page (20,000 in)", json!({ "after": deep_cursor }), deep),
        search("full text", "budget review", FullText, Relevance),
        search("prefix (type-ahead, SMART)", "invo", Prefix, Smart),
        search("fuzzy (SMART)", "pasport", Fuzzy, Smart),
        page("tag + due filter, DUE_ASC", json!({ "orderBy": "DUE_ASC", "filter": { "tags": { "containsAny": ["work/clients"] }, "due": { "before": "2030-01-01T00:00:00Z" } } }), due_first),
        total("totalCount, open HIGH+", "{ tasks(first: 1, filter: { status: [OPEN], priority: { gte: HIGH } }) { totalCount } }", open_high),
        total("totalCount, tag + due filter", "{ tasks(first: 1, filter: { tags: { containsAny: [\"work/clients\"] }, due: { before: \"2030-01-01T00:00:00Z\" } }) { totalCount } }", tag_and_due),
        // Ranking reads every match: these show what a word in 6% of the
        // user's tasks costs when ranked, the limit of relevance order.
        search("full text, one common word (6,000+ matches)", "budget", FullText, Relevance),
        search("fuzzy, RELEVANCE (6,000+ matches)", "pasport", Fuzzy, Relevance),
    ]
}

async fn measure(
    args: &Args,
    (url, api_pid): (&str, u32),
    pool: &PgPool,
    kept_plans: &KeptPlans,
) -> anyhow::Result<()> {
    let token = Arc::new(bench_token(HEAVY)?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    // The deep page's cursor, as a client would reach it: page by page.
    let mut after: Option<String> = None;
    for _ in 0..200 {
        let body = graphql(
            &client,
            url,
            &token,
            "query($after: String) { tasks(first: 100, after: $after) { pageInfo { endCursor } } }",
            json!({ "after": after }),
        )
        .await
        .map_err(anyhow::Error::msg)?;
        after = body["data"]["tasks"]["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned);
    }
    let deep_cursor = after.context("a deep cursor")?;
    let deep_from = {
        let mut conn = pool.acquire().await?;
        let mut walk = ListQuery {
            readers: Readers::inbox_of(HEAVY),
            filter: None,
            search: None,
            order: Order::Smart,
            from: None,
            backwards: false,
            limit: 20_000,
        };
        let rows = task_query::list(&mut conn, &walk).await?;
        walk.from = rows.last().map(|r| r.position.clone());
        walk.from.context("20,000 rows")?
    };

    let window = Duration::from_secs(args.seconds);
    let mut failures = 0;
    let mut charts: Vec<(String, Box<dyn Chart>)> = Vec::new();
    for &clients in &args.clients {
        println!(
            "# Read path: {} tasks, {} users, heavy user {} tasks; {clients} clients, {} s per kind and side",
            args.tasks, args.users, args.heavy_user_tasks, args.seconds
        );
        println!();
        println!("| query kind | GraphQL req/s | p50 ms | p95 ms | p99 ms | CPU ms/req: API / load generator / Postgres | SQL req/s | p50 ms | p95 ms | p99 ms | CPU ms/req: client / Postgres | p99 GraphQL ÷ SQL |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let mut latency = LineChart::over_run(
            format!("Read path, {clients} clients: latency per second, query kinds in turn"),
            "ms",
        );
        let mut throughput = BarChart::new(
            format!("Read path, {clients} clients: GraphQL beside the same SQL"),
            "queries/s",
        );
        let chosen = kinds(deep_cursor.clone(), deep_from.clone())
            .into_iter()
            .filter(|kind| {
                args.kinds.is_empty()
                    || args.kinds.iter().any(|k| kind.name.starts_with(k.as_str()))
            });
        for kind in chosen {
            latency = latency.phase(run_seconds(Instant::now()), kind.name);
            let measured = measure_kind(
                clients,
                window,
                &client,
                (url, api_pid),
                &token,
                (pool, kept_plans),
                kind,
            )
            .await;
            failures += measured.api.errors + measured.sql.errors;
            latency = latency
                .latencies("GraphQL", &measured.api)
                .latencies("SQL (baseline)", &measured.sql);
            throughput = throughput
                .series("GraphQL", [(measured.name, measured.api_rate)])
                .series("SQL (baseline)", [(measured.name, measured.sql_rate)]);
        }
        charts.push((
            format!("read-path-latency-{clients}-clients"),
            Box::new(latency),
        ));
        charts.push((
            format!("read-path-throughput-{clients}-clients"),
            Box::new(throughput),
        ));
        println!();
    }
    let named: Vec<(&str, &dyn Chart)> = charts
        .iter()
        .map(|(name, chart)| (name.as_str(), chart.as_ref()))
        .collect();
    args.charts.write(&named)?;
    if failures > 0 {
        bail!("{failures} queries failed; the figures above are not valid");
    }
    Ok(())
}

/// One query kind, measured through GraphQL and as SQL.
struct Measured {
    name: &'static str,
    api: Latencies,
    api_rate: f64,
    sql: Latencies,
    sql_rate: f64,
}

/// Runs one query kind through GraphQL, then as SQL, and prints its row.
async fn measure_kind(
    clients: usize,
    window: Duration,
    client: &reqwest::Client,
    (url, api_pid): (&str, u32),
    token: &Arc<String>,
    (pool, kept_plans): (&PgPool, &KeptPlans),
    kind: Kind,
) -> Measured {
    // The floor runs each statement where the API runs it.
    let kept = (!kind.count && task_query::one_plan_for_every_reader(&kind.sql))
        .then(|| kept_plans.0.clone());
    let kind = Arc::new(kind);
    let api_cpu = Cpu::start(Some(api_pid));
    let (api, api_rate) = closed_loop(clients, window, {
        let (client, url, token, kind) =
            (client.clone(), url.to_owned(), token.clone(), kind.clone());
        move || {
            let (client, url, token, kind) =
                (client.clone(), url.clone(), token.clone(), kind.clone());
            async move {
                graphql(&client, &url, &token, &kind.graphql, kind.variables.clone())
                    .await
                    .map(drop)
            }
        }
    })
    .await;
    let api_cpu = api_cpu.per_request(api.count());
    let sql_cpu = Cpu::start(None);
    let (sql, sql_rate) = closed_loop(clients, window, {
        let (pool, kept, kind) = (pool.clone(), kept.clone(), kind.clone());
        move || {
            let (pool, kept, kind) = (pool.clone(), kept.clone(), kind.clone());
            async move {
                if let Some(kept) = kept {
                    let page = kept.run(async |conn| task_query::list(conn, &kind.sql).await);
                    return page.await.map(drop).map_err(|e| e.to_string());
                }
                let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
                if kind.count {
                    task_query::count(&mut conn, &kind.sql).await.map(drop)
                } else {
                    task_query::list(&mut conn, &kind.sql).await.map(drop)
                }
                .map_err(|e| e.to_string())
            }
        }
    })
    .await;
    let sql_cpu = sql_cpu.per_request(sql.count());
    println!(
        "| {} | {api_rate:.0} | {:.2} | {:.2} | {:.2} | {:.3} / {:.3} / {:.3} | {sql_rate:.0} | {:.2} | {:.2} | {:.2} | {:.3} / {:.3} | {:.2} |",
        kind.name,
        api.millis(0.5),
        api.millis(0.95),
        api.millis(0.99),
        api_cpu.server,
        api_cpu.this,
        api_cpu.postgres,
        sql.millis(0.5),
        sql.millis(0.95),
        sql.millis(0.99),
        sql_cpu.this,
        sql_cpu.postgres,
        api.millis(0.99) / sql.millis(0.99),
    );
    Measured {
        name: kind.name,
        api,
        api_rate,
        sql,
        sql_rate,
    }
}

/// CPU used while one side runs: the API process's (for GraphQL), this
/// process's (the load generator for GraphQL, the floor's client for SQL)
/// and Postgres's.
struct Cpu {
    server: Option<(u32, f64)>,
    this: f64,
    postgres: f64,
}

/// Milliseconds of CPU per request.
struct PerRequest {
    server: f64,
    this: f64,
    postgres: f64,
}

impl Cpu {
    fn start(server: Option<u32>) -> Self {
        Self {
            server: server.map(|pid| (pid, cpu_seconds(pid).unwrap_or(0.0))),
            this: cpu_seconds(std::process::id()).unwrap_or(0.0),
            postgres: postgres_cpu_seconds(),
        }
    }

    fn per_request(self, requests: u64) -> PerRequest {
        let each = |seconds: f64| seconds * 1000.0 / requests.max(1) as f64;
        PerRequest {
            server: self
                .server
                .map_or(0.0, |(pid, at)| each(cpu_seconds(pid).unwrap_or(0.0) - at)),
            this: each(cpu_seconds(std::process::id()).unwrap_or(0.0) - self.this),
            postgres: each(postgres_cpu_seconds() - self.postgres),
        }
    }
}
