use std::time::Duration;

use super::*;
use crate::journal::contract::admin::incoming;
use crate::journal::query::EventQuery;

const W: Duration = Duration::from_secs(1);

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
