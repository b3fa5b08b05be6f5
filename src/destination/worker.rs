//! One destination of a delivery stream: a worker that stages records and seals objects on
//! size, interval, flush and close, and an uploader that delivers sealed objects in order,
//! retrying until they are written.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::retry::{Backoff, LogGate};
use super::sink::Sink;
use super::staging::{Sealed, Stager};
use crate::metrics::DestinationMetrics;
use crate::record::Record;

/// Messages to a destination worker.
pub enum Input {
    /// Records, with the share of the in-flight byte budget they hold until they are staged.
    Records(Arc<[Record]>, OwnedSemaphorePermit),
    /// Seal what is buffered; answer with the keys written since the previous flush once every
    /// sealed object is delivered.
    Flush(oneshot::Sender<Vec<String>>),
}

enum Upload {
    Object(Sealed),
    Barrier(oneshot::Sender<Vec<String>>),
}

/// Sealed objects that may wait for delivery at once, per destination.
const UPLOAD_QUEUE: usize = 2;
/// Record bytes handed to a destination but not yet staged: producers wait beyond this, so
/// memory does not grow with traffic.
pub const IN_FLIGHT_BYTES: usize = 8 * 1024 * 1024;
/// Keys remembered for the next flush answer (the oldest are forgotten beyond this).
const MAX_FLUSH_KEYS: usize = 10_000;
/// Messages in a worker's queue (the byte budget is the real bound).
const INPUT_QUEUE: usize = 1024;

/// Told, on a blocking thread, that every record below the given sequence number is delivered
/// (the spool moves the destination's cursor and reclaims space).
pub type OnDelivered = Arc<dyn Fn(u64) -> std::io::Result<()> + Send + Sync>;

pub struct DestinationHandle {
    tx: mpsc::Sender<Input>,
    budget: Arc<Semaphore>,
    task: JoinHandle<()>,
}

impl DestinationHandle {
    /// Starts the worker and its uploader.
    pub fn spawn(
        label: String,
        stager: Stager,
        interval: Duration,
        sink: Sink,
        metrics: Arc<DestinationMetrics>,
        on_delivered: OnDelivered,
    ) -> Self {
        let (tx, rx) = mpsc::channel(INPUT_QUEUE);
        let (up_tx, up_rx) = mpsc::channel(UPLOAD_QUEUE);
        let uploader = tokio::spawn(upload_loop(
            label.clone(),
            up_rx,
            sink,
            metrics.clone(),
            on_delivered,
        ));
        let worker = Worker {
            label,
            stager: Arc::new(Mutex::new(stager)),
            interval,
            uploads: up_tx,
            metrics,
            opened: None,
        };
        let task = tokio::spawn(worker.run(rx, uploader));
        DestinationHandle {
            tx,
            budget: Arc::new(Semaphore::new(IN_FLIGHT_BYTES)),
            task,
        }
    }

    /// Hands records to the worker; waits while the in-flight byte budget is spent
    /// (backpressure). False when the worker is gone.
    pub async fn send_records(&self, batch: Arc<[Record]>, bytes: usize) -> bool {
        let want = bytes.clamp(1, IN_FLIGHT_BYTES) as u32;
        let Ok(permit) = self.budget.clone().acquire_many_owned(want).await else {
            return false;
        };
        self.tx.send(Input::Records(batch, permit)).await.is_ok()
    }

    pub async fn send(&self, input: Input) -> bool {
        self.tx.send(input).await.is_ok()
    }

    /// Seals what is buffered, delivers everything, and stops.
    pub async fn close(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

struct Worker {
    label: String,
    stager: Arc<Mutex<Stager>>,
    interval: Duration,
    uploads: mpsc::Sender<Upload>,
    metrics: Arc<DestinationMetrics>,
    opened: Option<Instant>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Input>, uploader: JoinHandle<()>) {
        loop {
            let deadline = self.opened.map(|o| o + self.interval);
            let input = tokio::select! {
                input = rx.recv() => input,
                () = sleep_until(deadline) => {
                    self.seal().await;
                    continue;
                }
            };
            match input {
                Some(Input::Records(batch, permit)) => {
                    self.append(batch).await;
                    drop(permit);
                }
                Some(Input::Flush(reply)) => {
                    self.seal().await;
                    let _ = self.uploads.send(Upload::Barrier(reply)).await;
                }
                None => break,
            }
        }
        self.seal().await;
        drop(self.uploads);
        let _ = uploader.await;
    }

    /// Runs a staging step on the blocking pool (compression and file I/O).
    async fn staging<T: Send + 'static>(
        &self,
        step: impl FnOnce(&mut Stager) -> T + Send + 'static,
    ) -> (T, Option<Instant>, Option<i64>) {
        let stager = self.stager.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut s = stager.lock().unwrap_or_else(|p| p.into_inner());
            let out = step(&mut s);
            (out, s.opened(), s.oldest_ms())
        })
        .await;
        match joined {
            Ok(v) => v,
            Err(e) => fatal(&self.label, &format!("staging task failed: {e}")),
        }
    }

    async fn append(&mut self, batch: Arc<[Record]>) {
        let now = Instant::now();
        let (result, opened, oldest) = self.staging(move |s| s.append(&batch, now)).await;
        self.opened = opened;
        self.metrics.set_staging_oldest(oldest);
        match result {
            Ok(sealed) => {
                for object in sealed {
                    self.send(object).await;
                }
            }
            Err((e, _)) => {
                self.metrics.staging_errors.add(1);
                fatal(
                    &self.label,
                    &format!("cannot stage records on local disk: {e}"),
                );
            }
        }
    }

    async fn seal(&mut self) {
        let (result, opened, oldest) = self.staging(|s| s.seal()).await;
        self.opened = opened;
        self.metrics.set_staging_oldest(oldest);
        match result {
            Ok(Some(object)) => self.send(object).await,
            Ok(None) => {}
            Err(e) => {
                self.metrics.staging_errors.add(1);
                fatal(&self.label, &format!("cannot seal a staged object: {e}"));
            }
        }
    }

    async fn send(&self, object: Sealed) {
        self.metrics.sealed(object.id, object.oldest_ms);
        let _ = self.uploads.send(Upload::Object(object)).await;
    }
}

/// A local disk error while staging: the records of the object being built can no longer be
/// delivered by this process, and a later object must not move the spool cursor past them.
/// Exit at once (no later object is ever sealed or delivered); after a restart every record
/// past the cursor is replayed from the spool.
fn fatal(label: &str, message: &str) -> ! {
    tracing::error!(destination = %label, error = %message,
        "stopping: records past the delivered cursor will be replayed after a restart");
    eprintln!("error: destination {label}: {message}");
    std::process::exit(1);
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn upload_loop(
    label: String,
    mut rx: mpsc::Receiver<Upload>,
    sink: Sink,
    metrics: Arc<DestinationMetrics>,
    on_delivered: OnDelivered,
) {
    let mut since_flush = Vec::new();
    while let Some(upload) = rx.recv().await {
        match upload {
            Upload::Object(object) => {
                deliver(&label, &sink, &object, &metrics).await;
                let next = object.next_seq;
                let ack = on_delivered.clone();
                match tokio::task::spawn_blocking(move || ack(next)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(destination = %label, error = %e,
                        "cannot record the delivery; its records will be delivered again after a restart"),
                    Err(e) => {
                        tracing::error!(destination = %label, error = %e, "delivery bookkeeping failed")
                    }
                }
                if since_flush.len() >= MAX_FLUSH_KEYS {
                    since_flush.remove(0);
                }
                since_flush.push(object.key);
            }
            Upload::Barrier(reply) => {
                let _ = reply.send(std::mem::take(&mut since_flush));
            }
        }
    }
}

/// Delivers one object, retrying until it is written: transient failures with a short backoff,
/// others (an operator must act) with a long one. Logs the first failure and then one line per
/// half minute, so an outage does not flood the log.
async fn deliver(label: &str, sink: &Sink, object: &Sealed, metrics: &DestinationMetrics) {
    let mut fast = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
    let mut slow = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let mut gate = LogGate::new(Duration::from_secs(30));
    let mut failures = 0u32;
    loop {
        match sink.deliver(object).await {
            Ok(()) => break,
            Err(e) => {
                failures += 1;
                metrics.put_failures.add(1);
                if gate.should_log(Instant::now()) {
                    tracing::warn!(destination = %label, key = %object.key, attempts = failures,
                        transient = e.transient, error = %e.message,
                        "delivery failed; retrying (records are kept)");
                }
                let delay = if e.transient {
                    fast.next_delay()
                } else {
                    slow.next_delay()
                };
                tokio::time::sleep(delay).await;
            }
        }
    }
    if failures > 0 {
        tracing::info!(destination = %label, key = %object.key, attempts = failures + 1,
            "delivery recovered");
    }
    let _ = tokio::fs::remove_file(&object.path).await;
    metrics.put_success.add(1);
    metrics.delivered_objects.add(1);
    metrics.delivered_records.add(object.records);
    metrics.delivered_bytes.add(object.raw_bytes);
    metrics.delivered_object_bytes.add(object.size);
    metrics.delivered(object.id);
    tracing::debug!(destination = %label, key = %object.key, records = object.records,
        bytes = object.size, "object delivered");
}
