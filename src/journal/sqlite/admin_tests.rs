use std::time::Duration;

use super::*;
use crate::journal::query::{CustomerQuery, EventOutcome, EventQuery, FlagQuery, JobQuery};
use crate::journal::{NewJob, Processed, Unreadable};
use crate::model::event::{Customer, Incoming, OrderView, Timestamp};

const W: Duration = Duration::from_secs(1);

/// Event `n`: sellix on even n, selldone on odd; order `o-n`; customer `Buyer n`.
fn incoming(n: usize) -> Incoming {
    let body = bytes::Bytes::from_static(br#"{"event":"order:paid","data":{}}"#);
    let (source, topic, canonical) = match n % 2 {
        0 => ("sellix", "sellix/order:paid", "order.paid"),
        _ => ("selldone", "selldone/SentOrder", "order.shipped"),
    };
    Incoming {
        event: Event {
            id: Event::new_id(),
            source: source.into(),
            shop: "default".into(),
            secret: None,
            kind: "k".into(),
            topic: topic.into(),
            canonical: Some(canonical.into()),
            received_at: Timestamp(1_000 + n as i64),
            payload: serde_json::json!({}),
            order: Some(OrderView {
                id: format!("o-{n}"),
                customer: Customer {
                    email: format!("Buyer{n}@Example.com"),
                    name: format!("Buyer {n}"),
                    phone: String::new(),
                },
                ..Default::default()
            }),
        },
        dedupe_key: format!("k{n}"),
        body,
    }
}

/// A journal with `n` events (ids in append order).
fn journal(n: usize) -> (tempfile::TempDir, SqliteStore, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("j.db")).unwrap();
    let writes: Vec<_> = (0..n)
        .map(|i| Write::Append(Box::new(incoming(i))))
        .collect();
    store.write_batch(&writes, W).unwrap();
    let ids = store
        .recent_events(n)
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| e.id)
        .collect();
    (dir, store, ids)
}

fn process(store: &mut SqliteStore, id: &str, fired: &[&str], jobs: Vec<NewJob>) {
    let p = Processed {
        event_id: id.to_string(),
        trace: serde_json::json!({}),
        jobs,
        state: Vec::new(),
        fired: fired.iter().map(|s| s.to_string()).collect(),
        timers: Default::default(),
    };
    store.write_batch(&[Write::Processed(p)], W).unwrap();
}

fn ids(store: &SqliteStore, q: EventQuery) -> Vec<String> {
    let page = store.event_page(&EventQuery { limit: 100, ..q }).unwrap();
    page.items.into_iter().map(|e| e.summary.id).collect()
}

#[test]
fn pages_walk_every_event_once_newest_first() {
    let (_dir, store, all) = journal(25);
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .event_page(&EventQuery {
                limit: 10,
                before,
                ..Default::default()
            })
            .unwrap();
        seen.extend(page.items.into_iter().map(|e| e.summary.id));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let newest_first: Vec<_> = all.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
}

#[test]
fn an_exactly_full_last_page_has_no_next() {
    let (_dir, store, _) = journal(10);
    let page = store
        .event_page(&EventQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((page.items.len(), page.next), (10, None));
}

#[test]
fn each_column_filter_finds_its_events() {
    let (_dir, store, all) = journal(6);
    let odd: Vec<_> = [5, 3, 1].iter().map(|&i| all[i].clone()).collect();
    let q = |f: fn(&mut EventQuery)| {
        let mut q = EventQuery::default();
        f(&mut q);
        ids(&store, q)
    };
    assert_eq!(q(|q| q.source = Some("selldone".into())), odd);
    assert_eq!(q(|q| q.topic = Some("selldone/SentOrder".into())), odd);
    assert_eq!(q(|q| q.canonical = Some("order.shipped".into())), odd);
    assert_eq!(q(|q| q.order = Some("o-4".into())), vec![all[4].clone()]);
    assert!(q(|q| q.order = Some("o-".into())).is_empty());
}

#[test]
fn customer_search_is_whole_email_or_name_start_ignoring_case() {
    let (_dir, store, all) = journal(12);
    let by = |q: &str| {
        ids(
            &store,
            EventQuery {
                customer: CustomerQuery::parse(q),
                ..Default::default()
            },
        )
    };
    assert_eq!(by("buyer3@example.COM"), vec![all[3].clone()]);
    assert!(by("buyer3@example").is_empty(), "an email matches whole");
    assert_eq!(
        by("buyer 1"),
        vec![all[11].clone(), all[10].clone(), all[1].clone()]
    );
    assert_eq!(by("BUYER 11"), vec![all[11].clone()]);
    let page = store
        .event_page(&EventQuery {
            order: Some("o-3".into()),
            limit: 5,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        page.items[0].customer_email.as_deref(),
        Some("Buyer3@Example.com")
    );
}

#[test]
fn rule_filter_finds_the_events_a_rule_fired_on() {
    let (_dir, mut store, all) = journal(5);
    process(&mut store, &all[1], &["ship", "notify"], Vec::new());
    process(&mut store, &all[3], &["ship"], Vec::new());
    process(&mut store, &all[4], &[], Vec::new());
    let by = |rule: &str, before| {
        ids(
            &store,
            EventQuery {
                rule: Some(rule.into()),
                before,
                ..Default::default()
            },
        )
    };
    assert_eq!(by("ship", None), vec![all[3].clone(), all[1].clone()]);
    assert_eq!(by("notify", None), vec![all[1].clone()]);
    assert!(by("nope", None).is_empty());
    let fired = store
        .last_fired(&["ship".into(), "notify".into(), "never".into()])
        .unwrap();
    let last: Vec<_> = fired
        .iter()
        .map(|f| (f.rule.as_str(), &f.event_id))
        .collect();
    assert_eq!(last, vec![("ship", &all[3]), ("notify", &all[1])]);
}

#[test]
fn outcome_filter_tells_processed_unprocessed_quarantined_and_dead() {
    let (_dir, mut store, all) = journal(4);
    let dead = NewJob {
        rule: "r".into(),
        action_index: 0,
        kind: "log".into(),
        params: serde_json::json!({}),
        error: Some("template error".into()),
    };
    process(&mut store, &all[0], &[], Vec::new());
    process(&mut store, &all[1], &["r"], vec![dead]);
    let quarantine = Write::Quarantine(Unreadable {
        event_id: all[2].clone(),
        reason: "bad".into(),
    });
    store.write_batch(&[quarantine], W).unwrap();
    let by = |o: EventOutcome| {
        ids(
            &store,
            EventQuery {
                outcome: Some(o),
                ..Default::default()
            },
        )
    };
    assert_eq!(
        by(EventOutcome::Processed),
        vec![all[1].clone(), all[0].clone()]
    );
    assert_eq!(by(EventOutcome::Unprocessed), vec![all[3].clone()]);
    assert_eq!(by(EventOutcome::Quarantined), vec![all[2].clone()]);
    assert_eq!(by(EventOutcome::Dead), vec![all[1].clone()]);
    assert_eq!(store.count_jobs(JobStatus::Dead).unwrap(), 1);
    let jobs = store
        .job_page(&JobQuery {
            status: Some(JobStatus::Dead),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((jobs.items.len(), jobs.next), (1, None));
}

#[test]
fn flag_pages_show_open_flags_and_find_one_by_id() {
    let (_dir, mut store, all) = journal(1);
    let flags: Vec<_> = (0..3)
        .map(|i| {
            Write::Flag(Flag {
                id: 0,
                source: "sellix".into(),
                order_id: format!("o-{i}"),
                kind: "dispute".into(),
                note: String::new(),
                event_id: all[0].clone(),
                rule: "r".into(),
                created_at: Timestamp(i),
                resolved_at: None,
            })
        })
        .collect();
    store.write_batch(&flags, W).unwrap();
    let first = store
        .flag_page(&FlagQuery {
            open: true,
            limit: 2,
            before: None,
        })
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let id = first.items[0].id;
    store.write_batch(&[Write::ResolveFlag(id)], W).unwrap();
    assert!(store.flag(id).unwrap().unwrap().resolved_at.is_some());
    assert!(store.flag(999).unwrap().is_none());
    let open = store
        .flag_page(&FlagQuery {
            open: true,
            limit: 10,
            before: None,
        })
        .unwrap();
    assert_eq!(open.items.len(), 2);
    assert!(open.items.iter().all(|f| f.id != id));
}

#[test]
fn every_filter_is_answered_from_an_index() {
    let (_dir, store, _) = journal(1);
    let plans = [
        ("e.source = 'x'", "events_source"),
        ("e.topic = 'x'", "events_topic"),
        ("e.canonical = 'x'", "events_canonical"),
        ("e.order_id = 'x'", "events_order"),
        (
            "lower(json_extract(e.order_view, '$.customer.email')) = 'x'",
            "events_email",
        ),
    ];
    for (filter, index) in plans {
        let sql = format!(
            "EXPLAIN QUERY PLAN SELECT e.id FROM events e WHERE {filter} ORDER BY e.seq DESC LIMIT 5"
        );
        let plan: Vec<String> = store
            .conn
            .prepare(&sql)
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join(" | ");
        assert!(plan.contains(index), "{filter}: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{filter} sorts: {plan}");
    }
}

/// A name prefix matches many events in no seq order: the page's seqs are sorted from the index
/// alone (covering), without reading a row.
#[test]
fn a_name_prefix_sorts_index_entries_not_rows() {
    let (_dir, store, _) = journal(1);
    let sql = format!(
        "EXPLAIN QUERY PLAN SELECT e.seq FROM events e WHERE {NAME} >= 'a' AND {NAME} < 'b'
         ORDER BY e.seq DESC LIMIT 5",
        NAME = "lower(json_extract(e.order_view, '$.customer.name'))"
    );
    let plan: Vec<String> = store
        .conn
        .prepare(&sql)
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let plan = plan.join(" | ");
    assert!(plan.contains("COVERING INDEX events_name"), "{plan}");
}

/// A journal written before the admin migration: the rules that fired are read from its traces.
#[test]
fn the_admin_migration_backfills_the_rules_fired_from_stored_traces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    let before = MIGRATIONS
        .iter()
        .position(|m| *m == admin::MIGRATION)
        .unwrap();
    {
        let conn = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..before] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", before).unwrap();
        conn.execute(
            "INSERT INTO events (id, source, kind, topic, received_at, dedupe_key, payload)
             VALUES ('evt_old', 'sellix', 'k', 't', 1, 'd', x'7b7d')",
            [],
        )
        .unwrap();
        let trace = serde_json::json!({"rules": [
            {"rule": "fired", "file": "f.yaml", "matched": true},
            {"rule": "missed", "file": "f.yaml", "matched": false},
            {"rule": "script-failed", "file": "f.yaml", "matched": true, "script_error": "boom"}
        ], "not_listening": 0});
        conn.execute(
            "INSERT INTO traces (event_id, trace, created_at) VALUES ('evt_old', ?1, 1)",
            [trace.to_string()],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    for (rule, found) in [("fired", 1), ("missed", 0), ("script-failed", 0)] {
        let page = store
            .event_page(&EventQuery {
                rule: Some(rule.into()),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(page.items.len(), found, "{rule}");
    }
}

/// `jobs(Some(event), …)` (the event page, replay, replan, `events show`) read every job of the
/// journal: `(?1 IS NULL OR event_id = ?1)` kept SQLite from using the event index.
#[test]
fn regression_the_jobs_of_one_event_are_read_from_the_event_index() {
    let (_dir, store, _) = journal(1);
    let plan = |sql: String| -> String {
        let rows: Vec<String> = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(rusqlite::params!["e", "dead", 10], |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.join(" | ")
    };
    let by_event = plan(super::jobs::list_statement(true, false));
    assert!(by_event.contains("INDEX jobs_event"), "{by_event}");
    let by_status = plan(super::jobs::list_statement(false, true));
    assert!(by_status.contains("INDEX jobs_status_id"), "{by_status}");
    assert_eq!(store.jobs(Some("e"), None, 10).unwrap(), Vec::new());
}
