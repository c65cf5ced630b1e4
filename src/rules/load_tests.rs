//! Loading real directories: diagnostics with pinned text and positions, indexing, evaluation
//! against the Sellix/Selldone fixtures.

use std::path::Path;

use bytes::Bytes;
use http::HeaderMap;
use serde_json::json;

use super::*;
use crate::config::{SelldoneConfig, SellixConfig};
use crate::sources::{selldone::Selldone, sellix::Sellix, IntakeRequest, Source};

fn fixture_event(source: &dyn Source, path: &str, token: Option<&str>) -> Event {
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(path),
    )
    .unwrap();
    let headers = HeaderMap::new();
    let req = IntakeRequest {
        headers: &headers,
        body: Bytes::from(body),
        peer: Some("127.0.0.1:1".parse().unwrap()),
        token: token.map(str::to_string),
    };
    let verified = source.verify(req).unwrap();
    source
        .normalize(&verified, crate::model::event::Timestamp(1_742_040_000_000))
        .unwrap()
        .event
}

pub(crate) fn sellix(name: &str) -> Event {
    fixture_event(
        &Sellix::new(SellixConfig::default()),
        &format!("sellix/{name}.json"),
        None,
    )
}

fn selldone(name: &str) -> Event {
    fixture_event(
        &Selldone::new(SelldoneConfig::default()),
        &format!("selldone/{name}.json"),
        None,
    )
}

fn load(files: &[(&str, &str)]) -> (tempfile::TempDir, Loaded) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    std::fs::write(dir.path().join("templates/shipped.html"), "<p>hi</p>").unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    for (name, text) in files {
        std::fs::write(rules.join(name), text).unwrap();
    }
    let options = LoadOptions {
        templates_dir: dir.path().join("templates"),
        plugins_dir: dir.path().join("plugins"),
        ..Default::default()
    };
    let loaded = load_dir(&rules, &options);
    (dir, loaded)
}

fn ok(files: &[(&str, &str)]) -> RuleSet {
    let (_dir, loaded) = load(files);
    let errors: Vec<String> = loaded.errors().map(|d| d.to_string()).collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    loaded.rules.unwrap()
}

/// `(file name, line, column, message, hint)` of every diagnostic.
fn diags(files: &[(&str, &str)]) -> Vec<(String, usize, usize, String, Option<String>)> {
    let (_dir, loaded) = load(files);
    loaded
        .diagnostics
        .iter()
        .map(|d| {
            let name = d.file.file_name().unwrap().to_string_lossy().into_owned();
            (name, d.line, d.column, d.message.clone(), d.hint.clone())
        })
        .collect()
}

fn one(files: &[(&str, &str)]) -> (String, usize, usize, String, Option<String>) {
    let all = diags(files);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.into_iter().next().unwrap()
}

const GOOD: &str = r#"
rules:
  - name: big-paid
    description: big orders
    on: [order.paid, selldone/PaymentOrder]
    match:
      order.total: { gte: 20 }
      payload.data.currency: USD
    if: 'order.customer.email != ""'
    actions:
      - slack: { text: "paid {{ order.id }} {{ order.total | money(order.currency) }} by {{ rule.name }}" }
      - http:
          url: "https://hooks.example/{{ event.source }}"
          headers: { X-Order: "{{ order.id }}" }
          json: { items: ["{{ order.items.0.title }}", 3] }
  - name: any-sellix-order
    on: sellix/order:*
    actions:
      - log: { message: "{{ event.kind }}" }
  - name: small-paid
    on: order.paid
    match: { order.total: { lt: 5 } }
    actions:
      - flag: { kind: small }
  - name: off
    enabled: false
    on: "*"
    actions:
      - log: { message: x }
  - name: shipped
    on: order.shipped
    actions:
      - email: { to: "{{ order.customer.email }}", subject: "Shipped", template: shipped.html }
"#;

#[test]
fn evaluates_fixture_event_and_renders_actions() {
    let set = ok(&[("shop.yaml", GOOD)]);
    assert_eq!(set.len(), 5);
    let event = sellix("order_paid");
    let eval = set.evaluate(&event);
    let names: Vec<&str> = eval.rules.iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(names, ["big-paid", "any-sellix-order", "small-paid", "off"]);
    assert_eq!(eval.not_listening, 1);
    assert_eq!(
        set.not_listening(&event),
        vec![("shipped".to_string(), vec!["order.shipped".to_string()])]
    );
    let big = &eval.rules[0];
    assert!(big.matched, "{big:?}");
    assert_eq!(
        big.actions[0].params,
        Ok(json!({"text": "paid 7a31c2-9f0e4b6d21-58c0d3 49.98 USD by big-paid"}))
    );
    let http = big.actions[1].params.as_ref().unwrap();
    assert_eq!(http["url"], "https://hooks.example/sellix");
    assert_eq!(http["headers"]["X-Order"], "7a31c2-9f0e4b6d21-58c0d3");
    assert_eq!(http["json"]["items"][1], 3);
    assert_eq!(big.actions[1].index, 1);
    assert_eq!(
        eval.rules[1].actions[0].params,
        Ok(json!({"message": "order:paid"}))
    );
    assert_eq!(
        eval.rules[2].miss,
        Some(Miss::Condition {
            path: "order.total".into(),
            expected: "lt 5".into(),
            actual: json!(49.98)
        })
    );
    assert_eq!(eval.rules[3].miss, Some(Miss::Disabled));
    assert_eq!(eval.matched().count(), 2);
}

#[test]
fn selldone_event_meets_canonical_and_star_rules_only() {
    let set = ok(&[("shop.yaml", GOOD)]);
    let event = selldone("CheckoutOrder");
    let eval = set.evaluate(&event);
    let names: Vec<&str> = eval.rules.iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(names, ["off"]);
    assert_eq!(eval.not_listening, 4);
}

#[test]
fn if_expression_true_false_and_runtime_error() {
    let rules = r#"
rules:
  - { name: t, on: "*", if: "payload.data.total > 40 && event.source == \"sellix\"", actions: [{ log: { message: x } }] }
  - { name: f, on: "*", if: "order.total < 1", actions: [{ log: { message: x } }] }
  - { name: e, on: "*", if: "payload.data.nope.deeper > 1", actions: [{ log: { message: x } }] }
  - { name: n, on: "*", if: "42", actions: [{ log: { message: x } }] }
  - { name: loop, on: "*", if: "payload.data.total.nothing_here()", actions: [{ log: { message: x } }] }
"#;
    let set = ok(&[("if.yaml", rules)]);
    let eval = set.evaluate(&sellix("order_paid"));
    assert!(eval.rules[0].matched, "{:?}", eval.rules[0]);
    assert_eq!(
        eval.rules[1].miss,
        Some(Miss::IfFalse {
            expr: "order.total < 1".into()
        })
    );
    for i in [2, 3, 4] {
        assert!(
            matches!(eval.rules[i].miss, Some(Miss::IfError { .. })),
            "{:?}",
            eval.rules[i]
        );
    }
    let Some(Miss::IfError { error, .. }) = &eval.rules[3].miss else {
        unreachable!()
    };
    assert_eq!(error, "`if` returned i64, not a boolean");
}

#[test]
fn missing_directory_is_empty_and_tests_folder_is_skipped() {
    let loaded = load_dir(Path::new("/nonexistent/rules"), &LoadOptions::default());
    assert!(loaded.diagnostics.is_empty());
    assert!(loaded.rules.unwrap().is_empty());
}

#[test]
fn yaml_syntax_error_position() {
    let (file, line, col, msg, _) = one(&[("bad.yaml", "rules:\n  - name: a\n    on: [x\n")]);
    assert_eq!((file.as_str(), line, col), ("bad.yaml", 3, 9));
    assert!(!msg.is_empty() && !msg.starts_with("line "), "{msg}");
}

#[test]
fn unknown_key_with_hint() {
    let d = one(&[("a.yaml", "rules:\n  - name: a\n    on: order.paid\n    acions: []\n    actions: [{ log: { message: x } }]\n")]);
    assert_eq!(
        d,
        (
            "a.yaml".into(),
            4,
            5,
            "unknown key `acions` in rule".into(),
            Some("did you mean `actions`?".into())
        )
    );
}

#[test]
fn unknown_action_with_hint_or_list() {
    let d = one(&[(
        "a.yaml",
        "rules:\n  - name: a\n    on: order.paid\n    actions:\n      - emial: { to: x }\n",
    )]);
    assert_eq!(
        d,
        (
            "a.yaml".into(),
            5,
            9,
            "unknown action `emial`".into(),
            Some("did you mean `email`?".into())
        )
    );
    let d = one(&[(
        "a.yaml",
        "rules:\n  - name: a\n    on: order.paid\n    actions:\n      - telegram: { to: x }\n",
    )]);
    assert_eq!(
        d.4.as_deref(),
        Some("valid actions: email, slack, http, flag, log, discord, script")
    );
}

#[test]
fn action_parameter_problems() {
    let all = diags(&[(
        "a.yaml",
        "rules:\n  - name: a\n    on: order.paid\n    actions:\n      - email: { to: x, subjet: y, body: z }\n      - http: { url: u, method: FETCHALL }\n",
    )]);
    let msgs: Vec<(&str, Option<&str>)> =
        all.iter().map(|d| (d.3.as_str(), d.4.as_deref())).collect();
    assert_eq!(
        msgs,
        [
            (
                "action `email` is missing `subject`",
                Some("`email` takes to, cc, bcc, reply_to, subject, body, html, template, from")
            ),
            (
                "unknown parameter `subjet` for action `email`",
                Some("did you mean `subject`?")
            ),
            (
                "`method` of `http` cannot be `FETCHALL`",
                Some("valid values: GET, POST, PUT, PATCH, DELETE, HEAD")
            ),
        ]
    );
}

#[test]
fn duplicate_names_across_files() {
    let rule =
        "rules:\n  - name: dup\n    on: order.paid\n    actions: [{ log: { message: x } }]\n";
    let d = one(&[("a.yaml", rule), ("b.yaml", rule)]);
    assert_eq!((d.0.as_str(), d.1, d.2), ("b.yaml", 2, 11));
    assert!(
        d.3.starts_with("duplicate rule name `dup` (first defined at "),
        "{}",
        d.3
    );
    assert!(d.3.ends_with("a.yaml:2)"), "{}", d.3);
}

#[test]
fn bad_regex_and_unknown_operator() {
    let all = diags(&[(
        "a.yaml",
        "rules:\n  - name: a\n    on: order.paid\n    match:\n      payload.x: { matches: '(' }\n      order.total: { gtt: 3 }\n    actions: [{ log: { message: x } }]\n",
    )]);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!((all[0].1, all[0].2), (5, 29));
    assert!(all[0].3.starts_with("invalid regex `(`: "), "{}", all[0].3);
    assert_eq!(
        (all[1].1, all[1].2, all[1].3.as_str()),
        (6, 22, "unknown operator `gtt`")
    );
    assert_eq!(all[1].4.as_deref(), Some("did you mean `gt`?"));
}

#[test]
fn rhai_syntax_error_position_in_file() {
    let d = one(&[("a.yaml", "rules:\n  - name: a\n    on: order.paid\n    if: 'order.total > '\n    actions: [{ log: { message: x } }]\n")]);
    assert_eq!((d.1, d.2), (4, 24));
    assert!(d.3.starts_with("Rhai syntax error in `if`: "), "{}", d.3);
    let block = "rules:\n  - name: a\n    on: order.paid\n    if: |\n      order.total > 3 &&\n        order.id == * 3\n    actions: [{ log: { message: x } }]\n";
    let d = one(&[("a.yaml", block)]);
    assert_eq!((d.1, d.2), (6, 21), "{d:?}");
}

#[test]
fn template_syntax_error_position_in_file() {
    let d = one(&[("a.yaml", "rules:\n  - name: a\n    on: order.paid\n    actions:\n      - log: { message: \"x {{ order.id }\" }\n")]);
    assert_eq!(d.1, 5);
    assert!(d.3.starts_with("template syntax error: "), "{}", d.3);
}

#[test]
fn never_matching_on_is_a_warning_and_rules_still_load() {
    let (_dir, loaded) = load(&[("a.yaml", "rules:\n  - name: a\n    on: [order.shiped, order.paid]\n    actions: [{ log: { message: x } }]\n")]);
    let w: Vec<&Diagnostic> = loaded.warnings().collect();
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].line, w[0].column), (3, 10));
    assert_eq!(
        w[0].message,
        "`on: order.shiped` can never match: no event is named like it"
    );
    assert_eq!(w[0].hint.as_deref(), Some("did you mean `order.shipped`?"));
    assert!(loaded.rules.is_some());
}

#[test]
fn every_error_of_every_file_is_reported_together() {
    let (_dir, loaded) = load(&[
        ("1.yaml", "rules:\n  - name: a\n    on: order.paid\n"),
        ("2.yaml", "rules: [\n"),
        ("3.yml", "rules:\n  - on: order.paid\n    actions: [{ slak: { text: x } }]\n  - name: c\n    on: order.paid\n    actions: [{ log: {} }]\n"),
        ("notes.txt", "not rules"),
    ]);
    assert!(loaded.rules.is_none());
    let got: Vec<String> = loaded
        .errors()
        .map(|d| {
            format!(
                "{}:{} {} [{}]",
                d.file.file_name().unwrap().to_string_lossy(),
                d.line,
                d.message,
                d.rule.as_deref().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(got.len(), 5, "{got:#?}");
    assert_eq!(got[0], "1.yaml:2 rule has no `actions` [a]");
    assert!(got[1].starts_with("2.yaml:"), "{got:#?}");
    assert_eq!(got[2], "3.yml:2 rule has no `name` [-]");
    assert_eq!(got[3], "3.yml:3 unknown action `slak` [-]");
    assert_eq!(got[4], "3.yml:6 action `log` is missing `message` [c]");
}

#[test]
fn diagnostic_display_has_snippet_and_hint() {
    let (_dir, loaded) = load(&[(
        "a.yaml",
        "rules:\n  - name: a\n    on: order.paid\n    actions:\n      - emial: { to: x }\n",
    )]);
    let text = loaded.diagnostics[0].to_string();
    let expected = "a.yaml:5:9: error: unknown action `emial` (rule `a`)\n   5 |       - emial: { to: x }\n     |         ^\n  hint: did you mean `email`?";
    assert!(text.ends_with(expected), "{text}");
}

#[test]
fn rule_set_is_send_sync_and_debug() {
    fn assert_traits<T: Send + Sync + std::fmt::Debug>() {}
    assert_traits::<RuleSet>();
}

#[test]
fn regression_templated_chat_webhook_host_is_refused() {
    for kind in ["slack", "discord"] {
        let rule = format!(
            "rules:\n  - name: r\n    on: order.paid\n    actions:\n      - {kind}: {{ webhook_url: \"https://{{{{ payload.data.hook }}}}/x\", text: hi, content: hi }}\n"
        );
        let all = diags(&[("a.yaml", &rule)]);
        let hit = all
            .iter()
            .find(|d| d.3.contains("webhook_url comes from a template"))
            .unwrap_or_else(|| panic!("{kind}: {all:#?}"));
        assert_eq!((hit.0.as_str(), hit.1), ("a.yaml", 5), "{hit:?}");
        assert!(hit.4.as_deref().unwrap_or("").contains("${"), "{hit:?}");
    }
    // A literal host with a templated path, and a `${VAR}`, are fine.
    let literal = "rules:\n  - name: r\n    on: order.paid\n    actions:\n      - slack: { webhook_url: \"https://hooks.slack.com/services/{{ event.shop }}\", text: hi }\n      - discord: { webhook_url: \"${HOME}\", content: hi }\n";
    let all = diags(&[("a.yaml", literal)]);
    assert!(
        all.iter().all(|d| !d.3.contains("comes from a template")),
        "{all:#?}"
    );
}

#[test]
fn email_from_in_a_rule_is_a_literal_mailbox() {
    let rule = |from: &str| {
        format!("rules:\n  - name: r\n    on: order.paid\n    actions:\n      - email: {{ to: a@example.com, subject: s, body: b, from: \"{from}\" }}\n")
    };
    assert!(diags(&[("a.yaml", &rule("Outlet <outlet@example.com>"))]).is_empty());
    let (file, line, _, msg, hint) = one(&[("a.yaml", &rule("{{ order.customer.email }}"))]);
    assert_eq!((file.as_str(), line), ("a.yaml", 5));
    assert!(msg.contains("comes from a template"), "{msg}");
    assert!(hint.unwrap().contains("email.from"));
    let (_, _, _, msg, _) = one(&[("a.yaml", &rule("not a mailbox"))]);
    assert!(msg.contains("not one mailbox"), "{msg}");
}
