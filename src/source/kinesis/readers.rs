//! The shard readers of one stream, each with its own stop: discovery (file checkpoints) or
//! the lease manager starts and stops them one shard at a time.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::metrics::KinesisMetrics;
use super::shard::{self, ReadEnd, Shared, Start, Tenure};

struct Task {
    stop: watch::Sender<bool>,
    handle: JoinHandle<ReadEnd>,
}

pub(crate) struct Readers {
    shared: Arc<Shared>,
    metrics: Arc<KinesisMetrics>,
    label: String,
    tasks: HashMap<String, Task>,
    /// Wakes the coordinator when a reader ends on its own (its children may start).
    wake: mpsc::Sender<()>,
}

impl Readers {
    pub(crate) fn new(
        shared: Arc<Shared>,
        metrics: Arc<KinesisMetrics>,
        label: String,
        wake: mpsc::Sender<()>,
    ) -> Readers {
        Readers {
            shared,
            metrics,
            label,
            tasks: HashMap::new(),
            wake,
        }
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn is_reading(&self, shard: &str) -> bool {
        self.tasks.contains_key(shard)
    }

    /// Starts reading `shard`; `lease`: the lease it reads under (None: no lease table).
    pub(crate) fn spawn(&mut self, shard: &str, start: Start, lease: Option<Tenure>) {
        tracing::info!(stream = %self.label, shard = %shard, start = ?start, "reading shard");
        let (stop, stop_rx) = watch::channel(false);
        let (shared, m, wake) = (
            self.shared.clone(),
            self.metrics.shard(shard),
            self.wake.clone(),
        );
        let id: Arc<str> = shard.into();
        let handle = tokio::spawn(async move {
            let outcome = shard::read(shared, id, start, m, stop_rx, lease).await;
            let _ = wake.try_send(());
            outcome
        });
        self.tasks.insert(shard.to_string(), Task { stop, handle });
    }

    /// Stops one reader and waits for it: what it appended is in the log, nothing more comes.
    pub(crate) async fn stop(&mut self, shard: &str) -> Option<ReadEnd> {
        let task = self.tasks.remove(shard)?;
        let _ = task.stop.send(true);
        let end = task.handle.await.ok();
        tracing::info!(stream = %self.label, shard = %shard, "stopped reading shard");
        end
    }

    pub(crate) async fn stop_all(&mut self) {
        for task in self.tasks.values() {
            let _ = task.stop.send(true);
        }
        for (_, task) in self.tasks.drain() {
            let _ = task.handle.await;
        }
    }

    /// The readers that ended on their own (or failed), with how.
    pub(crate) async fn reap(&mut self) -> Vec<(String, ReadEnd)> {
        let done: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.handle.is_finished())
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for id in done {
            if let Some(task) = self.tasks.remove(&id)
                && let Ok(end) = task.handle.await
            {
                if matches!(end, ReadEnd::Ended) {
                    tracing::info!(stream = %self.label, shard = %id, "shard read to its end");
                }
                out.push((id, end));
            }
        }
        out
    }
}

/// Readers never outlive their owner: a coordinator that ends (or is aborted) takes its
/// readers with it.
impl Drop for Readers {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.handle.abort();
        }
    }
}
