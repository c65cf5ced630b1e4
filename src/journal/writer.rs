//! Group commit: one thread owns the store's write side; writes queue up while a transaction is
//! in flight and go into the next one together. Every caller is answered only after the commit
//! that holds its write.
//!
//! Every commit's outcome goes to the shared [`JournalHealth`]: intake refuses webhooks at once
//! while commits fail, and `/healthz` reports why. Failures are logged rate-limited (a full disk
//! fails every batch), and the recovery once.

use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use super::{Appended, Handoff, JournalError, JournalHealth, Processed, Store, Write, Written};
use crate::model::event::Incoming;
use crate::telemetry;

/// Upper bound on writes per transaction, so one commit never holds callers for long.
const MAX_BATCH: usize = 1024;

type Reply = oneshot::Sender<Result<Written, JournalError>>;

/// The handle the intake server and the pipeline write through. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<(Write, Reply)>,
    health: Arc<JournalHealth>,
    handoff: Arc<Handoff>,
}

/// Runs on the writer thread once its last commit is done (e.g. a final WAL checkpoint).
pub type OnClose = Box<dyn FnOnce() + Send>;

impl Journal {
    /// Starts the writer thread over `store`, tracked by `tracker`. After each commit that added
    /// events, `appended` (if given) is rung so the pipeline wakes up without polling.
    ///
    /// The thread commits until the last [`Journal`] clone is dropped, so it closes after the
    /// last write of every task that held one; then it runs `on_close` and ends, and `tracker`
    /// sees it gone.
    pub fn start<S: Store>(
        store: S,
        dedupe_window: Duration,
        appended: Option<SyncSender<()>>,
        tracker: &TaskTracker,
        on_close: Option<OnClose>,
    ) -> Result<Journal, JournalError> {
        let (tx, rx) = mpsc::channel(MAX_BATCH * 4);
        let health = Arc::new(JournalHealth::new(store.files()));
        let handoff = Arc::new(Handoff::new());
        let writer = Writer {
            health: health.clone(),
            dedupe_window,
            appended,
            handoff: handoff.clone(),
        };
        let tracked = tracker.token();
        std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || {
                writer.run(store, rx);
                if let Some(f) = on_close {
                    f();
                }
                drop(tracked);
            })
            .map_err(|e| JournalError::Open {
                path: String::new(),
                reason: format!("cannot start the journal writer thread: {e}"),
            })?;
        Ok(Journal {
            tx,
            health,
            handoff,
        })
    }

    /// The events this writer committed, in memory for the pipeline (see [`Handoff`]); from
    /// this call on the writer keeps them.
    pub fn handoff(&self) -> Arc<Handoff> {
        self.handoff.subscribe();
        self.handoff.clone()
    }

    /// Whether commits work right now (shared with intake and `/healthz`).
    pub fn health(&self) -> Arc<JournalHealth> {
        self.health.clone()
    }

    /// `Err` with the reason when commits are failing and this write should be refused at once
    /// (see [`JournalHealth::admit`]).
    pub fn admit(&self) -> Result<(), super::Problem> {
        self.health.admit()
    }

    /// Commits one write; resolves once the transaction holding it is durable.
    pub async fn write(&self, write: Write) -> Result<Written, JournalError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((write, reply))
            .await
            .map_err(|_| JournalError::Closed)?;
        answer.await.map_err(|_| JournalError::Closed)?
    }

    /// Commits one write from a blocking thread (the pipeline); returns once it is durable.
    pub fn write_blocking(&self, write: Write) -> Result<Written, JournalError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .blocking_send((write, reply))
            .map_err(|_| JournalError::Closed)?;
        answer.blocking_recv().map_err(|_| JournalError::Closed)?
    }

    /// Appends one delivery; resolves once it is committed (or found to be a duplicate).
    pub async fn append(&self, incoming: Incoming) -> Result<Appended, JournalError> {
        match self.write(Write::Append(Box::new(incoming))).await? {
            Written::Appended(a) => Ok(a),
            other => Err(JournalError::CommitFailed(format!(
                "unexpected answer {other:?}"
            ))),
        }
    }

    /// Commits processed events from a blocking thread (the pipeline). All are queued before
    /// any answer is awaited, so they share commits. Each answer is `false` if that event had
    /// already been processed, or (under a `fence`: replicas) the pipeline lease had moved.
    pub fn processed_many_blocking(
        &self,
        processed: Vec<Processed>,
        fence: Option<&super::Fence>,
    ) -> Vec<Result<bool, JournalError>> {
        let answers: Vec<Option<_>> = processed
            .into_iter()
            .map(|p| {
                let (reply, answer) = oneshot::channel();
                let write = match fence {
                    Some(f) => Write::Fenced(f.clone(), Box::new(Write::Processed(p))),
                    None => Write::Processed(p),
                };
                let queued = self.tx.blocking_send((write, reply)).is_ok();
                queued.then_some(answer)
            })
            .collect();
        answers
            .into_iter()
            .map(|a| {
                let answer = a.ok_or(JournalError::Closed)?;
                match answer.blocking_recv().map_err(|_| JournalError::Closed)?? {
                    Written::Processed(done) => Ok(done),
                    Written::Fenced => {
                        let what = crate::telemetry::replicas::Fenced::Planned;
                        crate::telemetry::replicas::fenced_off(what, &"an event");
                        Ok(false)
                    }
                    other => Err(JournalError::CommitFailed(format!(
                        "unexpected answer {other:?}"
                    ))),
                }
            })
            .collect()
    }
}

/// The writer thread's side.
struct Writer {
    health: Arc<JournalHealth>,
    dedupe_window: Duration,
    appended: Option<SyncSender<()>>,
    handoff: Arc<Handoff>,
}

impl Writer {
    fn run<S: Store>(self, mut store: S, mut rx: mpsc::Receiver<(Write, Reply)>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut replies = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            while let Some((write, reply)) = next {
                batch.push(write);
                replies.push(reply);
                next = if batch.len() < MAX_BATCH {
                    rx.try_recv().ok()
                } else {
                    None
                };
            }
            match store.write_batch(&batch, self.dedupe_window) {
                Ok(outcomes) => {
                    self.hand_off(&mut batch, &outcomes);
                    self.committed(&outcomes);
                    for (reply, outcome) in replies.drain(..).zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Err(e) => {
                    self.failed(&e, batch.len());
                    for reply in replies.drain(..) {
                        let _ = reply.send(Err(JournalError::CommitFailed(e.to_string())));
                    }
                }
            }
            batch.clear();
            store.between_batches();
        }
    }

    /// Moves the events this commit appended to the pipeline's hand-off (before the pipeline
    /// is rung).
    fn hand_off(&self, batch: &mut Vec<Write>, outcomes: &[Written]) {
        for (write, outcome) in batch.drain(..).zip(outcomes) {
            if let (Write::Append(incoming), Written::Appended(a)) = (write, outcome) {
                if !a.duplicate {
                    self.handoff.put(incoming.event);
                }
            }
        }
    }

    fn committed(&self, outcomes: &[Written]) {
        if let Some(problem) = self.health.recovered() {
            telemetry::journal_recovered(&problem.since.to_rfc3339());
        }
        let added = outcomes
            .iter()
            .any(|o| matches!(o, Written::Appended(a) if !a.duplicate));
        if let (true, Some(bell)) = (added, &self.appended) {
            let _ = bell.try_send(());
        }
    }

    fn failed(&self, e: &JournalError, writes: usize) {
        let first = self.health.failed(e.public_reason());
        telemetry::journal_commit_failed(e, writes, first);
    }
}
