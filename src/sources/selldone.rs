//! Selldone: no signature exists for shop webhooks, so the URL registered with Selldone carries a
//! secret token (`/hooks/selldone/{token}` or `?token=`), compared in constant time.

use serde_json::Value;

use super::json::{first_text, number, text};
use super::sparse::{Keep, WHOLE};
use super::verify::{digest_hex, token_matches};
use super::{
    parse_object, IntakeError, IntakeRequest, Parsed, Route, Shops, Source, Verified, DEFAULT_SHOP,
};
use crate::config::SelldoneConfig;
use crate::model::event::{
    selldone_canonical, Customer, Incoming, Item, OrderView, Shop, Timestamp,
};

pub struct Selldone {
    config: SelldoneConfig,
    shops: Shops,
}

impl Selldone {
    pub fn new(config: SelldoneConfig) -> Self {
        let shops = Shops::from_config(
            (&config.token, &config.previous_token),
            &config.shops,
            |s| (&s.token, &s.previous_token),
        );
        Selldone { config, shops }
    }
}

impl Source for Selldone {
    fn name(&self) -> &'static str {
        "selldone"
    }

    /// `/hooks/selldone[/{token}]` is the shop `default`; `/hooks/selldone/{shop}/{token}` (or
    /// `/hooks/selldone/{shop}?token=`) a configured shop. A single segment is a shop when one
    /// has that name, else the default shop's token.
    fn route(&self, segments: &[&str]) -> Option<Route> {
        let route = |shop: &str, token: Option<&str>| {
            self.shops.get(shop).map(|s| Route {
                shop: s.name.clone(),
                token: token.map(str::to_string),
            })
        };
        match segments {
            [] => route(DEFAULT_SHOP, None),
            [one] if self.shops.named().contains(one) => route(one, None),
            [token] => route(DEFAULT_SHOP, Some(token)),
            [shop, token] => route(shop, Some(token)),
            _ => None,
        }
    }

    fn routes(&self) -> Vec<String> {
        let mut routes = Vec::new();
        if self.shops.has_default() {
            routes.push("/hooks/selldone/<token>".to_string());
        }
        routes.extend(
            self.shops
                .named()
                .iter()
                .map(|n| format!("/hooks/selldone/{n}/<token>")),
        );
        routes
    }

    fn verify_shop(&self, shop: &str, req: IntakeRequest<'_>) -> Result<Verified, IntakeError> {
        let (allow_ips, trust) = (&self.config.allow_ips, self.config.trust_proxy);
        super::verify_with(self, allow_ips, trust, shop, req, None, |shop, req| {
            let Some(given) = req.token.as_deref().filter(|t| !t.is_empty()) else {
                let route = if shop.name == DEFAULT_SHOP {
                    "/hooks/selldone".to_string()
                } else {
                    format!("/hooks/selldone/{}", shop.name)
                };
                return Err(IntakeError::Unauthorized(format!(
                    "missing token: post to {route}/<token> or {route}?token=<token>"
                )));
            };
            shop.matching(|expected| token_matches(expected, given))
                .ok_or_else(|| IntakeError::Unauthorized("wrong token in the webhook URL".into()))
        })
    }

    fn normalize(&self, body: &Verified, received_at: Timestamp) -> Result<Incoming, IntakeError> {
        read(body, received_at, KEEP)
    }

    fn shops(&self) -> &Shops {
        &self.shops
    }

    fn secret_key(&self) -> &'static str {
        "token"
    }

    fn allow_unsigned(&self) -> bool {
        self.config.allow_unsigned
    }
}

/// Who a Selldone body names (`customer`, `user`): what [`order_view`] reads of them.
const PERSON: Keep = Keep(&[("email", WHOLE), ("name", WHOLE), ("phone", WHOLE)]);

/// What [`read`] and [`order_view`] look at; the rest of the body is validated, not kept.
pub(super) const KEEP: Keep = Keep(&[
    ("action", WHOLE),
    ("event", WHOLE),
    (
        "basket",
        Keep(&[
            ("id", WHOLE),
            ("updated_at", WHOLE),
            ("status", WHOLE),
            ("price", WHOLE),
            ("currency", WHOLE),
            ("guest_email", WHOLE),
            ("receiver_info", Keep(&[("name", WHOLE), ("phone", WHOLE)])),
            (
                "items",
                Keep(&[
                    ("product", Keep(&[("title", WHOLE)])),
                    ("title", WHOLE),
                    ("count", WHOLE),
                    ("price", WHOLE),
                ]),
            ),
        ]),
    ),
    ("customer", PERSON),
    ("user", PERSON),
    (
        "shop",
        Keep(&[("id", WHOLE), ("title", WHOLE), ("name", WHOLE)]),
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
    let parsed = Parsed {
        kind,
        canonical,
        order,
        dedupe_key,
    };
    Ok(super::incoming("selldone", body, parsed, received_at))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, ShopConfig};

    fn selldone(default_token: &str) -> Selldone {
        Selldone::new(SelldoneConfig {
            token: Secret::new(default_token),
            shops: vec![ShopConfig {
                name: "eu".into(),
                token: Secret::new("eu-token"),
                ..ShopConfig::default()
            }],
            ..SelldoneConfig::default()
        })
    }

    fn route(shop: &str, token: Option<&str>) -> Option<Route> {
        Some(Route {
            shop: shop.into(),
            token: token.map(str::to_string),
        })
    }

    #[test]
    fn one_segment_is_a_shop_when_one_has_that_name_else_the_default_token() {
        let s = selldone("tok");
        assert_eq!(s.route(&[]), route(DEFAULT_SHOP, None));
        assert_eq!(s.route(&["tok"]), route(DEFAULT_SHOP, Some("tok")));
        assert_eq!(s.route(&["eu"]), route("eu", None));
        assert_eq!(s.route(&["eu", "t"]), route("eu", Some("t")));
        assert_eq!(s.route(&["us", "t"]), None);
        assert_eq!(s.route(&["eu", "t", "extra"]), None);
        // With only a list there is no shop `default`: the old routes are 404s.
        let listed_only = selldone("");
        assert_eq!(listed_only.route(&["tok"]), None);
        assert_eq!(listed_only.routes(), vec!["/hooks/selldone/eu/<token>"]);
    }
}
