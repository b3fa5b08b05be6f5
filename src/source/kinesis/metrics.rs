//! Per-shard counters of a Kinesis source (DataReadFromKinesisStream.*, MillisBehindLatest,
//! throttled GetRecords, enhanced fan-out's subscriptions).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use crate::metrics::Counter;
pub(crate) use crate::metrics::SubscribeError;
use crate::sync::Lock;

#[derive(Default, Debug)]
pub(crate) struct ShardMetrics {
    pub(crate) records: Counter,
    pub(crate) bytes: Counter,
    pub(crate) throttled: Counter,
    millis_behind: AtomicI64,
    /// SubscribeToShard calls answered with a subscription.
    pub(crate) subscriptions: Counter,
    /// Subscriptions the server ended (AWS: after 5 minutes), followed by a new one.
    pub(crate) subscriptions_ended: Counter,
    /// Failed subscriptions (refused, or cut short), by `SubscribeError`.
    pub(crate) subscribe_errors: [Counter; SubscribeError::ALL.len()],
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
    /// With a lease table.
    pub(crate) leases: std::sync::OnceLock<Arc<LeaseMetrics>>,
}

impl KinesisMetrics {
    pub(crate) fn shard(&self, id: &str) -> Arc<ShardMetrics> {
        self.shards
            .locked()
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    pub(crate) fn snapshot(&self) -> Vec<(String, Arc<ShardMetrics>)> {
        self.shards
            .locked()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// The lease manager's counters (a fleet sharing the stream through a lease table).
#[derive(Default, Debug)]
pub(crate) struct LeaseMetrics {
    held: std::sync::atomic::AtomicU64,
    pub(crate) taken: Counter,
    pub(crate) stolen: Counter,
    pub(crate) handed_off: Counter,
    pub(crate) lost: Counter,
    pub(crate) renew_failures: Counter,
    pub(crate) duplicates: Counter,
}

impl LeaseMetrics {
    pub(crate) fn set_held(&self, n: u64) {
        self.held.store(n, Ordering::Relaxed);
    }

    pub(crate) fn view(&self) -> crate::metrics::LeaseView {
        crate::metrics::LeaseView {
            held: self.held.load(Ordering::Relaxed),
            taken: self.taken.get(),
            stolen: self.stolen.get(),
            handed_off: self.handed_off.get(),
            lost: self.lost.get(),
            renew_failures: self.renew_failures.get(),
            duplicates: self.duplicates.get(),
        }
    }
}
