//! Scripts: intents, state, helpers, positions and dynamic products.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::model::event::{Customer, Event, OrderView, Timestamp};

pub fn event() -> Event {
    Event {
        id: "evt_1".into(),
        source: "sellix".into(),
        shop: "default".into(),
        secret: None,
        kind: "order:paid".into(),
        topic: "sellix/order:paid".into(),
        canonical: Some("order.paid".into()),
        received_at: Timestamp(1_742_040_000_000),
        payload:
            json!({"event": "order:paid", "data": {"total": 49.98, "custom_fields": {"vip": true}}})
                .into(),
        order: Some(OrderView {
            id: "ord_1".into(),
            status: "COMPLETED".into(),
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

pub fn runner() -> Runner {
    Runner::new(100_000, Arc::new(Plugins::empty()))
}

fn run(src: &str) -> Result<(Vec<Intent>, StateChanges), ScriptError> {
    run_with(src, &NoState)
}

fn run_with(src: &str, state: &dyn State) -> Result<(Vec<Intent>, StateChanges), ScriptError> {
    let runner = runner();
    let script = runner.compile(src, Origin::file("t.rhai")).unwrap();
    runner.run_script(&script, &event(), state)
}

fn intent(kind: &str, params: serde_json::Value) -> Intent {
    Intent {
        kind: kind.into(),
        params,
    }
}

#[test]
fn every_intent_function_records_its_params() {
    let src = r##"
        email(#{ to: order.customer.email, subject: "Thanks", body: `Order ${order.id}` });
        slack("paid: " + order.id);
        slack(#{ text: "hi", channel: "#sales" });
        http(#{ method: "POST", url: "https://example.com/h", json: #{ id: order.id, total: order.total } });
        flag("fraud");
        flag("review", "big order");
        log("seen " + event.id);
        log(#{ message: "m", level: "warn" });
    "##;
    let (intents, changes) = run(src).unwrap();
    assert_eq!(
        intents,
        vec![
            intent(
                "email",
                json!({"to": "buyer@example.com", "subject": "Thanks", "body": "Order ord_1"})
            ),
            intent("slack", json!({"text": "paid: ord_1"})),
            intent("slack", json!({"text": "hi", "channel": "#sales"})),
            intent(
                "http",
                json!({"method": "POST", "url": "https://example.com/h", "json": {"id": "ord_1", "total": 49.98}})
            ),
            intent("flag", json!({"kind": "fraud"})),
            intent("flag", json!({"kind": "review", "note": "big order"})),
            intent("log", json!({"message": "seen evt_1"})),
            intent("log", json!({"message": "m", "level": "warn"})),
        ]
    );
    assert!(changes.0.is_empty());
}

#[test]
fn invalid_intent_params_are_errors_naming_the_function() {
    let cases = [
        (
            r#"email(#{ to: "a@b.c", body: "x" })"#,
            "email(): missing `subject`",
        ),
        (
            r#"email(#{ to: "a", subject: "s", body: "b", attach: 1 })"#,
            "email(): unknown parameter `attach`",
        ),
        (
            r#"http(#{ url: "https://x", method: "FETCH" })"#,
            "http(): `method` must be one of",
        ),
        (
            r##"slack(#{ channel: "#x" })"##,
            "slack(): missing one of `text`, `blocks`",
        ),
        (
            r#"http(#{ url: "https://x", json: |x| x })"#,
            "http(): not JSON-compatible",
        ),
    ];
    for (src, want) in cases {
        let err = run(src).unwrap_err();
        assert!(err.message.contains(want), "{src}: {err}");
    }
}

#[test]
fn state_reads_writes_and_increments() {
    let mut state = BTreeMap::new();
    state.insert("orders:buyer@example.com".to_string(), json!(2));
    state.insert("tags".to_string(), json!(["a"]));
    let src = r#"
        let n = state_incr("orders:" + order.customer.email);
        if n == 3 { slack(`third order from ${order.customer.email}`); }
        let tags = state_get("tags");
        tags.push("b");
        state_set("tags", tags);
        state_set("last", #{ id: order.id, total: order.total, ok: true });
        if state_get("missing") == () { state_incr("misses", 5); }
        log(`${state_get("last").id} ${random_key(2, 3).len()}`);
    "#;
    let (intents, changes) = run_with(src, &state).unwrap();
    assert_eq!(
        intents[0],
        intent(
            "slack",
            json!({"text": "third order from buyer@example.com"})
        )
    );
    assert_eq!(intents[1].params["message"], "ord_1 7");
    let want: BTreeMap<String, serde_json::Value> = [
        ("orders:buyer@example.com", json!(3)),
        ("tags", json!(["a", "b"])),
        ("last", json!({"id": "ord_1", "total": 49.98, "ok": true})),
        ("misses", json!(5)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(changes, StateChanges(want));
}

#[test]
fn failed_runs_keep_no_intents_or_state() {
    let state: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let err = run_with(
        r#"state_incr("n"); slack("x"); throw "out of stock""#,
        &state,
    )
    .unwrap_err();
    assert_eq!(err.message, "out of stock");
    // A script swallowing the state fetch signal still sees the real value.
    let mut state = BTreeMap::new();
    state.insert("n".to_string(), json!(7));
    let (intents, _) = run_with(
        r#"let v = 0; try { v = state_get("n"); } catch {} log(`${v}`)"#,
        &state,
    )
    .unwrap();
    assert_eq!(intents[0].params["message"], "7");
    let err = run_with(
        r#"state_set("x", 1); state_incr("x"); state_set("s", "a"); state_incr("s")"#,
        &state,
    )
    .unwrap_err();
    assert!(err.message.contains("not an integer"), "{err}");
}

#[test]
fn errors_carry_file_line_and_column_via_origin() {
    let runner = runner();
    let origin = Origin {
        file: "rules/shop.yaml".into(),
        line: 10,
        column: 7,
    };
    let script = runner
        .compile("let x = 1;\nlet y = x.frobnicate();", origin.clone())
        .unwrap();
    let err = runner.run_script(&script, &event(), &NoState).unwrap_err();
    assert_eq!((err.line, err.column), (11, 17), "{err}");
    assert!(
        err.to_string()
            .starts_with("rules/shop.yaml:11:17: Function not found: frobnicate"),
        "{err}"
    );
    let err = runner
        .compile("let x = 1;\n  let = 2;", origin.clone())
        .unwrap_err();
    assert_eq!((err.line, err.column), (11, 13), "{err}");
    assert!(err.message.starts_with("Rhai syntax error"), "{err}");
    // Inside a function the script defines, the position is the failing statement's.
    let script = runner
        .compile(
            "fn check(o) {\n  throw `bad ${o.id}`;\n}\ncheck(order);",
            origin.clone(),
        )
        .unwrap();
    let err = runner.run_script(&script, &event(), &NoState).unwrap_err();
    assert_eq!((err.line, err.column), (11, 9), "{err}");
    assert!(err.message.starts_with("bad ord_1 (in check()"), "{err}");
    let err = runner
        .compile(
            "1 +",
            Origin {
                file: "x.yaml".into(),
                line: 3,
                column: 9,
            },
        )
        .unwrap_err();
    assert_eq!(err.line, 3, "{err}");
}

#[test]
fn helpers_render_money_dates_slugs_keys_and_hashes() {
    let src = r#"
        log(render("Hi {{ name }}: {{ total | money(cur) }} on {{ ts | date('%d.%m.%Y') }}",
            #{ name: "Ann", total: 5, cur: "EUR", ts: 1742040000 }));
        log(money(24.5, "USD") + "|" + money(3) + "|" + date(0) + "|" + date(86400, "%Y/%m/%d"));
        log(slug("Pro License Key!"));
        log(random_key(4, 5));
        log(sha256("abc"));
        log(`${now() > 1700000000}`);
    "#;
    let (intents, _) = run(src).unwrap();
    let m: Vec<&str> = intents
        .iter()
        .map(|i| i.params["message"].as_str().unwrap())
        .collect();
    assert_eq!(m[0], "Hi Ann: 5.00 EUR on 15.03.2025");
    assert_eq!(m[1], "24.50 USD|3.00|1970-01-01|1970/01/02");
    assert_eq!(m[2], "pro-license-key");
    let groups: Vec<&str> = m[3].split('-').collect();
    assert_eq!(groups.len(), 4, "{}", m[3]);
    assert!(groups.iter().all(|g| g.len() == 5
        && g.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())));
    assert_eq!(
        m[4],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(m[5], "true");
    assert!(run(r#"random_key(0, 4)"#)
        .unwrap_err()
        .message
        .contains("groups must be"));
    assert!(run(r#"money("abc")"#)
        .unwrap_err()
        .message
        .contains("not a number"));
}

#[test]
fn dynamic_product_returns_the_script_value() {
    let runner = runner();
    let body = |src: &str| {
        let script = runner.compile(src, Origin::file("key.rhai")).unwrap();
        runner.dynamic_product(&script, &event(), Duration::from_secs(1))
    };
    assert_eq!(body(r#"`KEY-${order.id}`"#).unwrap(), "KEY-ord_1");
    assert_eq!(
        body(r#"#{ key: "A", n: 2 }"#).unwrap(),
        r#"{"key":"A","n":2}"#
    );
    assert_eq!(body(r#"let k = random_key(4, 4); k.len()"#).unwrap(), "19");
    assert_eq!(body(r#"state_get("x")"#).unwrap(), "");
}

#[test]
fn dynamic_product_respects_the_deadline() {
    let runner = Runner::new(u64::MAX / 2, Arc::new(Plugins::empty()));
    let script = runner
        .compile("let i = 0; loop { i += 1; }", Origin::file("key.rhai"))
        .unwrap();
    let start = Instant::now();
    let err = runner
        .dynamic_product(&script, &event(), Duration::from_millis(50))
        .unwrap_err();
    assert!(err.message.contains("timed out after 50 ms"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn runner_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Runner>();
    check::<Plugins>();
    check::<Script>();
}

/// The three worked examples of docs/scripting.md, as written there.
#[test]
fn documented_examples_run() {
    let doc = include_str!("../../docs/scripting.md");
    let blocks: Vec<&str> = doc
        .split("```rhai\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    let examples = &blocks[blocks.len() - 3..];
    let mut state = BTreeMap::new();
    state.insert("orders:buyer@example.com".to_string(), json!(2));
    state.insert("spent:buyer@example.com".to_string(), json!(180.0));
    let (intents, changes) = run_with(examples[0], &state).unwrap();
    assert!(intents[0].params["text"]
        .as_str()
        .unwrap()
        .contains("third order (49.98 USD)"));
    assert_eq!(changes.0["orders:buyer@example.com"], json!(3));
    let (intents, changes) = run_with(examples[1], &state).unwrap();
    assert_eq!(intents[0].kind, "email");
    assert!(intents[0].params["body"]
        .as_str()
        .unwrap()
        .contains("229.98 USD"));
    assert!(changes.0.contains_key("vip:buyer@example.com"));
    let runner = runner();
    let script = runner.compile(examples[2], Origin::file("k.rhai")).unwrap();
    let mut ev = event();
    ev.payload["data"]["quantity"] = json!(2);
    let body = runner
        .dynamic_product(&script, &ev, Duration::from_secs(1))
        .unwrap();
    assert_eq!(body.lines().count(), 2, "{body}");
    assert_eq!(body.lines().next().unwrap().len(), 19, "{body}");
}
