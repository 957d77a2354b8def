//! A schema-aware fuzzer: random documents built from the introspected schema
//! (fields, aliases, arguments of every type including deep input objects,
//! fragments, inline fragments, directives, variables) with random tokens and
//! headers. Whatever it sends, the answer is never a 5xx nor `INTERNAL`, comes
//! within a bound, and the server keeps serving. A fixed seed makes each case
//! reproducible: a failure prints the seed and the case number.
//!
//! `./dev test fuzz` runs `FUZZ_CASES` cases (default 150); a longer run, e.g.
//! `FUZZ_CASES=20000 FUZZ_SEED=7 ./dev test fuzz -- --no-capture`, reports
//! cases per second.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use taskledger::Roles;

use crate::helpers::{assert_no_errors, TestApp};

/// xorshift64*: small, fast, and the same sequence everywhere for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const INTROSPECTION: &str = "{ __schema { queryType { name } mutationType { name }
  types { name kind
    fields { name args { name type { ...T } } type { ...T } }
    inputFields { name type { ...T } }
    enumValues { name } } } }
  fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

/// What the generator needs of the schema.
struct Schema {
    types: HashMap<String, Value>,
    query: String,
    mutation: String,
}

impl Schema {
    fn named(&self, kind: &Value) -> (String, String) {
        let mut kind = kind;
        while kind["name"].is_null() && !kind["ofType"].is_null() {
            kind = &kind["ofType"];
        }
        (
            kind["name"].as_str().unwrap_or("String").to_owned(),
            kind["kind"].as_str().unwrap_or("SCALAR").to_owned(),
        )
    }
}

struct Generator<'a> {
    rng: Rng,
    schema: &'a Schema,
}

const DIRECTIVES: [&str; 4] = [
    " @include(if: true)",
    " @skip(if: false)",
    " @include(if: \"yes\")",
    " @unknown",
];

const STRINGS: &[&str] = &[
    "",
    "milk",
    "quarterly -draft \"report\"",
    "a\u{0}b",
    "\u{202e}evil",
    "🙂🙂",
    "FREQ=DAILY;UNTIL=20270403",
    "FREQ=SECONDLY",
    "Europe/Berlin",
    "Mars/Olympus",
    "2026-13-45",
    "work/clients",
    "x y z",
];

impl Generator<'_> {
    fn string(&mut self) -> String {
        match self.rng.below(4) {
            0 => "x".repeat(self.rng.below(300)),
            1 => uuid::Uuid::from_u64_pair(self.rng.next(), self.rng.next()).to_string(),
            _ => (*self.rng.pick(STRINGS)).to_owned(),
        }
    }

    /// A GraphQL literal for a value of `kind` (sometimes of the wrong type).
    fn literal(&mut self, kind: &Value, depth: usize) -> String {
        if self.rng.chance(4) {
            return self
                .rng
                .pick(&["null", "\"wrong\"", "-1", "[]", "{}"])
                .to_string();
        }
        match kind["kind"].as_str() {
            Some("NON_NULL") => self.literal(&kind["ofType"], depth),
            Some("LIST") => {
                let n = self.rng.below(4);
                let items: Vec<String> = (0..n)
                    .map(|_| self.literal(&kind["ofType"], depth + 1))
                    .collect();
                format!("[{}]", items.join(", "))
            }
            _ => {
                let (name, kind_name) = self.schema.named(kind);
                match (kind_name.as_str(), name.as_str()) {
                    ("ENUM", _) => {
                        let values = self.schema.types[&name]["enumValues"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        if values.is_empty() {
                            "NOPE".into()
                        } else {
                            self.rng.pick(&values)["name"].as_str().unwrap().to_owned()
                        }
                    }
                    ("INPUT_OBJECT", _) if depth < 4 => {
                        let fields = self.schema.types[&name]["inputFields"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        let mut parts = Vec::new();
                        for field in &fields {
                            if self.rng.chance(40) {
                                parts.push(format!(
                                    "{}: {}",
                                    field["name"].as_str().unwrap(),
                                    self.literal(&field["type"], depth + 1)
                                ));
                            }
                        }
                        format!("{{{}}}", parts.join(", "))
                    }
                    ("INPUT_OBJECT", _) => "{}".into(),
                    (_, "Int") => {
                        let n = self.rng.next() as i64;
                        self.rng
                            .pick(&[0, 1, 5, 20, 100, 101, -1, i64::from(i32::MAX), n % 1000])
                            .to_string()
                    }
                    (_, "Boolean") => self.rng.pick(&["true", "false"]).to_string(),
                    (_, "DateTime") => self
                        .rng
                        .pick(&[
                            "\"2026-01-01T00:00:00Z\"",
                            "\"9999-12-31T23:59:59Z\"",
                            "\"yesterday\"",
                        ])
                        .to_string(),
                    _ => serde_json::to_string(&self.string()).unwrap(),
                }
            }
        }
    }

    fn selection(&mut self, type_name: &str, depth: usize) -> String {
        let Some(fields) = self
            .schema
            .types
            .get(type_name)
            .and_then(|t| t["fields"].as_array())
        else {
            return String::new();
        };
        let fields = fields.clone();
        if fields.is_empty() {
            return String::new();
        }
        let mut parts = Vec::new();
        for n in 0..1 + self.rng.below(4) {
            let field = self.rng.pick(&fields).clone();
            let name = field["name"].as_str().unwrap();
            let mut text = String::new();
            if self.rng.chance(30) {
                text.push_str(&format!("a{n}_{}: ", self.rng.below(1000)));
            }
            text.push_str(name);
            let mut args = Vec::new();
            for arg in field["args"].as_array().cloned().unwrap_or_default() {
                if self.rng.chance(50) {
                    let value = self.literal(&arg["type"], 0);
                    args.push(format!("{}: {value}", arg["name"].as_str().unwrap()));
                }
            }
            if !args.is_empty() {
                text.push_str(&format!("({})", args.join(", ")));
            }
            if self.rng.chance(5) {
                let directive: &&str = self.rng.pick(&DIRECTIVES);
                text.push_str(directive);
            }
            let (inner, kind) = self.schema.named(&field["type"]);
            if kind == "OBJECT" {
                let nested = if depth < 5 {
                    self.selection(&inner, depth + 1)
                } else {
                    String::new()
                };
                let nested = if nested.is_empty() {
                    "__typename".to_owned()
                } else {
                    nested
                };
                if self.rng.chance(10) {
                    text.push_str(&format!(" {{ ... on {inner} {{ {nested} }} }}"));
                } else {
                    text.push_str(&format!(" {{ {nested} }}"));
                }
            }
            parts.push(text);
        }
        parts.join(" ")
    }

    fn document(&mut self) -> String {
        let mutation = self.rng.chance(25);
        let root = if mutation {
            &self.schema.mutation
        } else {
            &self.schema.query
        };
        let root = root.clone();
        let body = self.selection(&root, 0);
        let keyword = if mutation { "mutation" } else { "query" };
        if self.rng.chance(15) {
            // The same selection through a fragment, spread a few times.
            let spreads = " ...F".repeat(1 + self.rng.below(3));
            format!("{keyword} {{{spreads} }} fragment F on {root} {{ {body} }}")
        } else {
            format!("{keyword} {{ {body} }}")
        }
    }
}

#[tokio::test]
async fn random_documents_never_break_the_api() {
    let cases: usize = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(150);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20261202);
    let app = TestApp::spawn_roles(Roles::API).await;
    let alice = app.token("alice");
    let introspected = app.graphql(Some(&alice), INTROSPECTION, json!({})).await;
    assert_no_errors(&introspected);
    let schema = &introspected["data"]["__schema"];
    let schema = Schema {
        types: schema["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["name"].as_str().unwrap().to_owned(), t.clone()))
            .collect(),
        query: schema["queryType"]["name"].as_str().unwrap().to_owned(),
        mutation: schema["mutationType"]["name"].as_str().unwrap().to_owned(),
    };
    let mut generator = Generator {
        rng: Rng(seed | 1),
        schema: &schema,
    };
    let tokens = [
        Some(alice.clone()),
        Some(app.token("bob")),
        Some(app.expired_token("alice")),
        Some("not.a.token".to_owned()),
        None,
    ];
    let started = Instant::now();
    for case in 0..cases {
        let document = generator.document();
        let token = generator.rng.pick(&tokens).clone();
        let sent = Instant::now();
        let (status, body) = app
            .post_raw(token.as_deref(), json!({ "query": document }).to_string())
            .await;
        let took = sent.elapsed();
        let reproduce = format!("seed {seed}, case {case}: {document}");
        assert!(
            status.as_u16() < 500,
            "HTTP {status} for {reproduce}: {body}"
        );
        let internal = body["errors"]
            .as_array()
            .is_some_and(|errors| errors.iter().any(|e| e["extensions"]["code"] == "INTERNAL"));
        assert!(!internal, "INTERNAL for {reproduce}: {body}");
        assert!(took < Duration::from_secs(5), "{took:?} for {reproduce}");
    }
    let health = reqwest::get(format!("{}/healthz", app.address))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    println!(
        "fuzz: {cases} cases in {:?} ({:.0} cases/s), seed {seed}",
        started.elapsed(),
        cases as f64 / started.elapsed().as_secs_f64()
    );
}
