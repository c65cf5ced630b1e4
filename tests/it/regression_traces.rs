//! Compact traces (issue 11): the journal stores each rule file's path (and the value a failed
//! condition found at a path) once per trace, and every reader (`events show`, the console, the
//! API) gets each candidate rule's full path and found value back. A candidate that missed on
//! a `match` condition is stored as `[rule, file, path, expected]`.

use storeflow::plan::Trace;

use crate::helpers::*;

fn rules(prefix: &str) -> String {
    let mut yaml = String::from("rules:\n");
    for i in 0..3 {
        yaml.push_str(&format!(
            "  - name: {prefix}-{i}\n    on: order.paid\n    match:\n      order.total: {{ gte: {} }}\n    actions:\n      - log: {{ message: \"{prefix} {{{{ order.id }}}}\" }}\n",
            i * 1_000_000
        ));
    }
    yaml
}

#[tokio::test]
async fn regression_each_rule_file_path_is_stored_once_per_trace_and_read_back_whole() {
    let dir = dir_with_rules("alpha-rules.yaml", &rules("alpha"));
    write_rules(dir.path(), "beta-rules.yaml", &rules("beta"));
    let d = Daemon::start_in(dir, SECURED).await;
    let (file, event, sig) = SELLIX_FIXTURES[2];
    let sent = post_sellix(&d, file, event, sig).await;
    assert_eq!(sent.status, 200, "{:?}", sent.json);
    let id = sent.json["event_id"].as_str().unwrap().to_string();
    let stored = d.trace(&id).await;

    // What every reader gets: the typed trace, each candidate with its own file's full path.
    let trace = Trace::from_json(&stored).expect("a typed trace");
    let seen: Vec<(String, std::path::PathBuf, bool)> = trace
        .records()
        .iter()
        .map(|r| {
            (
                r.verdict.rule.clone(),
                r.verdict.file.clone(),
                r.verdict.matched,
            )
        })
        .collect();
    let rules_dir = d.dir.path().join("rules");
    let expected: Vec<(String, std::path::PathBuf, bool)> = ["alpha", "beta"]
        .iter()
        .flat_map(|p| {
            let path = rules_dir.join(format!("{p}-rules.yaml"));
            (0..3).map(move |i| (format!("{p}-{i}"), path.clone(), i == 0))
        })
        .collect();
    assert_eq!(seen, expected);
    assert!(
        stored.get("files").is_none(),
        "the storage form leaks: {stored}"
    );
    assert_eq!(serde_json::to_value(&trace).unwrap(), stored);

    // What the journal holds: each path once.
    let db = d.dir.path().join("data/storeflow.db");
    let d_dir = d.stop().await;
    let raw: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT trace FROM traces WHERE event_id = ?1", [&id], |r| {
            r.get(0)
        })
        .unwrap();
    for p in ["alpha", "beta"] {
        assert_eq!(raw.matches(&format!("{p}-rules.yaml")).count(), 1, "{raw}");
    }
    // Four candidates missed on order.total: the path and the total they found are stored
    // once, each miss as [rule, file, path, expected].
    assert_eq!(raw.matches("\"actual\"").count(), 0, "{raw}");
    assert_eq!(raw.matches("order.total").count(), 1, "{raw}");
    assert!(raw.contains("\"paths\":[[\"order.total\","), "{raw}");
    let misses: Vec<&storeflow::rules::Miss> =
        trace.records().iter().filter_map(|r| r.miss()).collect();
    assert_eq!(misses.len(), 4);
    for miss in misses {
        let storeflow::rules::Miss::Condition { path, actual, .. } = miss else {
            panic!("{miss:?}");
        };
        assert_eq!((path.as_str(), actual.is_number()), ("order.total", true));
    }
    drop(d_dir);
}

/// 1,000 rules in 10 files in `dir`/rules, the shapes of bench/rules1000.sh: `match` on the total, a product,
/// a customer, the currency; `if` expressions; listening to several events.
fn thousand_rules(dir: &std::path::Path) {
    let events = ["order.paid", "order.shipped", "order.*", "sellix/order:*"];
    for f in 0..10 {
        let mut yaml = String::from("rules:\n");
        for i in f * 100..(f + 1) * 100 {
            let on = events[i % events.len()];
            yaml.push_str(&format!(
                "  - name: rule-{i:04}\n    on: {on}\n    match:\n"
            ));
            match i % 3 {
                _ if i < 10 => {
                    yaml.push_str(&format!("      order.total: {{ gte: {} }}\n", i * 10))
                }
                0 => yaml.push_str(&format!("      payload.data.product_id: prod-{i:04}\n")),
                1 => yaml.push_str(&format!(
                    "      order.customer.email: customer-{i:04}@example.com\n"
                )),
                _ => yaml.push_str("      order.currency: { in: [EUR, GBP] }\n"),
            }
            if i % 4 == 0 {
                yaml.push_str(&format!("    if: 'order.total > {}'\n", i % 80));
            }
            yaml.push_str(&format!(
                "    actions:\n      - log: {{ message: \"rule {i} saw {{{{ order.id }}}}\" }}\n"
            ));
        }
        write_rules(dir, &format!("gen-{f:02}.yaml"), &yaml);
    }
}

/// `(rule, file, verdict)` from `events show` lines (`  ✘ name (file) did not fire: why`).
fn shown_verdicts(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|l| {
            let l = l.strip_prefix("  ✔ ").or_else(|| l.strip_prefix("  ✘ "))?;
            let (name, rest) = l.split_once(" (")?;
            let (file, verdict) = rest.split_once(") ")?;
            let verdict = verdict.strip_prefix("did not fire: ").unwrap_or(verdict);
            Some((name.to_string(), file.to_string(), verdict.to_string()))
        })
        .collect()
}

/// `(rule, verdict)` from `simulate` lines (`✘ name — why`, `✔ name — matches`).
fn simulated_verdicts(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let l = l.strip_prefix("✔ ").or_else(|| l.strip_prefix("✘ "))?;
            let (name, why) = l.split_once(" — ")?;
            let why = if why == "matches" { "fired" } else { why };
            Some((name.to_string(), why.to_string()))
        })
        .collect()
}

#[tokio::test]
async fn regression_events_show_explains_an_event_through_a_thousand_rules_as_simulate_does() {
    let dir = tempfile::tempdir().unwrap();
    thousand_rules(dir.path());
    let d = Daemon::start_in(dir, &crate::api::config()).await;
    let (file, event, sig) = SELLIX_FIXTURES[2];
    let sent = post_sellix(&d, file, event, sig).await;
    assert_eq!(sent.status, 200, "{:?}", sent.json);
    let id = sent.json["event_id"].as_str().unwrap().to_string();
    let stored = d.trace(&id).await;
    let (status, api) = crate::api::get(&d, &format!("/api/events/{id}")).await;
    assert_eq!(status, 200, "{api}");
    let db = d.dir.path().join("data/storeflow.db");
    let config = d.dir.path().join("cli.yaml");
    let rules_dir = d.dir.path().join("rules");
    std::fs::write(
        &config,
        format!(
            "data_dir: {}\nrules_dir: {}\n",
            d.dir.path().join("data").display(),
            rules_dir.display()
        ),
    )
    .unwrap();
    let d_dir = d.stop().await;
    let c = config.to_str().unwrap();

    // From the stored trace (events show) and from a fresh evaluation (simulate): the same
    // verdict, word for word, for every candidate rule, in order.
    let shown = stdout(&storeflow(&["events", "show", &id, "-c", c]));
    let body = fixture_path(&format!("sellix/{file}"));
    let simulated = storeflow(&[
        "simulate",
        "--source",
        "sellix",
        body.to_str().unwrap(),
        "-c",
        c,
    ]);
    assert_eq!(simulated.status.code(), Some(0), "{}", stderr(&simulated));
    let simulated_text = stdout(&simulated);
    let simulated = simulated_verdicts(&simulated_text);
    let shown_rules = shown_verdicts(&shown);
    assert!(simulated.len() > 300, "{simulated_text}");
    let without_files: Vec<(String, String)> = shown_rules
        .iter()
        .map(|(n, _, v)| (n.clone(), v.clone()))
        .collect();
    assert_eq!(without_files, simulated, "{shown}");
    for (name, file, _) in &shown_rules {
        let n: usize = name["rule-".len()..].parse().unwrap();
        let expected = rules_dir.join(format!("gen-{:02}.yaml", n / 100));
        assert_eq!(file, &expected.display().to_string());
    }
    let misses = simulated
        .iter()
        .filter(|(_, v)| v.contains(": expected "))
        .count();
    assert!(misses > 200, "{misses} condition misses");
    let not_listening = 1_000 - simulated.len();
    assert!(
        shown.contains(&format!("({not_listening} other rules not listening")),
        "{shown}"
    );
    // The API answers the same trace the journal reads back.
    assert_eq!(api["trace"], stored);

    // Stored: a few dozen bytes per missed candidate (about 145 as the JSON read back).
    let raw: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT trace FROM traces WHERE event_id = ?1", [&id], |r| {
            r.get(0)
        })
        .unwrap();
    let whole = stored.to_string().len();
    assert!(
        whole > 3 * raw.len(),
        "{} bytes stored for {whole}",
        raw.len()
    );
    drop(d_dir);
}
