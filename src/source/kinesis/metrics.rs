//! Per-shard counters of a Kinesis source (DataReadFromKinesisStream.*, MillisBehindLatest,
//! throttled GetRecords).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use crate::metrics::Counter;

#[derive(Default, Debug)]
pub(crate) struct ShardMetrics {
    pub(crate) records: Counter,
    pub(crate) bytes: Counter,
    pub(crate) throttled: Counter,
    millis_behind: AtomicI64,
}

impl ShardMetrics {
    pub(crate) fn read(&self, bytes: u64) {
        self.records.add(1);
        self.bytes.add(bytes);
    }

    pub(crate) fn set_millis_behind(&self, ms: i64) {
        self.millis_behind.store(ms, Ordering::Relaxed);
    }

    pub(crate) fn millis_behind(&self) -> i64 {
        self.millis_behind.load(Ordering::Relaxed)
    }
}

/// The shards of one stream, by shard id.
#[derive(Default, Debug)]
pub(crate) struct KinesisMetrics {
    shards: Mutex<BTreeMap<String, Arc<ShardMetrics>>>,
}

impl KinesisMetrics {
    pub(crate) fn shard(&self, id: &str) -> Arc<ShardMetrics> {
        match self.shards.lock() {
            Ok(mut m) => m.entry(id.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<(String, Arc<ShardMetrics>)> {
        self.shards
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}
