//! Events read back exactly as intake parsed them (the pipeline's in-memory hand-off relies on
//! it) and the secret counts kept at append.

use std::time::Duration;

use super::{contract, TestStore};
use crate::journal::Write;
use crate::model::event::{Event, Incoming, OrderView, Timestamp};

/// A Sellix `order:paid` fixture with its own uniqid (order id and dedupe key follow it).
pub(crate) fn fixture(uniqid: &str) -> Incoming {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sellix/order_paid.json"
    ))
    .unwrap()
    .replace("7a31c2-9f0e4b6d21-58c0d3", uniqid);
    let body = bytes::Bytes::from(text);
    Incoming {
        event: Event {
            id: Event::new_id(),
            source: "sellix".into(),
            shop: "default".into(),
            secret: Some("current".into()),
            kind: "order:paid".into(),
            topic: "sellix/order:paid".into(),
            canonical: Some("order.paid".into()),
            received_at: Timestamp(1_700_000_000_123),
            payload: serde_json::from_slice(&body).unwrap(),
            order: Some(OrderView {
                id: uniqid.into(),
                total: Some(49.98),
                currency: "USD".into(),
                ..Default::default()
            }),
        },
        dedupe_key: format!("key-{uniqid}"),
        body,
    }
}

/// The pipeline takes events from memory instead of reading them back (`Handoff`): that is
/// only right while the row reads back as the very same event.
fn regression_an_event_reads_back_exactly_as_intake_parsed_it(mut store: TestStore) {
    let inc = fixture("abc-1");
    store
        .write_batch(&[Write::Append(Box::new(inc.clone()))], Duration::ZERO)
        .unwrap();
    assert_eq!(store.event(&inc.event.id).unwrap(), Some(inc.event.clone()));
    let pending = store.unprocessed_events(10).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].as_ref().unwrap(), &inc.event);
    assert_eq!(
        store.unprocessed_ids(10).unwrap(),
        vec![inc.event.id.clone()]
    );
    let counts = store.secret_counts().unwrap();
    assert_eq!(
        (counts[0].secret.as_str(), counts[0].events),
        ("current", 1)
    );
}

/// The secret counts over a batch of appends: every appended event counted once under its
/// secret, a duplicate not at all, the newest time kept (out-of-order arrivals included).
fn secret_counts_sum_a_batch_per_secret_and_skip_duplicates(mut store: TestStore) {
    let at = |uniqid: &str, secret: &str, ms: i64| {
        let mut inc = fixture(uniqid);
        inc.event.secret = Some(secret.into());
        inc.event.received_at = Timestamp(ms);
        Write::Append(Box::new(inc))
    };
    let batch = [
        at("s-1", "current", 1_700_000_000_000),
        at("s-2", "previous", 1_700_000_000_500),
        at("s-3", "current", 1_700_000_002_000),
        at("s-4", "current", 1_700_000_001_000),
        at("s-1", "current", 1_700_000_003_000),
    ];
    store.write_batch(&batch, Duration::from_secs(60)).unwrap();
    store
        .write_batch(
            &[at("s-5", "previous", 1_700_000_000_100)],
            Duration::from_secs(60),
        )
        .unwrap();
    let counts: Vec<(String, u64, i64)> = store
        .secret_counts()
        .unwrap()
        .into_iter()
        .map(|c| (c.secret, c.events, c.last.millis()))
        .collect();
    assert_eq!(
        counts,
        [
            ("current".to_string(), 3, 1_700_000_002_000),
            ("previous".to_string(), 2, 1_700_000_000_500),
        ],
        "the repeated s-1 is a duplicate and not counted"
    );
}

contract!(
    regression_an_event_reads_back_exactly_as_intake_parsed_it,
    secret_counts_sum_a_batch_per_secret_and_skip_duplicates,
);
