//! The transform stage's input buffer (docs/aws-behaviour.md section 4: 0.2-3 MiB, 0-900 s): records
//! gather until the buffer's size, the Lambda payload limit or its interval says the batch must
//! go, then one invocation processes the whole batch.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Transform;
use super::contract::{MAX_REQUEST_BYTES, REQUEST_OVERHEAD, request_cost};
use crate::processing::Processed;
use crate::record::Record;

pub(crate) struct TransformBatch {
    transform: Transform,
    size_limit: usize,
    interval: Duration,
    records: Vec<Record>,
    bytes: usize,
    /// Encoded size of the request these records would make.
    cost: usize,
    /// When the oldest buffered record came.
    since: Option<Instant>,
}

impl TransformBatch {
    pub(crate) fn new(transform: Transform) -> Self {
        TransformBatch {
            size_limit: transform.config().buffer_bytes as usize,
            interval: Duration::from_secs(transform.config().buffer_interval_seconds),
            transform,
            records: Vec::new(),
            bytes: 0,
            cost: REQUEST_OVERHEAD,
            since: None,
        }
    }

    /// When the oldest buffered record has waited the interval.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.since.map(|s| s + self.interval)
    }

    pub(crate) fn due(&self) -> bool {
        self.deadline().is_some_and(|d| d <= Instant::now())
    }

    /// Whether `record` would overflow the batch (its size or the payload limit): the batch
    /// must be processed before it is pushed.
    pub(crate) fn would_overflow(&self, record: &Record) -> bool {
        !self.records.is_empty()
            && (self.bytes + record.data.len() > self.size_limit
                || self.cost + request_cost(record) > MAX_REQUEST_BYTES)
    }

    /// Buffers a record; true when the batch is now full.
    pub(crate) fn push(&mut self, record: Record) -> bool {
        self.bytes += record.data.len();
        self.cost += request_cost(&record);
        self.since.get_or_insert_with(Instant::now);
        self.records.push(record);
        self.bytes >= self.size_limit
    }

    /// Processes the buffered records (one invocation, retried as configured); None when there
    /// are none. Returns them with their outcomes.
    pub(crate) async fn process(&mut self) -> Option<(Arc<[Record]>, Processed)> {
        if self.records.is_empty() {
            return None;
        }
        let records: Arc<[Record]> = std::mem::take(&mut self.records).into();
        self.bytes = 0;
        self.cost = REQUEST_OVERHEAD;
        self.since = None;
        let mut processed = Processed::default();
        for o in self.transform.process(&records).await {
            processed.push(o);
        }
        Some((records, processed))
    }

    /// Stops the transform's runtime.
    pub(crate) async fn close(mut self) {
        self.transform.close().await;
    }
}
