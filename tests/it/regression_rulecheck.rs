//! Regressions of `check`, `simulate` and `test` found by a new user (issue 9 items 3 and 5,
//! and the quiet-logs part of issue 8 item 8), through the real binary.

use std::path::{Path, PathBuf};

use crate::helpers::*;

/// A temp dir with `rules/r.yaml` and a config pointing at it; returns (dir, config path).
fn setup(rules_yaml: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("r.yaml"), rules_yaml).unwrap();
    let config = dir.path().join("storeflow.yaml");
    let text = format!(
        "rules_dir: {}\ndata_dir: {}\n",
        rules.display(),
        dir.path().join("data").display()
    );
    std::fs::write(&config, text).unwrap();
    let c = config.to_str().unwrap().to_string();
    (dir, c)
}

fn paid() -> PathBuf {
    fixture_path("sellix/order_paid.json")
}

/// 1-based column of `needle` in line `line` (1-based) of `text`.
fn column_of(text: &str, line: usize, needle: &str) -> usize {
    text.lines().nth(line - 1).unwrap().find(needle).unwrap() + 1
}

const TYPOS: &str = r#"rules:
  - name: mail
    on: order.paid
    if: 'order.customr.email != ""'
    actions:
      - email: { to: "{{ order.customer.emial }}", subject: hi, body: x }
      - slack: { text: "paid {{ order.totl }}" }
"#;

#[test]
fn regression_check_fails_on_misspelt_order_fields_with_position_and_did_you_mean() {
    let (_dir, c) = setup(TYPOS);
    for args in [
        vec!["check", "-c", &c],
        vec!["check", "--deny-warnings", "-c", &c],
    ] {
        let out = storeflow(&args);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    }
    let text = stdout(&storeflow(&["check", "-c", &c]));
    let at = |line: usize, needle: &str| {
        format!("r.yaml:{line}:{}: error:", column_of(TYPOS, line, needle))
    };
    let emial = format!(
        "{} unknown field `emial` in `order.customer.emial` (rule `mail`)",
        at(6, "emial")
    );
    assert!(text.contains(&emial), "{text}");
    assert!(
        text.contains("hint: did you mean `email`? `order.customer` has: email, name, phone"),
        "{text}"
    );
    let totl = format!(
        "{} unknown field `totl` in `order.totl` (rule `mail`)",
        at(7, "totl")
    );
    assert!(text.contains(&totl), "{text}");
    assert!(text.contains("hint: did you mean `total`?"), "{text}");
    let customr = format!("{} `if` reads unknown field `customr`", at(4, "customr"));
    assert!(text.contains(&customr), "{text}");
    assert!(
        text.ends_with(": 0 rules, 3 errors, 0 warnings\n"),
        "{text}"
    );
}

#[test]
fn regression_simulate_and_test_report_an_empty_required_parameter() {
    // `payload.*` is free-form, so this loads; the fixture has no `buyer`, so `to` renders "".
    let rules = r#"rules:
  - name: mail
    on: order.paid
    actions:
      - email: { to: "{{ payload.data.buyer }}", subject: hi, body: x }
tests:
  - name: paid orders mail the buyer
    source: sellix
    fixture: FIXTURE
    expect:
      fired: [mail]
"#
    .replace("FIXTURE", paid().to_str().unwrap());
    let (_dir, c) = setup(&rules);
    let out = storeflow(&[
        "simulate",
        "--source",
        "sellix",
        paid().to_str().unwrap(),
        "-c",
        &c,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("⚠ required `to` renders empty: sending would fail"),
        "{}",
        stdout(&out)
    );
    let out = storeflow(&["test", "-c", &c]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("`mail` action 0 (email): required `to` renders empty"),
        "{}",
        stdout(&out)
    );
}

fn with_tests(tests: &str) -> String {
    format!(
        "rules:\n  - name: big-paid\n    on: order.paid\n    actions: [ {{ slack: {{ text: \"paid {{{{ order.id }}}}\" }} }} ]\n  - name: scripted\n    on: order.paid\n    actions:\n      - script: |\n          if order.total > 1 {{ throw \"no stock service\"; }}\n          log(\"ok\");\ntests:\n{tests}"
    )
}

#[test]
fn regression_not_fired_with_an_unknown_rule_name_fails() {
    let tests = format!(
        "  - name: typo\n    source: sellix\n    fixture: {}\n    expect:\n      not_fired: [big-payd]\n",
        paid().display()
    );
    let (_dir, c) = setup(&with_tests(&tests));
    let out = storeflow(&["test", "typo", "-c", &c]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out)
            .contains("`not_fired` names `big-payd`, which is no rule (did you mean `big-paid`?)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn regression_fired_with_a_failing_script_fails() {
    let tests = format!(
        "  - name: script runs\n    source: sellix\n    fixture: {}\n    expect:\n      fired: [scripted]\n",
        paid().display()
    );
    let (_dir, c) = setup(&with_tests(&tests));
    let out = storeflow(&["test", "-c", &c]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("expected `scripted` to fire, but its script failed, so it planned nothing:")
            && text.contains("no stock service"),
        "{text}"
    );
}

#[test]
fn regression_test_filter_matching_no_test_exits_1() {
    // The example rules and their twelve tests.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("storeflow.yaml");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    std::fs::write(&config, format!("rules_dir: {}\n", rules.display())).unwrap();
    let c = config.to_str().unwrap();
    let out = storeflow(&["test", "no such test", "-c", c]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("no rule test name contains \"no such test\" (12 tests in "),
        "{}",
        stdout(&out)
    );
    let out = storeflow(&["test", "Slack", "-c", c]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("2 passed, 0 failed"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn regression_simulate_and_test_print_no_info_logs_by_default() {
    let tests = format!(
        "  - name: big\n    source: sellix\n    fixture: {}\n    expect:\n      fired: [big-paid]\n",
        paid().display()
    );
    let rules = "rules:\n  - name: big-paid\n    on: order.paid\n    actions: [ { slack: { text: \"paid {{ order.id }}\" } } ]\ntests:\n".to_string() + tests.as_str();
    let (_dir, c) = setup(&rules);
    let file = paid();
    let simulate = [
        "simulate",
        "--source",
        "sellix",
        file.to_str().unwrap(),
        "-c",
        &c,
    ];
    let test = ["test", "-c", &c];
    for args in [&simulate[..], &test[..]] {
        let out = storeflow(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stdout(&out));
        assert_eq!(stderr(&out), "", "{args:?} is quiet by default");
        let mut verbose = args.to_vec();
        verbose.push("-v");
        let out = storeflow(&verbose);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains("DEBUG") && err.contains("rule matched"),
            "{args:?}: {err}"
        );
    }
}

const DYNAMIC: &str = r#"rules:
  - name: license-key
    on: sellix/product:dynamic
    actions:
      - script: |
          "LICENSE-" + payload.data.uniqid.to_upper()
tests:
  - name: the buyer gets a key
    source: sellix
    payload: { event: "product:dynamic", data: { uniqid: abc123 } }
    expect:
      fired: [license-key]
      answer: LICENSE-ABC123
  - name: the key has the prefix
    source: sellix
    payload: { event: "product:dynamic", data: { uniqid: abc123 } }
    expect:
      answer_contains: "LICENSE-"
  - name: a wrong key fails
    source: sellix
    payload: { event: "product:dynamic", data: { uniqid: abc123 } }
    expect:
      answer: LICENSE-XYZ
"#;

#[test]
fn rule_tests_and_simulate_show_a_dynamic_product_answer() {
    let (dir, c) = setup(DYNAMIC);
    let out = storeflow(&["test", "-c", &c]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("PASS r.yaml: the buyer gets a key"), "{text}");
    assert!(
        text.contains("PASS r.yaml: the key has the prefix"),
        "{text}"
    );
    assert!(
        text.contains("FAIL r.yaml: a wrong key fails\n  answer: expected \"LICENSE-XYZ\", got \"LICENSE-ABC123\""),
        "{text}"
    );
    assert!(text.ends_with("2 passed, 1 failed\n"), "{text}");

    let body = dir.path().join("dynamic.json");
    std::fs::write(
        &body,
        r#"{"event":"product:dynamic","data":{"uniqid":"q9"}}"#,
    )
    .unwrap();
    let out = storeflow(&[
        "simulate",
        "--source",
        "sellix",
        body.to_str().unwrap(),
        "-c",
        &c,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("answer (what Sellix delivers to the buyer):\n  LICENSE-Q9\n"),
        "{}",
        stdout(&out)
    );
    let out = storeflow(&[
        "simulate",
        "--json",
        "--source",
        "sellix",
        body.to_str().unwrap(),
        "-c",
        &c,
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["answer"]["body"], "LICENSE-Q9");
}
