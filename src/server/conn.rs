//! Connection admission: at most `intake.max_connections` connections are held at once, so idle
//! or slow clients (slow-loris) cannot use up the process's file descriptors. When the limit is
//! reached, a new connection closes the oldest connection that is not serving a request (one
//! that never finished its headers, or an idle keep-alive); a request in progress is never cut.
//! Headers that do not arrive within `intake.header_timeout` close the connection (hyper's
//! `header_read_timeout`, set where connections are served).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// The TCP peer of a request, put into its extensions by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// How often the "limit reached" warning repeats (with a count) while it keeps happening.
const WARN_EVERY: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct Slot {
    busy: Arc<AtomicUsize>,
    close: CancellationToken,
}

#[derive(Default)]
struct Slots {
    next: u64,
    open: BTreeMap<u64, Slot>,
}

/// The connections being served.
pub struct Registry {
    max: usize,
    slots: Mutex<Slots>,
    /// Connections closed (or refused) because of the limit since the last warning.
    shed: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

/// One admitted connection: its requests mark it busy; dropping it frees the slot.
pub struct Admitted {
    id: u64,
    pub busy: Arc<AtomicUsize>,
    /// Cancelled when the connection is evicted to make room.
    pub close: CancellationToken,
    registry: Arc<Registry>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Ok(mut slots) = self.registry.slots.lock() {
            slots.open.remove(&self.id);
        }
    }
}

/// Marks a connection busy while a request is served.
pub struct BusyGuard(Arc<AtomicUsize>);

impl BusyGuard {
    pub fn new(busy: &Arc<AtomicUsize>) -> BusyGuard {
        busy.fetch_add(1, Ordering::SeqCst);
        BusyGuard(busy.clone())
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Registry {
    pub fn new(max: usize) -> Arc<Registry> {
        Arc::new(Registry {
            max: max.max(1),
            slots: Mutex::new(Slots::default()),
            shed: AtomicU64::new(0),
            last_warning: Mutex::new(None),
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections held now.
    pub fn open(&self) -> usize {
        self.slots.lock().map(|s| s.open.len()).unwrap_or(0)
    }

    /// Admits a new connection. At the limit the oldest idle connection is closed to make room;
    /// `None` (refuse the new one) only when every held connection is serving a request.
    pub fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut slots = self.slots.lock().ok()?;
        if slots.open.len() >= self.max {
            let idle = slots
                .open
                .iter()
                .find(|(_, s)| s.busy.load(Ordering::SeqCst) == 0)
                .map(|(id, _)| *id);
            self.shed.fetch_add(1, Ordering::Relaxed);
            match idle.and_then(|id| slots.open.remove(&id)) {
                Some(evicted) => evicted.close.cancel(),
                None => {
                    drop(slots);
                    self.warn("every connection is serving a request: refusing a new one");
                    return None;
                }
            }
            self.warn("closing the oldest idle connection");
        }
        let id = slots.next;
        slots.next += 1;
        let slot = Slot {
            busy: Arc::new(AtomicUsize::new(0)),
            close: CancellationToken::new(),
        };
        slots.open.insert(id, slot.clone());
        Some(Admitted {
            id,
            busy: slot.busy,
            close: slot.close,
            registry: self.clone(),
        })
    }

    /// The limit's log line: the first time, then at most once per [`WARN_EVERY`] with a count.
    fn warn(&self, what: &str) {
        let Ok(mut last) = self.last_warning.lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        let shed = self.shed.swap(0, Ordering::Relaxed);
        tracing::warn!(
            max_connections = self.max,
            shed,
            "connection limit reached (intake.max_connections = {}): {what}",
            self.max
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_the_oldest_idle_connection_makes_room() {
        let r = Registry::new(2);
        let a = r.admit().unwrap();
        let b = r.admit().unwrap();
        let _busy = BusyGuard::new(&a.busy);
        let c = r.admit().unwrap();
        assert!(!a.close.is_cancelled(), "a busy connection is never cut");
        assert!(b.close.is_cancelled());
        assert_eq!(r.open(), 2);
        let _busy_c = BusyGuard::new(&c.busy);
        assert!(r.admit().is_none(), "all busy: the new one is refused");
        drop(b);
        assert_eq!(r.open(), 2);
    }
}
