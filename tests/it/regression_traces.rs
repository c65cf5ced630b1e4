//! Compact traces (issue 11): the journal stores each rule file's path (and the value a failed
//! condition found at a path) once per trace, and every reader (`events show`, the console, the
//! API) gets each candidate rule's full path and found value back.

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
    // Four candidates missed on order.total: the total they found is stored once.
    assert_eq!(raw.matches("\"actual\"").count(), 0, "{raw}");
    assert!(raw.contains("\"actuals\":{\"order.total\":"), "{raw}");
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
