//! Sellix: HMAC-SHA512 of the raw body in `X-Sellix-Signature` (or `X-Sellix-Unescaped-Signature`),
//! an optional source-IP allowlist, and the order view of `order:*` events.

use std::net::IpAddr;

use serde_json::Value;

use super::json::{number, text};
use super::verify::{digest_hex, hmac_sha512_matches, verified};
use super::{loopback_only, parse_object, IntakeError, IntakeRequest, Source, Verified};
use crate::config::SellixConfig;
use crate::event::{sellix_canonical, Customer, Event, Incoming, Item, OrderView, Shop, Timestamp};

pub const SIGNATURE_HEADERS: [&str; 2] = ["x-sellix-signature", "x-sellix-unescaped-signature"];

pub struct Sellix {
    config: SellixConfig,
}

impl Sellix {
    pub fn new(config: SellixConfig) -> Self {
        Sellix { config }
    }

    /// The client address the allowlist applies to: the TCP peer, or with `trust_proxy` the
    /// last `X-Forwarded-For` entry (the one our own proxy appended; earlier ones are the
    /// client's word and can be forged).
    fn client_ip(&self, req: &IntakeRequest<'_>) -> Option<IpAddr> {
        if self.config.trust_proxy {
            if let Some(xff) = req.header("x-forwarded-for") {
                return xff.rsplit(',').next().and_then(|ip| ip.trim().parse().ok());
            }
        }
        req.peer.map(|p| p.ip())
    }
}

impl Source for Sellix {
    fn name(&self) -> &'static str {
        "sellix"
    }

    fn verify(&self, req: IntakeRequest<'_>) -> Result<Verified, IntakeError> {
        if !self.config.allow_ips.is_empty() {
            let ip = self.client_ip(&req);
            if !ip.is_some_and(|ip| self.config.allow_ips.contains(&ip)) {
                let shown = ip
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "unknown".into());
                return Err(IntakeError::Forbidden(format!(
                    "client address {shown} is not in sources.sellix.allow_ips"
                )));
            }
        }
        let secret = &self.config.secret;
        if secret.is_set() {
            let given: Vec<&str> = SIGNATURE_HEADERS
                .iter()
                .filter_map(|h| req.header(h))
                .collect();
            if given.is_empty() {
                return Err(IntakeError::Unauthorized(
                    "missing X-Sellix-Signature header".into(),
                ));
            }
            if !hmac_sha512_matches(secret.expose().as_bytes(), &req.body, &given) {
                return Err(IntakeError::Unauthorized(
                    "X-Sellix-Signature does not match the body (HMAC-SHA512 of the raw body \
                     with the webhook secret)"
                        .into(),
                ));
            }
        } else if !req.peer_is_loopback() {
            return Err(loopback_only("sellix", "secret", req.peer.map(|p| p.ip())));
        }
        let kind_hint = req.header("x-sellix-event").map(str::to_string);
        Ok(verified(req.body, kind_hint))
    }

    fn normalize(&self, body: &Verified, received_at: Timestamp) -> Result<Incoming, IntakeError> {
        let payload = parse_object(body.body())?;
        let kind = body
            .kind_hint()
            .map(str::to_string)
            .filter(|k| !k.is_empty())
            .or_else(|| {
                payload
                    .get("event")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                IntakeError::Malformed(
                    "no event name: send the X-Sellix-Event header or a body `event` field".into(),
                )
            })?;
        let order = kind.starts_with("order:").then(|| order_view(&payload));
        let event = Event {
            id: Event::new_id(),
            source: "sellix".into(),
            topic: format!("sellix/{kind}"),
            canonical: sellix_canonical(&kind),
            kind,
            received_at,
            payload,
            order,
        };
        // Sellix sends each delivery's exact bytes again on retry, so the body identifies it.
        let dedupe_key = digest_hex(&[body.body()]);
        Ok(Incoming {
            event,
            dedupe_key,
            body: body.body().clone(),
        })
    }

    fn insecure_warning(&self) -> Option<String> {
        (!self.config.secret.is_set()).then(|| {
            "sources.sellix.secret is not set: /hooks/sellix accepts unsigned requests from \
             loopback clients only"
                .to_string()
        })
    }
}

/// The order view of a Sellix order object (`data`). Amounts are in the order's currency
/// (`total_display`), falling back to `total` (USD).
fn order_view(payload: &Value) -> OrderView {
    let d = payload.get("data").unwrap_or(&Value::Null);
    let title = text(d, "product_title");
    let title = if title.is_empty() {
        text(d, "product.title")
    } else {
        title
    };
    let items = if title.is_empty() {
        Vec::new()
    } else {
        vec![Item {
            title,
            quantity: number(d, "quantity").unwrap_or(1.0),
            price: number(d, "product.price_display").or_else(|| number(d, "product.price")),
        }]
    };
    OrderView {
        id: text(d, "uniqid"),
        status: text(d, "status"),
        total: number(d, "total_display").or_else(|| number(d, "total")),
        currency: text(d, "currency"),
        customer: Customer {
            email: text(d, "customer_email"),
            name: String::new(),
            phone: String::new(),
        },
        items,
        shop: Shop {
            id: text(d, "shop_id"),
            name: text(d, "name"),
        },
    }
}
