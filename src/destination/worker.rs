//! One destination of a delivery stream: a worker that stages records and seals objects on
//! size, interval, flush and close, and an uploader that delivers sealed objects in order,
//! retrying until they are written. Besides the main objects a destination writes error
//! objects (one stager per error-output-type) and, optionally, source-record backups; the
//! `Watermark` moves the log cursor once all of them hold nothing older.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::shards::{Stagers, Staging};
use super::sink::{DeliveryError, Sink, Written};
use super::stagers::{Delivery, Kind, StepResult};
use super::staging::Sealed;
use super::watermark::Watermark;
use crate::disk::{Claim, Patience, StagingRoom};
use crate::fatal::FatalSender;
use crate::metrics::DestinationMetrics;
use crate::report::Chain;
use crate::retry::{Backoff, LogGate};
use crate::sync::Lock;

/// Messages to a destination worker.
pub(crate) enum Input {
    /// Records, with the share of the in-flight byte budget they hold until they are staged.
    Records(Delivery, OwnedSemaphorePermit),
    /// Seal what is buffered; answer with the keys written since the previous flush once every
    /// sealed object is delivered.
    Flush(oneshot::Sender<Vec<String>>),
}

enum Upload {
    /// The objects one staging step sealed, in order (a sink that commits them together, an
    /// Iceberg table's, makes one snapshot of them).
    Objects(Vec<(Sealed, Kind)>),
    /// The watermark may have moved without an object (dropped records).
    Advance,
    Barrier(oneshot::Sender<Vec<String>>),
}

/// Staging steps whose sealed objects may wait for delivery at once, per destination.
const UPLOAD_QUEUE: usize = 2;
/// Record bytes handed to a destination but not yet staged: producers wait beyond this, so
/// memory does not grow with traffic.
pub(crate) const IN_FLIGHT_BYTES: usize = 8 * 1024 * 1024;
/// Free space claimed beyond a delivery's bytes (and an eighth) before it is staged (see
/// `Worker::claim_room`).
const STAGING_MARGIN: u64 = 1024 * 1024;
/// How long a step waits for its claim, with nothing open, before it goes on without one.
const CLAIM_PATIENCE: Duration = Duration::from_secs(5);
/// Keys remembered for the next flush answer (the oldest are forgotten beyond this).
const MAX_FLUSH_KEYS: usize = 10_000;
/// Messages in a worker's queue (the byte budget is the real bound).
const INPUT_QUEUE: usize = 1024;
/// Told, on a blocking thread, that every record below the given sequence number is delivered
/// (the spool moves the destination's cursor and reclaims space).
pub(crate) type OnDelivered = Arc<dyn Fn(u64) -> std::io::Result<()> + Send + Sync>;

pub(crate) struct DestinationHandle {
    tx: mpsc::Sender<Input>,
    budget: Arc<Semaphore>,
    task: JoinHandle<()>,
}

/// What a destination's worker starts with.
pub(crate) struct WorkerSetup {
    /// `stream[i]`, for logs.
    pub(crate) label: String,
    pub(crate) plan: Staging,
    /// The buffering interval.
    pub(crate) interval: Duration,
    pub(crate) sink: Sink,
    pub(crate) metrics: Arc<DestinationMetrics>,
    pub(crate) on_delivered: OnDelivered,
    /// Where the destination's log cursor is.
    pub(crate) cursor: u64,
    /// Where a staging failure is reported (the worker stops; the process exits).
    pub(crate) fatal: FatalSender,
    /// Free space on the staging filesystem, claimed by each step before it writes.
    pub(crate) room: Arc<StagingRoom>,
    /// Counts and logs the waits for space.
    pub(crate) patience: Arc<Patience>,
    /// An Iceberg destination's router: the tables a delivery's records go to are read from
    /// the catalog before the delivery is staged.
    pub(crate) tables: Option<Arc<crate::destination::iceberg::Router>>,
}

impl DestinationHandle {
    /// Starts the worker and its uploader.
    pub(crate) fn spawn(setup: WorkerSetup) -> Self {
        let WorkerSetup {
            label,
            plan,
            interval,
            sink,
            metrics,
            on_delivered,
            cursor,
            fatal,
            room,
            patience,
            tables,
        } = setup;
        let (tx, rx) = mpsc::channel(INPUT_QUEUE);
        let (up_tx, up_rx) = mpsc::channel(UPLOAD_QUEUE);
        let watermark = Arc::new(Watermark::new(cursor));
        let uploader = tokio::spawn(upload_loop(
            label.clone(),
            up_rx,
            sink,
            metrics.clone(),
            on_delivered,
            watermark.clone(),
        ));
        let stagers = Stagers::new(plan, metrics.clone());
        let worker = Worker {
            label,
            stagers: Arc::new(Mutex::new(stagers)),
            interval,
            uploads: up_tx,
            metrics,
            opened: None,
            watermark,
            fatal,
            failed: false,
            room,
            patience,
            tables,
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
    pub(crate) async fn send_records(&self, delivery: Delivery) -> bool {
        let want = delivery.bytes().clamp(1, IN_FLIGHT_BYTES) as u32;
        let Ok(permit) = self.budget.clone().acquire_many_owned(want).await else {
            return false;
        };
        self.tx.send(Input::Records(delivery, permit)).await.is_ok()
    }

    pub(crate) async fn send(&self, input: Input) -> bool {
        self.tx.send(input).await.is_ok()
    }

    /// Seals what is buffered, delivers everything, and stops.
    pub(crate) async fn close(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

struct Worker {
    label: String,
    stagers: Arc<Mutex<Stagers>>,
    interval: Duration,
    uploads: mpsc::Sender<Upload>,
    metrics: Arc<DestinationMetrics>,
    /// When the earliest open object was opened.
    opened: Option<Instant>,
    watermark: Arc<Watermark>,
    fatal: FatalSender,
    /// A staging step failed: the worker takes nothing more (see `fail`).
    failed: bool,
    room: Arc<StagingRoom>,
    patience: Arc<Patience>,
    tables: Option<Arc<crate::destination::iceberg::Router>>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Input>, uploader: JoinHandle<()>) {
        while !self.failed {
            let deadline = self.opened.map(|o| o + self.interval);
            let input = tokio::select! {
                input = rx.recv() => input,
                () = sleep_until(deadline) => {
                    self.seal(Some(Instant::now())).await;
                    continue;
                }
            };
            match input {
                Some(Input::Records(delivery, permit)) => {
                    self.append(delivery).await;
                    drop(permit);
                }
                Some(Input::Flush(reply)) => {
                    self.seal(None).await;
                    // After a failed seal the flush fails (its reply is dropped): those records
                    // are not delivered by this process.
                    if !self.failed {
                        let _ = self.uploads.send(Upload::Barrier(reply)).await;
                    }
                }
                None => break,
            }
        }
        if self.failed {
            // What is sealed already is still delivered; nothing moves the cursor any more.
            drop(self.uploads);
            let _ = uploader.await;
            return;
        }
        self.seal(None).await;
        let _ = self.uploads.send(Upload::Advance).await;
        drop(self.uploads);
        let _ = uploader.await;
    }

    /// Runs a staging step on the blocking pool (compression and file I/O), then records the
    /// step in the watermark before any sealed object goes to the uploader.
    async fn staging(
        &mut self,
        handed: Option<u64>,
        step: impl FnOnce(&mut Stagers, Instant) -> StepResult + Send + 'static,
    ) {
        let stagers = self.stagers.clone();
        let watermark = self.watermark.clone();
        let now = Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            let mut s = stagers.locked();
            // Exactly-once: an object's identity is durable before it goes to the uploader.
            let out = step(&mut s, now)
                .and_then(|objects| s.record(&objects, watermark.durable()).map(|()| objects));
            let open = s.open();
            match &out {
                Ok(objects) => {
                    let sealed: Vec<(u64, u64)> =
                        objects.iter().map(|(o, _)| (o.id, o.first_seq)).collect();
                    watermark.staged(handed.unwrap_or(0), &open, &sealed);
                }
                // Records of this step may be lost with the process: the cursor must not move
                // again before it exits.
                Err(_) => watermark.poison(),
            }
            let nothing_open = open.iter().all(|(_, first)| first.is_none());
            let (opened, oldest) = s.times();
            (out, opened, oldest, nothing_open)
        })
        .await;
        let (result, opened, oldest, nothing_open) = match joined {
            Ok(v) => v,
            Err(e) => return self.fail(&format!("staging task failed: {e}")),
        };
        self.opened = opened;
        self.metrics.set_staging_oldest(oldest);
        match result {
            Ok(objects) => {
                let empty = objects.is_empty();
                for (object, _) in &objects {
                    self.metrics.sealed(object.id, object.oldest_ms);
                }
                if !empty {
                    let _ = self.uploads.send(Upload::Objects(objects)).await;
                }
                // Only dropped or skipped records, nothing open: the cursor may move without an
                // object. A full queue holds objects whose delivery re-checks the watermark.
                if empty && handed.is_some() && nothing_open {
                    let _ = self.uploads.try_send(Upload::Advance);
                }
            }
            Err(e) => {
                self.metrics.staging_errors.add(1);
                self.fail(&Chain(&e).to_string());
            }
        }
    }

    /// A local disk error while staging: the records of the object being built can no longer
    /// be delivered by this process, and a later object must not move the log cursor past
    /// them. The watermark freezes, the worker stops, and the process is told to exit; after a
    /// restart every record past the cursor is replayed.
    fn fail(&mut self, reason: &str) {
        self.watermark.poison();
        self.failed = true;
        tracing::error!(destination = %self.label, error = %reason,
            "staging failed: this destination takes no more records; they are replayed after a restart");
        self.fatal.report(&self.label, reason);
    }

    async fn append(&mut self, delivery: Delivery) {
        let need = delivery.bytes() as u64;
        let claim = self.claim_room(need + need / 8 + STAGING_MARGIN).await;
        if self.failed {
            return;
        }
        if let Some(tables) = &self.tables {
            tables.prepare(&delivery).await;
        }
        let end = delivery.end;
        self.staging(Some(end), move |s, now| s.append(delivery, now))
            .await;
        drop(claim);
    }

    /// Claims room for a step that may write `bytes`. Without it, the open objects are sealed
    /// first (smaller than their buffer), so that delivering them moves the cursor and gives
    /// spool space back: an open object must never need the very space its own records hold in
    /// the spool. With nothing open, it waits for space (sealed objects are still delivered); a
    /// claim that stays out of reach for `CLAIM_PATIENCE` lets the step go on, its writes
    /// waiting for space themselves (`PatientFile`).
    async fn claim_room(&mut self, bytes: u64) -> Option<Claim> {
        let since = Instant::now();
        loop {
            if let Some(claim) = self.room.claim(bytes) {
                return Some(claim);
            }
            if self.opened.is_some() {
                tracing::debug!(destination = %self.label, "little disk left: sealing early");
                self.seal(None).await;
                if self.failed {
                    return None;
                }
                continue;
            }
            if since.elapsed() >= CLAIM_PATIENCE {
                return None;
            }
            self.patience
                .note(&format_args!("{bytes} bytes to stage do not fit"));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Seals the open objects: all of them, or (`due`) those opened an interval before it.
    async fn seal(&mut self, due: Option<Instant>) {
        let interval = self.interval;
        self.staging(None, move |s, _| match due {
            None => s.seal_all(),
            Some(now) => s.seal_due(now, interval),
        })
        .await;
    }
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
    watermark: Arc<Watermark>,
) {
    let mut since_flush = Vec::new();
    while let Some(upload) = rx.recv().await {
        let moved = match upload {
            Upload::Objects(objects) => {
                deliver_step(&label, &sink, &objects, &metrics).await;
                let mut moved = None;
                for (object, _) in objects {
                    if since_flush.len() >= MAX_FLUSH_KEYS {
                        since_flush.remove(0);
                    }
                    since_flush.push(object.key);
                    moved = watermark.delivered(Some(object.id)).or(moved);
                }
                moved
            }
            Upload::Advance => watermark.delivered(None),
            Upload::Barrier(reply) => {
                let _ = reply.send(std::mem::take(&mut since_flush));
                // A queue of barriers may have crowded out an Advance: check here too.
                watermark.delivered(None)
            }
        };
        if let Some(next) = moved {
            let ack = on_delivered.clone();
            match tokio::task::spawn_blocking(move || ack(next)).await {
                Ok(Ok(())) => watermark.recorded(next),
                Ok(Err(e)) => tracing::error!(destination = %label, error = %e,
                    "cannot record the delivery; its records will be delivered again after a restart"),
                Err(e) => {
                    tracing::error!(destination = %label, error = %e, "delivery bookkeeping failed")
                }
            }
        }
    }
}

/// Delivers one staging step's objects: together when the sink commits them together (an
/// Iceberg destination: one snapshot per table), else one by one.
async fn deliver_step(
    label: &str,
    sink: &Sink,
    objects: &[(Sealed, Kind)],
    metrics: &DestinationMetrics,
) {
    let Sink::Iceberg(tables) = sink else {
        for (object, kind) in objects {
            deliver(label, sink, object, metrics, *kind).await;
        }
        return;
    };
    let mut pending: Vec<usize> = (0..objects.len()).collect();
    let mut retry = Retry::new();
    while !pending.is_empty() {
        let batch: Vec<(&Sealed, Kind)> = pending
            .iter()
            .map(|i| (&objects[*i].0, objects[*i].1))
            .collect();
        let results = tables.deliver_batch(&batch).await;
        let mut failed = Vec::new();
        let mut last = None;
        for (i, result) in pending.iter().zip(results) {
            match result {
                Ok(written) => {
                    done(
                        label,
                        &objects[*i].0,
                        metrics,
                        objects[*i].1,
                        written,
                        retry.failures,
                    )
                    .await
                }
                Err(e) => {
                    failed.push(*i);
                    last = Some(e);
                }
            }
        }
        if let Some(e) = last {
            retry.wait(label, &objects[failed[0]].0, metrics, &e).await;
        }
        pending = failed;
    }
}

/// The backoff and log gating of a delivery that failed.
struct Retry {
    fast: Backoff,
    slow: Backoff,
    gate: LogGate,
    failures: u32,
}

impl Retry {
    fn new() -> Retry {
        Retry {
            fast: Backoff::new(Duration::from_millis(100), Duration::from_secs(10)),
            slow: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
            gate: LogGate::new(Duration::from_secs(30)),
            failures: 0,
        }
    }

    /// Counts and (gated) logs the failure, then waits: transient failures briefly, others (an
    /// operator must act) longer.
    async fn wait(
        &mut self,
        label: &str,
        object: &Sealed,
        metrics: &DestinationMetrics,
        e: &DeliveryError,
    ) {
        self.failures += 1;
        metrics.put_failures.add(1);
        if self.gate.should_log(Instant::now()) {
            tracing::warn!(destination = %label, key = %object.key, attempts = self.failures,
                transient = e.transient, error = %e.message,
                "delivery failed; retrying (records are kept)");
        }
        let delay = if e.transient {
            self.fast.next_delay()
        } else {
            self.slow.next_delay()
        };
        tokio::time::sleep(delay).await;
    }
}

/// Delivers one object, retrying until it is written: transient failures with a short backoff,
/// others (an operator must act) with a long one. Logs the first failure and then one line per
/// half minute, so an outage does not flood the log.
async fn deliver(
    label: &str,
    sink: &Sink,
    object: &Sealed,
    metrics: &DestinationMetrics,
    kind: Kind,
) {
    let mut retry = Retry::new();
    let written = loop {
        match sink.deliver(object, kind).await {
            Ok(w) => break w,
            Err(e) => retry.wait(label, object, metrics, &e).await,
        }
    };
    done(label, object, metrics, kind, written, retry.failures).await;
}

/// The bookkeeping of a delivered object: its staging file removed, the metrics counted.
async fn done(
    label: &str,
    object: &Sealed,
    metrics: &DestinationMetrics,
    kind: Kind,
    written: Written,
    failures: u32,
) {
    if failures > 0 {
        tracing::info!(destination = %label, key = %object.key, attempts = failures + 1,
            "delivery recovered");
    }
    let _ = tokio::fs::remove_file(&object.path).await;
    if written == Written::BackedUp {
        // The sink wrote them to the backup as error records and counted them.
        metrics.delivered(object.id);
        return;
    }
    if written == Written::AlreadyThere {
        // An earlier run (or an attempt whose answer was lost) delivered these records.
        metrics.objects_already_there.add(1);
        metrics.delivered(object.id);
        tracing::info!(destination = %label, key = %object.key, records = object.records,
            "object already there (exactly-once): not written again");
        return;
    }
    metrics.put_success.add(1);
    metrics.delivered_objects.add(1);
    metrics.delivered_object_bytes.add(object.size);
    match kind {
        Kind::Main | Kind::Partition => {
            metrics.delivered_records.add(object.records);
            metrics.delivered_bytes.add(object.raw_bytes);
        }
        Kind::Error => metrics.error_records.add(object.records),
        Kind::Backup => metrics.backup_records.add(object.records),
    }
    metrics.delivered(object.id);
    tracing::debug!(destination = %label, key = %object.key, records = object.records,
        bytes = object.size, first_seq = object.first_seq, next_seq = object.next_seq, ?kind,
        "object delivered");
}

#[cfg(test)]
mod tests;
