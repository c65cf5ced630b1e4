//! Where a job's message goes, in words for people: the recipients of an email and the
//! `.eml` file or SMTP server it is handed to, the Slack destination. `storeflow events show`
//! and the console's event page both say it this way. Secrets (webhook URLs, tokens) are never
//! part of the answer.

use std::path::PathBuf;

use serde_json::Value;

use super::JobContext;
use crate::config::Config;

/// `to`, `cc` and `bcc` as written in the job's parameters (a string or a list each).
pub fn recipients(params: &Value) -> String {
    let mut all = Vec::new();
    for key in ["to", "cc", "bcc"] {
        let list = match &params[key] {
            Value::String(s) if !s.is_empty() => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => continue,
        };
        let prefix = if key == "to" { "" } else { key };
        all.push(format!(
            "{prefix}{}{}",
            if prefix.is_empty() { "" } else { " " },
            list.join(", ")
        ));
    }
    if all.is_empty() {
        "(nobody)".into()
    } else {
        all.join("; ")
    }
}

/// Where the email action drops a job's message when SMTP is not configured.
pub fn eml_path(config: &Config, job_id: i64, event_id: &str, rule: &str, index: usize) -> PathBuf {
    let ctx = JobContext {
        job_id,
        event_id: event_id.to_string(),
        rule: rule.to_string(),
        action_index: index,
        attempt: 1,
    };
    config
        .data_dir
        .join("mail")
        .join(format!("{}.eml", ctx.file_stem()))
}

/// Where the Slack action sends (the order of `actions::slack`).
pub fn slack_destination(config: &Config, params: &Value) -> String {
    let channel = params["channel"].as_str().unwrap_or("");
    if params["webhook_url"]
        .as_str()
        .is_some_and(|u| !u.is_empty())
    {
        "to the rule's own incoming webhook".into()
    } else if config.slack.webhook_url.is_set() {
        "to the incoming webhook of slack.webhook_url".into()
    } else if config.slack.bot_token.is_set() {
        format!("chat.postMessage to {channel}")
    } else {
        format!(
            "a line in {} (no Slack configured)",
            config.data_dir.join("slack.jsonl").display()
        )
    }
}
