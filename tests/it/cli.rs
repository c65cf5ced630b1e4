//! The `storeflow` command line: sign, events, events show.

use crate::helpers::*;

#[test]
fn sign_prints_the_documented_signature() {
    for (file, _, sig) in SELLIX_FIXTURES {
        let path = fixture_path(&format!("sellix/{file}"));
        let out = storeflow(&["sign", "--secret", SELLIX_SECRET, path.to_str().unwrap()]);
        assert!(out.status.success());
        assert_eq!(stdout(&out).trim(), *sig, "{file}");
    }
    let out = storeflow(&["sign", "--secret", "x", "/no/such/file.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading /no/such/file.json"));
}

#[tokio::test]
async fn events_lists_newest_first_and_shows_one_in_full() {
    let d = Daemon::start(SECURED).await;
    let (file, event, sig) = SELLIX_FIXTURES[2];
    let paid = post_sellix(&d, file, event, sig).await;
    let url = d.url(&format!("/hooks/selldone/{SELLDONE_TOKEN}"));
    let sent = post(&url, &[], fixture("selldone/SentOrder.json")).await;
    let dir = d.stop().await;

    let config = dir.path().join("storeflow.yaml");
    std::fs::write(
        &config,
        format!("data_dir: {}\n", dir.path().join("data").display()),
    )
    .unwrap();
    let c = config.to_str().unwrap();

    let out = storeflow(&["events", "--json", "-c", c]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], sent.json["event_id"], "newest first");
    assert_eq!(lines[0]["topic"], "selldone/SentOrder");
    assert_eq!(lines[0]["canonical"], "order.shipped");
    assert_eq!(lines[0]["order_id"], "48213");
    assert_eq!(lines[1]["id"], paid.json["event_id"]);
    assert!(lines[1]["received_at"].as_str().unwrap().ends_with('Z'));

    let out = storeflow(&["events", "--limit", "1", "-c", c]);
    let text = stdout(&out);
    assert!(
        text.contains("selldone/SentOrder") && !text.contains("sellix/order:paid"),
        "{text}"
    );

    let id = paid.json["event_id"].as_str().unwrap();
    let out = storeflow(&["events", "show", id, "--json", "-c", c]);
    assert!(out.status.success());
    let e: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(e["event"]["order"]["id"], "7a31c2-9f0e4b6d21-58c0d3");
    assert_eq!(
        e["event"]["payload"]["data"]["serials"][0],
        "PRO-7Q2M-XK4D-91TZ"
    );

    let out = storeflow(&["events", "show", "evt_nope", "-c", c]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_config_typo_is_reported_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("storeflow.yaml");
    std::fs::write(
        &config,
        "listen: 127.0.0.1:0\nsources:\n  sellix:\n    secrett: x\n",
    )
    .unwrap();
    let out = storeflow(&["serve", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("storeflow.yaml:4:5: unknown field `secrett`"),
        "{err}"
    );
}

/// A config file in `dir` pointing at `rules_dir`.
fn config_for(dir: &std::path::Path, rules_dir: &std::path::Path) -> String {
    let config = dir.join("storeflow.yaml");
    let text = format!(
        "rules_dir: {}\ndata_dir: {}\n",
        rules_dir.display(),
        dir.join("data").display()
    );
    std::fs::write(&config, text).unwrap();
    config.to_str().unwrap().to_string()
}

fn example_rules() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")
}

#[test]
fn check_passes_the_example_rules_and_reports_every_problem_of_broken_ones() {
    let dir = tempfile::tempdir().unwrap();
    let c = config_for(dir.path(), &example_rules());
    let out = storeflow(&["check", "-c", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).ends_with("8 rules, 0 errors, 0 warnings\n"),
        "{}",
        stdout(&out)
    );

    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("a.yaml"),
        "rules:\n  - name: one\n    on: order.paid\n    actions:\n      - emial: { to: x }\n",
    )
    .unwrap();
    std::fs::write(broken.join("b.yaml"), "rules:\n  - name: two\n    on: order.shiped\n    match:\n      order.id: { matches: \"(\" }\n    actions: [ { log: { message: hi } } ]\n").unwrap();
    let c = config_for(dir.path(), &broken);
    let out = storeflow(&["check", "-c", &c]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("a.yaml:5:9: error: unknown action `emial` (rule `one`)"),
        "{text}"
    );
    assert!(text.contains("hint: did you mean `email`?"), "{text}");
    assert!(
        text.contains("b.yaml:5:") && text.contains("(rule `two`)"),
        "{text}"
    );
    assert!(
        text.contains("b.yaml:3:9: warning:"),
        "the never-matching `on` is a warning: {text}"
    );
    assert!(text.ends_with(": 0 rules, 2 errors, 1 warning\n"), "{text}");
}

#[test]
fn check_can_deny_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("a.yaml"),
        "rules:\n  - name: one\n    on: order.shiped\n    actions: [ { log: { message: hi } } ]\n",
    )
    .unwrap();
    let c = config_for(dir.path(), &rules);
    assert_eq!(storeflow(&["check", "-c", &c]).status.code(), Some(0));
    assert_eq!(
        storeflow(&["check", "--deny-warnings", "-c", &c])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn simulate_shows_matches_misses_and_rendered_actions_without_side_effects() {
    let dir = tempfile::tempdir().unwrap();
    let c = config_for(dir.path(), &example_rules());
    let sent = fixture_path("selldone/SentOrder.json");
    let out = storeflow(&[
        "simulate",
        "--source",
        "selldone",
        sent.to_str().unwrap(),
        "-c",
        &c,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("✔ email-customer-when-shipped — matches"),
        "{text}"
    );
    assert!(
        text.contains("\"subject\": \"Your order #48213 is on its way\""),
        "{text}"
    );
    assert!(
        text.contains("not listening to selldone/SentOrder:"),
        "{text}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "a dry run writes nothing"
    );

    let paid = fixture_path("sellix/order_paid.json");
    let small = dir.path().join("small.json");
    let body = String::from_utf8(std::fs::read(&paid).unwrap())
        .unwrap()
        .replace("\"total_display\": 49.98", "\"total_display\": 4.98");
    std::fs::write(&small, body).unwrap();
    let out = storeflow(&[
        "simulate",
        "--source",
        "sellix",
        "--json",
        small.to_str().unwrap(),
        "-c",
        &c,
    ]);
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let big = eval["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "slack-big-paid-orders")
        .unwrap();
    assert_eq!(big["miss"]["path"], "order.total");
    assert_eq!(big["miss"]["actual"], serde_json::json!(4.98));

    let out = storeflow(&[
        "simulate",
        "--source",
        "shopify",
        small.to_str().unwrap(),
        "-c",
        &c,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown source `shopify`"));
}

#[test]
fn rule_tests_pass_on_the_examples_and_fail_with_expected_versus_actual() {
    let dir = tempfile::tempdir().unwrap();
    let c = config_for(dir.path(), &example_rules());
    let out = storeflow(&["test", "-c", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("12 passed, 0 failed"),
        "{}",
        stdout(&out)
    );

    let rules = dir.path().join("rules");
    std::fs::create_dir_all(rules.join("tests")).unwrap();
    std::fs::write(rules.join("r.yaml"), "rules:\n  - name: big\n    on: order.paid\n    match:\n      order.total: { gt: 100 }\n    actions: [ { slack: { text: \"big {{ order.id }}\" } } ]\n").unwrap();
    let paid = fixture_path("sellix/order_paid.json");
    std::fs::write(
        rules.join("tests/t.yaml"),
        format!("tests:\n  - name: paid orders are big\n    source: sellix\n    fixture: {}\n    expect:\n      fired: [big]\n", paid.display()),
    )
    .unwrap();
    let c = config_for(dir.path(), &rules);
    let out = storeflow(&["test", "-c", &c]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("FAIL tests/t.yaml: paid orders are big"),
        "{text}"
    );
    assert!(
        text.contains("expected `big` to fire, but it did not: order.total: expected"),
        "{text}"
    );
    assert!(text.contains("found 49.98"), "{text}");
}

#[test]
fn email_template_files_render_into_html_with_escaping() {
    let dir = tempfile::tempdir().unwrap();
    let (rules, templates) = (dir.path().join("rules"), dir.path().join("templates"));
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("shipped.html"),
        "<p>Hi {{ order.customer.name }}, order {{ order.id }} shipped.</p>",
    )
    .unwrap();
    std::fs::write(
        rules.join("r.yaml"),
        "rules:\n  - name: mail\n    on: order.shipped\n    actions:\n      - email: { to: \"{{ order.customer.email }}\", subject: s, template: shipped.html }\n",
    )
    .unwrap();
    let config = dir.path().join("storeflow.yaml");
    std::fs::write(
        &config,
        format!(
            "rules_dir: {}\ntemplates_dir: {}\n",
            rules.display(),
            templates.display()
        ),
    )
    .unwrap();
    let body = String::from_utf8(fixture("selldone/SentOrder.json"))
        .unwrap()
        .replace("\"name\": \"Jane Example\"", "\"name\": \"<b>Jane</b>\"");
    let payload = dir.path().join("sent.json");
    std::fs::write(&payload, body).unwrap();
    let out = storeflow(&[
        "simulate",
        "--source",
        "selldone",
        "--json",
        payload.to_str().unwrap(),
        "-c",
        config.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let params = &eval["rules"][0]["actions"][0]["params"];
    assert_eq!(
        params["html"], "<p>Hi &lt;b&gt;Jane&lt;&#x2f;b&gt;, order 48213 shipped.</p>",
        "{eval}"
    );
    assert!(params.get("template").is_none());

    std::fs::write(templates.join("shipped.html"), "<p>{{ order.id </p>").unwrap();
    let out = storeflow(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("r.yaml:5:74: error: template file `shipped.html` line 1"),
        "{}",
        stdout(&out)
    );
}
