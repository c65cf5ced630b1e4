//! Run limits: wall-clock timeouts for scripts and plugin `validate`, and the state limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::script_tests::event;
use super::*;

fn limits() -> RunLimits {
    RunLimits {
        timeout: Duration::from_millis(200),
        max_state_keys: 3,
        max_state_bytes: 100,
        max_value_bytes: 40,
    }
}

fn run(src: &str) -> Result<(Vec<Intent>, StateChanges), ScriptError> {
    let runner = Runner::with_limits(u64::MAX / 2, limits(), Arc::new(Plugins::empty()));
    let script = runner.compile(src, Origin::file("t.rhai")).unwrap();
    runner.run_script(&script, &event(), &NoState)
}

#[test]
fn regression_slow_script_inside_its_budget_times_out() {
    let start = Instant::now();
    let err = run(r#"let s = "x"; s.pad(60000, "y"); loop { sha256(s); }"#).unwrap_err();
    assert!(err.message.contains("timed out after 200 ms"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn regression_state_value_size_is_limited() {
    let err = run(r#"let s = "x"; s.pad(50, "y"); state_set("k", s);"#).unwrap_err();
    assert!(
        err.message.contains("scripts.max_value_bytes (40)"),
        "{err}"
    );
    assert!(run(r#"state_set("k", "short")"#).is_ok());
}

#[test]
fn regression_state_keys_written_per_run_are_limited() {
    let err = run(r#"for i in 0..4 { state_set(`k${i}`, i); }"#).unwrap_err();
    assert!(err.message.contains("at most 3 state keys"), "{err}");
    // Writing the same keys again does not count twice.
    let (_, changes) = run(r#"for i in 0..10 { state_set(`k${i % 3}`, i); }"#).unwrap();
    assert_eq!(changes.0.len(), 3);
    assert_eq!(changes.0["k0"], json!(9));
}

#[test]
fn regression_state_bytes_written_per_run_are_limited() {
    let src = r#"let s = "x"; s.pad(35, "y"); for i in 0..3 { state_set(`k${i}`, s); }"#;
    let err = run(src).unwrap_err();
    assert!(err.message.contains("at most 100 bytes of state"), "{err}");
    let err = run(r#"for i in 0..3 { state_incr("n"); } state_set("a", "b")"#);
    assert!(err.is_ok(), "{err:?}");
}

#[test]
fn regression_slow_plugin_validate_times_out_at_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sorter.rhai"),
        "fn run(p, e) { }\nfn validate(p) { let a = []; a.pad(5000, 1); loop { a.sort(|x, y| y - x); } }",
    )
    .unwrap();
    let (plugins, errors) =
        Plugins::load_dir_with(dir.path(), u64::MAX / 2, Duration::from_millis(200));
    assert!(errors.is_empty(), "{errors:?}");
    let start = Instant::now();
    let err = plugins.validate("sorter", &json!({})).unwrap_err();
    assert!(err[0].contains("timed out after 200 ms"), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}
