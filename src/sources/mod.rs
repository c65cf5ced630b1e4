//! Webhook sources: one adapter per shop platform. A source checks that a request is authentic
//! (on the raw bytes, before any parsing) and turns the verified body into an [`Event`].
//!
//! Adding a platform is one file here and one line in [`registry`].

pub mod client;
pub mod json;
pub mod selldone;
pub mod sellix;
pub mod shops;
pub(crate) mod sparse;
pub mod verify;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;

use crate::config::Config;
use crate::model::event::{Event, Incoming, OrderView, Payload, Timestamp};
pub use shops::{SecretUsed, Shops, DEFAULT_SHOP};
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

    /// The client's address as the shop owner means it: the TCP peer, or with `trust_proxy` the
    /// last `X-Forwarded-For` entry (the one our own proxy appended).
    pub fn client_ip(&self, trust_proxy: bool) -> Option<std::net::IpAddr> {
        client::client_ip(self, trust_proxy)
    }

    /// True only when the real client is this machine (see [`client::is_local`]).
    pub fn client_is_local(&self, trust_proxy: bool) -> bool {
        client::is_local(self, trust_proxy)
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
    /// 404: the route names a shop that is not configured.
    #[error("{0}")]
    UnknownShop(String),
}

/// Where a request under `/hooks/{source}/…` goes: a shop, and a token from the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub shop: String,
    pub token: Option<String>,
}

/// A shop platform's webhook adapter.
pub trait Source: Send + Sync {
    /// The path segment after `/hooks/`, and `event.source`.
    fn name(&self) -> &'static str;

    /// The shop (and path token) for the path segments after `/hooks/{name}`; `None` when no
    /// route of this source has that shape (the server answers 404 with [`Source::routes`]).
    fn route(&self, segments: &[&str]) -> Option<Route>;

    /// The routes this source serves, for the 404 answer and the docs.
    fn routes(&self) -> Vec<String>;

    /// Checks authenticity on the raw request with `shop`'s secrets; nothing is parsed before
    /// this passes.
    fn verify_shop(&self, shop: &str, req: IntakeRequest<'_>) -> Result<Verified, IntakeError>;

    /// [`Source::verify_shop`] for the shop `default` (the single-shop routes).
    fn verify(&self, req: IntakeRequest<'_>) -> Result<Verified, IntakeError> {
        self.verify_shop(DEFAULT_SHOP, req)
    }

    /// Parses a verified body into an event (lenient: unknown fields and events are kept).
    fn normalize(&self, body: &Verified, received_at: Timestamp) -> Result<Incoming, IntakeError>;

    /// The configured shops and their secrets.
    fn shops(&self) -> &Shops;

    /// The config key of a shop's secret: `secret` or `token`.
    fn secret_key(&self) -> &'static str;

    /// `allow_unsigned: true`: serve shops without a secret on a non-loopback listener.
    fn allow_unsigned(&self) -> bool;

    /// One start-up warning per shop that runs without a secret.
    fn insecure_warnings(&self) -> Vec<String> {
        let (source, key) = (self.name(), self.secret_key());
        self.shops()
            .unsigned()
            .into_iter()
            .map(|shop| {
                format!(
                    "sources.{source} shop `{shop}` has no {key}: it accepts unsigned requests \
                     from clients on this machine only"
                )
            })
            .collect()
    }
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

    /// Every webhook route served, for the 404 answer.
    pub fn routes(&self) -> Vec<String> {
        self.0.iter().flat_map(|s| s.routes()).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Source>> {
        self.0.iter()
    }
}

/// Validates a body as a JSON object and keeps `keep`'s paths of it ([`sparse`]; `WHOLE` keeps
/// it all), with a message that says where it broke.
pub(crate) fn parse_object(
    body: &[u8],
    keep: sparse::Keep,
) -> Result<serde_json::Value, IntakeError> {
    let v = sparse::parse(body, keep)
        .map_err(|e| IntakeError::Malformed(format!("body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(IntakeError::Malformed("body must be a JSON object".into()));
    }
    Ok(v)
}

/// The refusal for a shop with no secret configured and a client that is not on this machine.
pub(crate) fn loopback_only(source: &str, key: &str, client: &str) -> IntakeError {
    IntakeError::Unauthorized(format!(
        "source `{source}` has no {key} configured, so only clients on this machine are accepted \
         (client {client}); set sources.{source}.{key} in storeflow.yaml"
    ))
}

/// The shop's secrets, or a 404-worthy refusal naming the shop.
pub(crate) fn shop<'a>(
    source: &str,
    shops: &'a Shops,
    name: &str,
) -> Result<&'a shops::ShopSecrets, IntakeError> {
    shops
        .get(name)
        .ok_or_else(|| IntakeError::UnknownShop(format!("source `{source}` has no shop `{name}`")))
}

/// A dedupe key that keeps two shops' identical deliveries apart. The shop `default` keeps the
/// key it always had, so journals from before shops existed still dedupe.
pub(crate) fn shop_scoped(shop: &str, key: String) -> String {
    if shop == DEFAULT_SHOP {
        key
    } else {
        verify::digest_hex(&[shop.as_bytes(), key.as_bytes()])
    }
}

/// The verification every source shares: the IP allowlist, the shop lookup, then `check` (the
/// platform's signature or token) on a shop with a secret, or loopback-only on one without.
pub(crate) fn verify_with(
    source: &dyn Source,
    allow_ips: &[std::net::IpAddr],
    trust_proxy: bool,
    shop: &str,
    req: IntakeRequest<'_>,
    kind_hint: Option<String>,
    check: impl FnOnce(&shops::ShopSecrets, &IntakeRequest<'_>) -> Result<SecretUsed, IntakeError>,
) -> Result<Verified, IntakeError> {
    let name = source.name();
    client::check_allowlist(name, allow_ips, trust_proxy, &req)?;
    let shop = self::shop(name, source.shops(), shop)?;
    let used = if shop.is_signed() {
        check(shop, &req)?
    } else if req.client_is_local(trust_proxy) {
        SecretUsed::None
    } else {
        let client = client::describe(&req, trust_proxy);
        return Err(loopback_only(name, source.secret_key(), &client));
    };
    Ok(verify::verified(req.body, kind_hint, &shop.name, used))
}

/// What a platform reads from a verified body; [`incoming`] builds the rest of the event.
pub(crate) struct Parsed {
    pub kind: String,
    pub canonical: Option<String>,
    pub order: Option<OrderView>,
    /// The platform's delivery identity; [`incoming`] scopes it to the shop.
    pub dedupe_key: String,
}

/// The journaled form of a verified delivery: the event (topic `{source}/{kind}`, the shop and
/// secret the verifier recorded, the body as its payload, parsed in full when first read) and
/// its shop-scoped dedupe key.
pub(crate) fn incoming(
    source: &'static str,
    body: &Verified,
    parsed: Parsed,
    received_at: Timestamp,
) -> Incoming {
    let event = Event {
        id: Event::new_id(),
        source: source.into(),
        shop: body.shop().to_string(),
        secret: Some(body.secret().as_str().to_string()),
        topic: format!("{source}/{}", parsed.kind),
        canonical: parsed.canonical,
        kind: parsed.kind,
        received_at,
        payload: Payload::from_body(body.body().clone()),
        order: parsed.order,
    };
    Incoming {
        dedupe_key: shop_scoped(&event.shop, parsed.dedupe_key),
        event,
        body: body.body().clone(),
    }
}

#[cfg(test)]
mod sparse_props;
