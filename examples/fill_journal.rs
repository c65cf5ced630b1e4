//! Fills a journal with many events, fast, for `bench/admin.sh`: rows are written directly with
//! rusqlite in large transactions (not through HTTP), into a journal whose schema the daemon's
//! own migrations created.
//!
//! ```sh
//! cargo run --release --example fill_journal -- DATA_DIR [EVENTS]   # default 1,000,000
//! ```
//!
//! The mix: 70 % Sellix (`order:paid`, `order:created`, 0.1 % `order:disputed`), 30 % Selldone
//! (`SentOrder`, `PaymentOrder`); one event a second up to now; every event processed with a
//! trace; `notify-paid` fired on paid orders (a done `http` job with one attempt each), 0.05 %
//! of those jobs dead; `flag-disputes` fired on disputes (a flag each). Customers: 50,000
//! emails, names from 400 first × last name pairs. Payloads are about 1 KB.
//!
//! `WITHOUT_ADMIN_INDEXES=1` drops the admin API's event indexes first (to measure their write
//! cost: fill twice and compare).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Instant;

use rusqlite::{params, Connection, Transaction};
use storeflow::journal::SqliteStore;
use storeflow::model::event::{Event, Timestamp};

const FIRST: [&str; 20] = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Edsger",
    "Radia",
    "Donald",
    "Hedy",
    "John",
    "Katherine",
    "Tim",
    "Sophie",
    "Niklaus",
    "Joan",
    "Guido",
];
const LAST: [&str; 20] = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Knuth",
    "Lamarr",
    "Backus",
    "Johnson",
    "Berners-Lee",
    "Wilson",
    "Wirth",
    "Clarke",
    "van Rossum",
];
const BATCH: usize = 50_000;

/// What one synthetic event is.
struct Kind {
    source: &'static str,
    kind: &'static str,
    canonical: &'static str,
    rule: Option<&'static str>,
}

fn kind_of(i: usize) -> Kind {
    let k = |source, kind, canonical, rule| Kind {
        source,
        kind,
        canonical,
        rule,
    };
    match (i % 1000, i % 10) {
        (500, _) => k(
            "sellix",
            "order:disputed",
            "order.disputed",
            Some("flag-disputes"),
        ),
        (_, 0..=3) => k("sellix", "order:paid", "order.paid", Some("notify-paid")),
        (_, 4..=6) => k("sellix", "order:created", "order.checkout", None),
        (_, 7 | 8) => k("selldone", "SentOrder", "order.shipped", None),
        _ => k(
            "selldone",
            "PaymentOrder",
            "order.paid",
            Some("notify-paid"),
        ),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: fill_journal DATA_DIR [EVENTS]"));
    let total: usize = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("EVENTS"));
    let path = dir.join("storeflow.db");
    drop(SqliteStore::open(&path).expect("open the journal (migrations)"));
    let mut conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    conn.pragma_update(None, "cache_size", -200_000).unwrap();
    // For an A/B of the write cost of the admin API's indexes: the same fill without them.
    if std::env::var_os("WITHOUT_ADMIN_INDEXES").is_some() {
        conn.execute_batch(
            "DROP INDEX events_source; DROP INDEX events_topic; DROP INDEX events_canonical;
             DROP INDEX events_order; DROP INDEX events_email; DROP INDEX events_name;",
        )
        .unwrap();
    }
    let start = Instant::now();
    let first_at = Timestamp::now().millis() - total as i64 * 1000;
    let mut done = 0;
    while done < total {
        let n = BATCH.min(total - done);
        let tx = conn.transaction().unwrap();
        for i in done..done + n {
            insert(&tx, i, first_at + i as i64 * 1000);
        }
        tx.commit().unwrap();
        done += n;
        eprintln!("{done} events ({:.0?})", start.elapsed());
    }
    println!(
        "{total} events in {:.1?} into {}",
        start.elapsed(),
        path.display()
    );
}

fn insert(tx: &Transaction<'_>, i: usize, at: i64) {
    let k = kind_of(i);
    let id = Event::new_id();
    let email = format!("buyer{}@example.com", i % 50_000);
    let name = format!("{} {}", FIRST[i % 20], LAST[(i / 20) % 20]);
    let order = format!("o-{i}");
    let topic = format!("{}/{}", k.source, k.kind);
    let payload = serde_json::json!({
        "event": k.kind,
        "data": {
            "uniqid": order, "customer_email": email, "name": name, "total_display": (i % 300) as f64 + 0.99,
            "currency": "EUR", "gateway": "STRIPE", "status": "COMPLETED",
            "products": [{"title": "Widget", "quantity": 1, "price": 9.99}],
            "notes": "x".repeat(700),
        }
    });
    let order_view = serde_json::json!({
        "id": order, "status": "COMPLETED", "total": (i % 300) as f64 + 0.99, "currency": "EUR",
        "customer": {"email": email, "name": name, "phone": ""},
        "items": [{"title": "Widget", "quantity": 1, "price": 9.99}],
        "shop": {"id": "1", "name": "Shop"}
    });
    tx.prepare_cached(
        "INSERT INTO events (id, source, kind, topic, canonical, received_at, order_id, dedupe_key,
                             payload, order_view, processed_at, shop)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?6, 'default')",
    )
    .unwrap()
    .execute(params![
        id,
        k.source,
        k.kind,
        topic,
        k.canonical,
        at,
        order,
        format!("fill-{i}"),
        serde_json::to_vec(&payload).unwrap(),
        order_view.to_string(),
    ])
    .unwrap();
    let seq = tx.last_insert_rowid();
    let matched = k.rule.is_some();
    let trace = serde_json::json!({"rules": [{"rule": k.rule.unwrap_or("notify-paid"), "file": "rules/shop.yaml",
        "matched": matched}], "not_listening": 1, "shop": "default"});
    tx.prepare_cached("INSERT INTO traces (event_id, trace, created_at) VALUES (?1, ?2, ?3)")
        .unwrap()
        .execute(params![id, trace.to_string(), at])
        .unwrap();
    if let Some(rule) = k.rule {
        tx.prepare_cached("INSERT INTO event_rules (rule, seq) VALUES (?1, ?2)")
            .unwrap()
            .execute(params![rule, seq])
            .unwrap();
        effects(tx, i, &id, rule, &order, at);
    }
}

/// The job (and its attempt) or the flag the fired rule left.
fn effects(tx: &Transaction<'_>, i: usize, id: &str, rule: &str, order: &str, at: i64) {
    if rule == "flag-disputes" {
        tx.prepare_cached(
            "INSERT INTO flags (source, order_id, kind, note, event_id, rule, created_at,
                                resolved_at)
             VALUES ('sellix', ?1, 'dispute', 'chargeback', ?2, ?3, ?4, NULL)",
        )
        .unwrap()
        .execute(params![order, id, rule, at])
        .unwrap();
        return;
    }
    let dead = i % 2000 == 3;
    let (status, outcome, error) = match dead {
        true => ("dead", "dead", Some("HTTP 400 from the ERP")),
        false => ("done", "done", None),
    };
    tx.prepare_cached(
        "INSERT INTO jobs (event_id, rule, action_index, kind, params, status, attempts, next_at,
                           last_error, created_at, updated_at)
         VALUES (?1, ?2, 0, 'http', ?3, ?4, 1, ?5, ?6, ?5, ?5)",
    )
    .unwrap()
    .execute(params![
        id,
        rule,
        serde_json::json!({"url": "https://erp.example/orders", "json": {"order": order}})
            .to_string(),
        status,
        at,
        error
    ])
    .unwrap();
    let job = tx.last_insert_rowid();
    tx.prepare_cached(
        "INSERT INTO attempts (job_id, number, started_at, finished_at, outcome, error)
         VALUES (?1, 1, ?2, ?2, ?3, ?4)",
    )
    .unwrap()
    .execute(params![job, at, outcome, error])
    .unwrap();
}
