//! The `http` action against a local receiver: what is sent (headers, body, signature), how
//! answers are classified, and which redirects are followed.

use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use storeflow::actions::{ActionError, Actions, JobContext};
use storeflow::config::Config;

use crate::receivers::{job, Receiver};

fn actions(yaml: &str) -> Actions {
    let mut config = Config::parse(yaml, Path::new("test.yaml"), |_| None).unwrap();
    config.data_dir = std::env::temp_dir().join("storeflow-unused-data-dir");
    Actions::from_config(&config).unwrap()
}

async fn call(params: Value, job: &JobContext) -> Result<(), ActionError> {
    let actions = actions("delivery:\n  timeout: 10s\n");
    actions.get("http").unwrap().execute(&params, job).await
}

/// What a receiver does to check `X-Storeflow-Signature` (docs/actions.md has the same recipe).
fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[tokio::test]
async fn signed_json_post_arrives_and_its_signature_verifies() {
    let mut receiver = Receiver::answering(200, "thanks").await;
    let params = json!({
        "url": receiver.url("/hooks/orders"),
        "headers": {"X-Shop": "demo"},
        "json": {"order": "42", "note": "a/b ü", "total": 9.5},
        "sign_secret": "s3cret",
    });
    let j = job("evt_1", "notify-erp", 2);
    call(params, &j).await.unwrap();

    let got = receiver.next().await;
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/hooks/orders");
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("x-shop"), Some("demo"));
    assert_eq!(
        got.header("x-storeflow-idempotency-key"),
        Some("evt_1/notify-erp/2")
    );
    assert_eq!(
        got.json(),
        json!({"order": "42", "note": "a/b ü", "total": 9.5})
    );
    let sig = got.header("x-storeflow-signature").unwrap();
    assert!(sig.starts_with("sha256=") && sig[7..].len() == 64, "{sig}");
    assert!(verify(b"s3cret", &got.body, sig));
    assert!(!verify(b"wrong", &got.body, sig));
}

#[tokio::test]
async fn method_and_text_body_are_sent_as_given_and_unsigned_without_a_secret() {
    let mut receiver = Receiver::answering(204, "").await;
    let params = json!({"method": "put", "url": receiver.url("/x"), "body": "plain text",
                        "headers": {"Content-Type": "text/plain"}});
    call(params, &job("evt_2", "r", 0)).await.unwrap();
    let got = receiver.next().await;
    assert_eq!(got.method, "PUT");
    assert_eq!(got.body, b"plain text");
    assert_eq!(got.header("content-type"), Some("text/plain"));
    assert_eq!(got.header("x-storeflow-signature"), None);
}

#[tokio::test]
async fn server_errors_retry_client_errors_do_not() {
    let receiver = Receiver::start(|req| match req.path.as_str() {
        "/500" => (500, vec![], "database down".into()),
        "/400" => (400, vec![], "field `sku` is required".into()),
        _ => (429, vec![("Retry-After", "7".into())], "slow down".into()),
    })
    .await;
    let j = job("evt_3", "r", 0);
    let err = call(json!({"url": receiver.url("/500")}), &j)
        .await
        .unwrap_err();
    assert!(err.is_retryable() && err.retry_after().is_none(), "{err:?}");

    let err = call(json!({"url": receiver.url("/400")}), &j)
        .await
        .unwrap_err();
    assert!(matches!(err, ActionError::Permanent { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("400") && text.contains("field `sku` is required"),
        "{text}"
    );

    let err = call(json!({"url": receiver.url("/429")}), &j)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn redirects_are_followed_only_to_the_same_host() {
    let mut elsewhere = Receiver::answering(200, "stolen").await;
    let other_host = elsewhere.url("/collect").replace("127.0.0.1", "localhost");
    let mut receiver = Receiver::start(move |req| match req.path.as_str() {
        "/old" => (307, vec![("Location", "/new".into())], String::new()),
        "/away" => (302, vec![("Location", other_host.clone())], String::new()),
        _ => (200, vec![], "ok".into()),
    })
    .await;
    let j = job("evt_4", "r", 0);
    let params = json!({"url": receiver.url("/old"), "json": {"a": 1}, "sign_secret": "k"});
    call(params, &j).await.unwrap();
    assert_eq!(receiver.next().await.path, "/old");
    let followed = receiver.next().await;
    assert_eq!(followed.path, "/new");
    assert_eq!(followed.json(), json!({"a": 1}));

    let params = json!({"url": receiver.url("/away"), "json": {"a": 1}, "sign_secret": "k"});
    let err = call(params, &j).await.unwrap_err();
    assert!(matches!(err, ActionError::Permanent { .. }), "{err:?}");
    assert!(err.to_string().contains("redirect"), "{err}");
    assert_eq!(receiver.next().await.path, "/away");
    assert!(elsewhere.try_next().is_none(), "the other host was called");
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/x");
    let err = call(json!({"url": url}), &job("evt_5", "r", 0))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}
