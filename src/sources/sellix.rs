//! Sellix: HMAC-SHA512 of the raw body in `X-Sellix-Signature` (or `X-Sellix-Unescaped-Signature`),
//! an optional source-IP allowlist, and the order view of `order:*` events.

use serde_json::Value;

use super::json::{number, text};
use super::sparse::{Keep, WHOLE};
use super::verify::{digest_hex, hmac_sha512_matches};
use super::{
    parse_object, IntakeError, IntakeRequest, Parsed, Route, Shops, Source, Verified, DEFAULT_SHOP,
};
use crate::config::SellixConfig;
use crate::model::event::{sellix_canonical, Customer, Incoming, Item, OrderView, Shop, Timestamp};

pub const SIGNATURE_HEADERS: [&str; 2] = ["x-sellix-signature", "x-sellix-unescaped-signature"];

pub struct Sellix {
    config: SellixConfig,
    shops: Shops,
}

impl Sellix {
    pub fn new(config: SellixConfig) -> Self {
        let shops = Shops::from_config(
            (&config.secret, &config.previous_secret),
            &config.shops,
            |s| (&s.secret, &s.previous_secret),
        );
        Sellix { config, shops }
    }
}

impl Source for Sellix {
    fn name(&self) -> &'static str {
        "sellix"
    }

    /// `/hooks/sellix` is the shop `default`; `/hooks/sellix/{shop}` any configured shop.
    fn route(&self, segments: &[&str]) -> Option<Route> {
        let shop = match segments {
            [] => DEFAULT_SHOP,
            [shop] => shop,
            _ => return None,
        };
        self.shops.get(shop).map(|s| Route {
            shop: s.name.clone(),
            token: None,
        })
    }

    fn routes(&self) -> Vec<String> {
        let mut routes = Vec::new();
        if self.shops.has_default() {
            routes.push("/hooks/sellix".to_string());
        }
        routes.extend(
            self.shops
                .named()
                .iter()
                .map(|n| format!("/hooks/sellix/{n}")),
        );
        routes
    }

    fn verify_shop(&self, shop: &str, req: IntakeRequest<'_>) -> Result<Verified, IntakeError> {
        let kind_hint = req.header("x-sellix-event").map(str::to_string);
        let (allow_ips, trust) = (&self.config.allow_ips, self.config.trust_proxy);
        super::verify_with(self, allow_ips, trust, shop, req, kind_hint, |shop, req| {
            let given: Vec<&str> = SIGNATURE_HEADERS
                .iter()
                .filter_map(|h| req.header(h))
                .collect();
            if given.is_empty() {
                return Err(IntakeError::Unauthorized(
                    "missing X-Sellix-Signature header".into(),
                ));
            }
            shop.matching(|secret| hmac_sha512_matches(secret.as_bytes(), &req.body, &given))
                .ok_or_else(|| {
                    IntakeError::Unauthorized(
                        "X-Sellix-Signature does not match the body (HMAC-SHA512 of the raw \
                         body with the webhook secret)"
                            .into(),
                    )
                })
        })
    }

    fn normalize(&self, body: &Verified, received_at: Timestamp) -> Result<Incoming, IntakeError> {
        read(body, received_at, KEEP)
    }

    fn shops(&self) -> &Shops {
        &self.shops
    }

    fn secret_key(&self) -> &'static str {
        "secret"
    }

    fn allow_unsigned(&self) -> bool {
        self.config.allow_unsigned
    }
}

/// What [`read`] and [`order_view`] look at; the rest of the body is validated, not kept.
pub(super) const KEEP: Keep = Keep(&[
    ("event", WHOLE),
    (
        "data",
        Keep(&[
            ("product_title", WHOLE),
            (
                "product",
                Keep(&[("title", WHOLE), ("price_display", WHOLE), ("price", WHOLE)]),
            ),
            ("quantity", WHOLE),
            ("uniqid", WHOLE),
            ("status", WHOLE),
            ("total_display", WHOLE),
            ("total", WHOLE),
            ("currency", WHOLE),
            ("customer_email", WHOLE),
            ("shop_id", WHOLE),
            ("name", WHOLE),
        ]),
    ),
]);

/// The event of a verified body, reading `keep`'s paths of it ([`KEEP`] at intake; the tests
/// check that it reads the same as the whole body).
pub(super) fn read(
    body: &Verified,
    received_at: Timestamp,
    keep: Keep,
) -> Result<Incoming, IntakeError> {
    let payload = parse_object(body.body(), keep)?;
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
    let parsed = Parsed {
        canonical: sellix_canonical(&kind),
        kind,
        order,
        // Sellix sends each delivery's exact bytes again on retry, so the body identifies it.
        dedupe_key: digest_hex(&[body.body()]),
    };
    Ok(super::incoming("sellix", body, parsed, received_at))
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
