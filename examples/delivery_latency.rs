//! Delivery benchmark (`bench/delivery.sh`): a daemon in this process with one rule that calls a
//! local HTTP receiver for every event; measures acknowledgement → HTTP request arriving at the
//! receiver (p50/p99) at a steady rate, and jobs delivered per second in a burst.
//!
//! ```text
//! cargo run --release --example delivery_latency -- [RATE] [SECONDS] [BURST]
//! ```

// A benchmark tool: setup failures should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use warp::Filter;

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn receiver(arrivals: Arrivals) -> String {
    let route = warp::post()
        .and(warp::body::json())
        .map(move |body: serde_json::Value| {
            let id = body["id"].as_str().unwrap_or_default().to_string();
            arrivals.lock().unwrap().insert(id, Instant::now());
            "ok"
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(warp::serve(route).incoming(listener).run());
    url
}

async fn daemon(dir: &Path, hook: &str) -> (String, CancellationToken) {
    let rules = format!("rules:\n  - name: forward\n    on: \"*\"\n    actions:\n      - http: {{ url: \"{hook}\", json: {{ id: \"{{{{ order.id }}}}\" }} }}\n");
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/r.yaml"), rules).unwrap();
    let yaml = format!(
        "data_dir: {0}/data\nrules_dir: {0}/rules\nsources:\n  sellix:\n    secret: whsec_test\ndelivery:\n  concurrency: 8\n",
        dir.display()
    );
    let config =
        storeflow::config::Config::parse(&yaml, Path::new("bench.yaml"), |_| None).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(storeflow::app::run(config, listener, stop.clone()));
    (base, stop)
}

async fn send(client: &reqwest::Client, base: &str, id: &str) -> Instant {
    let body = format!(
        r#"{{"event":"order:paid","data":{{"uniqid":"{id}","status":"COMPLETED","total":10,"currency":"USD"}}}}"#
    );
    let sig = storeflow::sources::verify::sign_sha512_hex(b"whsec_test", body.as_bytes());
    let resp = client
        .post(format!("{base}/hooks/sellix"))
        .header("x-sellix-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    Instant::now()
}

async fn wait_all(arrivals: &Arrivals, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while arrivals.lock().unwrap().len() < n {
        assert!(Instant::now() < deadline, "deliveries did not all arrive");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let (rate, secs, burst) = (
        *args.first().unwrap_or(&200),
        *args.get(1).unwrap_or(&10),
        *args.get(2).unwrap_or(&2000),
    );
    let dir = tempfile::tempdir().unwrap();
    let arrivals: Arrivals = Arc::default();
    let hook = receiver(arrivals.clone()).await;
    let (base, stop) = daemon(dir.path(), &hook).await;
    let client = reqwest::Client::new();

    // Steady rate: latency from the 200 answer to the request reaching the receiver.
    let n = (rate * secs) as usize;
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let mut acks = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        tokio::time::sleep_until((start + interval * i as u32).into()).await;
        let id = format!("steady-{i}");
        acks.push((id.clone(), send(&client, &base, &id).await));
    }
    wait_all(&arrivals, n).await;
    let got = arrivals.lock().unwrap().clone();
    let mut lat: Vec<f64> = acks
        .iter()
        .map(|(id, ack)| got[id].saturating_duration_since(*ack).as_secs_f64() * 1000.0)
        .collect();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "steady rate={rate}/s events={n} ack_to_request_ms p50={:.2} p90={:.2} p99={:.2} max={:.2}",
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );

    // Burst: jobs delivered per second with `delivery.concurrency: 8`.
    arrivals.lock().unwrap().clear();
    let t0 = Instant::now();
    let senders: Vec<_> = (0..16u64)
        .map(|w| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                for i in (w..burst).step_by(16) {
                    send(&client, &base, &format!("burst-{i}")).await;
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    let acked = t0.elapsed().as_secs_f64();
    wait_all(&arrivals, burst as usize).await;
    let all = t0.elapsed().as_secs_f64();
    println!(
        "burst events={burst} acked_in_s={acked:.2} delivered_in_s={all:.2} jobs_per_s={:.0}",
        burst as f64 / all
    );
    stop.cancel();
}
