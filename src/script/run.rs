//! The context of one script run on this thread: the intents and state writes it has made so far,
//! the state it has read, and its operation budget and deadline.
//!
//! Native functions are `'static` closures shared by every thread, so they reach the run they
//! belong to through a thread-local installed by [`enter`] and removed when the [`Guard`] drops
//! (also on panic). A run is synchronous on one thread, so this is exact; a plugin called from a
//! script runs on the same thread and writes into the same context.
//!
//! State reads replay: [`State`](super::State) is borrowed by the caller and cannot be reached
//! from a `'static` closure, so a read of a key not fetched yet records the key and stops the
//! run; the runner fetches it and runs again from the start. `now()` and `random_key()` are
//! frozen per run, so a replay computes exactly what the first attempt would have.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rhai::{Dynamic, EvalAltResult};
use serde_json::Value as J;

use super::{EventValues, Intent};

/// What one run has done so far.
pub struct RunCtx {
    pub intents: Vec<Intent>,
    pub changes: BTreeMap<String, J>,
    /// Keys read from the caller's state (None: not there).
    pub fetched: BTreeMap<String, Option<J>>,
    /// A key the run needs fetched before it can go on.
    pub wanted: Option<String>,
    /// Unix seconds `now()` returns during this run.
    pub now: i64,
    /// The PRNG state for `random_key()`.
    pub rng: u64,
    /// The event's values, for plugins called during the run.
    pub values: EventValues,
    /// How deep plugin calls are nested.
    pub depth: usize,
}

impl RunCtx {
    pub fn new(
        now: i64,
        seed: u64,
        fetched: BTreeMap<String, Option<J>>,
        values: EventValues,
    ) -> Self {
        RunCtx {
            intents: Vec::new(),
            changes: BTreeMap::new(),
            fetched,
            wanted: None,
            now,
            rng: seed | 1,
            values,
            depth: 0,
        }
    }
}

#[derive(Clone, Copy)]
struct Budget {
    used: u64,
    max: u64,
    deadline: Option<(Instant, Duration)>,
}

const UNLIMITED: Budget = Budget {
    used: 0,
    max: u64::MAX,
    deadline: None,
};

thread_local! {
    static CTX: RefCell<Option<RunCtx>> = const { RefCell::new(None) };
    static BUDGET: Cell<Budget> = const { Cell::new(UNLIMITED) };
}

/// Removes the run's context when dropped; [`Guard::finish`] hands it back.
pub struct Guard(());

impl Guard {
    pub fn finish(self) -> Option<RunCtx> {
        CTX.with(|c| c.borrow_mut().take())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        CTX.with(|c| c.borrow_mut().take());
        BUDGET.with(|b| b.set(UNLIMITED));
    }
}

/// Installs `ctx` for this thread, with `max_operations` across the whole run (plugins and
/// imported modules included) and an optional deadline (its instant, shared by replays, and
/// the duration it was set for, for the message).
pub fn enter(
    ctx: RunCtx,
    max_operations: u64,
    deadline: Option<(Instant, Duration)>,
) -> Result<Guard, String> {
    CTX.with(|c| {
        let mut slot = c.borrow_mut();
        if slot.is_some() {
            return Err("a script run cannot start another script run".to_string());
        }
        *slot = Some(ctx);
        Ok(())
    })?;
    BUDGET.with(|b| {
        b.set(Budget {
            used: 0,
            max: max_operations.max(1),
            deadline,
        })
    });
    Ok(Guard(()))
}

/// Runs `f` on the current run's context; an error outside a run.
pub fn with<R>(f: impl FnOnce(&mut RunCtx) -> R) -> Result<R, Box<EvalAltResult>> {
    CTX.with(|c| match c.borrow_mut().as_mut() {
        Some(ctx) => Ok(f(ctx)),
        None => Err("this function is only available while a script runs".into()),
    })
}

/// The engine's progress callback: counts every operation of the run and stops it when the
/// budget or the deadline is spent (the deadline is checked every 256 operations).
pub fn progress(_ops: u64) -> Option<Dynamic> {
    BUDGET.with(|cell| {
        let mut b = cell.get();
        b.used += 1;
        cell.set(b);
        if b.used > b.max {
            return Some(format!("operation budget exceeded ({} operations)", b.max).into());
        }
        match b.deadline {
            Some((at, d)) if b.used % 256 == 0 && Instant::now() >= at => {
                Some(format!("deadline exceeded ({} ms)", d.as_millis()).into())
            }
            _ => None,
        }
    })
}
