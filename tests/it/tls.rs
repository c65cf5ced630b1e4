//! HTTPS on the listener (`tls: {cert, key}`): intake over TLS, plain HTTP refused, the
//! certificate reloaded on SIGHUP, unreadable files refused at start-up.

use std::path::Path;
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use crate::helpers::{fixture, wait_for_async, Process, SECURED, SELLIX_FIXTURES};

/// A throwaway CA (PEM) and a certificate for 127.0.0.1 it signed (chain PEM, key PEM).
struct TestCert {
    ca: String,
    chain: String,
    key: String,
}

fn test_cert() -> TestCert {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    TestCert {
        ca: ca.pem(),
        chain: leaf.pem(),
        key: leaf_key.serialize_pem(),
    }
}

fn install(dir: &Path, cert: &TestCert) {
    std::fs::write(dir.join("cert.pem"), &cert.chain).unwrap();
    std::fs::write(dir.join("key.pem"), &cert.key).unwrap();
}

fn tls_yaml(dir: &Path) -> String {
    format!(
        "{SECURED}tls:\n  cert: {}\n  key: {}\n",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    )
}

/// A client that trusts only `ca` (no system roots), with no pooled connections.
fn client_trusting(ca: &str) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca.as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn post_signed_sellix(
    client: &reqwest::Client,
    url: &str,
) -> reqwest::Result<reqwest::Response> {
    let (file, event, sig) = SELLIX_FIXTURES[0];
    client
        .post(url)
        .header("x-sellix-event", event)
        .header("x-sellix-signature", sig)
        .body(fixture(&format!("sellix/{file}")))
        .send()
        .await
}

#[tokio::test]
async fn https_intake_of_a_signed_sellix_webhook_works() {
    let dir = tempfile::tempdir().unwrap();
    let cert = test_cert();
    install(dir.path(), &cert);
    let daemon = Process::start(dir.path(), &tls_yaml(dir.path()));
    assert!(daemon.base.starts_with("https://"), "{}", daemon.base);
    let client = client_trusting(&cert.ca);
    let resp = post_signed_sellix(&client, &daemon.url("/hooks/sellix"))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let json: serde_json::Value = resp.json().await.unwrap();
    assert!(json["event_id"].is_string(), "{json}");

    let plain = daemon.url("/healthz").replace("https://", "http://");
    let answer = reqwest::get(&plain).await;
    assert!(
        answer.is_err(),
        "plain HTTP to the TLS port must fail, got {answer:?}"
    );
    // The TLS port still serves HTTPS after the plain attempt.
    let health = client.get(daemon.url("/healthz")).send().await.unwrap();
    assert!(health.status().is_success());
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_the_certificate_for_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (test_cert(), test_cert());
    install(dir.path(), &first);
    let daemon = Process::start(dir.path(), &tls_yaml(dir.path()));
    let url = daemon.url("/healthz");
    let trusts_second = client_trusting(&second.ca);
    assert!(
        trusts_second.get(&url).send().await.is_err(),
        "before the reload the daemon shows the first certificate"
    );

    install(dir.path(), &second);
    let pid = daemon.child.id().to_string();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    wait_for_async("a new connection to see the second certificate", || async {
        trusts_second.get(&url).send().await.ok()
    })
    .await;
    assert!(client_trusting(&first.ca).get(&url).send().await.is_err());

    // A broken certificate on reload keeps the one in use.
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    for _ in 0..5 {
        let resp = trusts_second.get(&url).send().await.unwrap();
        assert!(resp.status().is_success());
    }
}

#[test]
fn regression_unreadable_tls_cert_fails_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cert = test_cert();
    install(dir.path(), &cert);
    std::fs::remove_file(dir.path().join("cert.pem")).unwrap();
    let config = dir.path().join("storeflow.yaml");
    let yaml = format!(
        "listen: 127.0.0.1:0\ndata_dir: {}\n{}",
        dir.path().join("data").display(),
        tls_yaml(dir.path())
    );
    std::fs::write(&config, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_storeflow"))
        .args(["serve", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let named = dir.path().join("cert.pem").display().to_string();
    assert!(
        stderr.contains("tls.cert") && stderr.contains(&named),
        "{stderr}"
    );
}
