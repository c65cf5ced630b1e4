//! The `slack` action against a local receiver standing in for an incoming webhook and for the
//! Web API, and the `slack.jsonl` drop used when neither is configured.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use storeflow::actions::{ActionError, Actions, JobContext};
use storeflow::config::Config;
use tempfile::TempDir;

use crate::receivers::{job, Receiver};

fn build(yaml: &str) -> (Actions, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::parse(yaml, Path::new("test.yaml"), |_| None).unwrap();
    config.data_dir = dir.path().join("data");
    (Actions::from_config(&config).unwrap(), dir)
}

async fn post(actions: &Actions, params: Value, job: &JobContext) -> Result<(), ActionError> {
    actions.get("slack").unwrap().execute(&params, job).await
}

#[tokio::test]
async fn webhook_gets_text_channel_and_blocks() {
    let mut receiver = Receiver::answering(200, "ok").await;
    let yaml = format!(
        "slack:\n  webhook_url: {}\n",
        receiver.url("/services/T/B/X")
    );
    let (actions, _dir) = build(&yaml);
    let params = json!({
        "text": ":truck: order 42 shipped",
        "channel": "#orders",
        "blocks": "[{\"type\": \"section\", \"text\": {\"type\": \"mrkdwn\", \"text\": \"*42*\"}}]",
    });
    post(&actions, params, &job("evt_1", "r", 0)).await.unwrap();
    let got = receiver.next().await;
    assert_eq!(
        (got.method.as_str(), got.path.as_str()),
        ("POST", "/services/T/B/X")
    );
    assert_eq!(
        got.json(),
        json!({"text": ":truck: order 42 shipped", "channel": "#orders",
               "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*42*"}}]})
    );
}

#[tokio::test]
async fn webhook_url_param_overrides_the_config() {
    let mut configured = Receiver::answering(200, "ok").await;
    let mut chosen = Receiver::answering(200, "ok").await;
    let (actions, _dir) = build(&format!(
        "slack:\n  webhook_url: {}\n",
        configured.url("/a")
    ));
    let params = json!({"text": "hi", "webhook_url": chosen.url("/b")});
    post(&actions, params, &job("evt_2", "r", 0)).await.unwrap();
    assert_eq!(chosen.next().await.json(), json!({"text": "hi"}));
    assert!(configured.try_next().is_none());
}

#[tokio::test]
async fn webhook_answers_are_classified() {
    let receiver = Receiver::start(|req| match req.path.as_str() {
        "/gone" => (404, vec![], "no_service".into()),
        "/busy" => (
            429,
            vec![("Retry-After", "3".into())],
            "rate limited".into(),
        ),
        _ => (503, vec![], "".into()),
    })
    .await;
    let (actions, _dir) = build("");
    let j = job("evt_3", "r", 0);
    let to = |path: &str| json!({"text": "hi", "webhook_url": receiver.url(path)});

    let err = post(&actions, to("/gone"), &j).await.unwrap_err();
    assert!(matches!(err, ActionError::Permanent { .. }), "{err:?}");
    assert!(err.to_string().contains("no_service"), "{err}");
    let err = post(&actions, to("/busy"), &j).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)), "{err:?}");
    let err = post(&actions, to("/down"), &j).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn bot_token_posts_to_chat_post_message_and_surfaces_slack_errors() {
    let mut api = Receiver::start(|req| {
        let answer = match req.json()["channel"].as_str() {
            Some("#missing") => json!({"ok": false, "error": "channel_not_found"}),
            Some("#busy") => json!({"ok": false, "error": "ratelimited"}),
            _ => json!({"ok": true, "ts": "1.2"}),
        };
        (
            200,
            vec![("Content-Type", "application/json".into())],
            answer.to_string(),
        )
    })
    .await;
    let yaml = format!(
        "slack:\n  bot_token: xoxb-test\n  api_base: {}/api\n",
        api.base
    );
    let (actions, _dir) = build(&yaml);
    let j = job("evt_4", "r", 0);

    post(&actions, json!({"text": "hi", "channel": "#orders"}), &j)
        .await
        .unwrap();
    let got = api.next().await;
    assert_eq!(got.path, "/api/chat.postMessage");
    assert_eq!(got.header("authorization"), Some("Bearer xoxb-test"));
    assert_eq!(got.json(), json!({"text": "hi", "channel": "#orders"}));

    let err = post(&actions, json!({"text": "hi", "channel": "#missing"}), &j)
        .await
        .unwrap_err();
    assert!(matches!(err, ActionError::Permanent { .. }), "{err:?}");
    assert!(err.to_string().contains("channel_not_found"), "{err}");
    let err = post(&actions, json!({"text": "hi", "channel": "#busy"}), &j)
        .await
        .unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("ratelimited"),
        "{err:?}"
    );

    let err = post(&actions, json!({"text": "no channel"}), &j)
        .await
        .unwrap_err();
    assert!(matches!(err, ActionError::Permanent { .. }), "{err:?}");
    assert!(err.to_string().contains("`channel`"), "{err}");
}

#[tokio::test]
async fn without_slack_config_messages_are_appended_to_slack_jsonl() {
    let (actions, dir) = build("");
    post(
        &actions,
        json!({"text": "first", "channel": "#a"}),
        &job("evt_5", "r", 0),
    )
    .await
    .unwrap();
    post(
        &actions,
        json!({"text": "second", "blocks": [{"type": "divider"}]}),
        &job("evt_5", "r", 1),
    )
    .await
    .unwrap();
    let text = std::fs::read_to_string(dir.path().join("data/slack.jsonl")).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            json!({"key": "evt_5/r/0", "text": "first", "channel": "#a", "blocks": null}),
            json!({"key": "evt_5/r/1", "text": "second", "channel": null,
                   "blocks": [{"type": "divider"}]}),
        ]
    );
}
