//! A running delivery stream. `put` is the Direct PUT entry point: it returns once the records
//! are fsync'd in the stream's spool, and that return is the acknowledgement. The stream's
//! processor reads the log from the lowest destination cursor (replaying after a restart), runs
//! the transform once per record and hands every destination its share.

mod processor;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::destination::DestinationHandle;
use crate::fatal::FatalSender;
use crate::metrics::{DestinationMetrics, StreamMetrics};
use crate::processing::transform::Transform;
use crate::record::now_ms;
use crate::source::Log;
use crate::source::kinesis::metrics::KinesisMetrics;
use crate::spec::StreamSpec;
use crate::spool::{Frames, RecordIds, SpoolError};
use crate::sync::Lock;
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
    /// The query its keys come from instead of the stream's metadata_extraction query (an
    /// Iceberg destination's `routing.query`).
    pub(crate) query: Option<Arc<str>>,
}

/// What a delivery stream is made of (built by `streams`).
pub(crate) struct StreamParts {
    pub(crate) config: StreamSpec,
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
    pub(crate) config: StreamSpec,
    /// Goes up by one on every configuration change (object names carry it).
    pub(crate) version: u32,
    pub(crate) arn: String,
    pub(crate) created_at: chrono::DateTime<chrono::Utc>,
    pub(crate) metrics: Arc<StreamMetrics>,
    pub(crate) destination_metrics: Vec<Arc<DestinationMetrics>>,
    pub(crate) log: Log,
    pub(crate) kinesis_metrics: std::sync::OnceLock<Arc<KinesisMetrics>>,
    /// Where the stream is in its life; put, flush and close read it in one place.
    lifecycle: Mutex<Lifecycle>,
    /// Becomes true once a close has finished: a second `close` waits on it.
    closed: tokio::sync::watch::Sender<bool>,
}

/// A delivery stream's life: it runs (its processor, and a Kinesis source's readers once
/// started), then closes once.
enum Lifecycle {
    Running {
        processor: Processor,
        /// The Kinesis readers, stopped first when the stream closes.
        source: Option<crate::source::kinesis::Running>,
    },
    /// `close` has begun: nothing more is taken.
    Closing,
    Closed,
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
        let stream_query: Option<Arc<str>> =
            config.processing.metadata_query.as_deref().map(Arc::from);
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
                query: d.query.or_else(|| stream_query.clone()),
            });
            destination_metrics.push(d.metrics);
        }
        let reader = log.shared_reader(routes.len())?;
        let processor = Processor::spawn(ProcessorSetup {
            label: config.name.clone(),
            reader,
            routes,
            transform,
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
            lifecycle: Mutex::new(Lifecycle::Running {
                processor,
                source: None,
            }),
            closed: tokio::sync::watch::Sender::new(false),
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
        if let Lifecycle::Running { source, .. } = &mut *self.lifecycle.locked() {
            *source = Some(running);
        }
        let _ = self.kinesis_metrics.set(metrics);
    }

    /// The processor's command channel while the stream runs.
    fn commands(&self) -> Option<tokio::sync::mpsc::Sender<Command>> {
        match &*self.lifecycle.locked() {
            Lifecycle::Running { processor, .. } => Some(processor.commands.clone()),
            Lifecycle::Closing | Lifecycle::Closed => None,
        }
    }

    /// What seals every buffer now without waiting (a Kinesis lease being handed off wants
    /// what it staged delivered). Holds the processor only weakly: a closing stream is not
    /// kept open.
    pub(crate) fn hurrier(&self) -> Hurrier {
        Hurrier {
            commands: self.commands().map(|c| c.downgrade()),
            log: self.log.clone(),
        }
    }

    /// Makes records durable; returns one RecordId per record, in order.
    pub(crate) async fn put(&self, data: Vec<Bytes>) -> Result<RecordIds, PutError> {
        self.put_frames(Frames::of(&data, now_ms())).await
    }

    /// `put` of records already framed for the spool (decoded into their frames by the
    /// caller: `spool::Frames`).
    pub(crate) async fn put_frames(&self, frames: Frames) -> Result<RecordIds, PutError> {
        let Log::Spool(spool) = &self.log else {
            return Err(PutError::NotDirectPut);
        };
        if !matches!(*self.lifecycle.locked(), Lifecycle::Running { .. }) {
            return Err(PutError::Closed(self.config.name.clone()));
        }
        let count = frames.len() as u64;
        let bytes = frames.data_bytes();
        match spool.append_frames(frames).await {
            Ok(first) => {
                self.metrics.incoming_put_requests.add(1);
                self.metrics.incoming_records.add(count);
                self.metrics.incoming_bytes.add(bytes as u64);
                Ok(spool.record_ids(first, count))
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
        let Some(commands) = self.commands() else {
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
        let was = std::mem::replace(&mut *self.lifecycle.locked(), Lifecycle::Closing);
        let (processor, mut source) = match was {
            Lifecycle::Running { processor, source } => (processor, source),
            other => {
                // Closing already (or closed): put the state back and wait for that close.
                if matches!(other, Lifecycle::Closed) {
                    *self.lifecycle.locked() = Lifecycle::Closed;
                }
                let _ = self.closed.subscribe().wait_for(|done| *done).await;
                return;
            }
        };
        if let Some(running) = &mut source {
            running.stop().await;
        }
        if let Log::Memory(m) = &self.log {
            m.close();
        }
        drop(processor.commands);
        let _ = processor.task.await;
        let log = self.log.clone();
        let _ = tokio::task::spawn_blocking(move || log.close()).await;
        // Everything read is delivered: the last checkpoints, the leases released.
        if let Some(running) = source {
            running.finish().await;
        }
        *self.lifecycle.locked() = Lifecycle::Closed;
        self.closed.send_replace(true);
    }
}

/// Seals a stream's buffers when told (the lease manager's `Hurry`).
pub(crate) struct Hurrier {
    commands: Option<tokio::sync::mpsc::WeakSender<Command>>,
    log: Log,
}

impl crate::source::kinesis::leases::Hurry for Hurrier {
    fn hurry(&self) {
        let Some(commands) = self.commands.as_ref().and_then(|c| c.upgrade()) else {
            return;
        };
        let until = self.log.end();
        tokio::spawn(async move {
            let (reply, rx) = oneshot::channel();
            if commands.send(Command::Flush { until, reply }).await.is_ok() {
                let _ = rx.await;
            }
        });
    }
}
