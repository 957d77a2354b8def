//! What sealing a user's text costs per event (docs/adr/0014): a task's
//! creation as the repository writes it, serialised for the insert, beside
//! the same event sealed with a data key first; and read back, parsed,
//! beside parsed and opened. No I/O: the cost set beside the write path's
//! raw insert (about 0.3-0.4 ms per event on these machines).
//!
//! Run with `./dev bench sealing` (release build); `--help` for the knobs.

use std::hint::black_box;
use std::time::Instant;

use clap::Parser;
use event_store::keys::{self, DataKey, MasterKey};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Sealing benchmark: microseconds per event, sealed beside plain")]
struct Args {
    /// Events per measurement.
    #[arg(long, default_value_t = 200_000)]
    events: u32,
    /// Rounds; the best of each is reported.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
}

/// A creation as the domain serialises it, with typical text.
fn creation(n: u32) -> Value {
    json!({ "TaskCreated": {
        "task_id": format!("01a24dc9-08d9-7395-951b-{n:012}"),
        "user_id": "ada",
        "title": format!("Call the plumber about the kitchen sink {n}"),
        "description": "The tap drips at night; ask about a new washer and whether Tuesday works.",
        "created_at": "2026-12-07T00:00:00Z",
        "priority": "High",
        "tags": ["home", "repairs", "this-week"],
        "due": null,
        "reminders": [],
        "series": null,
    }})
}

/// The best microseconds per event of `rounds` runs of `each` over `events`.
fn best(rounds: u32, events: u32, mut each: impl FnMut(u32)) -> f64 {
    (0..rounds)
        .map(|_| {
            let started = Instant::now();
            for n in 0..events {
                each(n);
            }
            started.elapsed().as_secs_f64() * 1e6 / f64::from(events)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    keys::install_master_key(MasterKey::local_development())?;
    let (key, _) = DataKey::generate("ada")?;
    let events: Vec<Value> = (0..1_000).map(creation).collect();
    let pick = |n: u32| &events[n as usize % events.len()];

    let plain_write = best(args.rounds, args.events, |n| {
        black_box(pick(n).to_string());
    });
    let sealed_write = best(args.rounds, args.events, |n| {
        let mut payload = pick(n).clone();
        keys::seal(&mut payload["TaskCreated"], &key, "task").unwrap();
        black_box(payload.to_string());
    });
    let plain_text: Vec<String> = events.iter().map(Value::to_string).collect();
    let sealed_text: Vec<String> = events
        .iter()
        .map(|event| {
            let mut payload = event.clone();
            keys::seal(&mut payload["TaskCreated"], &key, "task").unwrap();
            payload.to_string()
        })
        .collect();
    let plain_read = best(args.rounds, args.events, |n| {
        let text = &plain_text[n as usize % plain_text.len()];
        black_box(serde_json::from_str::<Value>(text).unwrap());
    });
    let sealed_read = best(args.rounds, args.events, |n| {
        let text = &sealed_text[n as usize % sealed_text.len()];
        let mut payload: Value = serde_json::from_str(text).unwrap();
        let opened = keys::open(&mut payload["TaskCreated"], Some(&key), "task");
        assert_eq!(opened, keys::Opened::Opened);
        black_box(payload);
    });
    // A data key is unwrapped once per distinct key and query.
    let unwrap = {
        let (bobs, wrapped) = DataKey::generate("bob")?;
        best(args.rounds, args.events / 10, |_| {
            black_box(DataKey::unwrap("bob", &bobs.key_id, &wrapped).unwrap());
        })
    };
    let bytes = |texts: &[String]| texts.iter().map(String::len).sum::<usize>() / texts.len();

    println!(
        "| step | plain µs/event | sealed µs/event | sealed − plain µs |\n|---|---:|---:|---:|"
    );
    println!(
        "| serialise a creation for the insert | {plain_write:.2} | {sealed_write:.2} | {:.2} |",
        sealed_write - plain_write
    );
    println!(
        "| parse a stored creation (and open it) | {plain_read:.2} | {sealed_read:.2} | {:.2} |",
        sealed_read - plain_read
    );
    println!(
        "\nunwrapping a data key (once per key and query): {unwrap:.2} µs; \
         a creation is {} bytes plain, {} sealed",
        bytes(&plain_text),
        bytes(&sealed_text)
    );
    Ok(())
}
