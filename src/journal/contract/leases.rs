//! Claims, leases and fences of replicas sharing a journal ([`crate::journal::lease`]): on
//! PostgreSQL a write under a claim that moved is refused; on SQLite (not shared) claims are the
//! due jobs and fenced writes apply as they are.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::TestStore;
use crate::journal::lease::{Change, Fence, Wake};
use crate::journal::pg::{PgStore, PgUrl};
use crate::journal::{AttemptOutcome, JobStatus, NewJob, NextStep, Processed, Write, Written};
use crate::model::event::{Event, Incoming, Timestamp};

const WINDOW: Duration = Duration::from_secs(60);
const LONG: Duration = Duration::from_secs(60);

/// One event with one pending job; answers the job's id.
fn one_job(store: &mut TestStore) -> i64 {
    let body = bytes::Bytes::from_static(br#"{"event":"order:paid","data":{}}"#);
    let event = Event {
        id: Event::new_id(),
        source: "sellix".into(),
        shop: "default".into(),
        secret: None,
        kind: "order:paid".into(),
        topic: "sellix/order:paid".into(),
        canonical: None,
        received_at: Timestamp::now(),
        payload: serde_json::from_slice(&body).unwrap(),
        order: None,
    };
    let id = event.id.clone();
    let incoming = Incoming {
        event,
        dedupe_key: id.clone(),
        body,
    };
    let job = NewJob {
        rule: "r".into(),
        action_index: 0,
        kind: "log".into(),
        params: serde_json::json!({"message": "hi"}),
        error: None,
    };
    let processed = Processed {
        event_id: id.clone(),
        trace: serde_json::json!({}).into(),
        jobs: vec![job],
        state: vec![],
        fired: vec![],
        timers: Default::default(),
    };
    let batch = [
        Write::Append(Box::new(incoming)),
        Write::Processed(processed),
    ];
    store.write_batch(&batch, WINDOW).unwrap();
    store.jobs(Some(&id), None, 10).unwrap()[0].id
}

fn done(job_id: i64) -> Write {
    let now = Timestamp::now();
    Write::Attempt(AttemptOutcome {
        job_id,
        attempt: 1,
        started_at: now,
        finished_at: now,
        error: None,
        next: NextStep::Done,
    })
}

fn fenced(fence: Fence, write: Write) -> Write {
    Write::Fenced(fence, Box::new(write))
}

#[test]
fn regression_a_paused_replica_cannot_complete_a_job_another_took_over() {
    let mut store = super::postgres();
    let id = one_job(&mut store);
    let now = Timestamp::now();
    // A's lease runs out at once (as if it had been paused); B takes the job over.
    let a = store.claim_jobs("a", now, Duration::ZERO, 10).unwrap();
    assert_eq!(a.len(), 1);
    let b = store.claim_jobs("b", now, LONG, 10).unwrap();
    assert_eq!(b.len(), 1, "a lease that ran out is claimed again");
    assert_eq!(b[0].fence, a[0].fence + 1, "every claim bumps the fence");
    assert!(
        store.claim_jobs("a", now, LONG, 10).unwrap().is_empty(),
        "B holds it"
    );
    assert!(store
        .renew_jobs("a", &[(id, a[0].fence)], LONG)
        .unwrap()
        .is_empty());
    assert_eq!(
        store.renew_jobs("b", &[(id, b[0].fence)], LONG).unwrap(),
        vec![id]
    );

    let late = fenced(Fence::Jobs(vec![(id, a[0].fence)]), done(id));
    assert_eq!(
        store.write_batch(&[late], WINDOW).unwrap(),
        vec![Written::Fenced]
    );
    let job = store.job(id).unwrap().unwrap();
    assert_eq!(
        (job.status, job.attempts),
        (JobStatus::Pending, 0),
        "nothing written"
    );
    assert!(store.attempts(id).unwrap().is_empty());

    let current = fenced(Fence::Jobs(vec![(id, b[0].fence)]), done(id));
    assert_eq!(
        store.write_batch(&[current], WINDOW).unwrap(),
        vec![Written::Changed(1)]
    );
    assert_eq!(store.job(id).unwrap().unwrap().status, JobStatus::Done);
}

#[test]
fn a_claim_given_back_is_claimable_at_once() {
    let mut store = super::postgres();
    let id = one_job(&mut store);
    let now = Timestamp::now();
    let a = store.claim_jobs("a", now, LONG, 10).unwrap();
    assert!(store.claim_jobs("b", now, LONG, 10).unwrap().is_empty());
    store.release_jobs("b", &[(id, a[0].fence)]).unwrap(); // not b's: changes nothing
    assert!(store.claim_jobs("b", now, LONG, 10).unwrap().is_empty());
    store.release_jobs("a", &[(id, a[0].fence)]).unwrap(); // a stops before starting it
    let b = store.claim_jobs("b", now, LONG, 10).unwrap();
    assert_eq!((b.len(), b[0].fence), (1, a[0].fence + 1));
}

#[test]
fn a_named_lease_has_one_holder_and_fences_the_previous_one() {
    let mut store = super::postgres();
    let (x, long) = ("x", LONG);
    let a = store.hold_lease(x, "a", Duration::ZERO).unwrap().unwrap();
    let b = store.hold_lease(x, "b", long).unwrap().unwrap();
    assert!(b > a, "a new holder, a higher fence");
    assert_eq!(store.hold_lease(x, "a", long).unwrap(), None, "B holds it");
    assert_eq!(
        store.hold_lease(x, "b", long).unwrap(),
        Some(b),
        "renewed: same fence"
    );
    let lease = |owner: &str, fence| Fence::Lease {
        name: x.into(),
        owner: owner.into(),
        fence,
    };
    let state = |v: i64| Write::State("k".into(), serde_json::json!(v));
    let out = store
        .write_batch(
            &[
                fenced(lease("a", a), state(1)),
                fenced(lease("b", b), state(2)),
            ],
            WINDOW,
        )
        .unwrap();
    assert_eq!(out[0], Written::Fenced);
    assert_eq!(store.state("k").unwrap(), Some(serde_json::json!(2)));
    store.release_lease(x, "b").unwrap();
    let again = store.hold_lease(x, "a", long).unwrap().unwrap();
    assert!(again > b, "a fence is never handed out twice");
}

#[test]
fn sqlite_claims_are_the_due_jobs_and_fenced_writes_apply_as_they_are() {
    let mut store = super::sqlite();
    assert!(!store.shared());
    let id = one_job(&mut store);
    let claims = store.claim_jobs("a", Timestamp::now(), LONG, 10).unwrap();
    assert_eq!((claims[0].item.id, claims[0].fence), (id, 0));
    assert_eq!(store.hold_lease("x", "b", LONG).unwrap(), Some(0));
    let w = fenced(Fence::Jobs(vec![(id, 99)]), done(id));
    assert_eq!(
        store.write_batch(&[w], WINDOW).unwrap(),
        vec![Written::Changed(1)]
    );
}

/// The next `want` among the wake-ups, within `deadline`.
fn expect(rx: &std::sync::mpsc::Receiver<Change>, want: Change, deadline: Duration) {
    let until = std::time::Instant::now() + deadline;
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(got) if got == want => return,
            Ok(_) => continue,
            Err(e) => panic!("no {want:?} wake-up within {deadline:?}: {e}"),
        }
    }
}

#[test]
fn a_commit_wakes_every_listener_and_a_lost_listener_reconnects() {
    let cluster = crate::journal::pg::cluster::Cluster::private();
    let url = PgUrl::parse(&cluster.database()).unwrap();
    let mut store = TestStore {
        store: Box::new(PgStore::open(&url).unwrap()),
        _dir: None,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let wake: Wake = Arc::new(move |c| {
        let _ = tx.lock().map(|tx| tx.send(c));
    });
    let stop = CancellationToken::new();
    store.watch_changes(wake, stop.clone()).unwrap();
    let wait = Duration::from_secs(20);
    // Once listening it looks once for what it may have missed.
    expect(&rx, Change::Jobs, wait);
    while rx.try_recv().is_ok() {}

    one_job(&mut store); // appends an event and plans a job: both announced at the commit
    expect(&rx, Change::Events, wait);
    expect(&rx, Change::Jobs, wait);

    cluster.stop().unwrap();
    cluster.restart().unwrap();
    while rx.try_recv().is_ok() {}
    expect(&rx, Change::Jobs, wait); // reconnected (and looking once again)
    one_job(&mut store);
    expect(&rx, Change::Events, wait);
    stop.cancel();
}

#[test]
fn a_timer_claimed_over_is_settled_only_by_its_new_holder() {
    use crate::journal::{Firing, TimerStatus};
    let mut store = super::postgres();
    let event = super::timers::append(&mut store, "t1", "order:paid");
    super::timers::process(&mut store, &event, vec![super::timers::wait("r")], &[]);
    let now = Timestamp::now();
    let a = store.claim_timers("a", now, Duration::ZERO, 10).unwrap();
    let b = store.claim_timers("b", now, LONG, 10).unwrap();
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_eq!(b[0].fence, a[0].fence + 1);
    assert!(
        store.claim_timers("a", now, LONG, 10).unwrap().is_empty(),
        "B holds it"
    );
    let id = b[0].item.id;
    let fire = |fence| {
        let firing = Firing {
            id,
            outcome: crate::journal::Settle::Fire(Vec::new()),
        };
        fenced(
            Fence::Timers(vec![(id, fence)]),
            Write::FireTimers(vec![firing]),
        )
    };
    let late = store.write_batch(&[fire(a[0].fence)], WINDOW).unwrap();
    assert_eq!(late, vec![Written::Fenced]);
    let status = |store: &TestStore| store.timers(&Default::default()).unwrap()[0].status;
    assert_eq!(status(&store), TimerStatus::Pending);
    let current = store.write_batch(&[fire(b[0].fence)], WINDOW).unwrap();
    assert_eq!(current, vec![Written::Changed(1)]);
    assert_eq!(status(&store), TimerStatus::Fired);
}
