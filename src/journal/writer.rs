//! Group commit: one thread owns the store's write side; appends queue up while a transaction is
//! in flight and go into the next one together. Every caller is answered only after the commit
//! that holds its event.

use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{Appended, JournalError, Store};
use crate::event::Incoming;

/// Upper bound on appends per transaction, so one commit never holds callers for long.
const MAX_BATCH: usize = 1024;

type Reply = oneshot::Sender<Result<Appended, JournalError>>;

/// The handle the intake server appends through. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<(Incoming, Reply)>,
}

/// Owns the writer thread; [`WriterHandle::close`] finishes queued appends and joins it.
pub struct WriterHandle {
    thread: Option<JoinHandle<()>>,
}

impl Journal {
    /// Starts the writer thread over `store`.
    pub fn start<S: Store>(store: S, dedupe_window: Duration) -> (Journal, WriterHandle) {
        let (tx, rx) = mpsc::channel(MAX_BATCH * 4);
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || write_loop(store, rx, dedupe_window))
            .expect("spawning the journal writer thread");
        (
            Journal { tx },
            WriterHandle {
                thread: Some(thread),
            },
        )
    }

    /// Appends one delivery; resolves once it is committed (or found to be a duplicate).
    pub async fn append(&self, incoming: Incoming) -> Result<Appended, JournalError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((incoming, reply))
            .await
            .map_err(|_| JournalError::Closed)?;
        answer.await.map_err(|_| JournalError::Closed)?
    }
}

impl WriterHandle {
    /// Waits for the writer to commit what is queued and stop. Every [`Journal`] clone must be
    /// dropped first, or this waits for them.
    pub fn close(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_loop<S: Store>(
    mut store: S,
    mut rx: mpsc::Receiver<(Incoming, Reply)>,
    dedupe_window: Duration,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some((incoming, reply)) = next {
            batch.push(incoming);
            replies.push(reply);
            next = if batch.len() < MAX_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        match store.append_batch(&batch, dedupe_window) {
            Ok(outcomes) => {
                for (reply, outcome) in replies.drain(..).zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = batch.len(), "journal commit failed");
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(JournalError::CommitFailed(e.to_string())));
                }
            }
        }
        batch.clear();
    }
}
