//! The sandbox: budgets, depth, sizes, `eval` and the filesystem are all refused with a reason.

use std::sync::Arc;

use super::script_tests::{event, runner};
use super::*;

fn run_err(runner: &Runner, src: &str) -> ScriptError {
    let script = runner.compile(src, Origin::file("t.rhai")).unwrap();
    runner.run_script(&script, &event(), &NoState).unwrap_err()
}

#[test]
fn endless_loop_stops_at_the_operation_budget() {
    let err = run_err(
        &runner(),
        "email(#{to: \"a@b.c\", subject: \"s\", body: \"b\"}); loop { }",
    );
    assert!(err.message.contains("operation budget"), "{err}");
}

#[test]
fn budget_covers_plugins_called_in_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("spin.rhai"),
        "fn run(p, e) { let i = 0; while i < 500 { i += 1; } }",
    )
    .unwrap();
    let (plugins, errs) = Plugins::load_dir(dir.path(), 10_000);
    assert!(errs.is_empty(), "{errs:?}");
    let runner = Runner::new(10_000, Arc::new(plugins));
    let err = run_err(&runner, "for i in 0..1000 { spin(#{}) }");
    assert!(err.message.contains("operation budget"), "{err}");
}

#[test]
fn deep_recursion_is_refused() {
    let err = run_err(&runner(), "fn down(n) { down(n + 1) }\ndown(0)");
    assert!(
        err.message
            .contains("stack overflow: function calls nested too deep"),
        "{err}"
    );
    assert_eq!((err.line, err.column), (2, 1), "{err}");
}

#[test]
fn huge_strings_are_refused() {
    let err = run_err(&runner(), r#"let s = "x"; loop { s += s; }"#);
    assert!(
        err.message.to_lowercase().contains("length of string"),
        "{err}"
    );
    let err = run_err(&runner(), r#"let s = ""; s.pad(100_000_000, "x"); s"#);
    assert!(
        err.message.to_lowercase().contains("length of string"),
        "{err}"
    );
}

#[test]
fn eval_is_refused() {
    let err = runner()
        .compile(r#"eval("1 + 1")"#, Origin::file("t.rhai"))
        .unwrap_err();
    assert!(err.message.contains("eval"), "{err}");
}

#[test]
fn imports_outside_plugins_dir_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("common.rhai"), "fn tag() { \"ok\" }").unwrap();
    let (plugins, _) = Plugins::load_dir(dir.path(), 10_000);
    let runner = Runner::new(10_000, Arc::new(plugins));
    for path in ["/etc/passwd", "../secrets", "common/../../x"] {
        let err = run_err(&runner, &format!("import {path:?} as p;"));
        assert!(err.message.contains("refused"), "{path}: {err}");
    }
    let script = runner
        .compile(
            r#"import "common" as c; log(c::tag());"#,
            Origin::file("t.rhai"),
        )
        .unwrap();
    let (intents, _) = runner.run_script(&script, &event(), &NoState).unwrap();
    assert_eq!(intents[0].params["message"], "ok");
    // Without a plugins directory nothing imports at all.
    let err = run_err(&super::script_tests::runner(), r#"import "common" as c;"#);
    assert!(err.message.to_lowercase().contains("module"), "{err}");
}

#[test]
fn no_file_functions_exist() {
    let err = run_err(&runner(), r#"open("/etc/passwd")"#);
    assert!(err.message.contains("Function not found"), "{err}");
}

#[test]
fn scripts_cannot_change_what_later_scripts_see() {
    let runner = runner();
    let values = EventValues::new(&event());
    let w = runner
        .compile(
            "let p = payload; p.data.total = 0; let o = order; o.id = \"x\";",
            Origin::file("w.rhai"),
        )
        .unwrap();
    let _ = runner.run_script_values(&w, &values, &NoState);
    let r = runner
        .compile(
            "log(`${payload.data.total} ${order.id}`)",
            Origin::file("r.rhai"),
        )
        .unwrap();
    let (intents, _) = runner.run_script_values(&r, &values, &NoState).unwrap();
    assert_eq!(intents[0].params["message"], "49.98 ord_1");
}
