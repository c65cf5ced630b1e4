//! Selldone: no signature exists for shop webhooks, so the URL registered with Selldone carries a
//! secret token (`/hooks/selldone/{token}` or `?token=`), compared in constant time.

use serde_json::Value;

use super::json::{first_text, number, text};
use super::verify::{digest_hex, token_matches, verified};
use super::{loopback_only, parse_object, IntakeError, IntakeRequest, Source, Verified};
use crate::config::SelldoneConfig;
use crate::event::{
    selldone_canonical, Customer, Event, Incoming, Item, OrderView, Shop, Timestamp,
};

pub struct Selldone {
    config: SelldoneConfig,
}

impl Selldone {
    pub fn new(config: SelldoneConfig) -> Self {
        Selldone { config }
    }
}

impl Source for Selldone {
    fn name(&self) -> &'static str {
        "selldone"
    }

    fn verify(&self, req: IntakeRequest<'_>) -> Result<Verified, IntakeError> {
        let expected = &self.config.token;
        if expected.is_set() {
            let Some(given) = req.token.as_deref().filter(|t| !t.is_empty()) else {
                return Err(IntakeError::Unauthorized(
                    "missing token: post to /hooks/selldone/<token> or /hooks/selldone?token=<token>"
                        .into(),
                ));
            };
            if !token_matches(expected.expose(), given) {
                return Err(IntakeError::Unauthorized(
                    "wrong token in the webhook URL".into(),
                ));
            }
        } else if !req.peer_is_loopback() {
            return Err(loopback_only("selldone", "token", req.peer.map(|p| p.ip())));
        }
        Ok(verified(req.body, None))
    }

    fn normalize(&self, body: &Verified, received_at: Timestamp) -> Result<Incoming, IntakeError> {
        let payload = parse_object(body.body())?;
        let action = text(&payload, "action");
        if action.is_empty() {
            return Err(IntakeError::Malformed(
                "missing `action`: a Selldone webhook names its trigger in the body's `action` field"
                    .into(),
            ));
        }
        let webhook = text(&payload, "event");
        let online_order = webhook.is_empty() || webhook == "OnlineOrder";
        let (kind, canonical) = if online_order {
            (
                action.clone(),
                selldone_canonical(&action).map(str::to_string),
            )
        } else {
            (format!("{webhook}/{action}"), None)
        };
        let order = payload
            .get("basket")
            .filter(|b| b.is_object())
            .map(|_| order_view(&payload));
        // Selldone retries a delivery until it gets a 200, with a freshly built body each time;
        // the basket, the trigger and the basket's update time identify one delivery.
        let basket_id = text(&payload, "basket.id");
        let dedupe_key = if basket_id.is_empty() {
            digest_hex(&[body.body()])
        } else {
            let updated = text(&payload, "basket.updated_at");
            digest_hex(&[basket_id.as_bytes(), kind.as_bytes(), updated.as_bytes()])
        };
        let event = Event {
            id: Event::new_id(),
            source: "selldone".into(),
            topic: format!("selldone/{kind}"),
            canonical,
            kind,
            received_at,
            payload,
            order,
        };
        Ok(Incoming {
            event,
            dedupe_key,
            body: body.body().clone(),
        })
    }

    fn insecure_warning(&self) -> Option<String> {
        (!self.config.token.is_set()).then(|| {
            "sources.selldone.token is not set: /hooks/selldone accepts requests from loopback \
             clients only"
                .to_string()
        })
    }
}

/// The order view of a Selldone basket. The buyer comes from `customer`, then `user`, then the
/// guest fields of the basket.
fn order_view(p: &Value) -> OrderView {
    let items = match p.pointer("/basket/items") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| Item {
                title: first_text(i, &["product.title", "title"]),
                quantity: number(i, "count").unwrap_or(1.0),
                price: number(i, "price"),
            })
            .collect(),
        _ => Vec::new(),
    };
    OrderView {
        id: text(p, "basket.id"),
        status: text(p, "basket.status"),
        total: number(p, "basket.price"),
        currency: text(p, "basket.currency"),
        customer: Customer {
            email: first_text(p, &["customer.email", "user.email", "basket.guest_email"]),
            name: first_text(
                p,
                &["customer.name", "user.name", "basket.receiver_info.name"],
            ),
            phone: first_text(
                p,
                &["customer.phone", "user.phone", "basket.receiver_info.phone"],
            ),
        },
        items,
        shop: Shop {
            id: text(p, "shop.id"),
            name: first_text(p, &["shop.title", "shop.name"]),
        },
    }
}
