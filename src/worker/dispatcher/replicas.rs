//! The dispatcher's side of replicas sharing the journal (DESIGN.md §13, `worker::lease`):
//! claiming due jobs in the journal, journaling an attempt under its claim's fence, giving up a
//! delivery whose claim was lost. With a journal that is not shared these are the plain calls.

use super::*;

/// How many jobs one look claims, and below how many claimed it looks again. In a shared journal
/// a replica claims only about what it can start soon (twice its delivery permits), so due jobs
/// spread over the replicas and a replica that dies strands few of them until their lease ends.
pub(super) fn claim_sizes(shared: bool, concurrency: usize) -> (usize, usize) {
    match shared {
        false => (CLAIM_BATCH, REFILL_BELOW),
        true => (concurrency.max(1) * 2, concurrency.max(1)),
    }
}

impl Shared {
    /// Due jobs, claimed in the journal for this replica when it is shared.
    pub(super) async fn claim_due(
        &self,
        reader: &Reader,
        limit: usize,
    ) -> Result<Vec<Claimed<Job>>, JournalError> {
        let (owner, length) = (self.owner.clone(), self.terms.length);
        reader
            .read(move |s| s.claim_jobs(&owner, Timestamp::now(), length, limit))
            .await
    }

    /// Journals an attempt's outcome, or holds it when the journal fails.
    pub(super) async fn journal_attempt(&self, outcome: AttemptOutcome) {
        let job_id = outcome.job_id;
        match self
            .journal
            .write(self.attempt_write(outcome.clone()))
            .await
        {
            Err(e) => {
                telemetry::attempt_unjournaled(None, &e);
                self.hold(outcome);
                return; // held: the claim and its fence stay until it is journaled
            }
            Ok(Written::Fenced) => telemetry::replicas::fenced_off(Fenced::Attempt, &job_id),
            Ok(_) => {}
        }
        if let Some(leases) = &self.leases {
            leases.remove(job_id);
        }
    }

    /// The write recording an attempt: fenced by the job's claim in a shared journal.
    pub(super) fn attempt_write(&self, outcome: AttemptOutcome) -> Write {
        match &self.leases {
            Some(leases) => leases.fenced(outcome.job_id, Write::Attempt(outcome)),
            None => Write::Attempt(outcome),
        }
    }

    /// Runs the job's action; `None` when this replica lost its claim first (not renewed in
    /// time, or taken over): the delivery is abandoned and nothing is journaled.
    pub(super) async fn execute_while_claimed(
        &self,
        job: &Job,
        ctx: &JobContext,
    ) -> Option<Result<(), ActionError>> {
        let Some(leases) = &self.leases else {
            return Some(self.execute(job, ctx).await);
        };
        let lost = leases.lost(job.id);
        tokio::select! {
            biased;
            _ = lost.cancelled() => None,
            result = self.execute(job, ctx) => Some(result),
        }
    }

    /// Lets go of a job whose claim was lost, without journaling anything.
    pub(super) fn abandon(&self, job_id: i64) {
        if let Some(leases) = &self.leases {
            leases.remove(job_id);
        }
        self.release(job_id);
        self.wake.notify_one();
    }
}
