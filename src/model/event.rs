//! The platform-neutral event every webhook becomes.
//!
//! An [`Event`] keeps the raw payload (rules can reach any field through `payload`) and adds what
//! rules need to serve both platforms with one definition: a `topic` (`source/kind`), a canonical
//! name from the table in DESIGN.md §3, and an [`OrderView`] with the fields shop owners ask for.

use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One journaled webhook, normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    /// The source adapter that verified it: `sellix` or `selldone`.
    pub source: String,
    /// The shop it was posted for (`sources.<source>.shops`); `default` for the single-shop
    /// form and for events journaled before shops existed.
    #[serde(default = "default_shop")]
    pub shop: String,
    /// Which of the shop's secrets verified it: `current`, `previous` (a rotation in progress)
    /// or `none` (unsigned, from this machine). Never the secret itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The platform's own event name (`order:paid`, `SentOrder`, `Product/Created`).
    pub kind: String,
    /// `source/kind`: what `on:` patterns with a slash match against.
    pub topic: String,
    /// The cross-platform name (`order.paid`), when the table knows the event.
    pub canonical: Option<String>,
    pub received_at: Timestamp,
    /// The request body as JSON, unknown fields and all (parsed when first read).
    pub payload: Payload,
    /// Present for order events of either platform.
    pub order: Option<OrderView>,
}

/// The shop of the single-shop config form, of the routes without a shop segment and of
/// events that name none.
pub const DEFAULT_SHOP: &str = "default";

/// The shop of events that name none.
pub fn default_shop() -> String {
    DEFAULT_SHOP.to_string()
}

impl Event {
    /// A new event id: time-ordered, so ids sort like arrival.
    pub fn new_id() -> String {
        format!("evt_{}", uuid::Uuid::now_v7().simple())
    }
}

/// An event's payload: the webhook body as JSON, built from the body's bytes the first time
/// something reads it (a `payload.*` condition, template or script) and kept from then on.
///
/// Intake validates the body in full and reads only the fields it needs (the sources' sparse
/// parse), so an event that nothing reads the payload of is never converted into a tree: that
/// conversion was most of intake's CPU. Reads through `Deref` as a
/// `serde_json::Value`; compares, prints and serializes as that value.
#[derive(Clone, Default)]
pub struct Payload {
    /// The body; `None` once the value is the truth (built from a value, or written to).
    raw: Option<Bytes>,
    value: OnceLock<Value>,
}

impl Payload {
    /// The payload of a body intake already validated as JSON (journal reads parse the stored
    /// body at once, so an unreadable row is caught there). A body that is not JSON after all
    /// reads as `null` rather than failing a reader later.
    pub fn from_body(body: Bytes) -> Self {
        Payload {
            raw: Some(body),
            value: OnceLock::new(),
        }
    }

    /// Whether the value was built yet (tests and benchmarks check that nothing did).
    pub fn is_parsed(&self) -> bool {
        self.value.get().is_some()
    }

    fn value(&self) -> &Value {
        self.value.get_or_init(|| {
            self.raw
                .as_deref()
                .and_then(|body| serde_json::from_slice(body).ok())
                .unwrap_or(Value::Null)
        })
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Payload {
            raw: None,
            value: OnceLock::from(value),
        }
    }
}

impl Deref for Payload {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

impl DerefMut for Payload {
    fn deref_mut(&mut self) -> &mut Value {
        self.value();
        self.raw = None;
        self.value.get_mut().expect("the value was just built")
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.value() == other.value()
    }
}

impl PartialEq<Value> for Payload {
    fn eq(&self, other: &Value) -> bool {
        self.value() == other
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value().fmt(f)
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Payload::from)
    }
}

/// A verified, normalized delivery on its way into the journal.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub event: Event,
    /// Identifies repeated deliveries of one webhook (see each source for what it hashes).
    pub dedupe_key: String,
    /// The request body exactly as it arrived; the journal stores these bytes, not a
    /// re-serialization, so what was verified is what is kept.
    pub body: bytes::Bytes,
}

/// The order fields rules use on both platforms. Text fields are empty strings when the
/// platform sent nothing, so `order.customer.email != ""` reads naturally in rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderView {
    pub id: String,
    pub status: String,
    /// The amount in `currency` (Sellix `total_display`, Selldone `basket.price`).
    pub total: Option<f64>,
    pub currency: String,
    pub customer: Customer,
    pub items: Vec<Item>,
    pub shop: Shop,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub email: String,
    pub name: String,
    pub phone: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub title: String,
    /// Whole quantities read as integers (`2`, not `2.0`) in templates and JSON. Always finite:
    /// sources read a non-finite or unparsable quantity as 1 (the same as a missing one), and a
    /// stored `null` (written by versions that let `"NaN"` through) reads back as 1 too.
    #[serde(
        serialize_with = "whole_as_int",
        deserialize_with = "quantity_or_one",
        default = "one"
    )]
    pub quantity: f64,
    pub price: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shop {
    pub id: String,
    pub name: String,
}

fn one() -> f64 {
    1.0
}

fn quantity_or_one<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let n = Option::<f64>::deserialize(d)?;
    Ok(n.filter(|n| n.is_finite()).unwrap_or(1.0))
}

fn whole_as_int<S: Serializer>(n: &f64, s: S) -> Result<S::Ok, S::Error> {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        s.serialize_i64(*n as i64)
    } else {
        s.serialize_f64(*n)
    }
}

/// Milliseconds since the Unix epoch; shown as RFC 3339 in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(from = "TimestampRepr")]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The daemon's clock (see [`crate::model::clock`]).
    pub fn now() -> Self {
        Timestamp(super::clock::now_millis())
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn to_rfc3339(self) -> String {
        let t = UNIX_EPOCH + Duration::from_millis(self.0.max(0) as u64);
        humantime::format_rfc3339_millis(t).to_string()
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

/// Accepts what [`Timestamp`] serializes to, and plain milliseconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum TimestampRepr {
    Millis(i64),
    Text(String),
}

impl From<TimestampRepr> for Timestamp {
    fn from(r: TimestampRepr) -> Self {
        match r {
            TimestampRepr::Millis(ms) => Timestamp(ms),
            TimestampRepr::Text(s) => humantime::parse_rfc3339(&s)
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| Timestamp(d.as_millis() as i64))
                .unwrap_or(Timestamp(0)),
        }
    }
}

/// Sellix dynamic products: the answer to this webhook is the product the buyer receives.
pub const DYNAMIC_PRODUCT_TOPIC: &str = "sellix/product:dynamic";

/// The canonical name of a Selldone `OnlineOrder` action (DESIGN.md §3).
pub fn selldone_canonical(action: &str) -> Option<&'static str> {
    Some(match action {
        "CheckoutOrder" => "order.checkout",
        "PaymentOrder" => "order.paid",
        "CancelProduct" => "order.item_cancelled",
        "OrderConfirm" => "order.confirmed",
        "PreparingOrder" => "order.preparing",
        "SentOrder" => "order.shipped",
        "ToCustomer" => "order.delivered",
        "ReturnOrder" => "order.returned",
        "DeliveryCanceled" => "order.delivery_cancelled",
        _ => return None,
    })
}

/// The canonical name of a Sellix event (DESIGN.md §3).
///
/// Product-scoped variants (`order:paid:product`) share the name of the shop-wide event;
/// v1 and v2 subscription events both map to `subscription.*` (colons become dots, and
/// `canceled` is spelled `cancelled`, so `subscription-v2:plan:canceled` is
/// `subscription.plan.cancelled`).
pub fn sellix_canonical(event: &str) -> Option<String> {
    let event = event.strip_suffix(":product").unwrap_or(event);
    let fixed = match event {
        "order:created" => "order.checkout",
        "order:paid" => "order.paid",
        "order:partial" => "order.partial",
        "order:cancelled" => "order.cancelled",
        "order:disputed" => "order.disputed",
        "order:updated" => "order.updated",
        "product:created" => "product.created",
        "product:edited" => "product.updated",
        "product:stock" => "product.low_stock",
        _ => "",
    };
    if !fixed.is_empty() {
        return Some(fixed.to_string());
    }
    let rest = event
        .strip_prefix("subscription-v2:")
        .or_else(|| event.strip_prefix("subscription:"))?;
    let rest = rest.replace(':', ".").replace("canceled", "cancelled");
    (!rest.is_empty()).then(|| format!("subscription.{rest}"))
}

/// Every canonical name storeflow can produce, for `on:` pattern checks and docs.
pub const CANONICAL_NAMES: &[&str] = &[
    "order.checkout",
    "order.paid",
    "order.partial",
    "order.cancelled",
    "order.item_cancelled",
    "order.confirmed",
    "order.preparing",
    "order.shipped",
    "order.delivered",
    "order.returned",
    "order.delivery_cancelled",
    "order.disputed",
    "order.updated",
    "product.created",
    "product.updated",
    "product.low_stock",
    "subscription.created",
    "subscription.updated",
    "subscription.trial.started",
    "subscription.trial.ended",
    "subscription.renewed",
    "subscription.cancelled",
    "subscription.upcoming",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sellix_names_map_to_canonical() {
        assert_eq!(
            sellix_canonical("order:paid").as_deref(),
            Some("order.paid")
        );
        assert_eq!(
            sellix_canonical("order:created").as_deref(),
            Some("order.checkout")
        );
        assert_eq!(
            sellix_canonical("order:paid:product").as_deref(),
            Some("order.paid")
        );
        assert_eq!(
            sellix_canonical("product:stock").as_deref(),
            Some("product.low_stock")
        );
        assert_eq!(
            sellix_canonical("product:edited").as_deref(),
            Some("product.updated")
        );
        assert_eq!(
            sellix_canonical("subscription-v2:canceled").as_deref(),
            Some("subscription.cancelled")
        );
        assert_eq!(
            sellix_canonical("subscription:cancelled").as_deref(),
            Some("subscription.cancelled")
        );
        assert_eq!(
            sellix_canonical("subscription:trial:started").as_deref(),
            Some("subscription.trial.started")
        );
        assert_eq!(
            sellix_canonical("subscription-v2:plan:canceled-merchant").as_deref(),
            Some("subscription.plan.cancelled-merchant")
        );
        assert_eq!(sellix_canonical("feedback:received"), None);
    }

    #[test]
    fn selldone_actions_map_to_canonical() {
        assert_eq!(selldone_canonical("SentOrder"), Some("order.shipped"));
        assert_eq!(selldone_canonical("ToCustomer"), Some("order.delivered"));
        assert_eq!(selldone_canonical("Unknown"), None);
    }

    #[test]
    fn regression_null_quantity_in_a_stored_order_view_reads_back() {
        let stored = r#"{"id":"1","status":"","total":null,"currency":"","customer":{"email":"","name":"","phone":""},
            "items":[{"title":"a","quantity":null,"price":null},{"title":"b","quantity":3,"price":2.5}],
            "shop":{"id":"","name":""}}"#;
        let view: OrderView = serde_json::from_str(stored).unwrap();
        assert_eq!(view.items[0].quantity, 1.0);
        assert_eq!(view.items[1].quantity, 3.0);
        let again: OrderView =
            serde_json::from_str(&serde_json::to_string(&view).unwrap()).unwrap();
        assert_eq!(again, view);
    }

    #[test]
    fn timestamp_round_trips_through_json() {
        let t = Timestamp(1_742_040_000_123);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2025-03-15T12:00:00.123Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }
}
