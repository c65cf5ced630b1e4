//! The event as templates, conditions and scripts see it: `event` (its fields), `order` and
//! `payload`, each turned into JSON (and Rhai values) at most once per event.

use std::cell::OnceCell;

use serde_json::{json, Value as J};

use crate::event::Event;

/// What paths resolve against for one event. `event.*` and `order.*` are turned into JSON only
/// when a condition first needs them; `payload.*` borrows the payload.
pub struct Scope<'e> {
    pub event: &'e Event,
    event_json: OnceCell<J>,
    order_json: OnceCell<J>,
}

impl<'e> Scope<'e> {
    pub fn new(event: &'e Event) -> Self {
        Scope {
            event,
            event_json: OnceCell::new(),
            order_json: OnceCell::new(),
        }
    }

    /// `event` as an object of its fields (no payload, no order).
    pub fn event_json(&self) -> &J {
        self.event_json.get_or_init(|| {
            let e = self.event;
            json!({
                "id": e.id, "source": e.source, "shop": e.shop, "kind": e.kind, "topic": e.topic,
                "canonical": e.canonical, "received_at": e.received_at.to_rfc3339(),
            })
        })
    }

    /// `order` as JSON, `null` when the event has no order.
    pub fn order_json(&self) -> &J {
        self.order_json.get_or_init(|| {
            self.event
                .order
                .as_ref()
                .and_then(|o| serde_json::to_value(o).ok())
                .unwrap_or(J::Null)
        })
    }
}
