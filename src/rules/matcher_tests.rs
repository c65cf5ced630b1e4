//! Every operator (holding and not), groups, paths into event/order/payload.

use std::path::Path;

use serde_json::json;

use super::*;
use crate::model::event::{Customer, Event, OrderView, Timestamp};
use crate::rules::conditions;
use crate::rules::diag::FileDiags;
use crate::rules::model;

fn event() -> Event {
    Event {
        id: "evt_1".into(),
        source: "sellix".into(),
        shop: "default".into(),
        secret: None,
        kind: "order:paid".into(),
        topic: "sellix/order:paid".into(),
        canonical: Some("order.paid".into()),
        received_at: Timestamp(1_742_040_000_000),
        payload: json!({
            "data": {
                "total": 49.98, "total_str": "49.98", "currency": "USD", "type": "PRODUCT",
                "email": "buyer@example.com", "tags": ["vip", "eu"], "nothing": null,
                "items": [{"count": 2, "title": "Mug"}, {"count": 5}],
                "map": {"0": "zero-key"}
            }
        })
        .into(),
        order: Some(OrderView {
            id: "ord-7".into(),
            total: Some(49.98),
            currency: "USD".into(),
            customer: Customer {
                email: "buyer@example.com".into(),
                ..Default::default()
            },
            ..Default::default()
        }),
    }
}

/// Compiles a `match:` map written in YAML (panics on diagnostics) and checks it.
fn check(yaml: &str) -> Result<(), Failure> {
    check_on(&event(), yaml)
}

fn check_on(e: &Event, yaml: &str) -> Result<(), Failure> {
    let node = model::parse(yaml).unwrap();
    let mut d = FileDiags::new(Path::new("t.yaml"), yaml);
    let m = conditions::compile(&node, &mut d);
    assert!(d.out.is_empty(), "{:?}", d.out);
    m.check(&Scope::new(e))
}

fn holds(yaml: &str) -> bool {
    check(yaml).is_ok()
}

#[test]
fn equality_and_eq_ne() {
    assert!(holds("payload.data.type: PRODUCT"));
    assert!(!holds("payload.data.type: SERVICE"));
    assert!(holds("payload.data.total: 49.98"));
    assert!(holds("payload.data.total_str: { eq: 49.98 }"));
    assert!(!holds("payload.data.total: { eq: 50 }"));
    assert!(holds("payload.data.type: { ne: SERVICE }"));
    assert!(!holds("payload.data.type: { ne: PRODUCT }"));
    assert!(holds("payload.data.missing: { ne: x }"));
    assert!(holds("payload.data.nothing: ~"));
}

#[test]
fn numeric_comparisons() {
    assert!(holds("payload.data.total: { gt: 49 }"));
    assert!(!holds("payload.data.total: { gt: 49.98 }"));
    assert!(holds("payload.data.total: { gte: 49.98 }"));
    assert!(!holds("payload.data.total: { gte: 50 }"));
    assert!(holds("payload.data.total_str: { lt: 50 }"));
    assert!(!holds("payload.data.total: { lt: 49.98 }"));
    assert!(holds("order.total: { lte: 49.98, gte: 10 }"));
    assert!(!holds("order.total: { lte: 10 }"));
    assert!(
        !holds("payload.data.type: { gt: 1 }"),
        "gt on a non-number never holds"
    );
    assert!(!holds("payload.data.missing: { lt: 1 }"));
}

#[test]
fn membership_and_text() {
    assert!(holds("payload.data.currency: { in: [EUR, USD] }"));
    assert!(!holds("payload.data.currency: { in: [EUR, GBP] }"));
    assert!(holds("payload.data.currency: { not_in: [EUR, GBP] }"));
    assert!(!holds("payload.data.currency: { not_in: [USD] }"));
    assert!(holds("payload.data.email: { contains: '@example' }"));
    assert!(!holds("payload.data.email: { contains: '@other' }"));
    assert!(holds("payload.data.tags: { contains: vip }"));
    assert!(!holds("payload.data.tags: { contains: us }"));
    assert!(holds("payload.data.email: { starts_with: buyer }"));
    assert!(!holds("payload.data.email: { starts_with: seller }"));
    assert!(holds(
        "payload.data.email: { matches: '^[a-z]+@example\\.com$' }"
    ));
    assert!(!holds("payload.data.email: { matches: '^admin' }"));
}

#[test]
fn exists() {
    assert!(holds("payload.data.email: { exists: true }"));
    assert!(!holds("payload.data.email: { exists: false }"));
    assert!(holds("payload.data.missing: { exists: false }"));
    assert!(
        !holds("payload.data.nothing: { exists: true }"),
        "null counts as absent"
    );
}

#[test]
fn paths_index_arrays_and_reach_event_and_order() {
    assert!(holds("payload.data.items.1.count: 5"));
    assert!(holds("payload.data.items.0.title: Mug"));
    assert!(!holds("payload.data.items.7.count: { exists: true }"));
    assert!(holds("payload.data.map.0: zero-key"));
    assert!(holds("event.topic: sellix/order:paid"));
    assert!(holds("event.canonical: order.paid"));
    assert!(holds("event.received_at: { starts_with: '2025-03-15' }"));
    assert!(holds("order.customer.email: buyer@example.com"));
    let mut no_order = event();
    no_order.order = None;
    let err = check_on(&no_order, "order.id: { exists: true }").unwrap_err();
    assert_eq!(err.actual, serde_json::Value::Null);
}

#[test]
fn groups() {
    assert!(holds(
        "any: [{payload.data.type: SERVICE}, {order.total: {gt: 10}}]"
    ));
    let err = check("any: [{payload.data.type: SERVICE}, {order.total: {gt: 100}}]").unwrap_err();
    assert_eq!(
        (err.path.as_str(), err.expected.as_str()),
        ("any", "any of 2")
    );
    assert!(holds(
        "all: [{payload.data.type: PRODUCT}, {order.total: {gt: 10}}]"
    ));
    let err = check("all: [{payload.data.type: PRODUCT}, {order.total: {gt: 100}}]").unwrap_err();
    assert_eq!(err.path, "order.total");
    assert!(holds("not: {payload.data.type: SERVICE}"));
    let err = check("not: {payload.data.type: PRODUCT}").unwrap_err();
    assert_eq!(err.path, "not");
}

#[test]
fn failure_reports_first_failing_condition_with_actual_value() {
    let err = check(
        "payload.data.type: PRODUCT\norder.total: { gte: 100 }\npayload.data.currency: EUR\n",
    )
    .unwrap_err();
    assert_eq!(
        err,
        Failure {
            path: "order.total".into(),
            expected: "gte 100".into(),
            actual: json!(49.98)
        }
    );
    let err = check("payload.data.type: SERVICE").unwrap_err();
    assert_eq!(err.expected, "== \"SERVICE\"");
    assert_eq!(err.actual, json!("PRODUCT"));
}
