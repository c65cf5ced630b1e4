//! Plugins: loading, manifests, validation, the shipped discord and telegram plugins.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::script_tests::event;
use super::*;

fn shipped() -> Plugins {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins");
    let (plugins, errors) = Plugins::load_dir(&dir, 100_000);
    assert!(errors.is_empty(), "{errors:?}");
    plugins
}

const HOOK: &str = "https://discord.com/api/webhooks/1/abc";

#[test]
fn shipped_plugins_load_with_manifests() {
    let plugins = shipped();
    assert_eq!(plugins.names(), ["discord_plugin", "telegram"]);
    let m = plugins.manifest("telegram").unwrap();
    assert!(m.description.contains("Telegram"));
    let names: Vec<&str> = m.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["bot_token", "chat_id", "text", "api_base"]);
    assert_eq!(m.params[3].default, Some(json!("https://api.telegram.org")));
    assert_eq!(m.params[0].ty, ParamType::String);
    assert!(m.params[0].required);
}

#[test]
fn manifest_and_own_validation_report_problems() {
    let plugins = shipped();
    assert_eq!(
        plugins.validate(
            "discord_plugin",
            &json!({"webhook_url": HOOK, "content": "hi"})
        ),
        Ok(())
    );
    let problems = |p| {
        plugins
            .validate("discord_plugin", &p)
            .unwrap_err()
            .join("\n")
    };
    assert!(problems(json!({"webhook_url": HOOK})).contains("missing required parameter `content`"));
    assert!(
        problems(json!({"webhook_url": HOOK, "content": "x", "color": 1}))
            .contains("unknown parameter `color`")
    );
    assert!(problems(json!({"webhook_url": HOOK, "content": 5}))
        .contains("parameter `content` must be a string, got 5"));
    let own = problems(json!({"webhook_url": "https://evil.example/x", "content": "x"}));
    assert!(
        own.contains("webhook_url must start with https://discord.com/api/webhooks/"),
        "{own}"
    );
    // Templated values are only known after rendering.
    assert_eq!(
        plugins.validate(
            "discord_plugin",
            &json!({"webhook_url": "{{ payload.hook }}", "content": "x"})
        ),
        Ok(())
    );
    assert!(plugins.validate("slack2", &json!({})).unwrap_err()[0].contains("unknown plugin"));
}

#[test]
fn discord_plugin_posts_one_http_intent() {
    let runner = Runner::new(100_000, Arc::new(shipped()));
    let params = json!({"webhook_url": HOOK, "content": "New order", "username": "storeflow"});
    let (intents, changes) = runner
        .run_plugin("discord_plugin", &params, &event(), &NoState)
        .unwrap();
    assert_eq!(
        intents,
        [Intent {
            kind: "http".into(),
            params: json!({"method": "POST", "url": HOOK, "json": {"content": "New order", "username": "storeflow"}})
        }]
    );
    assert!(changes.0.is_empty());
    let err = runner
        .run_plugin(
            "discord_plugin",
            &json!({"webhook_url": HOOK}),
            &event(),
            &NoState,
        )
        .unwrap_err();
    assert!(
        err.message.contains("missing required parameter `content`"),
        "{err}"
    );
    assert!(err.file.ends_with("discord_plugin.rhai"), "{err}");
}

#[test]
fn telegram_posts_send_message_with_default_api_base() {
    let runner = Runner::new(100_000, Arc::new(shipped()));
    let params = json!({"bot_token": "123:abc", "chat_id": 42, "text": "paid"});
    let (intents, _) = runner
        .run_plugin("telegram", &params, &event(), &NoState)
        .unwrap();
    assert_eq!(intents[0].kind, "http");
    assert_eq!(
        intents[0].params,
        json!({"method": "POST", "url": "https://api.telegram.org/bot123:abc/sendMessage", "json": {"chat_id": 42, "text": "paid"}})
    );
    let params = json!({"bot_token": "t", "chat_id": "@shop", "text": "x", "api_base": "http://127.0.0.1:9/"});
    let (intents, _) = runner
        .run_plugin("telegram", &params, &event(), &NoState)
        .unwrap();
    assert_eq!(
        intents[0].params["url"],
        "http://127.0.0.1:9/bott/sendMessage"
    );
}

#[test]
fn scripts_call_plugins_by_name() {
    let runner = Runner::new(100_000, Arc::new(shipped()));
    let src = format!(
        "slack(\"first\");\ndiscord_plugin(#{{ webhook_url: \"{HOOK}\", content: `Order ${{order.id}}` }});"
    );
    let script = runner.compile(&src, Origin::file("t.rhai")).unwrap();
    let (intents, _) = runner.run_script(&script, &event(), &NoState).unwrap();
    assert_eq!(intents.len(), 2);
    assert_eq!(intents[1].params["json"], json!({"content": "Order ord_1"}));
    let script = runner
        .compile(
            "\ndiscord_plugin(#{ content: \"x\" })",
            Origin::file("t.rhai"),
        )
        .unwrap();
    let err = runner.run_script(&script, &event(), &NoState).unwrap_err();
    assert!(
        err.message
            .contains("discord_plugin(): missing required parameter `webhook_url`"),
        "{err}"
    );
    assert_eq!(err.line, 2, "{err}");
}

#[test]
fn plugins_see_the_event_with_order_and_payload() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("echo.rhai"),
        "fn run(params, event) { log(`${event.id} ${event.order.id} ${event.payload.data.total} ${params.x}`); }",
    )
    .unwrap();
    let (plugins, errors) = Plugins::load_dir(dir.path(), 10_000);
    assert!(errors.is_empty(), "{errors:?}");
    let runner = Runner::new(10_000, Arc::new(plugins));
    let (intents, _) = runner
        .run_plugin("echo", &json!({"x": 1}), &event(), &NoState)
        .unwrap();
    assert_eq!(intents[0].params["message"], "evt_1 ord_1 49.98 1");
}

#[test]
fn load_problems_are_reported_and_other_plugins_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "good.rhai",
        "fn run(p, e) { }\nfn validate(p) { if p.n > 3 { throw \"n is at most 3\" } }",
    );
    write(
        "good.yaml",
        "description: d\nparams:\n  n: { type: integer, default: 1, doc: count }\n",
    );
    write("broken.rhai", "fn run(p, e) {\n  let = 1;\n}");
    write("norun.rhai", "fn walk(p) { }");
    write("email.rhai", "fn run(p, e) { }");
    write("typed.rhai", "fn run(p, e) { }");
    write(
        "typed.yaml",
        "params:\n  n: { type: integer, default: \"x\" }\n",
    );
    write("orphan.yaml", "description: x\n");
    let (plugins, errors) = Plugins::load_dir(dir.path(), 10_000);
    assert_eq!(plugins.names(), ["good"]);
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 5, "{text:#?}");
    assert!(
        text.iter()
            .any(|t| t.contains("broken.rhai:2:") && t.contains("syntax error")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("must define `fn run(params, event)`")),
        "{text:#?}"
    );
    assert!(
        text.iter().any(|t| t.contains("`email` is taken")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("default \"x\" is not a integer")),
        "{text:#?}"
    );
    assert!(
        text.iter().any(|t| t.contains("manifest without a plugin")),
        "{text:#?}"
    );
    assert_eq!(plugins.validate("good", &json!({})), Ok(()));
    let err = plugins.validate("good", &json!({"n": 5})).unwrap_err();
    assert!(err[0].contains("n is at most 3"), "{err:?}");
    assert!(
        plugins.validate("good", &json!({"n": "5"})).unwrap_err()[0].contains("must be a integer")
    );
}
