//! What the replicas tests run: replicas as real `storeflow serve` processes over one database,
//! an HTTP sink that can hold its answers, signed deliveries, and the journal read with `psql`.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::sync::watch;
use warp::Filter;

use crate::helpers::{post, sign, wait_for_async, Process};
use crate::postgres::cluster::Cluster;

/// Short leases so takeovers happen within a test (documented minimum: 1 s).
pub(super) const LEASE: Duration = Duration::from_secs(2);

const RULES: &str = r#"
rules:
  - name: notify-erp
    on: sellix/order:paid
    actions:
      - http:
          url: "SINK"
          json: { order: "{{ order.id }}" }
"#;

/// Which held requests (by arrival index) the sink answers.
#[derive(Default)]
struct Released {
    all: bool,
    some: HashSet<usize>,
}

/// An HTTP receiver that records each request's idempotency key and when it came, and answers
/// only the requests released (a held request is a delivery in flight).
pub(super) struct Sink {
    pub(super) base: String,
    seen: Arc<Mutex<Vec<(String, Instant)>>>,
    gate: watch::Sender<Released>,
}

impl Sink {
    pub(super) async fn start(open: bool) -> Sink {
        let seen: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let (gate, opened) = watch::channel(Released {
            all: open,
            some: HashSet::new(),
        });
        let record = seen.clone();
        let route = warp::header::headers_cloned().and_then(move |h: http::HeaderMap| {
            let (record, mut opened) = (record.clone(), opened.clone());
            async move {
                let key = h
                    .get("x-storeflow-idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let index = {
                    let mut seen = record.lock().unwrap();
                    seen.push((key, Instant::now()));
                    seen.len() - 1
                };
                let _ = opened.wait_for(|r| r.all || r.some.contains(&index)).await;
                Ok::<_, warp::Rejection>("ok")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/erp", listener.local_addr().unwrap());
        tokio::spawn(warp::serve(route).incoming(listener).run());
        Sink { base, seen, gate }
    }

    /// Answers every request, held or to come.
    pub(super) fn open(&self) {
        self.gate.send_modify(|r| r.all = true);
    }

    /// Answers the `index`-th request (0-based, in arrival order).
    pub(super) fn release(&self, index: usize) {
        self.gate.send_modify(|r| {
            r.some.insert(index);
        });
    }

    /// How many requests each idempotency key got, and when.
    pub(super) fn by_key(&self) -> HashMap<String, Vec<Instant>> {
        let mut keys: HashMap<String, Vec<Instant>> = HashMap::new();
        for (key, at) in self.seen.lock().unwrap().iter() {
            keys.entry(key.clone()).or_default().push(*at);
        }
        keys
    }

    pub(super) fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// One replica: its own directory (config, rules, data) and process.
pub(super) struct Replica {
    _dir: TempDir,
    process: Process,
}

impl Replica {
    pub(super) fn start(url: &str, sink: &Sink) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        std::fs::create_dir_all(&rules).unwrap();
        std::fs::write(rules.join("r.yaml"), RULES.replace("SINK", &sink.base)).unwrap();
        let yaml = format!(
            "rules_dir: {}\nsources:\n  sellix:\n    secret: whsec_test\njournal:\n  url: \"{url}\"\n\
             replicas:\n  lease: {}ms\n  renew_every: 500ms\n\
             delivery:\n  retry_schedule: [200ms, 200ms, 200ms]\n  timeout: 60s\n",
            rules.display(),
            LEASE.as_millis()
        );
        let process = Process::start(dir.path(), &yaml);
        Replica { _dir: dir, process }
    }

    pub(super) fn pid(&self) -> u32 {
        self.process.child.id()
    }

    pub(super) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    }

    pub(super) async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(self.process.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// A distinct signed Sellix `order:paid` delivery for order `n`.
pub(super) fn delivery(n: usize) -> (Vec<u8>, String) {
    let body =
        format!(r#"{{"event":"order:paid","data":{{"uniqid":"ord-{n}","status":"COMPLETED"}}}}"#);
    let sig = sign(body.as_bytes());
    (body.into_bytes(), sig)
}

/// Posts delivery `n` to `replica`; answers (status, event id, duplicate).
pub(super) async fn send(replica: &Replica, n: usize) -> (u16, String, bool) {
    let (body, sig) = delivery(n);
    let headers = [
        ("x-sellix-event", "order:paid"),
        ("x-sellix-signature", sig.as_str()),
    ];
    let a = post(&replica.process.url("/hooks/sellix"), &headers, body).await;
    let id = a.json["event_id"].as_str().unwrap_or("").to_string();
    (a.status, id, a.json["duplicate"] == true)
}

/// One number from the journal.
pub(super) fn count(db: &Cluster, name: &str, sql: &str) -> i64 {
    db.psql(name, sql).unwrap().parse().unwrap()
}

/// The replica (of `replicas`) whose process holds the claim `owner` (`host:pid:random`).
pub(super) fn by_owner<'a>(replicas: &'a [Replica], owner: &str) -> &'a Replica {
    let pid: u32 = owner.rsplit(':').nth(1).unwrap().parse().unwrap();
    replicas.iter().find(|r| r.pid() == pid).unwrap()
}

/// Waits until every one of `jobs` jobs is done (with a deadline).
pub(super) async fn all_done(db: &Cluster, name: &str, jobs: i64) {
    wait_for_async("every job done", || async {
        let done = count(db, name, "SELECT count(*) FROM jobs WHERE status = 'done'");
        (done == jobs).then_some(())
    })
    .await;
}
