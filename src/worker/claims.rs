//! The dispatcher's claims: which jobs are claimed (waiting for a permit or being delivered),
//! which attempts are held, and which deliveries finished since a list of due jobs was read, so
//! that no job is ever claimed twice from a stale list.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::journal::AttemptOutcome;

/// How many finished deliveries are remembered to refuse claims from lists read before them.
const FINISHED_KEPT: usize = 4096;

/// Jobs claimed (waiting for a permit or being delivered), and how many deliveries have
/// finished. A list of due jobs read before a delivery finished may still show that job as
/// pending: a claim of a job that finished after the list was read is refused, so a job is never
/// delivered twice.
#[derive(Default)]
pub(super) struct InFlight {
    pub(super) ids: HashSet<i64>,
    /// Attempts that ran but could not be journaled yet, by job id; never claimed again.
    pub(super) held: HashMap<i64, AttemptOutcome>,
    pub(super) generation: u64,
    /// The last [`FINISHED_KEPT`] finished jobs with the generation they finished in.
    finished: VecDeque<(u64, i64)>,
}

impl InFlight {
    /// One more finished job (released after its attempt was journaled, or held, or a held
    /// attempt journaled late).
    pub(super) fn finished(&mut self, id: i64) {
        self.generation += 1;
        self.finished.push_back((self.generation, id));
        if self.finished.len() > FINISHED_KEPT {
            self.finished.pop_front();
        }
    }

    /// Whether a list read at generation `read_at` may be stale about `id`; `None` when the
    /// list is older than what is remembered (then every claim from it is refused).
    pub(super) fn finished_since(&self, read_at: u64, id: i64) -> Option<bool> {
        if read_at < self.generation && self.finished.front().is_none_or(|f| f.0 > read_at + 1) {
            return None;
        }
        Some(
            self.finished
                .iter()
                .rev()
                .take_while(|f| f.0 > read_at)
                .any(|f| f.1 == id),
        )
    }
}

pub(super) enum Claim {
    Taken,
    /// Already claimed or held, or finished since the list was read: skip it.
    Busy,
    /// The list is older than the finished deliveries remembered: read again.
    Stale,
}
