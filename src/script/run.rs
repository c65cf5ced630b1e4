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

use super::{EventValues, Intent, RunLimits};

/// What one run has done so far.
pub struct RunCtx {
    pub intents: Vec<Intent>,
    pub changes: BTreeMap<String, J>,
    /// The size of each written key plus its JSON value, for the state limits.
    written: BTreeMap<String, usize>,
    limits: RunLimits,
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
        limits: RunLimits,
    ) -> Self {
        RunCtx {
            intents: Vec::new(),
            changes: BTreeMap::new(),
            written: BTreeMap::new(),
            limits,
            fetched,
            wanted: None,
            now,
            rng: seed | 1,
            values,
            depth: 0,
        }
    }

    /// Records a state write, within the run's limits (`scripts.max_value_bytes`,
    /// `max_state_keys`, `max_state_bytes`); over a limit, nothing is recorded.
    pub fn write(&mut self, key: &str, value: J) -> Result<(), StateLimit> {
        let l = self.limits;
        let size = value.to_string().len();
        if size > l.max_value_bytes {
            return Err(StateLimit::ValueBytes {
                key: key.to_string(),
                size,
                max: l.max_value_bytes,
            });
        }
        if !self.written.contains_key(key) && self.written.len() >= l.max_state_keys {
            return Err(StateLimit::Keys {
                max: l.max_state_keys,
            });
        }
        let others: usize = self
            .written
            .iter()
            .filter(|(k, _)| k.as_str() != key)
            .map(|(_, n)| n)
            .sum();
        if others + key.len() + size > l.max_state_bytes {
            return Err(StateLimit::Bytes {
                max: l.max_state_bytes,
            });
        }
        self.written.insert(key.to_string(), key.len() + size);
        self.changes.insert(key.to_string(), value);
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct Budget {
    used: u64,
    max: u64,
    deadline: Option<(Instant, Duration)>,
    /// The deadline has passed (sticky).
    expired: bool,
}

const UNLIMITED: Budget = Budget {
    used: 0,
    max: u64::MAX,
    deadline: None,
    expired: false,
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

/// A state write over one of the run's limits (the script fails with this message).
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum StateLimit {
    #[error("state value of `{key}` is {size} bytes, over scripts.max_value_bytes ({max})")]
    ValueBytes {
        key: String,
        size: usize,
        max: usize,
    },
    #[error("a run may write at most {max} state keys (scripts.max_state_keys)")]
    Keys { max: usize },
    #[error("a run may write at most {max} bytes of state (scripts.max_state_bytes)")]
    Bytes { max: usize },
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
            expired: false,
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

/// Sets a budget for a call outside a run, or nested in one (a plugin's `validate`), until the
/// returned [`BudgetScope`] drops: `max_operations` of its own, and `timeout` or the enclosing
/// run's deadline, whichever comes first. The enclosing budget is restored (and charged for the
/// operations spent) afterwards.
pub fn budget_scope(max_operations: u64, timeout: Duration) -> BudgetScope {
    let outer = BUDGET.with(Cell::get);
    let own = Instant::now() + timeout;
    let deadline = match outer.deadline {
        Some((at, d)) if at <= own => Some((at, d)),
        _ => Some((own, timeout)),
    };
    BUDGET.with(|b| {
        b.set(Budget {
            used: 0,
            max: max_operations.max(1),
            deadline,
            expired: false,
        })
    });
    BudgetScope(outer)
}

/// Restores the enclosing budget when dropped.
pub struct BudgetScope(Budget);

impl Drop for BudgetScope {
    fn drop(&mut self) {
        let spent = BUDGET.with(Cell::get).used;
        let mut outer = self.0;
        outer.used = outer.used.saturating_add(spent);
        BUDGET.with(|b| b.set(outer));
    }
}

/// The text a run stopped by its deadline fails with (the trace shows it).
pub fn timed_out(d: Duration) -> String {
    format!("timed out after {} ms", d.as_millis())
}

/// The engine's progress callback: counts every operation of the run and stops it when the
/// budget or the deadline is spent (the clock is read every 16 operations).
pub fn progress(_ops: u64) -> Option<Dynamic> {
    BUDGET.with(|cell| {
        let mut b = cell.get();
        b.used += 1;
        cell.set(b);
        if b.used > b.max {
            return Some(format!("operation budget exceeded ({} operations)", b.max).into());
        }
        // Once past, every later operation stops too: native functions that swallow a callback's
        // error (Rhai's `sort` with a comparator does) must not hide the deadline from the
        // operation that happens to read the clock next.
        match b.deadline {
            Some((_, d)) if b.expired => Some(timed_out(d).into()),
            Some((at, d)) if b.used % 16 == 0 && Instant::now() >= at => {
                cell.set(Budget { expired: true, ..b });
                Some(timed_out(d).into())
            }
            _ => None,
        }
    })
}
