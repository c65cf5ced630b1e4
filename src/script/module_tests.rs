//! Helper libraries in `plugins_dir/lib/`: importable by plugins and scripts, never actions.

use std::sync::Arc;

use serde_json::json;

use super::script_tests::event;
use super::*;

fn plugins_with_library() -> (tempfile::TempDir, Plugins, Vec<ScriptError>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("lib")).unwrap();
    std::fs::write(
        dir.path().join("lib/common.rhai"),
        "fn shout(s) { s.to_upper() + \"!\" }",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("greet.rhai"),
        "import \"common\" as c;\nfn run(p, e) { log(c::shout(p.name)); }",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("inner.rhai"),
        "fn run(p, e) { import \"lib/common\" as c; log(c::shout(p.name)); }",
    )
    .unwrap();
    let (plugins, errors) = Plugins::load_dir(dir.path(), 100_000);
    (dir, plugins, errors)
}

#[test]
fn regression_library_modules_are_importable_but_not_actions() {
    let (_dir, plugins, errors) = plugins_with_library();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(plugins.names(), ["greet", "inner"]);
    let runner = Runner::new(100_000, Arc::new(plugins));
    for name in ["greet", "inner"] {
        let (intents, _) = runner
            .run_plugin(name, &json!({"name": "ann"}), &event(), &NoState)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(intents[0].params["message"], "ANN!", "{name}");
    }
    let script = runner
        .compile(
            "import \"common\" as c; log(c::shout(\"bo\"));",
            Origin::file("t.rhai"),
        )
        .unwrap();
    let (intents, _) = runner.run_script(&script, &event(), &NoState).unwrap();
    assert_eq!(intents[0].params["message"], "BO!");
}

#[test]
fn library_syntax_errors_show_at_load_and_a_top_level_library_is_pointed_to_lib() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("lib")).unwrap();
    std::fs::write(dir.path().join("lib/bad.rhai"), "fn f( {").unwrap();
    std::fs::write(dir.path().join("helpers.rhai"), "fn f(x) { x }").unwrap();
    let (_, errors) = Plugins::load_dir(dir.path(), 100_000);
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 2, "{text:#?}");
    assert!(
        text.iter().any(|t| t.contains("lib/bad.rhai:1:")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("goes into lib/helpers.rhai")),
        "{text:#?}"
    );
}

fn lint(src: &str) -> Vec<String> {
    let (_dir, plugins, _) = plugins_with_library();
    let runner = Runner::new(100_000, Arc::new(plugins));
    let script = runner.compile(src, Origin::file("t.rhai")).unwrap();
    runner
        .lint(&script)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn regression_unknown_functions_and_intent_parameters_are_found_at_load() {
    let found = lint("let n = 1;\nemial(#{ to: \"a@b.c\" });\nemail(#{ to: \"a@b.c\", subjct: \"x\", body: \"b\" });");
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found[0].starts_with("t.rhai:2:1: unknown function `emial` (did you mean `email`?)"),
        "{found:#?}"
    );
    assert!(
        found[1].contains("email(): unknown parameter `subjct`"),
        "{found:#?}"
    );
    assert!(
        found[2].contains("email(): missing `subject`"),
        "{found:#?}"
    );
    // What is fine or only known at run time passes.
    let fine = lint(
        "import \"common\" as c;\nfn twice(x) { x * 2 }\nlet f = |x| x + 1;\nlet p = #{ kind: \"k\" };\n\
         log(c::shout(\"a\") + twice(2) + f(1) + \"x\".to_upper() + now() + sha256(\"a\"));\n\
         greet(#{ name: \"z\" }); flag(\"review\", \"note\"); print(type_of(p));",
    );
    assert!(fine.is_empty(), "{fine:#?}");
}
