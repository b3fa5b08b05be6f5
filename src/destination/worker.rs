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

use super::naming::ErrorNaming;
use super::retry::{Backoff, LogGate};
use super::sink::Sink;
use super::staging::{Sealed, Stager};
use super::watermark::Watermark;
use crate::metrics::DestinationMetrics;
use crate::processing::ErrorOutput;
use crate::record::Record;

/// What the processing stage hands one destination for a run of log records.
#[derive(Debug, Default)]
pub struct Delivery {
    pub records: Vec<Record>,
    pub failed: Vec<ErrorOutput>,
    /// The records as they were before processing (source_record_backup).
    pub backup: Vec<Record>,
    /// Every log record below this is in this delivery or an earlier one, or was dropped.
    pub end: u64,
}

impl Delivery {
    pub fn bytes(&self) -> usize {
        self.records.iter().map(|r| r.data.len()).sum::<usize>()
            + self.failed.iter().map(|f| f.line.data.len()).sum::<usize>()
            + self.backup.iter().map(|r| r.data.len()).sum::<usize>()
    }
}

/// Messages to a destination worker.
pub enum Input {
    /// Records, with the share of the in-flight byte budget they hold until they are staged.
    Records(Delivery, OwnedSemaphorePermit),
    /// Seal what is buffered; answer with the keys written since the previous flush once every
    /// sealed object is delivered.
    Flush(oneshot::Sender<Vec<String>>),
}

enum Upload {
    Object(Sealed, Kind),
    /// The watermark may have moved without an object (dropped records).
    Advance,
    Barrier(oneshot::Sender<Vec<String>>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Main,
    Error,
    Backup,
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
/// Stager slots: 0 main, 1 backup, 2.. one per error-output-type.
const MAIN: usize = 0;
const BACKUP: usize = 1;

/// Told, on a blocking thread, that every record below the given sequence number is delivered
/// (the spool moves the destination's cursor and reclaims space).
pub type OnDelivered = Arc<dyn Fn(u64) -> std::io::Result<()> + Send + Sync>;

/// How a destination stages its objects.
pub struct Staging {
    pub main: Stager,
    pub backup: Option<Stager>,
    /// Makes the stager of an error-output-type (called the first time one is needed).
    pub error_stager: Box<dyn Fn(ErrorNaming, u64) -> Stager + Send>,
    pub error_template: Option<super::template::Template>,
}

struct Stagers {
    main: Stager,
    backup: Option<Stager>,
    errors: Vec<(&'static str, Stager)>,
    make_error: Box<dyn Fn(ErrorNaming, u64) -> Stager + Send>,
    error_template: Option<super::template::Template>,
}

impl Stagers {
    fn error(&mut self, output_type: &'static str) -> &mut Stager {
        let i = match self.errors.iter().position(|(t, _)| *t == output_type) {
            Some(i) => i,
            None => {
                let slot = (2 + self.errors.len()) as u64;
                let naming = ErrorNaming {
                    template: self.error_template.clone(),
                    output_type,
                };
                self.errors
                    .push((output_type, (self.make_error)(naming, slot)));
                self.errors.len() - 1
            }
        };
        &mut self.errors[i].1
    }

    fn all(&mut self) -> impl Iterator<Item = (usize, Kind, &mut Stager)> {
        std::iter::once((MAIN, Kind::Main, &mut self.main))
            .chain(self.backup.as_mut().map(|s| (BACKUP, Kind::Backup, s)))
            .chain(
                self.errors
                    .iter_mut()
                    .enumerate()
                    .map(|(i, (_, s))| (2 + i, Kind::Error, s)),
            )
    }

    /// Open objects by slot, for the watermark.
    fn open(&mut self) -> Vec<(usize, Option<u64>)> {
        self.all()
            .map(|(slot, _, s)| (slot, s.first_seq()))
            .collect()
    }

    /// The earliest time an open object was opened, and the oldest record arrival.
    fn times(&mut self) -> (Option<Instant>, Option<i64>) {
        let mut opened: Option<Instant> = None;
        let mut oldest: Option<i64> = None;
        for (_, _, s) in self.all() {
            if let Some(o) = s.opened() {
                opened = Some(opened.map_or(o, |p| p.min(o)));
            }
            if let Some(t) = s.oldest_ms() {
                oldest = Some(oldest.map_or(t, |p| p.min(t)));
            }
        }
        (opened, oldest)
    }
}

pub struct DestinationHandle {
    tx: mpsc::Sender<Input>,
    budget: Arc<Semaphore>,
    task: JoinHandle<()>,
}

impl DestinationHandle {
    /// Starts the worker and its uploader; `cursor` is where the destination's log cursor is.
    pub fn spawn(
        label: String,
        staging: Staging,
        interval: Duration,
        sink: Sink,
        metrics: Arc<DestinationMetrics>,
        on_delivered: OnDelivered,
        cursor: u64,
    ) -> Self {
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
        let stagers = Stagers {
            main: staging.main.with_slot(MAIN as u64),
            backup: staging.backup.map(|b| b.with_slot(BACKUP as u64)),
            errors: Vec::new(),
            make_error: staging.error_stager,
            error_template: staging.error_template,
        };
        let worker = Worker {
            label,
            stagers: Arc::new(Mutex::new(stagers)),
            interval,
            uploads: up_tx,
            metrics,
            opened: None,
            watermark,
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
    pub async fn send_records(&self, delivery: Delivery) -> bool {
        let want = delivery.bytes().clamp(1, IN_FLIGHT_BYTES) as u32;
        let Ok(permit) = self.budget.clone().acquire_many_owned(want).await else {
            return false;
        };
        self.tx.send(Input::Records(delivery, permit)).await.is_ok()
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
    stagers: Arc<Mutex<Stagers>>,
    interval: Duration,
    uploads: mpsc::Sender<Upload>,
    metrics: Arc<DestinationMetrics>,
    /// When the earliest open object was opened.
    opened: Option<Instant>,
    watermark: Arc<Watermark>,
}

/// Sealed objects of one staging step, and whether it failed.
type StepResult = Result<Vec<(Sealed, Kind)>, String>;

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Input>, uploader: JoinHandle<()>) {
        loop {
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
                    let _ = self.uploads.send(Upload::Barrier(reply)).await;
                }
                None => break,
            }
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
            let mut s = stagers.lock().unwrap_or_else(|p| p.into_inner());
            let out = step(&mut s, now);
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
            Err(e) => {
                self.watermark.poison();
                fatal(&self.label, &format!("staging task failed: {e}"))
            }
        };
        self.opened = opened;
        self.metrics.set_staging_oldest(oldest);
        match result {
            Ok(objects) => {
                let empty = objects.is_empty();
                for (object, kind) in objects {
                    self.metrics.sealed(object.id, object.oldest_ms);
                    let _ = self.uploads.send(Upload::Object(object, kind)).await;
                }
                // Only dropped or skipped records, nothing open: the cursor may move without an
                // object. A full queue holds objects whose delivery re-checks the watermark.
                if empty && handed.is_some() && nothing_open {
                    let _ = self.uploads.try_send(Upload::Advance);
                }
            }
            Err(e) => {
                self.metrics.staging_errors.add(1);
                fatal(&self.label, &e);
            }
        }
    }

    async fn append(&mut self, delivery: Delivery) {
        let end = delivery.end;
        self.staging(Some(end), move |s, now| {
            let mut sealed = Vec::new();
            let err =
                |e: (std::io::Error, u64)| format!("cannot stage records on local disk: {}", e.0);
            if !delivery.records.is_empty() {
                let objects = s.main.append(&delivery.records, now).map_err(err)?;
                sealed.extend(objects.into_iter().map(|o| (o, Kind::Main)));
            }
            if let Some(b) = s.backup.as_mut()
                && !delivery.backup.is_empty()
            {
                let objects = b.append(&delivery.backup, now).map_err(err)?;
                sealed.extend(objects.into_iter().map(|o| (o, Kind::Backup)));
            }
            let mut failed = delivery.failed;
            while !failed.is_empty() {
                let output_type = failed[0].output_type;
                let (same, rest): (Vec<_>, Vec<_>) = failed
                    .into_iter()
                    .partition(|f| f.output_type == output_type);
                failed = rest;
                let lines: Vec<Record> = same.into_iter().map(|f| f.line).collect();
                let objects = s.error(output_type).append(&lines, now).map_err(err)?;
                sealed.extend(objects.into_iter().map(|o| (o, Kind::Error)));
            }
            if !sealed.is_empty() {
                sealed.extend(seal_all(s)?);
            }
            Ok(sealed)
        })
        .await;
    }

    /// Seals the open objects: all of them, or (`due`) all of them once one was opened an
    /// interval before it.
    async fn seal(&mut self, due: Option<Instant>) {
        let interval = self.interval;
        self.staging(None, move |s, _| {
            let ripe = match due {
                None => true,
                Some(now) => s.times().0.is_some_and(|o| o + interval <= now),
            };
            if ripe { seal_all(s) } else { Ok(Vec::new()) }
        })
        .await;
    }
}

/// Seals every open object of a destination. Its objects are sealed together, so that an error
/// or backup object never holds the cursor back behind main objects already written (which
/// a kill -9 would then write again).
fn seal_all(s: &mut Stagers) -> StepResult {
    let mut sealed = Vec::new();
    for (_, kind, stager) in s.all() {
        match stager.seal() {
            Ok(Some(o)) => sealed.push((o, kind)),
            Ok(None) => {}
            Err(e) => return Err(format!("cannot seal a staged object: {e}")),
        }
    }
    Ok(sealed)
}

/// A local disk error while staging: the records of the object being built can no longer be
/// delivered by this process, and a later object must not move the spool cursor past them.
/// Exit at once (no later object is ever sealed or delivered); after a restart every record
/// past the cursor is replayed from the spool.
pub(crate) fn fatal(label: &str, message: &str) -> ! {
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
    watermark: Arc<Watermark>,
) {
    let mut since_flush = Vec::new();
    while let Some(upload) = rx.recv().await {
        let moved = match upload {
            Upload::Object(object, kind) => {
                deliver(&label, &sink, &object, &metrics, kind).await;
                if since_flush.len() >= MAX_FLUSH_KEYS {
                    since_flush.remove(0);
                }
                since_flush.push(object.key);
                watermark.delivered(Some(object.id))
            }
            Upload::Advance => watermark.delivered(None),
            Upload::Barrier(reply) => {
                let _ = reply.send(std::mem::take(&mut since_flush));
                None
            }
        };
        if let Some(next) = moved {
            let ack = on_delivered.clone();
            match tokio::task::spawn_blocking(move || ack(next)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(destination = %label, error = %e,
                    "cannot record the delivery; its records will be delivered again after a restart"),
                Err(e) => {
                    tracing::error!(destination = %label, error = %e, "delivery bookkeeping failed")
                }
            }
        }
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
    metrics.delivered_object_bytes.add(object.size);
    match kind {
        Kind::Main => {
            metrics.delivered_records.add(object.records);
            metrics.delivered_bytes.add(object.raw_bytes);
        }
        Kind::Error => metrics.error_records.add(object.records),
        Kind::Backup => metrics.backup_records.add(object.records),
    }
    metrics.delivered(object.id);
    tracing::debug!(destination = %label, key = %object.key, records = object.records,
        bytes = object.size, ?kind, "object delivered");
}
