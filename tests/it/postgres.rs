//! The daemon with its journal in PostgreSQL (DESIGN.md §13), as real `storeflow` processes on
//! a throwaway cluster: signed deliveries acknowledged and deduplicated, rules fire and jobs are
//! delivered, the listing commands read the same database, and a restart keeps everything.

use std::path::Path;

use crate::helpers::*;

#[path = "../../src/journal/pg/cluster.rs"]
pub(crate) mod cluster;

const RULES: &str = r#"
rules:
  - name: flag-disputes
    on: sellix/order:disputed
    actions:
      - flag: { kind: dispute, note: "{{ payload.data.paypal_dispute.reason }}" }
  - name: nudge
    on: sellix/order:disputed
    wait: { for: 1h, unless: [order.cancelled] }
    actions:
      - log: { message: "still disputed" }
"#;

/// A config of `dir` on a fresh database; answers the config file's path.
fn config_on_postgres(dir: &Path, url: &str) -> String {
    format!(
        "{SECURED}journal:\n  url: \"{url}\"\nrules_dir: {}\n",
        dir.join("rules").display()
    )
}

fn cli(config: &Path, args: &[&str]) -> String {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-c", config.to_str().unwrap()]);
    let out = storeflow(&all);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn post_dispute(p: &Process) -> Answer {
    let (file, event, sig) = SELLIX_FIXTURES[4];
    let headers = [("x-sellix-event", event), ("x-sellix-signature", sig)];
    post(
        &p.url("/hooks/sellix"),
        &headers,
        fixture(&format!("sellix/{file}")),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_on_postgres_acknowledges_dedupes_delivers_lists_and_restarts() {
    let url = cluster::cluster().database();
    let dir = dir_with_rules("r.yaml", RULES);
    let yaml = config_on_postgres(dir.path(), &url);
    let daemon = Process::start(dir.path(), &yaml);
    let config = dir.path().join("storeflow.yaml");

    let first = post_dispute(&daemon).await;
    assert_eq!(first.status, 200, "{}", first.json);
    assert_eq!(first.json["duplicate"], false);
    let id = first.json["event_id"].as_str().unwrap().to_string();
    let again = post_dispute(&daemon).await;
    assert_eq!(
        (again.status, &again.json["duplicate"]),
        (200, &true.into())
    );
    assert_eq!(again.json["event_id"], id.as_str());

    // The rule fired and its flag job was delivered: the flag is in PostgreSQL.
    let flags = wait_for("the dispute flag", || {
        let flags = lines(&cli(&config, &["flags", "--json"]));
        (!flags.is_empty()).then_some(flags)
    })
    .await;
    assert_eq!(flags[0]["note"], "MERCHANDISE_OR_SERVICE_NOT_AS_DESCRIBED");
    let jobs = lines(&cli(&config, &["jobs", "--json"]));
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(
        (&jobs[0]["status"], &jobs[0]["event_id"]),
        (&"done".into(), &id.as_str().into())
    );
    let timers = lines(&cli(&config, &["timers", "--json"]));
    assert_eq!(
        (timers.len(), &timers[0]["status"]),
        (1, &"pending".into()),
        "{timers:?}"
    );
    let events = lines(&cli(&config, &["events", "--json"]));
    assert_eq!(events.len(), 1, "one event for two deliveries: {events:?}");
    assert_eq!(events[0]["status"], "processed");

    // The admin API, the console's data and /metrics read PostgreSQL too.
    let page: serde_json::Value = reqwest::get(daemon.url("/api/events"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["id"], id.as_str(), "{page}");
    let metrics = reqwest::get(daemon.url("/metrics")).await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let bytes = metrics
        .lines()
        .find(|l| l.starts_with("storeflow_journal_bytes "))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(!bytes.ends_with(" 0"), "the database's size: {bytes}");

    // A restart keeps everything, and the delivery is still a duplicate.
    assert!(daemon.terminate().success());
    let daemon = Process::start(dir.path(), &yaml);
    let after = post_dispute(&daemon).await;
    assert_eq!(
        (after.status, &after.json["event_id"]),
        (200, &id.as_str().into())
    );
    assert_eq!(after.json["duplicate"], true);
    assert_eq!(lines(&cli(&config, &["events", "--json"])).len(), 1);
    assert_eq!(lines(&cli(&config, &["flags", "--json"])).len(), 1);
    assert_eq!(lines(&cli(&config, &["timers", "--json"])).len(), 1);
    assert!(
        !dir.path().join("data/storeflow.db").exists(),
        "nothing went to SQLite"
    );
    drop(daemon);
}

#[test]
fn migrate_applies_the_schema_once_and_says_so() {
    let url = cluster::cluster().database();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("storeflow.yaml");
    std::fs::write(&config, format!("journal:\n  url: \"{url}\"\n")).unwrap();
    let first = cli(&config, &["migrate"]);
    assert!(
        first.contains("applied migration 1: initial schema"),
        "{first}"
    );
    let second = cli(&config, &["migrate"]);
    assert!(second.contains("up to date"), "{second}");
    assert!(!format!("{first}{second}").contains(cluster::PASSWORD));
}

/// A database that cannot be reached: the command fails with the URL shown without its
/// password.
#[test]
fn regression_an_unreachable_database_is_reported_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("storeflow.yaml");
    let url = format!("postgres://shop:hunter2-secret@127.0.0.1:{port}/shop");
    std::fs::write(&config, format!("journal:\n  url: \"{url}\"\n")).unwrap();
    for args in [&["migrate"][..], &["events"][..], &["jobs"][..]] {
        let mut all = args.to_vec();
        all.extend(["-c", config.to_str().unwrap()]);
        let out = storeflow(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(!err.contains("hunter2"), "{args:?}: {err}");
        assert!(
            err.contains("postgres://shop:***@127.0.0.1"),
            "{args:?}: {err}"
        );
    }
}

/// An installation moves from SQLite to PostgreSQL: everything comes along (the event, its
/// trace, job, flag and timer, its dedupe key), the daemon carries on there, and a second copy
/// into the now non-empty database is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_copy_moves_an_installation_from_sqlite_to_postgres() {
    let dir = dir_with_rules("r.yaml", RULES);
    let on_sqlite = format!(
        "{SECURED}rules_dir: {}\n",
        dir.path().join("rules").display()
    );
    let daemon = Process::start(dir.path(), &on_sqlite);
    let config = dir.path().join("storeflow.yaml");
    let id = post_dispute(&daemon).await.json["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for("the dispute flag on SQLite", || {
        let flags = lines(&cli(&config, &["flags", "--json"]));
        (!flags.is_empty()).then_some(())
    })
    .await;
    let jobs_before = lines(&cli(&config, &["jobs", "--json"]));
    assert!(daemon.terminate().success());

    let url = cluster::cluster().database();
    let from = format!("sqlite:{}", dir.path().join("data/storeflow.db").display());
    let copied = cli(&config, &["journal", "copy", "--from", &from, "--to", &url]);
    assert!(
        copied.contains("copied 1 events, 1 secret_counts, 1 traces"),
        "{copied}"
    );
    assert!(copied.contains("1 jobs, 1 attempts, 1 flags"), "{copied}");
    assert!(
        copied.contains("1 timers") && !copied.contains(cluster::PASSWORD),
        "{copied}"
    );
    let again = storeflow(&[
        "journal",
        "copy",
        "--from",
        &from,
        "--to",
        &url,
        "-c",
        config.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("not empty"), "{}", stderr(&again));

    let daemon = Process::start(dir.path(), &config_on_postgres(dir.path(), &url));
    let after = post_dispute(&daemon).await;
    assert_eq!(
        (&after.json["event_id"], &after.json["duplicate"]),
        (&id.as_str().into(), &true.into())
    );
    assert_eq!(lines(&cli(&config, &["jobs", "--json"])), jobs_before);
    assert_eq!(lines(&cli(&config, &["flags", "--json"])).len(), 1);
    assert_eq!(lines(&cli(&config, &["timers", "--json"])).len(), 1);
    let shown = cli(&config, &["events", "show", &id, "--json"]);
    assert!(
        shown.contains("flag-disputes"),
        "the trace came along: {shown}"
    );
    // New events and jobs get ids past the copied ones.
    let (file, event, _) = SELLIX_FIXTURES[2];
    let body = fixture(&format!("sellix/{file}"));
    let sig = sign(&body);
    let headers = [
        ("x-sellix-event", event),
        ("x-sellix-signature", sig.as_str()),
    ];
    let fresh = post(&daemon.url("/hooks/sellix"), &headers, body).await;
    assert_eq!(
        (fresh.status, &fresh.json["duplicate"]),
        (200, &false.into())
    );
    assert_eq!(lines(&cli(&config, &["events", "--json"])).len(), 2);
}

/// The database goes down under a running daemon: intake answers 503 (nothing acknowledged
/// that is not committed) and takes webhooks again once the database is back, without a
/// restart; what was acknowledged before is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_database_outage_is_a_503_and_the_daemon_recovers_by_itself() {
    let own = cluster::Cluster::private();
    own.psql("postgres", "CREATE DATABASE j").unwrap();
    let dir = dir_with_rules("r.yaml", RULES);
    let daemon = Process::start(dir.path(), &config_on_postgres(dir.path(), &own.url("j")));
    let before = post_dispute(&daemon).await;
    assert_eq!(before.status, 200);

    own.stop().unwrap();
    let (file, event, _) = SELLIX_FIXTURES[2];
    let body = fixture(&format!("sellix/{file}"));
    let sig = sign(&body);
    let headers = [
        ("x-sellix-event", event),
        ("x-sellix-signature", sig.as_str()),
    ];
    let down = post(&daemon.url("/hooks/sellix"), &headers, body.clone()).await;
    assert_eq!(down.status, 503, "{}", down.json);

    own.restart().unwrap();
    let url = daemon.url("/hooks/sellix");
    let up = wait_for_async("intake to take webhooks again", || {
        let (url, body) = (url.clone(), body.clone());
        async move {
            let a = post(&url, &headers, body).await;
            (a.status == 200).then_some(a)
        }
    })
    .await;
    assert_eq!(up.json["duplicate"], false);
    let config = dir.path().join("storeflow.yaml");
    assert_eq!(lines(&cli(&config, &["events", "--json"])).len(), 2);
}

/// The console on PostgreSQL: sign in, and the overview, the events list, the event's own page
/// (the failing rule, its flag job) and the timers page show what the database holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_reads_a_journal_in_postgres() {
    use crate::console::{client, session_cookie, TOKEN};
    let url = cluster::cluster().database();
    let dir = dir_with_rules("r.yaml", RULES);
    let yaml = format!(
        "{}admin:\n  token: {TOKEN}\n",
        config_on_postgres(dir.path(), &url)
    );
    let daemon = Process::start(dir.path(), &yaml);
    let config = dir.path().join("storeflow.yaml");
    let id = post_dispute(&daemon).await.json["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for("the dispute flag", || {
        (!lines(&cli(&config, &["flags", "--json"])).is_empty()).then_some(())
    })
    .await;

    let signed = client()
        .post(daemon.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    let (cookie, _) = session_cookie(&signed).expect("signing in sets the session cookie");
    let page = |path: &str| {
        let req = client().get(daemon.url(path)).header("cookie", &cookie);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let (status, overview) = page("/ui/").await;
    assert_eq!(status, 200, "{overview}");
    assert!(
        overview.contains("sellix"),
        "webhooks per source: {overview}"
    );
    let (_, events) = page("/ui/events?order=").await;
    assert!(events.contains(&format!("/ui/events/{id}")), "{events}");
    let (status, event) = page(&format!("/ui/events/{id}")).await;
    assert_eq!(status, 200);
    assert!(
        event.contains("flag-disputes") && event.contains("done"),
        "{event}"
    );
    let (_, timers) = page("/ui/timers").await;
    assert!(timers.contains("nudge"), "the pending wait: {timers}");
    drop(daemon);
}
