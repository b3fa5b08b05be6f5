//! A stream's transform invocations in flight (`transform.concurrency`): up to one batch per
//! runtime at once, their outcomes handed back strictly in the order the batches were
//! submitted. Order is what keeps the guarantees: a destination's cursor may only pass records
//! whose outcome it has, so a later batch that finishes first waits behind the earlier one.
//! Runs of records that never reach the transform (failed decompression, say) queue as already
//! finished, so they too come out in log order.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::Transform;
use crate::processing::{Processed, RecordOutcome};
use crate::record::Record;

/// A run of consecutive log records with its outcome, ready for the destinations.
pub(crate) struct Finished {
    /// The log records the run covers (for backups and shard ends).
    pub(crate) source: Arc<[Record]>,
    pub(crate) processed: Processed,
    /// The log position the run covers up to (exclusive).
    pub(crate) end: u64,
}

/// An invocation's task hands its runtime back with the outcomes.
type Invocation = JoinHandle<(Transform, Vec<RecordOutcome>)>;

enum Slot {
    Ready(Finished),
    /// Submitted while every runtime was busy: starts when one is handed back.
    Waiting {
        source: Arc<[Record]>,
        end: u64,
    },
    Running {
        source: Arc<[Record]>,
        end: u64,
        task: Invocation,
    },
}

/// The invocation task ended without handing its runtime back (it panicked): a bug. The
/// batch's records have no outcome; the caller stops, and a restart replays them.
#[derive(Debug, thiserror::Error)]
#[error("a transform invocation task failed: {0}")]
pub(crate) struct InvocationLost(String);

pub(crate) struct TransformPool {
    idle: Vec<Transform>,
    queue: VecDeque<Slot>,
    /// Runs queued as Ready, and the bytes of their log records: bounded (`ready_full`), as
    /// the destinations' channels bound what is dispatched directly.
    ready: usize,
    ready_bytes: usize,
}

/// At most this many runs, or bytes of their records, wait as Ready behind the batches in flight
/// (records that fail before the transform could otherwise pile up while one invocation takes
/// its time).
const MAX_READY: usize = 1024;
const MAX_READY_BYTES: usize = 16 * 1024 * 1024;

impl TransformPool {
    /// A pool of the given runtimes (one invocation in flight per runtime).
    pub(crate) fn new(transforms: Vec<Transform>) -> Self {
        TransformPool {
            idle: transforms,
            queue: VecDeque::new(),
            ready: 0,
            ready_bytes: 0,
        }
    }

    /// Whether a batch can be submitted now.
    pub(crate) fn has_idle(&self) -> bool {
        !self.idle.is_empty()
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Starts the invocation of `source` (covering the log up to `end`) on an idle runtime.
    /// Callers wait for one first (`has_idle`, `next`), which bounds what is in flight;
    /// without one the batch still queues, to start on the first runtime handed back.
    pub(crate) fn submit(&mut self, source: Arc<[Record]>, end: u64) {
        debug_assert!(self.has_idle(), "a batch submitted with every runtime busy");
        let slot = match self.idle.pop() {
            Some(transform) => start(transform, source, end),
            None => Slot::Waiting { source, end },
        };
        self.queue.push_back(slot);
    }

    /// Queues a run that needed no invocation, behind every batch submitted before it.
    pub(crate) fn push_ready(&mut self, finished: Finished) {
        self.ready += 1;
        self.ready_bytes += source_bytes(&finished.source);
        self.queue.push_back(Slot::Ready(finished));
    }

    /// Whether the Ready runs are at their bound: the caller takes `next` before pushing more.
    pub(crate) fn ready_full(&self) -> bool {
        self.ready >= MAX_READY || self.ready_bytes >= MAX_READY_BYTES
    }

    /// Whether the oldest queued run has its outcome (`next` would not wait).
    pub(crate) fn front_finished(&self) -> bool {
        match self.queue.front() {
            Some(Slot::Ready(_)) => true,
            Some(Slot::Running { task, .. }) => task.is_finished(),
            Some(Slot::Waiting { .. }) | None => false,
        }
    }

    /// The oldest queued run once its outcome is in; None when nothing is queued. Cancel-safe:
    /// the run stays queued until its outcome is taken.
    pub(crate) async fn next(&mut self) -> Option<Result<Finished, InvocationLost>> {
        let result = match self.queue.front_mut()? {
            Slot::Ready(_) | Slot::Waiting { .. } => None,
            Slot::Running { task, .. } => Some(task.await),
        };
        let slot = self.queue.pop_front()?;
        let finished = match (slot, result) {
            (Slot::Ready(f), _) => {
                self.ready -= 1;
                self.ready_bytes -= source_bytes(&f.source);
                f
            }
            (Slot::Running { source, end, .. }, Some(Ok((transform, outcomes)))) => {
                self.hand_back(transform);
                let mut processed = Processed::default();
                for o in outcomes {
                    processed.push(o);
                }
                Finished {
                    source,
                    processed,
                    end,
                }
            }
            (Slot::Running { .. }, Some(Err(e))) => {
                return Some(Err(InvocationLost(e.to_string())));
            }
            // Only a runtime handed back starts a waiting batch, and the one in front is
            // never waiting while runtimes are idle; none is left if every task was lost.
            (slot @ Slot::Waiting { .. }, _) => {
                self.queue.push_front(slot);
                return Some(Err(InvocationLost("no runtime is left to invoke".into())));
            }
            (Slot::Running { .. }, None) => return None,
        };
        Some(Ok(finished))
    }

    /// A runtime back from an invocation takes the oldest waiting batch, if any.
    fn hand_back(&mut self, transform: Transform) {
        let waiting = self
            .queue
            .iter()
            .position(|s| matches!(s, Slot::Waiting { .. }));
        if let Some(i) = waiting
            && let Some(Slot::Waiting { source, end }) = self.queue.get(i)
        {
            let (source, end) = (source.clone(), *end);
            self.queue[i] = start(transform, source, end);
        } else {
            self.idle.push(transform);
        }
    }

    /// Stops every runtime, once what is queued is taken (the caller drains `next` first).
    pub(crate) async fn close(mut self) {
        while let Some(slot) = self.queue.pop_front() {
            if let Slot::Running { task, .. } = slot
                && let Ok((transform, _)) = task.await
            {
                self.idle.push(transform);
            }
        }
        for mut t in self.idle {
            t.close().await;
        }
    }
}

fn source_bytes(source: &[Record]) -> usize {
    source.iter().map(|r| r.data.len()).sum()
}

/// The invocation of `source` on `transform`, as a task.
fn start(mut transform: Transform, source: Arc<[Record]>, end: u64) -> Slot {
    let records = source.clone();
    let task = tokio::spawn(async move {
        let outcomes = transform.process(&records).await;
        (transform, outcomes)
    });
    Slot::Running { source, end, task }
}
