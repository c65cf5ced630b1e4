//! Load generator for the intake benchmark (`bench/intake.sh`): posts signed, unique Sellix
//! `order_paid.json` bodies (or `GET /healthz`) to a running daemon over loopback and reports
//! throughput and latency percentiles.
//!
//! ```text
//! loadgen --url http://127.0.0.1:8080 --target intake --connections 32 --duration 10
//! loadgen --url http://127.0.0.1:8080 --target intake --rate 2000 --duration 10
//! ```
//! Closed loop (`--connections`): each connection sends its next request when the previous one
//! is answered: maximum throughput. Open loop (`--rate`): requests start on a fixed schedule and
//! latency counts from the *scheduled* start, so a stall is not hidden (no coordinated omission).

// A benchmark tool: setup failures should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &[u8] = b"whsec_test";
const ORIGINAL_ID: &str = "7a31c2-9f0e4b6d21-58c0d3";

#[derive(Default)]
struct Tally {
    latencies_us: Mutex<Vec<u64>>,
    ok: AtomicU64,
    duplicates: AtomicU64,
    failed: AtomicU64,
}

struct Args {
    url: String,
    intake: bool,
    connections: usize,
    rate: Option<u64>,
    duration: Duration,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:8080".into(),
        intake: true,
        connections: 32,
        rate: None,
        duration: Duration::from_secs(10),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--url" => a.url = value,
            "--target" => a.intake = value == "intake",
            "--connections" => a.connections = value.parse().expect("--connections N"),
            "--rate" => a.rate = Some(value.parse().expect("--rate N")),
            "--duration" => {
                a.duration = Duration::from_secs(value.parse().expect("--duration SECONDS"))
            }
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// A unique, correctly signed copy of the fixture (identical bodies would be deduplicated; the
/// run's start time keeps runs against one daemon apart).
fn signed_body(template: &str, n: u64) -> (String, String) {
    static RUN: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    });
    let body = template.replace(ORIGINAL_ID, &format!("bench-{run}-{n:012}"));
    let sig = storeflow::sources::verify::sign_sha512_hex(SECRET, body.as_bytes());
    (body, sig)
}

async fn one(
    client: &reqwest::Client,
    args: &Args,
    template: &str,
    n: u64,
    tally: &Tally,
    started: Instant,
) {
    let result = if args.intake {
        let (body, sig) = signed_body(template, n);
        client
            .post(format!("{}/hooks/sellix", args.url))
            .header("x-sellix-event", "order:paid")
            .header("x-sellix-signature", sig)
            .body(body)
            .send()
            .await
    } else {
        client.get(format!("{}/healthz", args.url)).send().await
    };
    let ok = match result {
        Ok(resp) if resp.status().is_success() => {
            let text = resp.text().await.unwrap_or_default();
            if text.contains("\"duplicate\":true") {
                tally.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            true
        }
        _ => false,
    };
    let counter = if ok { &tally.ok } else { &tally.failed };
    counter.fetch_add(1, Ordering::Relaxed);
    let us = started.elapsed().as_micros() as u64;
    tally.latencies_us.lock().unwrap().push(us);
}

async fn closed_loop(args: Arc<Args>, template: Arc<String>, tally: Arc<Tally>) {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + args.duration;
    let workers: Vec<_> = (0..args.connections)
        .map(|_| {
            let (client, args, template, tally, next) = (
                client.clone(),
                args.clone(),
                template.clone(),
                tally.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                while Instant::now() < end {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    one(&client, &args, &template, n, &tally, Instant::now()).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
}

async fn open_loop(args: Arc<Args>, template: Arc<String>, tally: Arc<Tally>, rate: u64) {
    let client = reqwest::Client::new();
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let start = Instant::now();
    let total = rate * args.duration.as_secs();
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        let scheduled = start + interval * n as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let (client, args, template, tally) = (
            client.clone(),
            args.clone(),
            template.clone(),
            tally.clone(),
        );
        tasks.push(tokio::spawn(async move {
            one(&client, &args, &template, n, &tally, scheduled).await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let args = Arc::new(parse_args());
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sellix/order_paid.json"
    );
    let template = Arc::new(std::fs::read_to_string(fixture).unwrap());
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    match args.rate {
        Some(rate) => open_loop(args.clone(), template, tally.clone(), rate).await,
        None => closed_loop(args.clone(), template, tally.clone()).await,
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = tally.latencies_us.lock().unwrap().clone();
    lat.sort_unstable();
    let ok = tally.ok.load(Ordering::Relaxed);
    let mode = args.rate.map_or(
        format!("closed loop, {} connections", args.connections),
        |r| format!("open loop, {r} req/s"),
    );
    println!(
        "target={} mode=\"{mode}\" requests={} ok={ok} failed={} duplicates={} req_per_s={:.0} p50_ms={:.2} p90_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        if args.intake { "intake" } else { "healthz" },
        lat.len(),
        tally.failed.load(Ordering::Relaxed),
        tally.duplicates.load(Ordering::Relaxed),
        ok as f64 / elapsed,
        percentile(&lat, 0.50),
        percentile(&lat, 0.90),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
    );
}
