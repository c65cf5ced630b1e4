//! `GET /healthz`: liveness, rules status and deliveries per shop secret, answered from memory
//! (no journal round trip), so it stays cheap enough to poll often.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::json;
use warp::{Filter, Rejection, Reply};

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
            let shop = map.entry(format!("{source}/{shop}")).or_default();
            *shop.entry(secret.to_string()).or_default() += n;
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
            let body = json!({
                "status": "ok",
                "version": health.version,
                "insecure_sources": health.insecure_sources,
                "rules": health.rules.status(),
                "secrets": health.counts.snapshot(),
            });
            warp::reply::json(&body).into_response()
        })
}
