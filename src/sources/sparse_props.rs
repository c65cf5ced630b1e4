//! Seeded property test: intake's sparse parse reads every delivery exactly as a parse of the
//! whole body would — the same event name, order view and dedupe key when the body is accepted,
//! the same 400 message when it is not — on mutated fixtures of both platforms (values changed
//! in and around the paths it keeps, repeated keys, broken bytes). A failure names the seed
//! and the body.

use bytes::Bytes;
use serde_json::{json, Value};

use super::sparse::{Keep, WHOLE};
use super::verify::verified;
use super::{selldone, sellix, IntakeError, SecretUsed};
use crate::model::event::{Incoming, Timestamp};

const SEED: u64 = 0x5ba5_e0f1_a7e5_0001;
/// Mutated bodies per fixture (14 fixtures).
const PER_FIXTURE: usize = 200;

type Read = fn(&super::Verified, Timestamp, Keep) -> Result<Incoming, IntakeError>;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn fixtures() -> Vec<(&'static str, Read, Keep, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for (platform, read, keep) in [
        ("sellix", sellix::read as Read, sellix::KEEP),
        ("selldone", selldone::read as Read, selldone::KEEP),
    ] {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(platform))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            out.push((platform, read, keep, std::fs::read(f).unwrap()));
        }
    }
    out
}

/// Every path to a value in `v`, as keys (array indexes as numbers), the root excluded.
fn paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => return,
    };
    for (key, child) in children {
        at.push(key);
        out.push(at.clone());
        paths(child, at, out);
        at.pop();
    }
}

fn slot<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, k| match v {
        Value::Object(m) => m.get_mut(k),
        Value::Array(a) => a.get_mut(k.parse::<usize>().ok()?),
        _ => None,
    })
}

/// A replacement value: the types the lenient readers treat differently.
fn mutant(rng: &mut Rng, old: &Value) -> Value {
    match rng.below(16) {
        0 => Value::Null,
        1 => json!(""),
        2 => json!("12.5"),
        3 => json!(" 7 "),
        4 => json!("NaN"),
        5 => json!(-3),
        6 => json!(18446744073709551615_u64),
        7 => json!(2.5e10),
        8 => json!(true),
        9 => json!([]),
        10 => json!({}),
        11 => json!([old.clone(), {"title": "x", "count": "2"}]),
        12 => json!({"title": old.clone(), "email": "e@example.com", "id": 5}),
        13 => json!("ünïcødé ✓"),
        14 => json!([[old.clone()]]),
        _ => json!({"nested": old.clone()}),
    }
}

/// A mutated body: a changed value, a repeated key, or broken bytes.
fn mutate(rng: &mut Rng, body: &[u8]) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(body).unwrap();
    let mut all = Vec::new();
    paths(&v, &mut Vec::new(), &mut all);
    match rng.below(10) {
        0..=5 => {
            for _ in 0..1 + rng.below(3) {
                let path = &all[rng.below(all.len())];
                if let Some(slot) = slot(&mut v, path) {
                    *slot = mutant(rng, slot);
                }
            }
            serde_json::to_vec(&v).unwrap()
        }
        6 | 7 => {
            // A key repeated right after an object opens: the later one wins in a full parse.
            let text = serde_json::to_string(&v).unwrap();
            let opens: Vec<usize> = text.match_indices('{').map(|(i, _)| i).collect();
            let at = opens[rng.below(opens.len())] + 1;
            let key = all[rng.below(all.len())].last().unwrap().clone();
            let dup = format!("{}:{},", json!(key), mutant(rng, &json!("first")));
            let mut text = text;
            text.insert_str(at, &dup);
            text.into_bytes()
        }
        _ => {
            let mut bytes = body.to_vec();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(bytes.len());
                match rng.below(4) {
                    0 => {
                        bytes.remove(i);
                    }
                    1 => {
                        let odd = b"{}[],:\"\\\x0e-\xff0e";
                        bytes.insert(i, odd[rng.below(odd.len())]);
                    }
                    2 => bytes[i] = rng.next() as u8,
                    _ => bytes.truncate(i),
                }
            }
            bytes
        }
    }
}

/// The event read keeping the source's paths, and keeping the whole body.
fn read_both(
    read: Read,
    keep: Keep,
    body: &[u8],
    hint: Option<&str>,
) -> [Result<Incoming, IntakeError>; 2] {
    let verified = verified(
        Bytes::copy_from_slice(body),
        hint.map(str::to_string),
        "default",
        SecretUsed::Current,
    );
    [keep, WHOLE].map(|keep| read(&verified, Timestamp(0), keep))
}

#[test]
fn the_sparse_parse_reads_every_mutated_delivery_as_the_whole_body_would() {
    let mut rng = Rng(SEED);
    let mut accepted = 0;
    for (platform, read, keep, body) in fixtures() {
        for n in 0..PER_FIXTURE {
            let mutated = mutate(&mut rng, &body);
            let hint = (platform == "sellix" && n % 2 == 0).then_some("");
            let [sparse, whole] = read_both(read, keep, &mutated, hint);
            let shown = String::from_utf8_lossy(&mutated);
            match (sparse, whole) {
                (Ok(s), Ok(w)) => {
                    accepted += 1;
                    assert_eq!(
                        (
                            &s.event.kind,
                            &s.event.canonical,
                            &s.event.order,
                            &s.dedupe_key
                        ),
                        (
                            &w.event.kind,
                            &w.event.canonical,
                            &w.event.order,
                            &w.dedupe_key
                        ),
                        "seed {SEED:#x}, {platform} #{n}: {shown}"
                    );
                    assert!(!s.event.payload.is_parsed(), "intake built the payload");
                    let full: Value = serde_json::from_slice(&mutated).unwrap();
                    assert_eq!(
                        *s.event.payload, full,
                        "the payload reads as the whole body"
                    );
                }
                (Err(s), Err(w)) => assert_eq!(
                    s.to_string(),
                    w.to_string(),
                    "seed {SEED:#x}, {platform} #{n}: {shown}"
                ),
                (s, w) => panic!(
                    "seed {SEED:#x}, {platform} #{n}: sparse {:?}, whole {:?}: {shown}",
                    s.map(|i| i.event.kind),
                    w.map(|i| i.event.kind)
                ),
            }
        }
    }
    // Most mutations keep the body readable: the comparison is not only of error messages.
    assert!(accepted > 14 * PER_FIXTURE / 2, "only {accepted} accepted");
}
