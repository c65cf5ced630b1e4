//! Replicas sharing one PostgreSQL journal (DESIGN.md §13, issue 14): real `storeflow serve`
//! processes on different ports over one throwaway database, an HTTP sink that can hold its
//! answers, and the journal read back with `psql`.

mod harness;

use crate::helpers::wait_for_async;
use crate::postgres::cluster::{self, Cluster};
use harness::{all_done, by_owner, count, send, Replica, Sink, LEASE};

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
    // Each replica recovers by itself, at its next probe of the database (503 until then).
    let mut n = 40;
    for replica in &replicas {
        let id = wait_for_async("the replica to recover", || {
            n += 1;
            let k = n;
            async move {
                let (status, id, _) = send(replica, k).await;
                (status == 200).then_some(id)
            }
        })
        .await;
        acked.push(id);
    }
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
