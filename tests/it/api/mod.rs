//! The admin API (issue 12 item 2, DESIGN.md §11, docs/api.md) through the real daemon: access,
//! lists and filters, the event page, replay, retries, flags, rules and simulate.

mod access;
mod actions;
mod lists;

use serde_json::{json, Value};

use crate::helpers::{dir_with_rules, post, sign, Daemon, SECURED, SELLDONE_TOKEN};

pub const TOKEN: &str = "api-t0ken-9f8e7d";

/// The config of a secured shop with an admin token.
pub fn config() -> String {
    format!("{SECURED}admin:\n  token: {TOKEN}\n")
}

/// A rule that fires on Sellix orders whose id starts with `vip-` (a `log` action).
pub const VIP_RULES: &str = r#"
rules:
  - name: vip-orders
    on: sellix/order:paid
    match:
      order.id: { starts_with: "vip-" }
    actions:
      - log: { message: "vip {{ order.id }}" }
"#;

/// A daemon with `rules` in `rules/api.yaml` and `yaml` as its config.
pub async fn start(rules: &str, yaml: &str) -> Daemon {
    Daemon::start_in(dir_with_rules("api.yaml", rules), yaml).await
}

/// A GET with the admin token; answers (status, JSON).
pub async fn get(d: &Daemon, path: &str) -> (u16, Value) {
    call(d, "GET", path, Some(TOKEN), None).await
}

/// A POST with the admin token.
pub async fn post_api(d: &Daemon, path: &str, body: Option<Value>) -> (u16, Value) {
    call(d, "POST", path, Some(TOKEN), body).await
}

pub async fn call(
    d: &Daemon,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = reqwest::Client::new().request(method, d.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON answer: {text}"));
    (status, json)
}

/// Posts a signed Sellix `order:paid` for order `order` bought by `email`; answers the event id.
pub async fn sellix_paid(d: &Daemon, order: &str, email: &str) -> String {
    let body = serde_json::to_vec(&json!({
        "event": "order:paid",
        "data": {"uniqid": order, "customer_email": email, "total_display": 25, "currency": "EUR"}
    }))
    .unwrap();
    let sig = sign(&body);
    let h = [
        ("x-sellix-event", "order:paid"),
        ("x-sellix-signature", &sig),
    ];
    let answer = post(&d.url("/hooks/sellix"), &h, body).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    answer.json["event_id"].as_str().unwrap().to_string()
}

/// Posts a Selldone `SentOrder` for basket `basket` with the buyer `name`; answers the event id.
pub async fn selldone_sent(d: &Daemon, basket: u64, name: &str) -> String {
    let body = serde_json::to_vec(&json!({
        "event": "OnlineOrder", "action": "SentOrder",
        "basket": {"id": basket, "updated_at": "2026-01-01 10:00:00", "status": "Sent"},
        "customer": {"name": name, "email": format!("{basket}@buyers.example")}
    }))
    .unwrap();
    let url = d.url(&format!("/hooks/selldone/{SELLDONE_TOKEN}"));
    let answer = post(&url, &[], body).await;
    assert_eq!(answer.status, 200, "{}", answer.json);
    answer.json["event_id"].as_str().unwrap().to_string()
}

/// The ids of a list answer's items.
pub fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|i| {
            i["id"]
                .as_str()
                .map_or_else(|| i["id"].to_string(), String::from)
        })
        .collect()
}
