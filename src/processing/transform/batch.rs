//! The transform stage's input buffer (docs/aws-behaviour.md section 4: 0.2-3 MiB, 0-900 s): records
//! gather until the buffer's size, the Lambda payload limit or its interval says the batch must
//! go, then one invocation processes the whole batch (on the stream's pool: pool.rs).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::contract::{MAX_REQUEST_BYTES, REQUEST_OVERHEAD, request_cost};
use crate::record::Record;
use crate::spec::TransformSpec;

pub(crate) struct TransformBatch {
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
    pub(crate) fn new(config: &TransformSpec) -> Self {
        TransformBatch {
            size_limit: config.buffer_bytes as usize,
            interval: Duration::from_secs(config.buffer_interval_seconds),
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

    /// The buffered records, in log order, leaving the buffer empty; None when there are none.
    pub(crate) fn take(&mut self) -> Option<Arc<[Record]>> {
        if self.records.is_empty() {
            return None;
        }
        self.bytes = 0;
        self.cost = REQUEST_OVERHEAD;
        self.since = None;
        Some(std::mem::take(&mut self.records).into())
    }
}
