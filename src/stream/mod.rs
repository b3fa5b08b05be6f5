//! A running delivery stream. `put` is the Direct PUT entry point: it returns once the records
//! are fsync'd in the stream's spool, and that return is the acknowledgement. The stream's
//! processor reads the log from the lowest destination cursor (replaying after a restart), runs
//! the transform once per record and hands every destination its share.

mod processor;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::config::StreamConfig;
use crate::destination::DestinationHandle;
use crate::fatal::FatalSender;
use crate::metrics::{DestinationMetrics, StreamMetrics};
use crate::processing::transform::Transform;
use crate::record::now_ms;
use crate::source::Log;
use crate::source::kinesis::metrics::KinesisMetrics;
use crate::spool::SpoolError;
use processor::{Command, Processor, ProcessorSetup, Route};

#[derive(Debug, thiserror::Error)]
pub(crate) enum PutError {
    /// The spool's disk budget is full: the producer should slow down and retry.
    #[error("Slow down.")]
    Throttled,
    #[error("delivery stream {0} is shutting down")]
    Closed(String),
    #[error("{0}")]
    Io(String),
    /// Direct PUT to a stream whose source is a Kinesis stream.
    #[error("This operation is not permitted on KinesisStreamAsSource delivery stream type.")]
    NotDirectPut,
}

/// A destination as the stream starts it.
pub(crate) struct StreamDestination {
    pub(crate) handle: DestinationHandle,
    pub(crate) metrics: Arc<DestinationMetrics>,
    /// Keeps source-record backups.
    pub(crate) backup: bool,
    /// Partitions its records (it gets each record's partition keys).
    pub(crate) dynamic: bool,
}

/// What a delivery stream is made of (built by `streams`).
pub(crate) struct StreamParts {
    pub(crate) config: StreamConfig,
    /// Goes up by one on every configuration change (object names carry it).
    pub(crate) version: u32,
    pub(crate) arn: String,
    pub(crate) log: Log,
    pub(crate) destinations: Vec<StreamDestination>,
    /// The transform's runtimes, one per invocation in flight; none without a transform.
    pub(crate) transform: Vec<Transform>,
    pub(crate) metrics: Arc<StreamMetrics>,
    /// Told when a destination can no longer stage (the process exits).
    pub(crate) fatal: FatalSender,
}

pub(crate) struct DeliveryStream {
    pub(crate) config: StreamConfig,
    /// Goes up by one on every configuration change (object names carry it).
    pub(crate) version: u32,
    pub(crate) arn: String,
    pub(crate) created_at: chrono::DateTime<chrono::Utc>,
    pub(crate) metrics: Arc<StreamMetrics>,
    pub(crate) destination_metrics: Vec<Arc<DestinationMetrics>>,
    pub(crate) log: Log,
    pub(crate) kinesis_metrics: std::sync::OnceLock<Arc<KinesisMetrics>>,
    /// Stops the source's readers first when the stream closes (Kinesis).
    source_stop: Mutex<Option<crate::source::kinesis::Running>>,
    processor: Mutex<Option<Processor>>,
    closed: AtomicBool,
    /// Held while closing; true once closed. A second `close` waits for the first.
    closing: tokio::sync::Mutex<bool>,
}

impl DeliveryStream {
    /// Starts the processor: it reads `log` from the lowest destination cursor and feeds every
    /// destination (handle, metrics, whether it keeps source-record backups).
    pub(crate) fn new(parts: StreamParts) -> std::io::Result<Self> {
        let StreamParts {
            config,
            version,
            arn,
            log,
            destinations,
            transform,
            metrics,
            fatal,
        } = parts;
        let mut routes = Vec::new();
        let mut destination_metrics = Vec::new();
        let end = log.end();
        for (i, d) in destinations.into_iter().enumerate() {
            let start = log.cursor(i);
            let replay = end.saturating_sub(start);
            if replay > 0 {
                tracing::info!(stream = %config.name, destination = i, records = replay,
                    "replaying records acknowledged but not delivered before the restart");
            }
            routes.push(Route {
                handle: d.handle,
                start,
                backup: d.backup,
                dynamic: d.dynamic,
            });
            destination_metrics.push(d.metrics);
        }
        let reader = log.shared_reader(routes.len())?;
        let query = config.processing.metadata_query.as_deref().map(Arc::from);
        let processor = Processor::spawn(ProcessorSetup {
            label: config.name.clone(),
            reader,
            routes,
            transform,
            metadata_query: query,
            prepare: Arc::new(crate::processing::prepare::Prepare::new(
                &config.processing,
                metrics.clone(),
            )),
            fatal,
        });
        Ok(DeliveryStream {
            config,
            version,
            arn,
            created_at: chrono::Utc::now(),
            metrics,
            destination_metrics,
            log,
            kinesis_metrics: std::sync::OnceLock::new(),
            source_stop: Mutex::new(None),
            processor: Mutex::new(Some(processor)),
            closed: AtomicBool::new(false),
            closing: tokio::sync::Mutex::new(false),
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }

    /// The running source (Kinesis readers), stopped first on close, and its metrics.
    pub(crate) fn set_source(
        &self,
        running: crate::source::kinesis::Running,
        metrics: Arc<KinesisMetrics>,
    ) {
        if let Ok(mut s) = self.source_stop.lock() {
            *s = Some(running);
        }
        let _ = self.kinesis_metrics.set(metrics);
    }

    /// Seals every buffer now without waiting (a Kinesis lease being handed off wants what it
    /// staged delivered). Holds the processor only weakly: a closing stream is not kept open.
    pub(crate) fn hurry(&self) -> impl Fn() + Send + Sync + 'static {
        let commands = self
            .processor
            .lock()
            .ok()
            .and_then(|p| p.as_ref().map(|p| p.commands.downgrade()));
        let log = self.log.clone();
        move || {
            let Some(commands) = commands.as_ref().and_then(|c| c.upgrade()) else {
                return;
            };
            let until = log.end();
            tokio::spawn(async move {
                let (reply, rx) = oneshot::channel();
                if commands.send(Command::Flush { until, reply }).await.is_ok() {
                    let _ = rx.await;
                }
            });
        }
    }

    /// Makes records durable; returns one RecordId per record, in order.
    pub(crate) async fn put(&self, data: Vec<Bytes>) -> Result<Vec<String>, PutError> {
        let Log::Spool(spool) = &self.log else {
            return Err(PutError::NotDirectPut);
        };
        if self.closed.load(Ordering::Acquire) {
            return Err(PutError::Closed(self.config.name.clone()));
        }
        let count = data.len() as u64;
        let bytes: usize = data.iter().map(Bytes::len).sum();
        match spool.append(data, now_ms()).await {
            Ok(first) => {
                self.metrics.incoming_put_requests.add(1);
                self.metrics.incoming_records.add(count);
                self.metrics.incoming_bytes.add(bytes as u64);
                Ok((first..first + count).map(|s| spool.record_id(s)).collect())
            }
            Err(SpoolError::Full) => {
                self.metrics.throttled_records.add(count);
                Err(PutError::Throttled)
            }
            Err(SpoolError::Closed) => Err(PutError::Closed(self.config.name.clone())),
            Err(SpoolError::Io(e)) => Err(PutError::Io(format!(
                "cannot make the records durable: {e}"
            ))),
        }
    }

    /// Seals every buffer once every record acknowledged so far is in it, waits until the
    /// objects are written, returns their keys (and those of every object written since the
    /// previous flush).
    pub(crate) async fn flush(&self) -> Result<Vec<String>, PutError> {
        let until = self.log.end();
        let control = self
            .processor
            .lock()
            .ok()
            .and_then(|p| p.as_ref().map(|p| p.commands.clone()));
        let Some(commands) = control.filter(|_| !self.closed.load(Ordering::Acquire)) else {
            return Err(PutError::Closed(self.config.name.clone()));
        };
        let (reply, rx) = oneshot::channel();
        if commands
            .send(Command::Flush { until, reply })
            .await
            .is_err()
        {
            return Err(PutError::Closed(self.config.name.clone()));
        }
        rx.await
            .map_err(|_| PutError::Io("the flush could not complete; retry it".into()))
    }

    /// Stops accepting records, hands every durable record to the destinations, seals and
    /// delivers everything, stops the spool.
    /// Callers at once (a shutdown during an UpdateDestination) all return once it is done.
    pub(crate) async fn close(&self) {
        let mut done = self.closing.lock().await;
        if *done {
            return;
        }
        self.closed.store(true, Ordering::Release);
        let mut source = self.source_stop.lock().ok().and_then(|mut s| s.take());
        if let Some(running) = &mut source {
            running.stop().await;
        }
        if let Log::Memory(m) = &self.log {
            m.close();
        }
        let processor = self.processor.lock().ok().and_then(|mut p| p.take());
        if let Some(p) = processor {
            drop(p.commands);
            let _ = p.task.await;
        }
        let log = self.log.clone();
        let _ = tokio::task::spawn_blocking(move || log.close()).await;
        // Everything read is delivered: the last checkpoints, the leases released.
        if let Some(running) = source {
            running.finish().await;
        }
        *done = true;
    }
}
