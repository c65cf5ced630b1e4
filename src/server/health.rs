//! `GET /healthz`: liveness, journal and rules status, and deliveries per shop secret, answered
//! from memory (no journal round trip), so it stays cheap enough to poll often. It answers 503 with
//! `"status": "unhealthy"` while the journal cannot be written (commits fail, or its file was
//! removed or replaced), so a load balancer or monitor notices what intake's 503s mean, and
//! `"status": "degraded"` (still 200: intake acknowledges and loses nothing) while no valid rule
//! set is loaded, so events are held instead of planned.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::json;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use crate::journal::JournalHealth;
use crate::journal::SecretCount;
use crate::rules::live::LiveRules;
use crate::sources::SecretUsed;

/// What `/healthz` reports.
pub struct Health {
    pub version: &'static str,
    /// Sources running a shop without a secret (clients on this machine only).
    pub insecure_sources: Vec<&'static str>,
    pub rules: Arc<LiveRules>,
    pub counts: Arc<SecretCounts>,
    pub journal: Arc<JournalHealth>,
    /// Pending timers (DESIGN.md §12).
    pub timers: Arc<crate::worker::timers::TimerCounts>,
}

/// Journaled deliveries per `source/shop` and matched secret (`current`, `previous`, `none`):
/// seeded from the journal at start-up, counted up by intake. When `previous` stops growing,
/// the old secret can be removed.
#[derive(Debug, Default)]
pub struct SecretCounts(Mutex<BTreeMap<String, BTreeMap<String, u64>>>);

impl SecretCounts {
    pub fn seeded(counts: &[SecretCount]) -> SecretCounts {
        let map = SecretCounts::default();
        for c in counts {
            map.add(&c.source, &c.shop, &c.secret, c.events);
        }
        map
    }

    pub fn record(&self, source: &str, shop: &str, secret: SecretUsed) {
        self.add(source, shop, secret.as_str(), 1);
    }

    fn add(&self, source: &str, shop: &str, secret: &str, n: u64) {
        if let Ok(mut map) = self.0.lock() {
            let key = format!("{source}/{shop}");
            let shop = map.entry(key).or_default();
            // The secret's entry exists after the first delivery: no new String per webhook.
            match shop.get_mut(secret) {
                Some(count) => *count += n,
                None => {
                    shop.insert(secret.to_string(), n);
                }
            }
        }
    }

    pub fn snapshot(&self) -> serde_json::Value {
        self.0
            .lock()
            .map(|m| json!(*m))
            .unwrap_or(serde_json::Value::Null)
    }
}

pub fn route(
    health: Arc<Health>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    // The path first: a POST to another path must be a 404, not this route's 405.
    warp::path("healthz")
        .and(warp::path::end())
        .and(warp::get())
        .map(move || {
            let problem = health.journal.problem();
            let journal = match &problem {
                None => json!({ "status": "ok" }),
                Some(p) => json!({
                    "status": "failing",
                    "error": p.reason,
                    "since": p.since,
                }),
            };
            let rules_loaded = health.rules.current().is_some();
            let (status, code) = match (problem, rules_loaded) {
                (Some(_), _) => ("unhealthy", StatusCode::SERVICE_UNAVAILABLE),
                // Intake still acknowledges (nothing is lost), so a load balancer keeps routing:
                // 200, but a monitor sees that events are held.
                (None, false) => ("degraded", StatusCode::OK),
                (None, true) => ("ok", StatusCode::OK),
            };
            let mut body = json!({
                "status": status,
                "version": health.version,
                "journal": journal,
                "insecure_sources": health.insecure_sources,
                "rules": health.rules.status(),
                "secrets": health.counts.snapshot(),
                "timers": health.timers.snapshot(),
            });
            if !rules_loaded {
                body["reason"] = json!(
                    "no valid rule set is loaded: webhooks are journaled but held until the rule \
                     files load (see rules.errors; fix them and they reload)"
                );
            }
            warp::reply::with_status(warp::reply::json(&body), code).into_response()
        })
}
