//! Template parsing, rendering with filters and nested parameters, and load-time errors.

use serde_json::json;

use super::*;
use crate::model::event::{Event, OrderView, Timestamp};

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
        payload: json!({"data": {"created_at": 1_742_040_000, "reason": "not received"}}).into(),
        order: Some(OrderView {
            id: "ord-7".into(),
            total: Some(24.99),
            currency: "USD".into(),
            ..Default::default()
        }),
    }
}

fn render(t: &mut Templates, source: &str) -> Result<J, String> {
    let param = t.compile(format!("x{source}"), source).unwrap();
    let e = event();
    let scope = Scope::new(&e);
    let ctx = rule_context(&base_context(&scope), "r1", "desc");
    t.render(&param, &ctx)
}

#[test]
fn renders_variables_and_filters() {
    let mut t = Templates::new();
    assert_eq!(render(&mut t, "plain text").unwrap(), json!("plain text"));
    assert_eq!(
        render(&mut t, "{{ order.total | money(order.currency) }}").unwrap(),
        json!("24.99 USD")
    );
    assert_eq!(
        render(&mut t, "{{ order.total|money }}").unwrap(),
        json!("24.99")
    );
    assert_eq!(
        render(&mut t, "{{ payload.data.created_at | date }}").unwrap(),
        json!("2025-03-15")
    );
    assert_eq!(
        render(&mut t, "{{ event.received_at | date('%H:%M') }}").unwrap(),
        json!("12:00")
    );
    assert_eq!(
        render(
            &mut t,
            "{{ rule.name }}: {{ payload.data.reason }} <{{ event.topic }}>"
        )
        .unwrap(),
        json!("r1: not received <sellix/order:paid>")
    );
    assert_eq!(
        render(&mut t, "[{{ payload.data.nope.deeper }}]").unwrap(),
        json!("[]")
    );
}

#[test]
fn render_error_is_reported_not_panicked() {
    let mut t = Templates::new();
    let err = render(&mut t, "{{ payload.data.reason | money }}").unwrap_err();
    assert!(
        err.contains("money: `not received` is not a number"),
        "{err}"
    );
}

#[test]
fn renders_nested_parameters() {
    let mut t = Templates::new();
    let param = Param::Map(vec![
        (
            "url".into(),
            t.compile("a".into(), "https://x/{{ order.id }}").unwrap(),
        ),
        (
            "json".into(),
            Param::Map(vec![
                ("n".into(), Param::Lit(json!(3))),
                (
                    "tags".into(),
                    Param::Seq(vec![t.compile("b".into(), "{{ event.source }}").unwrap()]),
                ),
            ]),
        ),
    ]);
    let e = event();
    let scope = Scope::new(&e);
    let ctx = rule_context(&base_context(&scope), "r", "");
    assert_eq!(
        t.render(&param, &ctx).unwrap(),
        json!({"url": "https://x/ord-7", "json": {"n": 3, "tags": ["sellix"]}})
    );
}

#[test]
fn unknown_top_level_variable_is_a_load_error() {
    let mut t = Templates::new();
    let issue = t.compile("u".into(), "Hi {{ ordr.id }}").unwrap_err();
    assert_eq!(issue.message, "template uses unknown variable `ordr`");
    assert_eq!(issue.hint.as_deref(), Some("did you mean `order`?"));
    assert_eq!(issue.at, Some((1, 7)));
    assert!(t
        .compile(
            "l".into(),
            "{% for i in order.items %}{{ i.title }}{% endfor %}"
        )
        .is_ok());
}

#[test]
fn syntax_error_has_position_inside_template() {
    let mut t = Templates::new();
    let issue = t
        .compile("s".into(), "line one\nHi {{ order.id }")
        .unwrap_err();
    assert!(
        issue.message.starts_with("template syntax error: "),
        "{}",
        issue.message
    );
    assert_eq!(issue.at.map(|a| a.0), Some(2));
}

#[test]
fn regression_misspelt_order_field_is_a_load_error_with_did_you_mean() {
    let mut t = Templates::new();
    let issue = t
        .compile("f".into(), "to {{ order.customer.emial }}")
        .unwrap_err();
    assert_eq!(
        issue.message,
        "unknown field `emial` in `order.customer.emial`"
    );
    assert_eq!(issue.at, Some((1, 22)), "points at the misspelt segment");
    assert_eq!(
        issue.hint.as_deref(),
        Some("did you mean `email`? `order.customer` has: email, name, phone")
    );
    let issue = t
        .compile("g".into(), "{{ order.id }}\n{{ order.totl | money }}")
        .unwrap_err();
    assert_eq!(issue.message, "unknown field `totl` in `order.totl`");
    assert_eq!(issue.at, Some((2, 10)));
    let issue = t.compile("h".into(), "{{ event.sorce }}").unwrap_err();
    assert!(issue.hint.unwrap().starts_with("did you mean `source`?"));
}

#[test]
fn payload_fields_and_known_fields_are_not_checked_against_a_schema() {
    let mut t = Templates::new();
    for ok in [
        "{{ payload.data.anything.at_all }}",
        "{{ event.shop }} {{ event.canonical }} {{ rule.description }}",
        "{{ order.total | money(order.currency) }} {{ order.shop.name }}",
        "{% for i in order.items %}{{ i.title }} × {{ i.quantity }}{% endfor %}",
    ] {
        assert!(t.compile(format!("ok{ok}"), ok).is_ok(), "{ok}");
    }
}

/// Every field `event` exposes to rules is a known field (so the schema cannot fall behind).
#[test]
fn event_fields_exposed_to_rules_are_all_known() {
    let e = event();
    let scope = Scope::new(&e);
    let fields = scope.event_json().as_object().unwrap();
    for key in fields.keys() {
        let path = ["event", key.as_str()];
        assert_eq!(crate::template::fields::check(&path), Ok(()), "{key}");
    }
}
