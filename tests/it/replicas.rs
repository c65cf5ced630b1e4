//! Replicas sharing one PostgreSQL journal (DESIGN.md §13, issue 14): real `storeflow serve`
//! processes on different ports over one throwaway database, an HTTP sink that can hold its
//! answers, and the journal read back with `psql`.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::sync::watch;
use warp::Filter;

use crate::helpers::{post, sign, wait_for_async, Process};
use crate::postgres::cluster::{self, Cluster};

/// Short leases so takeovers happen within a test (documented minimum: 1 s).
const LEASE: Duration = Duration::from_secs(2);

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
struct Sink {
    base: String,
    seen: Arc<Mutex<Vec<(String, Instant)>>>,
    gate: watch::Sender<Released>,
}

impl Sink {
    async fn start(open: bool) -> Sink {
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
    fn open(&self) {
        self.gate.send_modify(|r| r.all = true);
    }

    /// Answers the `index`-th request (0-based, in arrival order).
    fn release(&self, index: usize) {
        self.gate.send_modify(|r| {
            r.some.insert(index);
        });
    }

    /// How many requests each idempotency key got, and when.
    fn by_key(&self) -> HashMap<String, Vec<Instant>> {
        let mut keys: HashMap<String, Vec<Instant>> = HashMap::new();
        for (key, at) in self.seen.lock().unwrap().iter() {
            keys.entry(key.clone()).or_default().push(*at);
        }
        keys
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// One replica: its own directory (config, rules, data) and process.
struct Replica {
    _dir: TempDir,
    process: Process,
}

impl Replica {
    fn start(url: &str, sink: &Sink) -> Replica {
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

    fn pid(&self) -> u32 {
        self.process.child.id()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    }

    async fn metric(&self, name: &str) -> f64 {
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
fn delivery(n: usize) -> (Vec<u8>, String) {
    let body =
        format!(r#"{{"event":"order:paid","data":{{"uniqid":"ord-{n}","status":"COMPLETED"}}}}"#);
    let sig = sign(body.as_bytes());
    (body.into_bytes(), sig)
}

/// Posts delivery `n` to `replica`; answers (status, event id, duplicate).
async fn send(replica: &Replica, n: usize) -> (u16, String, bool) {
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
fn count(db: &Cluster, name: &str, sql: &str) -> i64 {
    db.psql(name, sql).unwrap().parse().unwrap()
}

/// The replica (of `replicas`) whose process holds the claim `owner` (`host:pid:random`).
fn by_owner<'a>(replicas: &'a [Replica], owner: &str) -> &'a Replica {
    let pid: u32 = owner.rsplit(':').nth(1).unwrap().parse().unwrap();
    replicas.iter().find(|r| r.pid() == pid).unwrap()
}

/// Waits until every one of `jobs` jobs is done (with a deadline).
async fn all_done(db: &Cluster, name: &str, jobs: i64) {
    wait_for_async("every job done", || async {
        let done = count(db, name, "SELECT count(*) FROM jobs WHERE status = 'done'");
        (done == jobs).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_deliveries_and_one_delivery_sent_to_both_is_one_event() {
    let db = cluster::cluster();
    let (name, url) = db.named_database();
    let sink = Sink::start(true).await;
    let replicas = [Replica::start(&url, &sink), Replica::start(&url, &sink)];

    let stream = |r: usize| {
        let replica = &replicas[r];
        async move {
            let mut answers = Vec::new();
            for n in (r..40).step_by(2) {
                answers.push(send(replica, n).await);
            }
            answers
        }
    };
    let (even, odd) = tokio::join!(stream(0), stream(1));
    let answers: Vec<_> = even.into_iter().chain(odd).collect();
    assert!(answers.iter().all(|a| a.0 == 200 && !a.2), "{answers:?}");
    let (a, b) = tokio::join!(send(&replicas[0], 1000), send(&replicas[1], 1000));
    assert_eq!((a.0, b.0), (200, 200));
    assert_eq!(a.1, b.1, "the same delivery to both replicas is one event");
    assert!(
        a.2 != b.2,
        "one of the two answers says duplicate: {a:?} {b:?}"
    );

    all_done(db, &name, 41).await;
    assert_eq!(count(db, &name, "SELECT count(*) FROM events"), 41);
    assert_eq!(
        count(db, &name, "SELECT count(*) FROM traces"),
        41,
        "planned once each"
    );
    assert_eq!(count(db, &name, "SELECT count(*) FROM attempts"), 41);
    let unattributed = "SELECT count(*) FROM attempts WHERE replica IS NULL OR fence IS NULL";
    assert_eq!(
        count(db, &name, unattributed),
        0,
        "every attempt was fenced"
    );
    let keys = sink.by_key();
    assert_eq!(keys.len(), 41);
    assert!(keys.values().all(|at| at.len() == 1), "nothing sent twice");
}

/// SIGKILL the replica delivering a job, SIGSTOP the one that took it over past its lease and,
/// while the third delivers it, answer the paused one's request and SIGCONT it: its delivery
/// "succeeded" but it completes nothing (the journal keeps the third's attempt only); repeats
/// come no sooner than a lease apart; every event acknowledged afterwards is planned once and
/// delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_killed_or_paused_replica_loses_nothing_and_completes_nothing_late() {
    let db = cluster::cluster();
    let (name, url) = db.named_database();
    let sink = Sink::start(false).await;
    let replicas = [
        Replica::start(&url, &sink),
        Replica::start(&url, &sink),
        Replica::start(&url, &sink),
    ];
    let owner = "SELECT lease_owner || ' ' || fence FROM jobs";
    assert_eq!(send(&replicas[0], 1).await.0, 200);

    // The first delivery is in flight: kill the replica making it.
    wait_for_async("the first delivery", || async {
        (sink.requests() >= 1).then_some(())
    })
    .await;
    let first = db.psql(&name, owner).unwrap();
    let killed = by_owner(&replicas, first.split(' ').next().unwrap());
    killed.signal("-KILL");

    // Another replica takes the job over once the lease ran out: pause it mid-delivery.
    wait_for_async("the job taken over", || async {
        (sink.requests() >= 2).then_some(())
    })
    .await;
    let second = db.psql(&name, owner).unwrap();
    assert_ne!(first, second, "a new claim, a new fence");
    let paused = by_owner(&replicas, second.split(' ').next().unwrap());
    paused.signal("-STOP");

    // The third takes it over in turn; now let the deliveries through.
    wait_for_async("the job taken over again", || async {
        (sink.requests() >= 3).then_some(())
    })
    .await;
    let third = db.psql(&name, owner).unwrap();
    let last = by_owner(&replicas, third.split(' ').next().unwrap());
    // The paused replica's delivery "succeeds" while the third's is still in flight.
    sink.release(1);
    paused.signal("-CONT");
    wait_for_async("the paused replica to give up its stale claim", || async {
        let lost = paused.metric("storeflow_claims_lost_total").await;
        let fenced = paused.metric("storeflow_fenced_writes_total").await;
        (lost + fenced >= 1.0).then_some(())
    })
    .await;
    let job = "SELECT status || ' ' || attempts FROM jobs";
    assert_eq!(
        db.psql(&name, job).unwrap(),
        "pending 0",
        "the stale replica completed nothing"
    );
    sink.open();
    all_done(db, &name, 1).await;

    let attempts = db
        .psql(&name, "SELECT replica || ' ' || fence FROM attempts")
        .unwrap();
    assert_eq!(
        attempts, third,
        "one attempt, by the replica that held the job last"
    );
    assert!(third.contains(&format!(":{}:", last.pid())));
    let at = &sink.by_key().into_values().next().unwrap();
    assert_eq!(at.len(), 3, "one delivery per claim");
    for pair in at.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= LEASE / 2, "repeated within the lease: {gap:?}");
    }

    // Every event acknowledged from now on, by the live replicas, is planned once and delivered.
    let live: Vec<&Replica> = replicas
        .iter()
        .filter(|r| r.pid() != killed.pid())
        .collect();
    for n in 2..22 {
        let (status, _, duplicate) = send(live[n % live.len()], n).await;
        assert_eq!((status, duplicate), (200, false));
    }
    all_done(db, &name, 21).await;
    assert_eq!(count(db, &name, "SELECT count(*) FROM traces"), 21);
    assert_eq!(count(db, &name, "SELECT count(*) FROM attempts"), 21);
    let stale =
        "SELECT count(*) FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE a.fence <> j.fence";
    assert_eq!(count(db, &name, stale), 0, "no attempt under a stale fence");
}

/// The database goes away under load and comes back: the replicas answer 503 meanwhile, every
/// delivery they acknowledged is kept, planned and delivered, and they recover without restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_restart_during_load_loses_nothing_acknowledged() {
    let private = Cluster::private();
    let db = &private;
    let (name, url) = db.named_database();
    let sink = Sink::start(true).await;
    let replicas = [Replica::start(&url, &sink), Replica::start(&url, &sink)];
    let mut acked = Vec::new();
    let mut refused = 0;
    for n in 0..20 {
        let (status, id, _) = send(&replicas[n % 2], n).await;
        assert_eq!(status, 200);
        acked.push(id);
    }
    db.stop().unwrap();
    for n in 20..40 {
        match send(&replicas[n % 2], n).await {
            (200, id, _) => acked.push(id),
            (503, _, _) => refused += 1,
            other => panic!("unexpected answer while the database is down: {other:?}"),
        }
    }
    assert!(refused > 0, "503 while the database is down");
    db.restart().unwrap();
    let mut n = 40;
    wait_for_async("intake to recover", || {
        n += 1;
        let replica = &replicas[n % 2];
        async move { (send(replica, n).await.0 == 200).then_some(()) }
    })
    .await;
    for n in 100..110 {
        let (status, id, _) = send(&replicas[n % 2], n).await;
        assert_eq!(status, 200, "both replicas recovered");
        acked.push(id);
    }
    let events = count(db, &name, "SELECT count(*) FROM events") as usize;
    all_done(db, &name, events as i64).await;
    let listed = db.psql(&name, "SELECT id FROM events").unwrap();
    for id in &acked {
        assert!(
            listed.lines().any(|l| l == id),
            "acknowledged event {id} lost"
        );
    }
    assert_eq!(
        count(db, &name, "SELECT count(*) FROM traces") as usize,
        events
    );
}

/// The replica planning events (holding the pipeline lease) is killed, then its successor is
/// paused: the events the others acknowledge meanwhile are planned once each by the next holder,
/// and the paused one, resumed, plans nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_moves_on_when_its_replica_dies_or_hangs() {
    let db = cluster::cluster();
    let (name, url) = db.named_database();
    let sink = Sink::start(true).await;
    let replicas = [
        Replica::start(&url, &sink),
        Replica::start(&url, &sink),
        Replica::start(&url, &sink),
    ];
    let holder = "SELECT owner FROM leases WHERE name = 'pipeline' AND until > now()";
    let current = || async {
        let owner = db.psql(&name, holder).unwrap();
        (!owner.is_empty()).then_some(owner)
    };
    let first = wait_for_async("a replica holding the pipeline", current).await;
    let killed = by_owner(&replicas, &first);
    killed.signal("-KILL");
    let live: Vec<&Replica> = replicas
        .iter()
        .filter(|r| r.pid() != killed.pid())
        .collect();
    for n in 0..5 {
        assert_eq!(send(live[n % 2], n).await.0, 200);
    }
    all_done(db, &name, 5).await;

    let second = wait_for_async("the next holder", current).await;
    assert_ne!(first, second);
    let paused = by_owner(&replicas, &second);
    paused.signal("-STOP");
    let other = live.iter().find(|r| r.pid() != paused.pid()).unwrap();
    for n in 5..10 {
        assert_eq!(send(other, n).await.0, 200);
    }
    all_done(db, &name, 10).await;
    paused.signal("-CONT");
    for n in 10..13 {
        assert_eq!(send(paused, n).await.0, 200);
    }
    all_done(db, &name, 13).await;
    assert_eq!(count(db, &name, "SELECT count(*) FROM traces"), 13);
    assert_eq!(count(db, &name, "SELECT count(*) FROM attempts"), 13);
    assert!(sink.by_key().values().all(|at| at.len() == 1));
}
