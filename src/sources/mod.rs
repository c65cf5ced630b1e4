//! Webhook sources: one adapter per shop platform. A source checks that a request is authentic
//! (on the raw bytes, before any parsing) and turns the verified body into an [`Event`].
//!
//! Adding a platform is one file here and one line in [`registry`].

pub mod json;
pub mod selldone;
pub mod sellix;
pub mod verify;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;

use crate::config::Config;
use crate::event::{Incoming, Timestamp};
pub use verify::Verified;

/// What a source sees of an HTTP request.
#[derive(Debug)]
pub struct IntakeRequest<'a> {
    pub headers: &'a HeaderMap,
    pub body: Bytes,
    /// The TCP peer; `None` only in tests that do not set one.
    pub peer: Option<SocketAddr>,
    /// A secret token from the URL path or `?token=`.
    pub token: Option<String>,
}

impl IntakeRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn peer_is_loopback(&self) -> bool {
        self.peer.is_some_and(|p| p.ip().is_loopback())
    }
}

/// Why a source refused a request. The server maps each kind to one status code.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// 401: a signature or token is missing or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the client address is not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 400: the body cannot be read as this platform's webhook.
    #[error("{0}")]
    Malformed(String),
}

/// A shop platform's webhook adapter.
pub trait Source: Send + Sync {
    /// The path segment after `/hooks/`, and `event.source`.
    fn name(&self) -> &'static str;

    /// Checks authenticity on the raw request; nothing is parsed before this passes.
    fn verify(&self, req: IntakeRequest<'_>) -> Result<Verified, IntakeError>;

    /// Parses a verified body into an event (lenient: unknown fields and events are kept).
    fn normalize(&self, body: &Verified, received_at: Timestamp) -> Result<Incoming, IntakeError>;

    /// A one-line warning for start-up when the source runs without a secret.
    fn insecure_warning(&self) -> Option<String>;
}

/// The sources a daemon serves, by name.
#[derive(Clone)]
pub struct Sources(Vec<Arc<dyn Source>>);

/// All sources, configured from `config` (the one place that lists them).
pub fn registry(config: &Config) -> Sources {
    Sources(vec![
        Arc::new(sellix::Sellix::new(config.sources.sellix.clone())),
        Arc::new(selldone::Selldone::new(config.sources.selldone.clone())),
    ])
}

impl Sources {
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Source>> {
        self.0.iter().find(|s| s.name() == name)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|s| s.name()).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Source>> {
        self.0.iter()
    }
}

/// Parses a body as a JSON object, with a message that says where it broke.
pub(crate) fn parse_object(body: &[u8]) -> Result<serde_json::Value, IntakeError> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| IntakeError::Malformed(format!("body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(IntakeError::Malformed("body must be a JSON object".into()));
    }
    Ok(v)
}

/// The refusal for a source with no secret configured and a client that is not on this machine.
pub(crate) fn loopback_only(source: &str, key: &str, peer: Option<IpAddr>) -> IntakeError {
    let who = peer
        .map(|p| p.to_string())
        .unwrap_or_else(|| "unknown".into());
    IntakeError::Unauthorized(format!(
        "source `{source}` has no {key} configured, so only loopback clients are accepted \
         (client {who}); set sources.{source}.{key} in storeflow.yaml"
    ))
}
