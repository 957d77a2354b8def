//! Projector processes share the topic's partitions (docs/adr/0012): three
//! split them; one killed, one added, one stopped with SIGTERM, and one
//! paused past its lease and resumed. After each, the read models equal the
//! event store, no stored offset went back, and a paused process never
//! stores an offset of a partition that moved while it was paused.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sqlx::PgPool;
use taskledger::settings::Settings;
use taskledger::Roles;
use tokio::process::Child;
use uuid::Uuid;

use crate::helpers::{
    eventually, free_address, fresh_settings, read_model_caught_up, role_process, TestApp,
};

const API_AND_RELAY: Roles = Roles {
    api: true,
    relay: true,
    project: false,
    scheduler: false,
};

/// A `taskledger project` process, with its metrics at `http://ADDRESS`.
struct Projector {
    child: Child,
    address: String,
}

impl Projector {
    fn start(settings: &Settings) -> Self {
        Self::start_with(settings, &[])
    }

    /// With `env` on top of the settings.
    fn start_with(settings: &Settings, env: &[(&str, &str)]) -> Self {
        let address = free_address();
        // Its log, for a failure's post-mortem.
        let log = std::env::temp_dir().join(format!(
            "taskledger-projector-{}.log",
            address.replace(':', "-")
        ));
        let log = std::fs::File::create(log).unwrap();
        let child = role_process(settings, "project")
            .env("TASKLEDGER_HTTP_ADDR", &address)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the taskledger binary starts");
        Self { child, address }
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    async fn metric(&self, line_start: &str) -> Option<f64> {
        let text = reqwest::get(format!("http://{}/metrics", self.address))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .filter(|line| line.starts_with(line_start))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .reduce(f64::max)
    }
}

/// Who holds each partition of the task list: the member and its process.
async fn holders(pool: &PgPool) -> BTreeMap<i32, (Uuid, String)> {
    sqlx::query_as::<_, (i32, Uuid, String)>(
        "SELECT l.partition, l.owner, m.process
           FROM projection_leases l
           JOIN projection_members m ON m.projection = l.projection AND m.member = l.owner
          WHERE l.projection = 'task-list'",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(partition, owner, process)| (partition, (owner, process)))
    .collect()
}

/// The processes (host/pid) that hold task-list partitions, once every
/// partition is held and by exactly `count` processes.
async fn split_among(pool: &PgPool, partitions: i32, count: usize) -> BTreeSet<String> {
    let split = eventually(Duration::from_secs(40), || async {
        let held = holders(pool).await;
        let processes: BTreeSet<String> = held.values().map(|(_, p)| p.clone()).collect();
        (held.len() == partitions as usize && processes.len() == count).then_some(processes)
    })
    .await;
    match split {
        Some(processes) => processes,
        None => {
            let members: Vec<(String, f64)> = sqlx::query_as(
                "SELECT process, extract(epoch FROM now() - seen_at)::float8
                   FROM projection_members WHERE projection = 'task-list'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            panic!(
                "the partitions were never split among {count} processes: held {:?}, members \
                 (process, seconds since seen) {members:?}",
                holders(pool).await
            )
        }
    }
}

fn pid_of(process: &str) -> u32 {
    process.rsplit('/').next().unwrap().parse().unwrap()
}

/// Each partition's stored offset of the task list, and who stored it.
async fn offsets(pool: &PgPool) -> BTreeMap<i32, (i64, Option<Uuid>)> {
    sqlx::query_as::<_, (i32, i64, Option<Uuid>)>(
        "SELECT partition, next_offset, written_by FROM projection_offsets
          WHERE projection = 'task-list'",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(partition, offset, by)| (partition, (offset, by)))
    .collect()
}

/// Watches `projection_offsets` for four seconds: the partitions whose
/// offset `member` stored while another process held their lease. Such an
/// offset could only come from a batch that was not fenced.
async fn stray_offsets(pool: &PgPool, member: Uuid) -> BTreeSet<i32> {
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        let stray: Vec<i32> = sqlx::query_scalar(
            "SELECT o.partition FROM projection_offsets o
               JOIN projection_leases l
                 ON l.projection = o.projection AND l.partition = o.partition
              WHERE o.projection = 'task-list' AND o.written_by = $1
                AND l.owner IS DISTINCT FROM $1",
        )
        .bind(member)
        .fetch_all(pool)
        .await
        .unwrap();
        seen.extend(stray);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

/// Creates `count` tasks, completing every third; their ids.
async fn write(app: &TestApp, token: &str, count: usize, label: &str) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let (id, _) = app.create_task(token, &format!("{label} {n}")).await;
        if n % 3 == 0 {
            app.complete_task(token, &id).await;
        }
        ids.push(id);
    }
    ids
}

/// Waits until the read model equals the event store, and checks that no
/// stored offset went back since `before`.
async fn caught_up(
    app: &TestApp,
    before: &BTreeMap<i32, (i64, Option<Uuid>)>,
    after: &str,
) -> BTreeMap<i32, (i64, Option<Uuid>)> {
    read_model_caught_up(&app.pool, Duration::from_secs(60), after).await;
    let now = offsets(&app.pool).await;
    for (partition, (offset, _)) in before {
        assert!(
            now[partition].0 >= *offset,
            "partition {partition}'s offset went back from {offset} to {} after {after}",
            now[partition].0
        );
    }
    now
}

#[tokio::test]
async fn projector_processes_split_the_partitions_and_hand_them_on() {
    let mut settings = fresh_settings().await;
    // A lease far longer than the test waits: a killed process's partitions
    // move because its Postgres session ended, not because its lease ran out.
    settings.common.projection_lease_secs = 600;
    let partitions = settings.common.task_events_partitions;
    assert!(partitions >= 3, "the test needs three partitions or more");
    let app = TestApp::spawn_with(settings.clone(), API_AND_RELAY).await;
    let alice = app.token("alice");
    let mut projectors: Vec<Projector> = (0..3).map(|_| Projector::start(&settings)).collect();

    // Three processes: each holds a share.
    let three = split_among(&app.pool, partitions, 3).await;
    let pids: BTreeSet<u32> = projectors.iter().map(Projector::pid).collect();
    assert_eq!(
        three.iter().map(|p| pid_of(p)).collect::<BTreeSet<_>>(),
        pids
    );
    write(&app, &alice, 30, "three").await;
    let stood = caught_up(&app, &BTreeMap::new(), "three processes").await;
    let writers: BTreeSet<Uuid> = stood.values().filter_map(|(_, by)| *by).collect();
    assert!(
        writers.len() >= 2,
        "one process applied every partition: {stood:?}"
    );

    // One killed without warning: its connections close with it, and the
    // two others take its partitions at their next round.
    let mut killed = projectors.remove(0);
    let killed_pid = killed.pid();
    killed.child.kill().await.unwrap();
    let since_killed = std::time::Instant::now();
    write(&app, &alice, 15, "killed").await;
    let two = split_among(&app.pool, partitions, 2).await;
    assert!(
        since_killed.elapsed() < Duration::from_secs(60),
        "the partitions moved only after {:?}",
        since_killed.elapsed()
    );
    assert!(!two.iter().any(|p| pid_of(p) == killed_pid));
    let stood = caught_up(&app, &stood, "a process was killed").await;

    // One added: it takes a share.
    projectors.push(Projector::start(&settings));
    split_among(&app.pool, partitions, 3).await;
    write(&app, &alice, 15, "added").await;
    let stood = caught_up(&app, &stood, "a process was added").await;

    // One stopped with SIGTERM: it leaves at once, before its lease would run
    // out, and the others take its partitions.
    let stopped = projectors.remove(0);
    let stopped_pid = stopped.pid();
    stopped.signal("TERM");
    let mut stopped = stopped;
    let status = tokio::time::timeout(Duration::from_secs(20), stopped.child.wait())
        .await
        .expect("the projector stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    let members: Vec<String> =
        sqlx::query_scalar("SELECT process FROM projection_members WHERE projection = 'task-list'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(
        !members.iter().any(|p| pid_of(p) == stopped_pid),
        "a stopped process is still a member: {members:?}"
    );
    write(&app, &alice, 15, "stopped").await;
    split_among(&app.pool, partitions, 2).await;
    caught_up(&app, &stood, "a process was stopped").await;
    let (passed, printed) = crate::verify::run_verify(&settings);
    assert!(passed, "taskledger verify:\n{printed}");
}

/// A projector paused (SIGSTOP) past its lease loses its partitions to the
/// other; resumed, it stores no offset of a partition it lost: its batches
/// are fenced, or it lets the partitions go first (whichever it gets to
/// first; both are correct).
#[tokio::test]
async fn a_paused_projector_never_commits_after_its_partitions_moved() {
    let settings = fresh_settings().await;
    let partitions = settings.common.task_events_partitions;
    let app = TestApp::spawn_with(settings.clone(), API_AND_RELAY).await;
    let alice = app.token("alice");
    let projectors: Vec<Projector> = (0..2).map(|_| Projector::start(&settings)).collect();
    split_among(&app.pool, partitions, 2).await;
    write(&app, &alice, 12, "before").await;
    let stood = caught_up(&app, &BTreeMap::new(), "two processes").await;

    let paused = &projectors[0];
    let held = holders(&app.pool).await;
    let (member, lost): (Uuid, Vec<i32>) = {
        let mine: Vec<(i32, Uuid)> = held
            .iter()
            .filter(|(_, (_, p))| pid_of(p) == paused.pid())
            .map(|(&partition, (owner, _))| (partition, *owner))
            .collect();
        assert!(
            !mine.is_empty(),
            "the paused process held nothing: {held:?}"
        );
        (mine[0].1, mine.iter().map(|(p, _)| *p).collect())
    };
    paused.signal("STOP");
    // Written while it is paused, to every partition: the other process takes
    // the paused one's partitions after its lease (5 s) and applies them.
    let moved = async {
        eventually(Duration::from_secs(40), || async {
            let held = holders(&app.pool).await;
            lost.iter()
                .all(|p| held.get(p).is_some_and(|(owner, _)| *owner != member))
                .then_some(())
        })
        .await
    };
    let (_, moved) = tokio::join!(write(&app, &alice, 30, "paused"), moved);
    assert!(
        moved.is_some(),
        "the paused process's partitions never moved"
    );
    let stood = caught_up(&app, &stood, "a process was paused").await;

    // Resumed, with messages of its old partitions waiting for it.
    paused.signal("CONT");
    let during = write(&app, &alice, 30, "resumed");
    let watch = stray_offsets(&app.pool, member);
    let (_, stored_by_the_zombie) = tokio::join!(during, watch);
    assert!(
        stored_by_the_zombie.is_empty(),
        "the resumed process stored offsets of partitions {stored_by_the_zombie:?} it had lost"
    );
    caught_up(&app, &stood, "the paused process resumed").await;
    let fenced = paused
        .metric("taskledger_projection_fenced_batches_total{projection=\"task-list\"}")
        .await
        .unwrap_or(0.0);
    eprintln!("the resumed process's batches fenced: {fenced}");
    let (passed, printed) = crate::verify::run_verify(&settings);
    assert!(passed, "taskledger verify:\n{printed}");
}

/// A projector that stops renewing its membership (it checks every ten
/// minutes: a process that hangs but still reads) loses its partitions when
/// its lease runs out, and every batch it applies after that is fenced:
/// rolled back, counted, never stored.
#[tokio::test]
async fn a_projector_that_stops_renewing_its_lease_is_fenced() {
    let settings = fresh_settings().await;
    let partitions = settings.common.task_events_partitions;
    let app = TestApp::spawn_with(settings.clone(), API_AND_RELAY).await;
    let alice = app.token("alice");
    let stale = Projector::start_with(&settings, &[("TASKLEDGER_PROJECTION_CHECK_SECS", "600")]);
    split_among(&app.pool, partitions, 1).await;
    let member = holders(&app.pool).await[&0].0;

    // The other takes every partition once the first one's lease runs out.
    let mut other = Projector::start(&settings);
    let other_pid = other.pid();
    let moved = eventually(Duration::from_secs(40), || async {
        let held = holders(&app.pool).await;
        (held.len() == partitions as usize
            && held
                .values()
                .all(|(_, process)| pid_of(process) == other_pid))
        .then_some(())
    })
    .await;
    assert!(
        moved.is_some(),
        "the other process never took the partitions"
    );

    // The stale one still reads every partition: what it applies now is fenced.
    let (_, stray) = tokio::join!(
        write(&app, &alice, 30, "fenced"),
        stray_offsets(&app.pool, member)
    );
    assert!(
        stray.is_empty(),
        "a stale process stored offsets of partitions {stray:?}"
    );
    let fenced = eventually(Duration::from_secs(20), || async {
        stale
            .metric("taskledger_projection_fenced_batches_total{projection=\"task-list\"}")
            .await
            .filter(|&fenced| fenced >= 1.0)
    })
    .await;
    assert!(fenced.is_some(), "no batch of the stale process was fenced");

    // It leaves; the other applies everything.
    stale.signal("TERM");
    caught_up(&app, &BTreeMap::new(), "a stale process was fenced").await;
    let (passed, printed) = crate::verify::run_verify(&settings);
    assert!(passed, "taskledger verify:\n{printed}");
    other.signal("TERM");
    other.child.wait().await.unwrap();
}

/// A fault in the middle of a partition move: while a third process joins
/// and the two holders are about to hand it a share, one of them is killed
/// without warning, with writes arriving throughout. The survivor and the
/// newcomer end up with every partition between them, no stored offset goes
/// back, and the read model equals the event store.
#[tokio::test]
async fn a_holder_killed_while_partitions_move_loses_nothing() {
    let settings = fresh_settings().await;
    let partitions = settings.common.task_events_partitions;
    let app = TestApp::spawn_with(settings.clone(), API_AND_RELAY).await;
    let alice = app.token("alice");
    let mut projectors: Vec<Projector> = (0..2).map(|_| Projector::start(&settings)).collect();
    split_among(&app.pool, partitions, 2).await;
    write(&app, &alice, 12, "two").await;
    let stood = caught_up(&app, &BTreeMap::new(), "two processes").await;

    let newcomer = Projector::start(&settings);
    let newcomer_pid = newcomer.pid();
    let fault = async {
        // The moment the newcomer is a member, before the holders let go of
        // anything for it (they see it at their next check).
        let joined = eventually(Duration::from_secs(20), || async {
            let members: Vec<String> = sqlx::query_scalar(
                "SELECT process FROM projection_members WHERE projection = 'task-list'",
            )
            .fetch_all(&app.pool)
            .await
            .unwrap();
            members
                .iter()
                .any(|p| pid_of(p) == newcomer_pid)
                .then_some(())
        })
        .await;
        assert!(joined.is_some(), "the newcomer never joined");
        // Whichever first holder holds partitions at this moment (one may
        // already have let go of its share) is killed.
        let held = holders(&app.pool).await;
        let holder = projectors
            .iter()
            .position(|p| held.values().any(|(_, h)| pid_of(h) == p.pid()))
            .unwrap_or_else(|| panic!("neither first process holds a partition: {held:?}"));
        let mut killed = projectors.remove(holder);
        killed.child.kill().await.unwrap();
    };
    tokio::join!(write(&app, &alice, 30, "moving"), fault);

    // The killed process's partitions wait for its lease, then move.
    let expected: BTreeSet<u32> = [projectors[0].pid(), newcomer_pid].into();
    let moved = eventually(Duration::from_secs(40), || async {
        let held = holders(&app.pool).await;
        let pids: BTreeSet<u32> = held.values().map(|(_, p)| pid_of(p)).collect();
        (held.len() == partitions as usize && pids == expected).then_some(())
    })
    .await;
    assert!(
        moved.is_some(),
        "the survivor and the newcomer never held every partition: {:?}",
        holders(&app.pool).await
    );
    write(&app, &alice, 12, "after").await;
    caught_up(&app, &stood, "a holder was killed while partitions moved").await;
    let (passed, printed) = crate::verify::run_verify(&settings);
    assert!(passed, "taskledger verify:\n{printed}");
    drop(newcomer);
}
