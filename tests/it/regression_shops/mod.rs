//! Shops, secret rotation, routes and intake hardening (issue 8 items 8 and 10, issue 9 items 9
//! and 10, DESIGN.md §14), through the real daemon.

mod connections;

use connections::Served;

use std::path::Path;
use std::process::Command;

use storeflow::config::Config;
use storeflow::journal::Store;
use storeflow::sources::verify::sign_sha512_hex;
use tokio_util::sync::CancellationToken;

use crate::helpers::{
    dir_with_rules, fixture, fixture_path, post, Daemon, SELLIX_FIXTURES, SELLIX_SECRET,
};

/// Two Sellix shops (one rotating its secret), two Selldone shops, and the single-shop form.
const SHOPS: &str = r#"
sources:
  sellix:
    secret: whsec_test
    shops:
      - { name: main, secret: main-new, previous_secret: main-old }
      - { name: outlet, secret: outlet-secret }
  selldone:
    token: sd-token-123
    shops:
      - { name: eu, token: eu-token }
      - { name: us, token: us-token, previous_token: us-old }
"#;

fn signed(secret: &str, body: &[u8]) -> String {
    sign_sha512_hex(secret.as_bytes(), body)
}

async fn post_signed(d: &Daemon, path: &str, secret: &str) -> crate::helpers::Answer {
    let body = fixture("sellix/order_paid.json");
    let sig = signed(secret, &body);
    let headers = [
        ("x-sellix-event", "order:paid"),
        ("x-sellix-signature", &sig),
    ];
    post(&d.url(path), &headers, body).await
}

fn id(a: &crate::helpers::Answer) -> String {
    a.json["event_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn two_shops_with_different_secrets_refuse_each_others_webhooks() {
    let rules = r#"
rules:
  - name: outlet-only
    on: order.paid
    match:
      event.shop: outlet
    actions: [ { log: { message: "outlet order {{ event.shop }}" } } ]
"#;
    let d = Daemon::start_in(dir_with_rules("shops.yaml", rules), SHOPS).await;
    let main = post_signed(&d, "/hooks/sellix/main", "main-new").await;
    assert_eq!(main.status, 200, "{}", main.json);
    let wrong = post_signed(&d, "/hooks/sellix/outlet", "main-new").await;
    assert_eq!(wrong.status, 401, "{}", wrong.json);
    let outlet = post_signed(&d, "/hooks/sellix/outlet", "outlet-secret").await;
    assert_eq!(outlet.status, 200, "{}", outlet.json);
    let unknown = post_signed(&d, "/hooks/sellix/nope", "main-new").await;
    assert_eq!(unknown.status, 404, "{}", unknown.json);

    let sd = fixture("selldone/PaymentOrder.json");
    let a = post(&d.url("/hooks/selldone/us/eu-token"), &[], sd.clone()).await;
    assert_eq!(
        a.status, 401,
        "a token of shop eu on shop us' route: {}",
        a.json
    );
    let eu = post(&d.url("/hooks/selldone/eu/eu-token"), &[], sd.clone()).await;
    assert_eq!(eu.status, 200, "{}", eu.json);
    let eu_query = post(&d.url("/hooks/selldone/eu?token=eu-token"), &[], sd).await;
    assert_eq!(eu_query.status, 200, "{}", eu_query.json);

    let journal = d.journal();
    let shop_of = |a: &crate::helpers::Answer| journal.event(&id(a)).unwrap().unwrap().shop;
    assert_eq!(shop_of(&main), "main");
    assert_eq!(shop_of(&outlet), "outlet");
    assert_eq!(shop_of(&eu), "eu");
    // The same body to two shops is two events (dedupe is per shop).
    assert_ne!(id(&main), id(&outlet));

    // Rules match event.shop.
    let fired = |trace: &serde_json::Value| trace["rules"][0]["matched"] == true;
    assert!(fired(&d.trace(&id(&outlet)).await));
    assert!(!fired(&d.trace(&id(&main)).await));
    let dir = d.stop().await;

    let listed = storeflow_cli(dir.path(), &["events", "--shop", "outlet", "--json"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 1, "{listed}");
    assert!(lines[0].contains(&id(&outlet)), "{listed}");
}

#[tokio::test]
async fn rotation_accepts_old_and_new_secrets_and_records_which_matched() {
    let d = Daemon::start(SHOPS).await;
    let old = post_signed(&d, "/hooks/sellix/main", "main-old").await;
    assert_eq!(old.status, 200, "{}", old.json);
    let body = fixture("sellix/order_created.json");
    let sig = signed("main-new", &body);
    let headers = [
        ("x-sellix-event", "order:created"),
        ("x-sellix-signature", &sig),
    ];
    let new = post(&d.url("/hooks/sellix/main"), &headers, body).await;
    assert_eq!(new.status, 200, "{}", new.json);
    let bad = post_signed(&d, "/hooks/sellix/main", "never-configured").await;
    assert_eq!(bad.status, 401);
    let sd = fixture("selldone/SentOrder.json");
    let us_old = post(&d.url("/hooks/selldone/us/us-old"), &[], sd).await;
    assert_eq!(us_old.status, 200, "{}", us_old.json);

    let journal = d.journal();
    let secret_of = |a: &crate::helpers::Answer| journal.event(&id(a)).unwrap().unwrap().secret;
    assert_eq!(secret_of(&old).as_deref(), Some("previous"));
    assert_eq!(secret_of(&new).as_deref(), Some("current"));
    assert_eq!(secret_of(&us_old).as_deref(), Some("previous"));
    let trace = d.trace(&id(&old)).await;
    assert_eq!(
        (&trace["shop"], &trace["secret"]),
        (&"main".into(), &"previous".into())
    );

    let expected = serde_json::json!({"current": 1, "previous": 1});
    assert_eq!(d.health().await["secrets"]["sellix/main"], expected);
    // The counts survive a restart: they are read back from the journal.
    let d = Daemon::start_in(d.stop().await, SHOPS).await;
    assert_eq!(d.health().await["secrets"]["sellix/main"], expected);
    assert_eq!(d.health().await["secrets"]["selldone/us"]["previous"], 1);
    d.stop().await;
}

#[tokio::test]
async fn the_single_shop_routes_still_work_as_shop_default() {
    let d = Daemon::start(SHOPS).await;
    let (file, event, sig) = SELLIX_FIXTURES[0];
    let headers = [("x-sellix-event", event), ("x-sellix-signature", sig)];
    let body = fixture(&format!("sellix/{file}"));
    let a = post(&d.url("/hooks/sellix"), &headers, body.clone()).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let a2 = post(&d.url("/hooks/sellix/default"), &headers, body).await;
    assert_eq!(
        (a2.status, a2.json["duplicate"].as_bool()),
        (200, Some(true))
    );
    let sd = fixture("selldone/SentOrder.json");
    let b = post(&d.url("/hooks/selldone/sd-token-123"), &[], sd.clone()).await;
    assert_eq!(b.status, 200, "{}", b.json);
    let c = post(&d.url("/hooks/selldone?token=sd-token-123"), &[], sd).await;
    assert_eq!(c.status, 200, "{}", c.json);
    let journal = d.journal();
    for answer in [&a, &b] {
        let e = journal.event(&id(answer)).unwrap().unwrap();
        assert_eq!(
            (e.shop.as_str(), e.secret.as_deref()),
            ("default", Some("current"))
        );
    }
    d.stop().await;
}

#[tokio::test]
async fn regression_unknown_path_is_404_listing_the_routes_not_405() {
    let d = Daemon::start(SHOPS).await;
    for path in [
        "/nonexistent",
        "/hooks/selldone/tok/extra",
        "/hooks/shopify",
        "/hooks",
    ] {
        let a = post(&d.url(path), &[], b"{}".to_vec()).await;
        assert_eq!(a.status, 404, "{path}: {}", a.json);
        let msg = a.json["error"].as_str().unwrap();
        for route in [
            "/hooks/sellix",
            "/hooks/sellix/main",
            "/hooks/sellix/outlet",
            "/hooks/selldone/<token>",
            "/hooks/selldone/eu/<token>",
        ] {
            assert!(msg.contains(route), "{path}: {msg} lacks {route}");
        }
        assert!(
            !msg.contains("tok/extra"),
            "a path token is never echoed: {msg}"
        );
    }
    let get = reqwest::get(d.url("/nonexistent")).await.unwrap();
    assert_eq!(get.status().as_u16(), 404);
    // 405 only for a wrong method on a real route.
    let get = reqwest::get(d.url("/hooks/sellix/main")).await.unwrap();
    assert_eq!(get.status().as_u16(), 405);
    let post_health = reqwest::Client::new()
        .post(d.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(post_health.status().as_u16(), 405);
    d.stop().await;
}

#[tokio::test]
async fn regression_unsigned_webhook_through_a_local_proxy_is_refused() {
    let body = fixture("sellix/order_paid.json");
    let forwarded = [("x-forwarded-for", "203.0.113.9")];
    for yaml in [
        "sources:\n  sellix:\n    trust_proxy: true\n  selldone:\n    trust_proxy: true\n",
        "",
    ] {
        let d = Daemon::start(yaml).await;
        let a = post(&d.url("/hooks/sellix"), &forwarded, body.clone()).await;
        assert_eq!(a.status, 401, "{yaml:?}: {}", a.json);
        let msg = a.json["error"].as_str().unwrap();
        assert!(msg.contains("203.0.113.9"), "{msg}");
        let sd = fixture("selldone/PaymentOrder.json");
        let a = post(&d.url("/hooks/selldone"), &forwarded, sd.clone()).await;
        assert_eq!(a.status, 401, "{yaml:?}: {}", a.json);
        let real_ip = [("x-real-ip", "203.0.113.9")];
        let a = post(&d.url("/hooks/selldone"), &real_ip, sd.clone()).await;
        assert_eq!(a.status, 401, "{yaml:?}: {}", a.json);
        // A client on this machine, not proxied, is still served unsigned.
        let a = post(&d.url("/hooks/selldone"), &[], sd).await;
        assert_eq!(a.status, 200, "{yaml:?}: {}", a.json);
        d.stop().await;
    }
}

#[tokio::test]
async fn selldone_allowlist_honours_a_trusted_proxy() {
    let yaml = "sources:\n  selldone:\n    token: t\n    allow_ips: [198.51.100.4]\n    trust_proxy: true\n";
    let d = Daemon::start(yaml).await;
    let sd = fixture("selldone/SentOrder.json");
    let url = d.url("/hooks/selldone/t");
    let a = post(&url, &[("x-forwarded-for", "198.51.100.4")], sd.clone()).await;
    assert_eq!(a.status, 200, "{}", a.json);
    let a = post(&url, &[("x-forwarded-for", "203.0.113.9")], sd).await;
    assert_eq!(a.status, 403, "{}", a.json);
    assert_eq!(
        a.json["error"],
        "client address 203.0.113.9 is not in sources.selldone.allow_ips"
    );
    d.stop().await;
}

async fn start_on_all_interfaces(yaml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::parse(yaml, Path::new("test.yaml"), |_| None).unwrap();
    config.data_dir = dir.path().join("data");
    config.rules_dir = dir.path().join("rules");
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let stop = CancellationToken::new();
    stop.cancel();
    storeflow::app::run(config, listener, stop)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn regression_unsigned_source_on_a_public_listener_refuses_to_start() {
    let err = start_on_all_interfaces("").await.unwrap_err();
    assert!(err.starts_with("refusing to start"), "{err}");
    assert!(
        err.contains("sources.sellix shop `default` has no secret"),
        "{err}"
    );
    assert!(
        err.contains("sources.selldone shop `default` has no token"),
        "{err}"
    );
    let one_open =
        "sources:\n  sellix:\n    secret: s\n    shops: [{ name: b }]\n  selldone:\n    token: t\n";
    let err = start_on_all_interfaces(one_open).await.unwrap_err();
    assert!(
        err.contains("sources.sellix shop `b` has no secret"),
        "{err}"
    );
    assert!(!err.contains("selldone"), "{err}");
    let allowed =
        "sources:\n  sellix:\n    allow_unsigned: true\n  selldone:\n    allow_unsigned: true\n";
    start_on_all_interfaces(allowed).await.unwrap();
    start_on_all_interfaces("sources:\n  sellix:\n    secret: s\n  selldone:\n    token: t\n")
        .await
        .unwrap();
}

/// Runs the real binary with `-c <dir>/storeflow.yaml`.
fn storeflow_cli(dir: &Path, args: &[&str]) -> String {
    let config = dir.join("storeflow.yaml");
    let data = dir.join("data");
    if !config.exists() {
        std::fs::write(&config, format!("data_dir: {}\n", data.display())).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .arg("-c")
        .arg(&config)
        .args(args)
        .env_remove("SELLIX_WEBHOOK_SECRET")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn regression_sign_reads_the_secret_from_storeflow_yaml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("storeflow.yaml"),
        format!(
            "sources:\n  sellix:\n    secret: {SELLIX_SECRET}\n    shops:\n      - {{ name: main, secret: main-new, previous_secret: main-old }}\n"
        ),
    )
    .unwrap();
    let (file, _, sig) = SELLIX_FIXTURES[0];
    let path = fixture_path(&format!("sellix/{file}"));
    let path = path.to_str().unwrap();
    assert_eq!(storeflow_cli(dir.path(), &["sign", path]).trim(), sig);
    let body = fixture(&format!("sellix/{file}"));
    let main = storeflow_cli(dir.path(), &["sign", "--shop", "main", path]);
    assert_eq!(main.trim(), signed("main-new", &body));
    let old = storeflow_cli(dir.path(), &["sign", "--shop", "main", "--previous", path]);
    assert_eq!(old.trim(), signed("main-old", &body));
}

#[tokio::test]
async fn start_up_logs_deliveries_per_secret_so_the_old_one_can_be_retired() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), SHOPS, 1024);
    let body = fixture("sellix/order_paid.json");
    let sig = signed("main-old", &body);
    let headers = [
        ("x-sellix-event", "order:paid"),
        ("x-sellix-signature", &sig),
    ];
    let url = format!("{}/hooks/sellix/main", served.base);
    assert_eq!(post(&url, &headers, body).await.status, 200);
    drop(served);
    let served = Served::start(dir.path(), SHOPS, 1024);
    let line = served
        .log
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("journaled deliveries per secret") && l.contains("shop=main"))
        .cloned()
        .expect("a start-up line for shop main");
    assert!(
        line.contains("current=0") && line.contains("previous=1"),
        "{line}"
    );
    assert!(line.contains("rotating=true"), "{line}");
}
