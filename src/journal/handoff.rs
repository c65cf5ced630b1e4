//! The in-memory hand-off of appended events from the writer to the pipeline.
//!
//! Intake parses every webhook once into an [`Event`]; the journal stores its raw bytes. Reading
//! the row back and parsing the payload again in the pipeline cost a 4 KB read and a JSON parse
//! per event for nothing: the writer keeps each event it committed here, and the pipeline takes
//! it instead of reading the row.
//!
//! The journal stays what decides: the pipeline still asks it which events are unprocessed, in
//! order, and takes them from here only when *all* of that batch are here; otherwise (after a
//! restart, while it lags behind, after `events retry`) it reads the rows as before. So a missing
//! entry costs a read, never an event, and an entry is only ever an exact copy of a committed row.
//! Bounded by [`CAP`] events: when full, the oldest entry (event ids sort by time) makes room.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::model::event::Event;

/// At most this many events wait here (a few pipeline batches; ~10 KB each in memory).
pub const CAP: usize = 1024;

/// Committed, not yet planned events by id. Shared by the writer (puts) and the pipeline (takes).
#[derive(Default)]
pub struct Handoff {
    events: Mutex<BTreeMap<String, Event>>,
    /// Set once a pipeline takes from here; before that nothing is kept (the CLI's writer).
    taken: AtomicBool,
}

impl Handoff {
    pub fn new() -> Handoff {
        Handoff::default()
    }

    /// Marks that a pipeline takes events from here, so the writer starts keeping them.
    pub(super) fn subscribe(&self) {
        self.taken.store(true, Ordering::Relaxed);
    }

    /// Keeps `event`, committed just now (when a pipeline takes them).
    pub(super) fn put(&self, event: Event) {
        if !self.taken.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut events) = self.events.lock() else {
            return;
        };
        while events.len() >= CAP {
            events.pop_first();
        }
        events.insert(event.id.clone(), event);
    }

    /// The events `ids`, in that order, if every one is here; else `None` (and those that were
    /// here are dropped: the caller reads the batch from the journal).
    pub fn take(&self, ids: &[String]) -> Option<Vec<Event>> {
        let Ok(mut events) = self.events.lock() else {
            return None;
        };
        let all = ids.iter().all(|id| events.contains_key(id));
        let taken: Vec<Event> = ids.iter().filter_map(|id| events.remove(id)).collect();
        all.then_some(taken)
    }

    /// How many events wait here.
    pub fn len(&self) -> usize {
        self.events.lock().map_or(0, |e| e.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::Timestamp;

    fn event(id: &str) -> Event {
        Event {
            id: id.into(),
            source: "sellix".into(),
            kind: "order:paid".into(),
            topic: "sellix/order:paid".into(),
            canonical: None,
            received_at: Timestamp(0),
            payload: serde_json::Value::Null.into(),
            order: None,
            shop: "default".into(),
            secret: None,
        }
    }

    #[test]
    fn a_batch_is_taken_whole_or_not_at_all() {
        let h = Handoff::new();
        h.put(event("evt_0"));
        assert!(h.is_empty(), "nothing is kept before a pipeline subscribes");
        h.subscribe();
        h.put(event("evt_1"));
        h.put(event("evt_2"));
        let got = h.take(&["evt_1".into(), "evt_2".into()]).unwrap();
        assert_eq!(
            got.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["evt_1", "evt_2"]
        );
        assert!(h.is_empty());
        h.put(event("evt_3"));
        assert!(h.take(&["evt_3".into(), "evt_4".into()]).is_none());
        assert!(h.is_empty(), "a partial hit drops what it found");
    }

    #[test]
    fn it_stays_bounded_dropping_the_oldest() {
        let h = Handoff::new();
        h.subscribe();
        for i in 0..CAP + 10 {
            h.put(event(&format!("evt_{i:06}")));
        }
        assert_eq!(h.len(), CAP);
        assert!(h.take(&["evt_000000".into()]).is_none());
        assert!(h.take(&[format!("evt_{:06}", CAP + 9)]).is_some());
    }
}
