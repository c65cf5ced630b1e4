//! The dispatcher's claims in a journal that replicas share (DESIGN.md §13): which jobs this
//! replica claimed, with which fence, until when, and the renewal that keeps them.
//!
//! A claimed job is this replica's only while its lease runs. The renewal extends every claim
//! held, every `renew_every`; a claim that was not renewed before its lease ran out (the
//! database was unreachable, or this process was paused) or that the renewal no longer finds
//! (another replica took the job over) is **lost**: its token is cancelled, so a delivery not
//! started yet never starts and one in flight is abandoned without journaling anything. Should
//! this replica not notice in time (paused mid-delivery), the fence its attempt carries makes
//! the journal refuse the late completion.
//!
//! Not used with a store that is not shared (SQLite): there the dispatcher's in-memory claims
//! are the whole story.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::journal::{Fence, LeaseTerms, Reader, Write};

/// One claimed job.
struct Held {
    fence: i64,
    /// Cancelled when the claim is lost.
    lost: CancellationToken,
    /// When the claim runs out unless renewed (measured from before the claim or renewal was
    /// asked for, so never later than the journal's own lease).
    until: Instant,
}

/// The jobs this replica holds in the shared journal.
pub(super) struct JobLeases {
    pub(super) owner: String,
    pub(super) terms: LeaseTerms,
    held: Mutex<HashMap<i64, Held>>,
    /// Claims never started (shutdown came first), to give back to the journal.
    unstarted: Mutex<Vec<(i64, i64)>>,
}

impl JobLeases {
    pub(super) fn new(owner: String, terms: LeaseTerms) -> Arc<JobLeases> {
        Arc::new(JobLeases {
            owner,
            terms,
            held: Mutex::default(),
            unstarted: Mutex::default(),
        })
    }

    /// Records a claim made at `asked` (before the journal was asked for it).
    pub(super) fn add(&self, id: i64, fence: i64, asked: Instant) {
        if let Ok(mut held) = self.held.lock() {
            held.insert(
                id,
                Held {
                    fence,
                    lost: CancellationToken::new(),
                    until: asked + self.terms.length,
                },
            );
        }
    }

    /// Forgets a claim: its attempt was journaled (or refused), or it was given back.
    pub(super) fn remove(&self, id: i64) -> Option<i64> {
        self.held.lock().ok()?.remove(&id).map(|h| h.fence)
    }

    /// Forgets a claim that was never started, to give it back at shutdown.
    pub(super) fn unstarted(&self, id: i64) {
        if let (Some(fence), Ok(mut unstarted)) = (self.remove(id), self.unstarted.lock()) {
            unstarted.push((id, fence));
        }
    }

    /// Gives the claims never started back to the journal (shutdown), so other replicas take
    /// them at once instead of when their lease runs out.
    pub(super) async fn give_back(&self, reader: &Reader) {
        let jobs = self
            .unstarted
            .lock()
            .map(|mut u| std::mem::take(&mut *u))
            .unwrap_or_default();
        if jobs.is_empty() {
            return;
        }
        let owner = self.owner.clone();
        if let Err(e) = reader.read(move |s| s.release_jobs(&owner, &jobs)).await {
            crate::telemetry::replicas::renew_failed(&e);
        }
    }

    /// The token cancelled when the claim on `id` is lost (a cancelled one when there is none).
    pub(super) fn lost(&self, id: i64) -> CancellationToken {
        let token = self
            .held
            .lock()
            .ok()
            .and_then(|h| h.get(&id).map(|h| h.lost.clone()));
        token.unwrap_or_else(|| {
            let t = CancellationToken::new();
            t.cancel();
            t
        })
    }

    /// `write` (an attempt of job `id`) carrying the job's fence.
    pub(super) fn fenced(&self, id: i64, write: Write) -> Write {
        let fence = self
            .held
            .lock()
            .ok()
            .and_then(|h| h.get(&id).map(|h| h.fence))
            .unwrap_or(-1); // no claim known: a fence no row has, so the write is refused
        Write::Fenced(Fence::Jobs(vec![(id, fence)]), Box::new(write))
    }

    /// The claims still held (not lost), as (id, fence).
    fn live(&self) -> Vec<(i64, i64)> {
        self.held.lock().map_or_else(
            |_| Vec::new(),
            |h| {
                h.iter()
                    .filter(|(_, h)| !h.lost.is_cancelled())
                    .map(|(id, h)| (*id, h.fence))
                    .collect()
            },
        )
    }

    /// After a renewal asked at `asked`: `renewed` ids run until `asked + length`; the others
    /// asked about were taken over and are lost.
    fn renewed(&self, asked: Instant, asked_for: &[(i64, i64)], renewed: &[i64]) {
        let Ok(mut held) = self.held.lock() else {
            return;
        };
        for (id, _) in asked_for {
            let Some(h) = held.get_mut(id) else { continue };
            if renewed.contains(id) {
                h.until = asked + self.terms.length;
            } else if !h.lost.is_cancelled() {
                h.lost.cancel();
                crate::telemetry::replicas::claim_lost(*id);
            }
        }
    }

    /// Marks every claim that ran out by `now` lost; answers when the next one runs out.
    fn expire(&self, now: Instant) -> Option<Instant> {
        let Ok(held) = self.held.lock() else {
            return None;
        };
        let mut next = None;
        for (id, h) in held.iter().filter(|(_, h)| !h.lost.is_cancelled()) {
            if h.until <= now {
                h.lost.cancel();
                crate::telemetry::replicas::claim_lost(*id);
            } else {
                next = Some(next.map_or(h.until, |n: Instant| n.min(h.until)));
            }
        }
        next
    }

    /// Renews the claims every `renew_every` until `stop`, and marks lost those that ran out
    /// or were taken over.
    pub(super) async fn keep(self: Arc<Self>, reader: Reader, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let next_expiry = self.expire(Instant::now());
            let wake = next_expiry.map_or(self.terms.renew_every, |at| {
                at.saturating_duration_since(Instant::now())
                    .min(self.terms.renew_every)
            });
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wake) => {}
            }
            self.renew_once(&reader).await;
        }
    }

    async fn renew_once(&self, reader: &Reader) {
        let live = self.live();
        if live.is_empty() {
            return;
        }
        let asked = Instant::now();
        let (owner, length, ask) = (self.owner.clone(), self.terms.length, live.clone());
        match reader
            .read(move |s| s.renew_jobs(&owner, &ask, length))
            .await
        {
            Ok(renewed) => self.renewed(asked, &live, &renewed),
            Err(e) => crate::telemetry::replicas::renew_failed(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn leases() -> Arc<JobLeases> {
        JobLeases::new(
            "me".into(),
            LeaseTerms {
                length: Duration::from_secs(10),
                renew_every: Duration::from_secs(3),
            },
        )
    }

    #[test]
    fn a_claim_not_renewed_in_time_is_lost() {
        let l = leases();
        let t0 = Instant::now();
        l.add(1, 7, t0);
        l.add(2, 8, t0);
        assert_eq!(
            l.expire(t0 + Duration::from_secs(5)),
            Some(t0 + Duration::from_secs(10))
        );
        l.renewed(t0 + Duration::from_secs(3), &[(1, 7), (2, 8)], &[1]);
        assert!(l.lost(2).is_cancelled(), "taken over by another replica");
        assert!(!l.lost(1).is_cancelled());
        assert_eq!(l.live(), vec![(1, 7)]);
        l.expire(t0 + Duration::from_secs(14));
        assert!(l.lost(1).is_cancelled(), "renewed until 13 s only");
        assert_eq!(l.remove(1), Some(7), "the fence stays known until released");
    }

    #[test]
    fn an_attempt_carries_its_claims_fence() {
        let l = leases();
        l.add(5, 42, Instant::now());
        let w = l.fenced(5, Write::Dismiss(vec![]));
        assert!(matches!(w, Write::Fenced(Fence::Jobs(ref f), _) if f == &[(5, 42)]));
        let unknown = l.fenced(6, Write::Dismiss(vec![]));
        assert!(matches!(unknown, Write::Fenced(Fence::Jobs(ref f), _) if f == &[(6, -1)]));
    }
}
