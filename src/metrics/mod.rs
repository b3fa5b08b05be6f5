//! Every metric, in one place: the counters of streams, destinations and the server, and their
//! Prometheus text rendering (the families, each with the accessor of its value, are in
//! `families`).

mod families;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sync::Lock;

/// A monotonically increasing count.
#[derive(Default, Debug)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters of one delivery stream (the Direct PUT side).
#[derive(Default, Debug)]
pub(crate) struct StreamMetrics {
    pub(crate) incoming_bytes: Counter,
    pub(crate) incoming_records: Counter,
    pub(crate) incoming_put_requests: Counter,
    pub(crate) throttled_records: Counter,
    pub(crate) transform_invocations: Counter,
    pub(crate) transform_failed_invocations: Counter,
    pub(crate) transform_duration_ms: Counter,
    pub(crate) transform_ok_records: Counter,
    pub(crate) transform_ok_bytes: Counter,
    pub(crate) transform_dropped_records: Counter,
    pub(crate) transform_failed_records: Counter,
    /// Records decompressed (processing.decompression), and those that were not GZIP or too big.
    pub(crate) decompressed_records: Counter,
    pub(crate) decompression_failed_records: Counter,
    /// Log events extracted from CloudWatch Logs DATA_MESSAGE documents, and CONTROL_MESSAGE
    /// documents dropped.
    pub(crate) log_events_extracted: Counter,
    pub(crate) control_messages_dropped: Counter,
}

/// Counters of one destination of a stream.
#[derive(Default, Debug)]
pub(crate) struct DestinationMetrics {
    pub(crate) delivered_records: Counter,
    pub(crate) delivered_bytes: Counter,
    pub(crate) delivered_objects: Counter,
    pub(crate) delivered_object_bytes: Counter,
    pub(crate) put_success: Counter,
    pub(crate) put_failures: Counter,
    pub(crate) staging_errors: Counter,
    /// Error records written under the error prefix.
    pub(crate) error_records: Counter,
    /// Records written under the source_record_backup prefix.
    pub(crate) backup_records: Counter,
    /// Records sent to the error prefix because the active-partition limit was reached.
    pub(crate) partition_count_exceeded: Counter,
    /// Idle partitions whose encoder was closed (their object stays open).
    pub(crate) partition_suspensions: Counter,
    /// Exactly-once objects not written because an object of their name existed.
    pub(crate) objects_already_there: Counter,
    /// Exactly-once objects dropped unwritten because their shard's lease moved to another
    /// instance (which cuts them).
    pub(crate) objects_fenced: Counter,
    /// Records converted to Parquet rows, and their bytes.
    pub(crate) conversion_ok_records: Counter,
    pub(crate) conversion_ok_bytes: Counter,
    /// Records that did not fit the schema (sent to the error prefix), and their bytes.
    pub(crate) conversion_failed_records: Counter,
    pub(crate) conversion_failed_bytes: Counter,
    /// HTTP endpoint requests that failed (each attempt), and records the endpoint did not take
    /// within the retry duration (written to the backup as `http-endpoint-failed`).
    pub(crate) http_failed_requests: Counter,
    pub(crate) http_failed_records: Counter,
    /// Staging writes that found the disk full and waited for space.
    pub(crate) disk_full_waits: std::sync::Arc<Counter>,
    active_partitions: AtomicU64,
    pending: Mutex<Pending>,
}

/// Arrival times of records not yet delivered, for DataFreshness.
#[derive(Default, Debug)]
struct Pending {
    staging_oldest: Option<i64>,
    sealed: BTreeMap<u64, i64>,
}

impl DestinationMetrics {
    pub(crate) fn set_active_partitions(&self, n: usize) {
        self.active_partitions.store(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn active_partitions(&self) -> u64 {
        self.active_partitions.load(Ordering::Relaxed)
    }
    pub(crate) fn set_staging_oldest(&self, oldest_ms: Option<i64>) {
        self.pending.locked().staging_oldest = oldest_ms;
    }
    pub(crate) fn sealed(&self, id: u64, oldest_ms: i64) {
        self.pending.locked().sealed.insert(id, oldest_ms);
    }
    pub(crate) fn delivered(&self, id: u64) {
        self.pending.locked().sealed.remove(&id);
    }
    /// Age in seconds of the oldest record not yet delivered; 0 when nothing is pending.
    pub(crate) fn data_freshness_seconds(&self, now_ms: i64) -> f64 {
        let oldest = {
            let p = self.pending.locked();
            p.sealed.values().copied().chain(p.staging_oldest).min()
        };
        oldest.map_or(0.0, |t| (now_ms - t).max(0) as f64 / 1000.0)
    }
}

/// What `render` needs of one stream.
pub(crate) struct StreamView<'a> {
    pub(crate) name: &'a str,
    pub(crate) stream: &'a StreamMetrics,
    pub(crate) destinations: Vec<&'a DestinationMetrics>,
    /// Bytes of the stream's spool segments on disk.
    pub(crate) spool_bytes: u64,
    /// Acknowledged records some destination has not delivered yet.
    pub(crate) backlog_records: u64,
    /// Per shard of a Kinesis source.
    pub(crate) shards: Vec<ShardView>,
    /// A Kinesis source's leases, with a lease table.
    pub(crate) leases: Option<LeaseView>,
}

/// What a Kinesis source read from one shard.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShardView {
    pub(crate) id: String,
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    /// MillisBehindLatest.
    pub(crate) millis_behind: i64,
    /// GetRecords calls throttled.
    pub(crate) throttled: u64,
    /// Enhanced fan-out: subscriptions started, ended by the server's time limit.
    pub(crate) subscriptions: u64,
    pub(crate) subscriptions_ended: u64,
    /// Failed subscriptions by kind (`SubscribeError` order).
    pub(crate) subscribe_errors: [u64; 4],
}

/// Why a subscription failed, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubscribeError {
    /// ResourceInUseException: a subscription is still held (right after a failover).
    InUse = 0,
    /// LimitExceeded, throttling.
    Throttled = 1,
    /// ResourceNotFoundException: the consumer, stream or shard is gone.
    NotFound = 2,
    /// Anything else: network errors, 5xx, a stream cut short.
    Other = 3,
}

impl SubscribeError {
    pub(crate) const ALL: [SubscribeError; 4] = [
        SubscribeError::InUse,
        SubscribeError::Throttled,
        SubscribeError::NotFound,
        SubscribeError::Other,
    ];

    /// The `kind` label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SubscribeError::InUse => "in_use",
            SubscribeError::Throttled => "throttled",
            SubscribeError::NotFound => "not_found",
            SubscribeError::Other => "other",
        }
    }
}

/// What one instance's lease manager did (firehosed only: managed Firehose has no fleet).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LeaseView {
    pub(crate) held: u64,
    pub(crate) taken: u64,
    pub(crate) stolen: u64,
    pub(crate) handed_off: u64,
    pub(crate) lost: u64,
    pub(crate) renew_failures: u64,
    pub(crate) duplicates: u64,
}

/// A metric family: one HELP and TYPE header, and a sample per stream, destination or shard.
pub(super) struct Family<F> {
    name: &'static str,
    kind: MetricType,
    help: &'static str,
    /// Reads its value (given the time, in ms since the epoch, for ages).
    read: F,
}

#[derive(Clone, Copy)]
enum MetricType {
    Counter,
    Gauge,
}

/// A sample's value.
#[derive(Clone, Copy)]
enum Value {
    Count(u64),
    Level(i64),
    /// Milliseconds, shown as seconds.
    Millis(u64),
    /// Seconds, shown to the millisecond.
    Seconds(f64),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Count(n) => write!(f, "{n}"),
            Value::Level(n) => write!(f, "{n}"),
            Value::Millis(ms) => write!(f, "{}.{:03}", ms / 1000, ms % 1000),
            Value::Seconds(s) => write!(f, "{s:.3}"),
        }
    }
}

/// The Prometheus text exposition of every stream, and of the server.
pub(crate) fn render(streams: &[StreamView], now_ms: i64) -> String {
    let mut out = String::new();
    for f in families::STREAM {
        header(&mut out, f);
        for s in streams {
            let v = (f.read)(s, now_ms);
            let _ = writeln!(out, "{}{{delivery_stream=\"{}\"}} {v}", f.name, s.name);
        }
    }
    for f in families::DESTINATION {
        header(&mut out, f);
        for s in streams {
            for (d, m) in s.destinations.iter().enumerate() {
                let v = (f.read)(m, now_ms);
                let _ = writeln!(
                    out,
                    "{}{{delivery_stream=\"{}\",destination=\"{d}\"}} {v}",
                    f.name, s.name
                );
            }
        }
    }
    for f in families::KINESIS {
        header(&mut out, f);
        for s in streams {
            for shard in &s.shards {
                let v = (f.read)(shard, now_ms);
                let _ = writeln!(
                    out,
                    "{}{{delivery_stream=\"{}\",shard=\"{}\"}} {v}",
                    f.name, s.name, shard.id
                );
            }
        }
    }
    for f in families::SUBSCRIBE_ERRORS {
        header(&mut out, f);
        for s in streams {
            for shard in &s.shards {
                for kind in SubscribeError::ALL {
                    let v = (f.read)(shard, kind, now_ms);
                    let _ = writeln!(
                        out,
                        "{}{{delivery_stream=\"{}\",shard=\"{}\",kind=\"{}\"}} {v}",
                        f.name,
                        s.name,
                        shard.id,
                        kind.name()
                    );
                }
            }
        }
    }
    for f in families::LEASE {
        header(&mut out, f);
        for s in streams {
            if let Some(l) = &s.leases {
                let v = (f.read)(l, now_ms);
                let _ = writeln!(out, "{}{{delivery_stream=\"{}\"}} {v}", f.name, s.name);
            }
        }
    }
    for f in families::SERVER {
        header(&mut out, f);
        let _ = writeln!(out, "{} {}", f.name, (f.read)(&SERVER, now_ms));
    }
    out
}

/// The HTTP server's own counters (process-wide: one server per daemon).
pub(crate) struct ServerMetrics {
    /// Requests refused before any policy was asked: no, a malformed, an unknown-key, a wrong
    /// or an expired signature.
    pub(crate) unauthenticated: Counter,
    /// Requests whose principal's policy does not allow them.
    pub(crate) denied: Counter,
    /// Connections over the connection cap, told "Slow down." and closed.
    pub(crate) connections_refused: Counter,
    /// Connections closed for being idle, or too slow sending a request's headers or body.
    pub(crate) connections_timed_out: Counter,
}

pub(crate) static SERVER: ServerMetrics = ServerMetrics {
    unauthenticated: Counter::new(),
    denied: Counter::new(),
    connections_refused: Counter::new(),
    connections_timed_out: Counter::new(),
};

fn header<F>(out: &mut String, f: &Family<F>) {
    let kind = match f.kind {
        MetricType::Counter => "counter",
        MetricType::Gauge => "gauge",
    };
    let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
    let _ = writeln!(out, "# TYPE {} {kind}", f.name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labels_and_freshness() {
        let s = StreamMetrics::default();
        s.incoming_records.add(3);
        let d = DestinationMetrics::default();
        d.set_staging_oldest(Some(1_000));
        d.sealed(1, 500);
        let text = render(
            &[StreamView {
                name: "orders",
                stream: &s,
                destinations: vec![&d],
                spool_bytes: 7,
                backlog_records: 2,
                shards: vec![ShardView {
                    id: "shardId-000000000001".into(),
                    records: 5,
                    bytes: 50,
                    millis_behind: 1000,
                    throttled: 1,
                    subscriptions: 2,
                    subscriptions_ended: 1,
                    subscribe_errors: [3, 0, 0, 0],
                }],
                leases: Some(LeaseView {
                    held: 3,
                    ..LeaseView::default()
                }),
            }],
            2_500,
        );
        assert!(text.contains("firehose_incoming_records_total{delivery_stream=\"orders\"} 3\n"));
        assert!(text.contains("firehose_spool_backlog_records{delivery_stream=\"orders\"} 2\n"));
        assert!(text.contains("firehose_kinesis_leases_held{delivery_stream=\"orders\"} 3\n"));
        assert!(text.contains(
            "firehose_kinesis_millis_behind_latest{delivery_stream=\"orders\",shard=\"shardId-000000000001\"} 1000\n"
        ));
        assert!(text.contains(
            "firehose_delivery_to_s3_data_freshness_seconds{delivery_stream=\"orders\",destination=\"0\"} 2.000\n"
        ));
        d.delivered(1);
        d.set_staging_oldest(None);
        assert_eq!(d.data_freshness_seconds(9_999), 0.0);
    }

    /// Each family shows the counter its name names (a family is bound to its value by name:
    /// adding one cannot shift the others).
    #[test]
    fn every_destination_family_reads_its_own_counter() {
        let d = DestinationMetrics::default();
        let counters = [
            (
                &d.delivered_records,
                "firehose_delivery_to_s3_records_total",
            ),
            (&d.delivered_bytes, "firehose_delivery_to_s3_bytes_total"),
            (
                &d.delivered_objects,
                "firehose_delivery_to_s3_object_count_total",
            ),
            (&d.put_failures, "firehose_delivery_to_s3_failures_total"),
            (&d.error_records, "firehose_error_output_records_total"),
            (&d.backup_records, "firehose_backup_to_s3_records_total"),
            (
                &d.conversion_failed_bytes,
                "firehose_failed_conversion_bytes_total",
            ),
            (&d.objects_fenced, "firehose_delivery_objects_fenced_total"),
            (
                &d.http_failed_records,
                "firehose_delivery_to_http_endpoint_failed_records_total",
            ),
        ];
        for (n, (counter, _)) in counters.iter().enumerate() {
            counter.add(100 + n as u64);
        }
        let s = StreamMetrics::default();
        let text = render(
            &[StreamView {
                name: "s",
                stream: &s,
                destinations: vec![&d],
                spool_bytes: 0,
                backlog_records: 0,
                shards: Vec::new(),
                leases: None,
            }],
            0,
        );
        for (n, (_, family)) in counters.iter().enumerate() {
            let line = format!(
                "{family}{{delivery_stream=\"s\",destination=\"0\"}} {}\n",
                100 + n
            );
            assert!(text.contains(&line), "{line}");
        }
        let mut names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "every family once");
    }
}
