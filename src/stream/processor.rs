//! A stream's processor: reads the stream's log in order, runs the processing stage (the
//! transform, when configured) once per record, and fans the outcome out to every
//! destination: delivered records, error records, source-record backups. Each destination
//! skips what it delivered before a restart (below its own cursor). A flush is forwarded once
//! every record acknowledged before it has been processed and handed over.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::destination::journal::Pos;
use crate::destination::partition::RecordKeys;
use crate::destination::stagers::ShardEnd;
use crate::destination::{Delivery, DestinationHandle, Input};
use crate::fatal::FatalSender;
use crate::processing::prepare::{Prepare, Step};
use crate::processing::transform::{
    Finished, InvocationLost, Transform, TransformBatch, TransformPool,
};
use crate::processing::{PartitionKeys, Processed, RecordOutcome};
use crate::record::Record;
use crate::retry::LogGate;
use crate::source::LogReader as Reader;

/// Bytes read from the log per batch.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

pub(crate) enum Command {
    /// Flush once every record below `until` is handed over; the reply gets the keys written.
    Flush {
        until: u64,
        reply: oneshot::Sender<Vec<String>>,
    },
}

/// One destination as the processor sees it.
pub(crate) struct Route {
    pub(crate) handle: DestinationHandle,
    /// The destination's cursor when the stream started: records below it were delivered.
    pub(crate) start: u64,
    /// Whether it keeps source-record backups.
    pub(crate) backup: bool,
    /// Whether it partitions records (it then gets their partition keys).
    pub(crate) dynamic: bool,
    /// The jq query its partition keys come from (the stream's metadata_extraction query, or
    /// an Iceberg destination's routing query).
    pub(crate) query: Option<Arc<str>>,
}

/// Each delivered record's partition keys, in order.
type Keys = Vec<Option<Arc<RecordKeys>>>;

pub(crate) struct Processor {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) task: JoinHandle<()>,
}

/// What a processor is started with.
pub(crate) struct ProcessorSetup {
    /// The stream's name, for logs.
    pub(crate) label: String,
    pub(crate) reader: Reader,
    pub(crate) routes: Vec<Route>,
    /// The transform's runtimes, one per invocation in flight; none without a transform.
    pub(crate) transform: Vec<Transform>,
    /// Decompression, CloudWatch Logs extraction, de-aggregation: before the transform.
    pub(crate) prepare: Arc<Prepare>,
    /// Told when a destination's worker is gone.
    pub(crate) fatal: FatalSender,
}

impl Processor {
    pub(crate) fn spawn(setup: ProcessorSetup) -> Processor {
        let (commands, rx) = mpsc::channel(16);
        let buffer = setup
            .transform
            .first()
            .map(|t| TransformBatch::new(t.config()));
        let transform = buffer.map(|buffer| Transforming {
            buffer,
            pool: TransformPool::new(setup.transform),
        });
        let state = State {
            label: setup.label,
            reader: setup.reader,
            routes: setup.routes,
            prepare: setup.prepare,
            transform,
            fatal: setup.fatal,
            broken: false,
        };
        let task = tokio::spawn(state.run(rx));
        Processor { commands, task }
    }
}

struct State {
    label: String,
    reader: Reader,
    routes: Vec<Route>,
    prepare: Arc<Prepare>,
    transform: Option<Transforming>,
    fatal: FatalSender,
    /// A destination's worker is gone: nothing more is read (the process is about to exit).
    broken: bool,
}

/// The transform stage: the buffer filling, and the invocations in flight.
struct Transforming {
    buffer: TransformBatch,
    pool: TransformPool,
}

impl State {
    async fn run(mut self, mut control: mpsc::Receiver<Command>) {
        let mut closing = false;
        let mut gate = LogGate::new(Duration::from_secs(30));
        while !self.broken {
            match self.forward().await {
                Ok(true) => {
                    self.dispatch_finished().await;
                    // A steady stream of small records never leaves the loop below: the
                    // transform buffer's interval is checked here too.
                    if self.transform_due() {
                        self.run_transform(None).await;
                    }
                    match control.try_recv() {
                        Ok(c) => self.handle(c).await,
                        Err(mpsc::error::TryRecvError::Disconnected) => closing = true,
                        Err(mpsc::error::TryRecvError::Empty) => {}
                    }
                    continue;
                }
                Ok(false) => {}
                Err(e) => {
                    self.dispatch_finished().await;
                    if gate.should_log(tokio::time::Instant::now()) {
                        tracing::error!(stream = %self.label, error = %e, "cannot read the log; retrying");
                    }
                    // Still answer control while the log cannot be read: a flush fails (its
                    // reply is dropped), a close stops the processor.
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        c = control.recv() => match c {
                            Some(Command::Flush { reply, .. }) => drop(reply),
                            None => break,
                        },
                    }
                    continue;
                }
            }
            if closing {
                break;
            }
            if self.transform_due() {
                self.run_transform(None).await;
                continue;
            }
            let deadline = self.transform_deadline();
            let in_flight = self.transform.as_ref().is_some_and(|t| !t.pool.is_empty());
            tokio::select! {
                Some(f) = next_finished(&mut self.transform), if in_flight => self.take_finished(f).await,
                c = control.recv() => match c {
                    Some(c) => self.handle(c).await,
                    None => closing = true,
                },
                alive = self.reader.wait() => if !alive { closing = true },
                () = sleep_until(deadline) => self.run_transform(None).await,
            }
        }
        if !self.broken {
            self.run_transform(None).await;
            self.drain_transform().await;
        }
        // Stop the transform and drain every destination at the same time.
        let mut closing = Vec::new();
        if let Some(t) = self.transform.take() {
            closing.push(tokio::spawn(t.pool.close()));
        }
        for r in self.routes {
            closing.push(tokio::spawn(r.handle.close()));
        }
        for c in closing {
            let _ = c.await;
        }
    }

    /// When the transform buffer's oldest record has waited its interval.
    fn transform_deadline(&self) -> Option<Instant> {
        self.transform.as_ref().and_then(|t| t.buffer.deadline())
    }

    fn transform_due(&self) -> bool {
        self.transform.as_ref().is_some_and(|t| t.buffer.due())
    }

    /// Reads one batch and processes it; false when there was nothing durable to read.
    async fn forward(&mut self) -> std::io::Result<bool> {
        let batch = self.reader.read(BATCH_BYTES).await?;
        if batch.is_empty() {
            return Ok(false);
        }
        let batch: Arc<[Record]> = batch.into();
        let mut from = 0;
        // The stage may take the batch in parts (decompression holds a bounded amount).
        while from < batch.len() && !self.broken {
            let (steps, taken) = self.prepared(&batch, from).await;
            let part = &batch[from..from + taken.max(1)];
            self.forward_part(part, steps).await;
            from += taken.max(1);
        }
        Ok(true)
    }

    /// Processes consecutive log records (`part`) from the pre-transform stage's `steps`.
    async fn forward_part(&mut self, part: &[Record], steps: Vec<Step>) {
        if self.transform.is_none() {
            let mut processed = Processed::default();
            let end = part.last().map_or(0, |r| r.seq + 1);
            for step in steps {
                processed.push(match step {
                    Step::Record(r) => RecordOutcome::Deliver(r, None),
                    Step::Failed { error, .. } => RecordOutcome::Failed(error),
                    Step::Dropped { .. } => RecordOutcome::Dropped,
                });
            }
            self.dispatch(part, processed, end).await;
            return;
        }
        let mut steps = steps.into_iter().peekable();
        while let Some(step) = steps.next() {
            let record = match step {
                Step::Record(r) => r,
                Step::Failed { index, .. } | Step::Dropped { index, .. } => {
                    // Never sent to the transform: what is buffered goes first, so the end
                    // handed over never passes records still in the buffer.
                    let seq = part[index].seq;
                    self.run_transform(Some(seq)).await;
                    let mut processed = Processed::default();
                    processed.push(match step {
                        Step::Failed { error, .. } => RecordOutcome::Failed(error),
                        _ => RecordOutcome::Dropped,
                    });
                    self.after_in_flight(Finished {
                        source: part[index..=index].into(),
                        processed,
                        end: seq + 1,
                    })
                    .await;
                    continue;
                }
            };
            if self
                .transform
                .as_ref()
                .is_some_and(|t| t.buffer.would_overflow(&record))
            {
                self.run_transform(Some(record.seq)).await;
            }
            let Some(t) = self.transform.as_mut() else {
                break;
            };
            if t.buffer.push(record) {
                // Sub-records of one log record all come in one part: the next one says
                // whether the last log record is complete.
                let next = steps.peek().map(Step::seq);
                self.run_transform(next).await;
            }
        }
    }

    /// The pre-transform stage's steps for `batch[from..]` and how many log records they
    /// cover; decompression runs on the blocking pool.
    async fn prepared(&self, batch: &Arc<[Record]>, from: usize) -> (Vec<Step>, usize) {
        if !self.prepare.is_heavy() {
            return self.prepare.run(&batch[from..]);
        }
        let (prepare, input) = (self.prepare.clone(), batch.clone());
        match tokio::task::spawn_blocking(move || prepare.run(&input[from..])).await {
            Ok(out) => out,
            // The blocking pool is gone only while the runtime shuts down: run it here.
            Err(_) => self.prepare.run(&batch[from..]),
        }
    }

    /// Submits the buffered records to the transform, once a runtime is free (outcomes that
    /// came in meanwhile are handed over first). `next` is the log position of a record still
    /// to come in this run: when it is the last one's, sub-records of that log record are still
    /// to come and it is not yet covered.
    async fn run_transform(&mut self, next: Option<u64>) {
        let Some(records) = self.transform.as_mut().and_then(|t| t.buffer.take()) else {
            return;
        };
        let end = match (records.last(), next) {
            (Some(last), Some(n)) if n == last.seq => last.seq,
            (Some(last), _) => last.seq + 1,
            (None, _) => 0,
        };
        while !self.broken && self.transform.as_ref().is_some_and(|t| !t.pool.has_idle()) {
            let Some(f) = next_finished(&mut self.transform).await else {
                break;
            };
            self.take_finished(f).await;
        }
        if self.broken {
            return;
        }
        if let Some(t) = self.transform.as_mut() {
            t.pool.submit(records, end);
        }
    }

    /// Hands `run` over after every batch in flight (at once when there is none), waiting for
    /// the oldest outcome first while the runs queued so are at their bound.
    async fn after_in_flight(&mut self, run: Finished) {
        while !self.broken && self.transform.as_ref().is_some_and(|t| t.pool.ready_full()) {
            let Some(f) = next_finished(&mut self.transform).await else {
                break;
            };
            self.take_finished(f).await;
        }
        match self.transform.as_mut() {
            Some(t) if !t.pool.is_empty() => t.pool.push_ready(run),
            _ => self.dispatch(&run.source, run.processed, run.end).await,
        }
    }

    /// Hands over the outcomes already in, in order, without waiting for any.
    async fn dispatch_finished(&mut self) {
        while !self.broken
            && self
                .transform
                .as_ref()
                .is_some_and(|t| t.pool.front_finished())
        {
            let Some(f) = next_finished(&mut self.transform).await else {
                return;
            };
            self.take_finished(f).await;
        }
    }

    /// Waits for every batch in flight and hands the outcomes over, in order.
    async fn drain_transform(&mut self) {
        while !self.broken {
            let Some(f) = next_finished(&mut self.transform).await else {
                return;
            };
            self.take_finished(f).await;
        }
    }

    /// Hands a finished run over; a lost invocation stops the processor (its records have no
    /// outcome, so no cursor may pass them: the process exits and a restart replays them).
    async fn take_finished(&mut self, f: Result<Finished, InvocationLost>) {
        match f {
            Ok(run) => self.dispatch(&run.source, run.processed, run.end).await,
            Err(e) => {
                self.fatal.report(&self.label, e.to_string());
                self.broken = true;
            }
        }
    }

    /// Hands each destination its share of a processed run of log records.
    /// A destination whose worker is gone (it failed) would have its cursor carried past
    /// records it never got by later deliveries: the processor stops and the process is told to
    /// exit; a restart replays from the cursors.
    async fn dispatch(&mut self, source: &[Record], p: Processed, end: u64) {
        if self.broken {
            return;
        }
        // The keys of each distinct query the partitioning destinations use, computed once.
        let mut keys_of: Vec<(Option<Arc<str>>, Keys)> = Vec::new();
        for route in self.routes.iter().filter(|r| r.dynamic) {
            if !keys_of.iter().any(|(q, _)| *q == route.query) {
                let keys = self.partition_keys(&p, route.query.as_ref()).await;
                keys_of.push((route.query.clone(), keys));
            }
        }
        let shard_ends = shard_ends(source, end);
        let last = self.routes.len().saturating_sub(1);
        let mut p = Some(p);
        for (i, route) in self.routes.iter().enumerate() {
            if end <= route.start {
                continue;
            }
            let keep = |seq: u64| seq >= route.start;
            // The last destination takes the processed records without copying.
            let Processed {
                deliver, failed, ..
            } = if i == last {
                p.take().unwrap_or_default()
            } else {
                p.as_ref().map_or_else(Processed::default, |p| Processed {
                    deliver: p.deliver.clone(),
                    failed: p.failed.clone(),
                    dropped: p.dropped,
                })
            };
            let kept: Vec<usize> = (0..deliver.len())
                .filter(|&j| keep(deliver[j].0.seq))
                .collect();
            let keys = keys_of
                .iter()
                .find(|(q, _)| route.dynamic && *q == route.query)
                .map(|(_, k)| k);
            let delivery = Delivery {
                keys: match keys {
                    Some(keys) => kept
                        .iter()
                        .map(|&j| keys.get(j).cloned().flatten())
                        .collect(),
                    None => Vec::new(),
                },
                records: deliver
                    .into_iter()
                    .filter(|(r, _)| keep(r.seq))
                    .map(|(r, _)| r)
                    .collect(),
                failed: failed.into_iter().filter(|f| keep(f.line.seq)).collect(),
                backup: if route.backup {
                    source.iter().filter(|r| keep(r.seq)).cloned().collect()
                } else {
                    Vec::new()
                },
                end,
                shard_ends: shard_ends.clone(),
            };
            if !route.handle.send_records(delivery).await {
                self.fatal.report(
                    &format!("{}[{i}]", self.label),
                    "the destination worker is gone",
                );
                self.broken = true;
                return;
            }
        }
    }

    /// Each delivered record's partition keys (`query`'s and the transform's); the jq query
    /// runs on the blocking pool.
    async fn partition_keys(
        &self,
        p: &Processed,
        query: Option<&Arc<str>>,
    ) -> Vec<Option<Arc<RecordKeys>>> {
        if p.deliver.is_empty() {
            return Vec::new();
        }
        let query_results: Vec<Option<Result<PartitionKeys, Arc<str>>>> = match query {
            Some(q) => {
                let (q, data) = (
                    q.clone(),
                    p.deliver
                        .iter()
                        .map(|(r, _)| r.data.clone())
                        .collect::<Vec<_>>(),
                );
                let run = move || {
                    data.iter()
                        .map(|d| {
                            Some(
                                crate::jq::extract(&q, d)
                                    .map(Arc::new)
                                    .map_err(|e| Arc::<str>::from(e.to_string())),
                            )
                        })
                        .collect::<Vec<_>>()
                };
                match tokio::task::spawn_blocking(run).await {
                    Ok(v) => v,
                    Err(e) => {
                        let why: Arc<str> = format!("the query could not run: {e}").into();
                        vec![Some(Err(why)); p.deliver.len()]
                    }
                }
            }
            None => vec![None; p.deliver.len()],
        };
        p.deliver
            .iter()
            .zip(query_results)
            .map(|((_, lambda), query)| {
                Some(Arc::new(RecordKeys {
                    query,
                    lambda: lambda.clone(),
                }))
            })
            .collect()
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Flush { until, reply } => {
                while self.reader.next_seq() < until {
                    match self.forward().await {
                        Ok(true) => {}
                        // Not everything acknowledged could be handed over: the flush fails
                        // (its reply is dropped) rather than answer without those records.
                        Ok(false) | Err(_) => return,
                    }
                }
                self.run_transform(None).await;
                self.drain_transform().await;
                if self.broken {
                    return;
                }
                let mut waits = Vec::new();
                for r in &self.routes {
                    let (tx, rx) = oneshot::channel();
                    if !r.handle.send(Input::Flush(tx)).await {
                        return;
                    }
                    waits.push(rx);
                }
                // The destinations answer once their objects are written; the processor
                // goes on meanwhile.
                tokio::spawn(async move {
                    let mut keys = Vec::new();
                    for w in waits {
                        match w.await {
                            Ok(k) => keys.extend(k),
                            Err(_) => return,
                        }
                    }
                    let _ = reply.send(keys);
                });
            }
        }
    }
}

/// The oldest run in flight once its outcome is in; None when none is (or no transform).
async fn next_finished(
    transform: &mut Option<Transforming>,
) -> Option<Result<Finished, InvocationLost>> {
    match transform {
        Some(t) => t.pool.next().await,
        None => None,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Per Kinesis shard (and lease tenure) of `source`, the identity position past its last
/// record below `end` (complete: a log record at `end` may still have sub-records to come).
/// Empty for Direct PUT.
fn shard_ends(source: &[Record], end: u64) -> Vec<ShardEnd> {
    let mut last: Vec<&crate::record::KinesisMeta> = Vec::new();
    for r in source.iter().filter(|r| r.seq < end) {
        let Some(k) = r.kinesis.as_deref() else {
            continue;
        };
        // A shard's records come in its order: the last one met is the highest.
        match last
            .iter_mut()
            .find(|m| m.shard_id == k.shard_id && m.tenure == k.tenure)
        {
            Some(m) => *m = k,
            None => last.push(k),
        }
    }
    last.into_iter()
        .map(|k| ShardEnd {
            shard: k.shard_id.clone(),
            tenure: k.tenure.clone(),
            end: Pos::past_shard_record(&k.sequence_number, k.subsequence_number),
        })
        .collect()
}
