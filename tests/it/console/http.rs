//! The console's access rules over plain HTTP: sign-in, the session cookie's flags, CSRF,
//! session expiry, sign-out, 401 without a session, loopback only without a token.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use super::{client, csrf_of, session_cookie, FormExt, TOKEN};
use crate::helpers::{Daemon, SECURED};

fn with_token(extra: &str) -> String {
    format!("{SECURED}admin:\n  token: {TOKEN}\n{extra}")
}

/// Signs in and answers the session cookie pair and the overview's CSRF token.
async fn sign_in(d: &Daemon) -> (String, String) {
    let c = client();
    let resp = c
        .post(d.url("/ui/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/ui/");
    let (cookie, _) = session_cookie(&resp).expect("signing in sets the session cookie");
    let page = get(d, "/ui/", Some(&cookie)).await;
    assert_eq!(page.0, 200);
    (cookie, csrf_of(&page.1))
}

async fn get(d: &Daemon, path: &str, cookie: Option<&str>) -> (u16, String) {
    let mut req = client().get(d.url(path));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn post(d: &Daemon, path: &str, cookie: &str, form: &[(&str, &str)]) -> (u16, String) {
    let resp = client()
        .post(d.url(path))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn console_sign_in_sets_an_http_only_strict_cookie_and_sign_out_ends_the_session() {
    let d = Daemon::start(&with_token("")).await;
    let resp = client()
        .post(d.url("/ui/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    let (_, header) = session_cookie(&resp).unwrap();
    assert!(header.contains("HttpOnly"), "{header}");
    assert!(header.contains("SameSite=Strict"), "{header}");
    assert!(header.contains("Path=/ui"), "{header}");
    assert!(
        !header.contains("Secure"),
        "plain HTTP: no Secure flag: {header}"
    );

    let (cookie, csrf) = sign_in(&d).await;
    let page = client()
        .get(d.url("/ui/events"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["x-frame-options"],
        "DENY",
        "no framing by other sites"
    );
    assert_eq!(page.headers()["cache-control"], "no-store");
    let (status, _) = post(&d, "/ui/logout", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    let (status, body) = get(&d, "/ui/events", Some(&cookie)).await;
    assert_eq!(status, 401, "the old cookie no longer works after sign-out");
    assert!(body.contains("name=\"token\""), "the sign-in form is shown");
    d.stop().await;
}

#[tokio::test]
async fn every_console_page_answers_401_with_the_sign_in_form_without_a_session() {
    let d = Daemon::start(&with_token("")).await;
    for path in [
        "/ui/",
        "/ui/events",
        "/ui/events?order=1",
        "/ui/events/evt_x",
        "/ui/jobs?status=dead",
        "/ui/flags",
        "/ui/rules",
        "/ui/try",
    ] {
        let (status, body) = get(&d, path, None).await;
        assert_eq!(status, 401, "{path}");
        assert!(body.contains("name=\"token\""), "{path}: sign-in form");
        let (status, _) = get(&d, path, Some("storeflow_session=forged")).await;
        assert_eq!(status, 401, "{path} with a made-up session id");
    }
    for path in [
        "/ui/jobs/retry",
        "/ui/jobs/1/retry",
        "/ui/flags/1/resolve",
        "/ui/try",
    ] {
        let (status, _) = post(&d, path, "storeflow_session=forged", &[("csrf", "x")]).await;
        assert_eq!(status, 401, "POST {path}");
    }
    // The static files hold nothing about the shop; htmx may be cached for good.
    let resp = client()
        .get(d.url("/ui/assets/htmx-2.0.11.min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    d.stop().await;
}

#[tokio::test]
async fn console_forms_without_the_sessions_csrf_token_are_refused_with_403() {
    let d = Daemon::start(&with_token("")).await;
    let (cookie, csrf) = sign_in(&d).await;
    for form in [vec![("other", "field")], vec![("csrf", "not-the-token")]] {
        let (status, body) = post(&d, "/ui/jobs/retry", &cookie, &form).await;
        assert_eq!(status, 403);
        assert!(body.contains("CSRF"), "the page says why: {body}");
    }
    let (status, body) = post(&d, "/ui/logout", &cookie, &[("other", "field")]).await;
    assert_eq!(status, 403, "sign-out needs the token too: {body}");
    let (status, _) = post(&d, "/ui/jobs/retry", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(status, 303, "with the token the form is taken");
    d.stop().await;
}

#[tokio::test]
async fn console_sessions_expire_after_the_configured_idle_time() {
    let d = Daemon::start(&with_token("  session_idle: 2s\n")).await;
    let (cookie, _) = sign_in(&d).await;
    assert_eq!(get(&d, "/ui/flags", Some(&cookie)).await.0, 200);
    // The idle time itself is what is tested: nothing to poll for.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, body) = get(&d, "/ui/flags", Some(&cookie)).await;
    assert_eq!(status, 401);
    assert!(body.contains("name=\"token\""));
    d.stop().await;
}

#[tokio::test]
async fn without_an_admin_token_the_console_answers_local_clients_only_and_still_checks_csrf() {
    let d = Daemon::start(SECURED).await;
    let resp = client().get(d.url("/ui/")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "loopback: no sign-in needed");
    let (cookie, header) = session_cookie(&resp).expect("a session for the CSRF token");
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Strict"));
    assert!(!resp.text().await.unwrap().contains("Sign out"));
    let csrf = csrf_of(&get(&d, "/ui/try", Some(&cookie)).await.1);
    let (status, _) = post(&d, "/ui/jobs/retry", &cookie, &[("other", "field")]).await;
    assert_eq!(status, 403, "a form from another site is refused even here");
    let (status, _) = post(&d, "/ui/jobs/retry", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    // A client relayed by a proxy on this machine is not local.
    let resp = client()
        .get(d.url("/ui/"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.text().await.unwrap().contains("admin.token"));
    assert_eq!(
        client()
            .get(d.url("/ui/login"))
            .send()
            .await
            .unwrap()
            .status(),
        303,
        "no sign-in page without a token"
    );
    d.stop().await;
}

/// The real binary on `yaml`, with its log lines on a channel; answers its base URL too.
fn serve_with_log(yaml: &str) -> (Child, String, Receiver<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("storeflow.yaml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!("listen: 127.0.0.1:0\ndata_dir: {}\n{yaml}", data.display()),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(["serve", "-c"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let base = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("daemon started");
        if let Some(addr) = line.split("listening on ").nth(1) {
            break addr.split_whitespace().next().unwrap().to_string();
        }
    };
    (child, base, rx, dir)
}

/// The real binary: a wrong token gets the 401 sign-in page (no hint of the token) and one log
/// line that names the refusal but not what was typed.
#[tokio::test]
async fn a_wrong_console_token_is_refused_with_401_and_logged_without_the_token() {
    let (mut child, base, log, _dir) = serve_with_log(&with_token(""));
    let typed = "console-test-token-5f1d-typo";
    let resp = client()
        .post(format!("{base}/ui/login"))
        .form(&[("token", typed)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(session_cookie(&resp).is_none());
    let body = resp.text().await.unwrap();
    assert!(body.contains("not the admin token"), "{body}");
    assert!(!body.contains(TOKEN) && !body.contains(typed));
    let logged = loop {
        let line = log
            .recv_timeout(Duration::from_secs(20))
            .expect("a log line about the refused sign-in");
        if line.contains("sign-in refused") {
            break line;
        }
    };
    assert!(
        !logged.contains(typed) && !logged.contains(TOKEN),
        "{logged}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Posts `n` distinct Sellix paid orders (order ids `ord-0` …) and waits until all are
/// processed.
async fn paid_orders(d: &Daemon, n: usize) {
    let template = crate::helpers::fixture("sellix/order_paid.json");
    let template: serde_json::Value = serde_json::from_slice(&template).unwrap();
    for i in 0..n {
        let mut body = template.clone();
        body["data"]["uniqid"] = format!("ord-{i}").into();
        body["data"]["customer_email"] = format!("buyer{}@example.com", i % 2).into();
        let body = serde_json::to_vec(&body).unwrap();
        let sig = crate::helpers::sign(&body);
        let headers = [
            ("x-sellix-event", "order:paid"),
            ("x-sellix-signature", &sig),
        ];
        let answer = crate::helpers::post(&d.url("/hooks/sellix"), &headers, body).await;
        assert_eq!(answer.status, 200, "{}", answer.json);
        d.trace(answer.json["event_id"].as_str().unwrap()).await;
    }
}

/// The `older »` link of a page, unescaped.
fn next_link(html: &str) -> Option<String> {
    let anchor = &html[..html.find("rel=\"next\"")?];
    let href = &anchor[anchor.rfind("href=\"")? + 6..];
    let href = &href[..href.find('"')?];
    Some(href.replace("&#x2f;", "/").replace("&amp;", "&"))
}

fn rows(html: &str) -> usize {
    html.matches("href=\"/ui/events/evt_").count()
}

#[tokio::test]
async fn console_event_search_filters_and_pages_with_a_keyset_cursor() {
    let d = Daemon::start(&with_token("")).await;
    d.write_rules(
        "r.yaml",
        "rules:\n  - name: big\n    on: order.paid\n    match:\n      order.total: { gte: 1000 }\n    actions:\n      - log: { message: x }\n",
    );
    paid_orders(&d, 55).await;
    let (cookie, _) = sign_in(&d).await;
    let (status, first) = get(&d, "/ui/events", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert_eq!(rows(&first), 50, "50 a page");
    assert!(first.contains("ord-54") && !first.contains("ord-4<"));
    let link = next_link(&first).expect("a link to older events");
    assert!(link.starts_with("/ui/events?before="), "{link}");
    let (_, second) = get(&d, &link, Some(&cookie)).await;
    assert_eq!(rows(&second), 5, "the 5 oldest on the second page");
    assert!(second.contains("ord-0<") && !second.contains("ord-54"));

    let (_, one) = get(&d, "/ui/events?order=ord-7", Some(&cookie)).await;
    assert_eq!(rows(&one), 1);
    let (_, by_email) = get(&d, "/ui/events?q=BUYER1%40example.com", Some(&cookie)).await;
    assert_eq!(rows(&by_email), 27, "every odd order, case ignored");
    let (_, none) = get(&d, "/ui/events?rule=big", Some(&cookie)).await;
    assert_eq!(rows(&none), 0);
    assert!(none.contains("No event matches this search"));
    let (_, bad) = get(&d, "/ui/events?outcome=sideways", Some(&cookie)).await;
    assert!(
        bad.contains("unknown outcome"),
        "a bad filter is said, not a 500"
    );
    d.stop().await;
}

#[tokio::test]
async fn the_event_page_shows_a_failed_script_with_its_position_and_where_the_email_went() {
    let d = Daemon::start(&with_token("")).await;
    d.write_rules(
        "r.yaml",
        "rules:\n  - name: thanks\n    on: order.paid\n    actions:\n      - email: { to: \"{{ order.customer.email }}\", subject: Thanks, body: hi }\n  - name: broken\n    on: order.paid\n    actions:\n      - script: |\n          let x = 1;\n          throw \"no stock service\";\n",
    );
    wait_for_rules(&d, 2).await;
    paid_orders(&d, 1).await;
    let (cookie, _) = sign_in(&d).await;
    let (_, list) = get(&d, "/ui/events", Some(&cookie)).await;
    let at = list.find("href=\"/ui/events/evt_").unwrap() + 6;
    let link = &list[at..];
    let link = &link[..link.find('"').unwrap()];
    let (status, page) = get(&d, link, Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(page.contains("script failed"), "{page}");
    assert!(page.contains("no stock service"), "the script's error");
    assert!(
        page.contains("r.yaml:11:"),
        "file and line, relative to the rules: {page}"
    );
    assert!(
        page.contains("to buyer0@example.com"),
        "where the email went"
    );
    assert!(
        page.contains(".eml"),
        "the mail drop file (no SMTP configured)"
    );
    d.stop().await;
}

async fn wait_for_rules(d: &Daemon, n: u64) {
    crate::helpers::wait_for_async("the rules to load", || async {
        (d.health().await["rules"]["loaded"] == n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn trying_a_broken_payload_says_what_is_wrong_instead_of_failing() {
    let d = Daemon::start(&with_token("")).await;
    let (cookie, csrf) = sign_in(&d).await;
    let cases = [
        ("sellix", "{not json", "not a sellix webhook"),
        ("nowhere", "{}", "unknown source"),
        ("sellix", "   ", "Paste a webhook body"),
    ];
    for (source, payload, said) in cases {
        let form = [
            ("csrf", csrf.as_str()),
            ("source", source),
            ("payload", payload),
        ];
        let (status, page) = post(&d, "/ui/try", &cookie, &form).await;
        assert_eq!(status, 422, "{source} {payload:?}");
        assert!(page.contains(said), "{said:?} in {page}");
        assert!(
            page.contains(payload.trim()),
            "the form keeps what was pasted"
        );
    }
    let form = [
        ("csrf", csrf.as_str()),
        ("fixture", "gone.yaml: no such test"),
    ];
    let (status, page) = post(&d, "/ui/try", &cookie, &form).await;
    assert_eq!(status, 422);
    assert!(page.contains("reload the page"), "{page}");
    d.stop().await;
}
