//! The admin API's keyset pages and filters.

use std::time::Duration;

use super::{contract, TestStore};
use crate::journal::query::{CustomerQuery, EventOutcome, EventQuery, FlagQuery, JobQuery};
use crate::journal::{Flag, JobStatus, Write};
use crate::journal::{NewJob, Processed, Unreadable};
use crate::model::event::Event;
use crate::model::event::{Customer, Incoming, OrderView, Timestamp};

const W: Duration = Duration::from_secs(1);

/// Event `n`: sellix on even n, selldone on odd; order `o-n`; customer `Buyer n`.
pub(crate) fn incoming(n: usize) -> Incoming {
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
            payload: serde_json::json!({}).into(),
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
fn journal(mut store: TestStore, n: usize) -> (TestStore, Vec<String>) {
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
    (store, ids)
}

fn process(store: &mut TestStore, id: &str, fired: &[&str], jobs: Vec<NewJob>) {
    let p = Processed {
        event_id: id.to_string(),
        trace: serde_json::json!({}).into(),
        jobs,
        state: Vec::new(),
        fired: fired.iter().map(|s| s.to_string()).collect(),
        timers: Default::default(),
    };
    store.write_batch(&[Write::Processed(p)], W).unwrap();
}

fn ids(store: &TestStore, q: EventQuery) -> Vec<String> {
    let page = store.event_page(&EventQuery { limit: 100, ..q }).unwrap();
    page.items.into_iter().map(|e| e.summary.id).collect()
}

fn pages_walk_every_event_once_newest_first(store: TestStore) {
    let (store, all) = journal(store, 25);
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

fn an_exactly_full_last_page_has_no_next(store: TestStore) {
    let (store, _) = journal(store, 10);
    let page = store
        .event_page(&EventQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((page.items.len(), page.next), (10, None));
}

fn each_column_filter_finds_its_events(store: TestStore) {
    let (store, all) = journal(store, 6);
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

fn customer_search_is_whole_email_or_name_start_ignoring_case(store: TestStore) {
    let (store, all) = journal(store, 12);
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

fn rule_filter_finds_the_events_a_rule_fired_on(store: TestStore) {
    let (mut store, all) = journal(store, 5);
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

fn outcome_filter_tells_processed_unprocessed_quarantined_and_dead(store: TestStore) {
    let (mut store, all) = journal(store, 4);
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

fn flag_pages_show_open_flags_and_find_one_by_id(store: TestStore) {
    let (mut store, all) = journal(store, 1);
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

contract!(
    pages_walk_every_event_once_newest_first,
    an_exactly_full_last_page_has_no_next,
    each_column_filter_finds_its_events,
    customer_search_is_whole_email_or_name_start_ignoring_case,
    rule_filter_finds_the_events_a_rule_fired_on,
    outcome_filter_tells_processed_unprocessed_quarantined_and_dead,
    flag_pages_show_open_flags_and_find_one_by_id,
);
