//! The event as templates, conditions and scripts see it: `event` (its fields), `order` and
//! `payload`, each turned into JSON (and Rhai values) at most once per event.

use std::cell::OnceCell;

use rhai::{Dynamic, Scope as RhaiScope};
use serde_json::{json, Value as J};

use crate::model::event::Event;

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

/// One event's view, converted at most once and shared by everything that evaluates against
/// it: conditions and templates (JSON, [`Scope`]), `if` expressions and scripts (Rhai values).
/// `payload` is the big one: it becomes a Rhai value only when an expression or script reads it.
pub struct EventView<'e> {
    scope: Scope<'e>,
    event: OnceCell<Dynamic>,
    order: OnceCell<Dynamic>,
    payload: OnceCell<Dynamic>,
}

impl<'e> EventView<'e> {
    pub fn new(event: &'e Event) -> Self {
        EventView {
            scope: Scope::new(event),
            event: OnceCell::new(),
            order: OnceCell::new(),
            payload: OnceCell::new(),
        }
    }

    /// The event as JSON paths resolve against it.
    pub fn scope(&self) -> &Scope<'e> {
        &self.scope
    }

    /// `event` as a shared Rhai value (each user gets a cheap handle, not a copy).
    pub fn rhai_event(&self) -> Dynamic {
        let scope = &self.scope;
        self.event
            .get_or_init(|| to_rhai(scope.event_json()))
            .clone()
    }

    /// `order` as a shared Rhai value.
    pub fn rhai_order(&self) -> Dynamic {
        let scope = &self.scope;
        self.order
            .get_or_init(|| to_rhai(scope.order_json()))
            .clone()
    }

    /// `payload` as a shared Rhai value.
    pub fn rhai_payload(&self) -> Dynamic {
        let payload = &self.scope.event.payload;
        self.payload.get_or_init(|| to_rhai(payload)).clone()
    }

    /// All three, for a script.
    pub fn values(&self) -> EventValues {
        EventValues {
            event: self.rhai_event(),
            order: self.rhai_order(),
            payload: self.rhai_payload(),
        }
    }
}

/// `event`, `order` and `payload` as Rhai values, built once per event and shared by every
/// `if` and script of that event (converting a payload dominates the cost of a short script).
#[derive(Clone)]
pub struct EventValues {
    pub event: Dynamic,
    pub order: Dynamic,
    pub payload: Dynamic,
}

impl EventValues {
    pub fn new(event: &Event) -> EventValues {
        EventView::new(event).values()
    }

    /// A scope with the three as constants (scripts cannot change what later rules see).
    pub fn scope(&self) -> RhaiScope<'static> {
        let mut scope = RhaiScope::new();
        scope.push_constant_dynamic("event", self.event.clone());
        scope.push_constant_dynamic("order", self.order.clone());
        scope.push_constant_dynamic("payload", self.payload.clone());
        scope
    }
}

/// A JSON value as a shared Rhai value.
fn to_rhai(v: &J) -> Dynamic {
    rhai::serde::to_dynamic(v)
        .unwrap_or(Dynamic::UNIT)
        .into_shared()
}
