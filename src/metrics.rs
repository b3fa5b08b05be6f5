//! Every metric, in one place: per-stream counters and the Prometheus text rendering. Names are
//! AWS's CloudWatch names (docs/aws-behaviour.md section 11) in Prometheus spelling; the HELP line of each
//! gives the AWS name. docs/metrics.md lists them.

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
    /// Per shard of a Kinesis source: (shard id, records read, bytes read, MillisBehindLatest,
    /// throttled GetRecords).
    pub(crate) shards: Vec<(String, u64, u64, i64, u64)>,
    /// A Kinesis source's leases, with a lease table.
    pub(crate) leases: Option<LeaseView>,
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

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

const fn family(name: &'static str, kind: &'static str, help: &'static str) -> Family {
    Family { name, kind, help }
}

const STREAM_FAMILIES: [Family; 17] = [
    family(
        "firehose_incoming_bytes_total",
        "counter",
        "IncomingBytes: bytes of records accepted",
    ),
    family(
        "firehose_incoming_records_total",
        "counter",
        "IncomingRecords: records accepted",
    ),
    family(
        "firehose_incoming_put_requests_total",
        "counter",
        "IncomingPutRequests: PutRecord, PutRecordBatch and plain ingest requests accepted",
    ),
    family(
        "firehose_throttled_records_total",
        "counter",
        "ThrottledRecords: records refused with ServiceUnavailableException",
    ),
    family(
        "firehose_spool_bytes",
        "gauge",
        "Bytes of the durable spool on disk; firehosed only",
    ),
    family(
        "firehose_spool_backlog_records",
        "gauge",
        "Acknowledged records not yet delivered by every destination; firehosed only",
    ),
    family(
        "firehose_execute_processing_invocations_total",
        "counter",
        "Transform invocations, retries included (ExecuteProcessing.Success = 1 - failures / invocations)",
    ),
    family(
        "firehose_execute_processing_failures_total",
        "counter",
        "Failed transform invocations (error, timeout, bad response), each retried; firehosed only",
    ),
    family(
        "firehose_execute_processing_duration_seconds_total",
        "counter",
        "ExecuteProcessing.Duration: time spent in transform invocations",
    ),
    family(
        "firehose_succeed_processing_records_total",
        "counter",
        "SucceedProcessing.Records: records the transform returned Ok",
    ),
    family(
        "firehose_succeed_processing_bytes_total",
        "counter",
        "SucceedProcessing.Bytes: bytes of the records the transform returned Ok",
    ),
    family(
        "firehose_transform_records_dropped_total",
        "counter",
        "Records the transform returned Dropped; firehosed only",
    ),
    family(
        "firehose_transform_records_failed_total",
        "counter",
        "Records sent to the error prefix by the transform (ProcessingFailed or failed invocations); firehosed only",
    ),
    family(
        "firehose_decompressed_records_total",
        "counter",
        "Records decompressed by processing.decompression (GZIP); firehosed only",
    ),
    family(
        "firehose_decompression_failed_records_total",
        "counter",
        "Records sent to the decompression-failed error prefix (not GZIP, too big decompressed, not a CloudWatch Logs document); firehosed only",
    ),
    family(
        "firehose_cloudwatch_logs_events_extracted_total",
        "counter",
        "Log events extracted from CloudWatch Logs DATA_MESSAGE documents, one record each; firehosed only",
    ),
    family(
        "firehose_cloudwatch_logs_control_messages_dropped_total",
        "counter",
        "CloudWatch Logs CONTROL_MESSAGE documents dropped by the extraction; firehosed only",
    ),
];

const DESTINATION_FAMILIES: [Family; 22] = [
    family(
        "firehose_delivery_to_s3_records_total",
        "counter",
        "DeliveryToS3.Records: records delivered",
    ),
    family(
        "firehose_delivery_to_s3_bytes_total",
        "counter",
        "DeliveryToS3.Bytes: record bytes delivered (before compression)",
    ),
    family(
        "firehose_delivery_to_s3_object_count_total",
        "counter",
        "DeliveryToS3.ObjectCount: objects delivered",
    ),
    family(
        "firehose_delivery_to_s3_object_bytes_total",
        "counter",
        "Bytes of the delivered objects (after compression); firehosed only",
    ),
    family(
        "firehose_delivery_to_s3_success_total",
        "counter",
        "DeliveryToS3.Success: successful object writes (ratio = success / (success + failures))",
    ),
    family(
        "firehose_delivery_to_s3_failures_total",
        "counter",
        "Failed object write attempts, each retried; firehosed only",
    ),
    family(
        "firehose_delivery_to_s3_data_freshness_seconds",
        "gauge",
        "DeliveryToS3.DataFreshness: age of the oldest record not yet delivered",
    ),
    family(
        "firehose_staging_errors_total",
        "counter",
        "Local disk errors while staging records; firehosed only",
    ),
    family(
        "firehose_error_output_records_total",
        "counter",
        "Error records written under the error prefix; firehosed only",
    ),
    family(
        "firehose_backup_to_s3_records_total",
        "counter",
        "BackupToS3.Records: source records written under the backup prefix",
    ),
    family(
        "firehose_active_partitions",
        "gauge",
        "ActivePartitionsLimit usage: partitions with an open buffer (dynamic partitioning)",
    ),
    family(
        "firehose_partition_count_exceeded_records_total",
        "counter",
        "PartitionCountExceeded: records sent to the error prefix because the active-partition limit was reached",
    ),
    family(
        "firehose_partition_suspensions_total",
        "counter",
        "Idle partitions whose encoder and staging file were closed (their object stays open); firehosed only",
    ),
    family(
        "firehose_succeed_conversion_records_total",
        "counter",
        "SucceedConversion.Records: records converted to Parquet",
    ),
    family(
        "firehose_succeed_conversion_bytes_total",
        "counter",
        "SucceedConversion.Bytes: bytes of the records converted to Parquet",
    ),
    family(
        "firehose_failed_conversion_records_total",
        "counter",
        "FailedConversion.Records: records that did not fit the schema (sent to the error prefix)",
    ),
    family(
        "firehose_failed_conversion_bytes_total",
        "counter",
        "FailedConversion.Bytes: bytes of the records that did not fit the schema",
    ),
    family(
        "firehose_staging_disk_full_waits_total",
        "counter",
        "Staging writes that found the disk under state_dir full and waited for space; firehosed only",
    ),
    family(
        "firehose_delivery_objects_already_there_total",
        "counter",
        "Exactly-once objects not written because an object of that name existed (an earlier run or an attempt whose answer was lost wrote it); firehosed only",
    ),
    family(
        "firehose_delivery_objects_fenced_total",
        "counter",
        "Exactly-once objects of a Kinesis shard dropped unwritten because its lease moved to another instance, which cuts them; firehosed only",
    ),
    family(
        "firehose_delivery_to_http_endpoint_failed_requests_total",
        "counter",
        "HTTP endpoint requests that failed (timeout, connection, a status other than 200, an invalid answer), each attempt",
    ),
    family(
        "firehose_delivery_to_http_endpoint_failed_records_total",
        "counter",
        "Records an HTTP endpoint did not take within the retry duration, written to the backup as http-endpoint-failed error records",
    ),
];

/// The Prometheus text exposition of every stream.
pub(crate) fn render(streams: &[StreamView], now_ms: i64) -> String {
    let mut out = String::new();
    for (i, f) in STREAM_FAMILIES.iter().enumerate() {
        header(&mut out, f);
        for s in streams {
            let v = match i {
                0 => s.stream.incoming_bytes.get(),
                1 => s.stream.incoming_records.get(),
                2 => s.stream.incoming_put_requests.get(),
                3 => s.stream.throttled_records.get(),
                4 => s.spool_bytes,
                5 => s.backlog_records,
                6 => s.stream.transform_invocations.get(),
                7 => s.stream.transform_failed_invocations.get(),
                8 => {
                    let ms = s.stream.transform_duration_ms.get();
                    let _ = writeln!(
                        out,
                        "{}{{delivery_stream=\"{}\"}} {}.{:03}",
                        f.name,
                        s.name,
                        ms / 1000,
                        ms % 1000
                    );
                    continue;
                }
                9 => s.stream.transform_ok_records.get(),
                10 => s.stream.transform_ok_bytes.get(),
                11 => s.stream.transform_dropped_records.get(),
                12 => s.stream.transform_failed_records.get(),
                13 => s.stream.decompressed_records.get(),
                14 => s.stream.decompression_failed_records.get(),
                15 => s.stream.log_events_extracted.get(),
                _ => s.stream.control_messages_dropped.get(),
            };
            let _ = writeln!(out, "{}{{delivery_stream=\"{}\"}} {v}", f.name, s.name);
        }
    }
    for (i, f) in DESTINATION_FAMILIES.iter().enumerate() {
        header(&mut out, f);
        for s in streams {
            for (d, m) in s.destinations.iter().enumerate() {
                let v = match i {
                    0 => m.delivered_records.get().to_string(),
                    1 => m.delivered_bytes.get().to_string(),
                    2 => m.delivered_objects.get().to_string(),
                    3 => m.delivered_object_bytes.get().to_string(),
                    4 => m.put_success.get().to_string(),
                    5 => m.put_failures.get().to_string(),
                    6 => format!("{:.3}", m.data_freshness_seconds(now_ms)),
                    7 => m.staging_errors.get().to_string(),
                    8 => m.error_records.get().to_string(),
                    9 => m.backup_records.get().to_string(),
                    10 => m.active_partitions().to_string(),
                    11 => m.partition_count_exceeded.get().to_string(),
                    12 => m.partition_suspensions.get().to_string(),
                    13 => m.conversion_ok_records.get().to_string(),
                    14 => m.conversion_ok_bytes.get().to_string(),
                    15 => m.conversion_failed_records.get().to_string(),
                    16 => m.conversion_failed_bytes.get().to_string(),
                    17 => m.disk_full_waits.get().to_string(),
                    18 => m.objects_already_there.get().to_string(),
                    19 => m.objects_fenced.get().to_string(),
                    20 => m.http_failed_requests.get().to_string(),
                    _ => m.http_failed_records.get().to_string(),
                };
                let _ = writeln!(
                    out,
                    "{}{{delivery_stream=\"{}\",destination=\"{d}\"}} {v}",
                    f.name, s.name
                );
            }
        }
    }
    render_kinesis(&mut out, streams);
    render_leases(&mut out, streams);
    render_server(&mut out);
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

const SERVER_FAMILIES: [Family; 4] = [
    family(
        "firehose_api_unauthenticated_requests_total",
        "counter",
        "Requests refused for their signature (missing, malformed, unknown key, wrong, expired); firehosed only",
    ),
    family(
        "firehose_api_denied_requests_total",
        "counter",
        "Requests refused by their principal's policy (AccessDeniedException); firehosed only",
    ),
    family(
        "firehose_api_connections_refused_total",
        "counter",
        "Connections over server.max_connections, answered Slow down. and closed; firehosed only",
    ),
    family(
        "firehose_api_connections_timed_out_total",
        "counter",
        "Connections closed idle, or too slow sending a request's headers or body; firehosed only",
    ),
];

fn render_server(out: &mut String) {
    let values = [
        &SERVER.unauthenticated,
        &SERVER.denied,
        &SERVER.connections_refused,
        &SERVER.connections_timed_out,
    ];
    for (f, v) in SERVER_FAMILIES.iter().zip(values) {
        header(out, f);
        let _ = writeln!(out, "{} {}", f.name, v.get());
    }
}

const KINESIS_FAMILIES: [Family; 4] = [
    family(
        "firehose_data_read_from_kinesis_stream_records_total",
        "counter",
        "DataReadFromKinesisStream.Records: records read from the source stream, per shard",
    ),
    family(
        "firehose_data_read_from_kinesis_stream_bytes_total",
        "counter",
        "DataReadFromKinesisStream.Bytes: bytes read from the source stream, per shard",
    ),
    family(
        "firehose_kinesis_millis_behind_latest",
        "gauge",
        "KinesisMillisBehindLatest: how far the shard's reader is behind the tip, per shard",
    ),
    family(
        "firehose_kinesis_get_records_throttled_total",
        "counter",
        "GetRecords calls refused with ProvisionedThroughputExceeded / LimitExceeded; firehosed only",
    ),
];

fn render_kinesis(out: &mut String, streams: &[StreamView]) {
    for (i, f) in KINESIS_FAMILIES.iter().enumerate() {
        header(out, f);
        for s in streams {
            for (shard, records, bytes, behind, throttled) in &s.shards {
                let v = match i {
                    0 => records.to_string(),
                    1 => bytes.to_string(),
                    2 => behind.to_string(),
                    _ => throttled.to_string(),
                };
                let _ = writeln!(
                    out,
                    "{}{{delivery_stream=\"{}\",shard=\"{shard}\"}} {v}",
                    f.name, s.name
                );
            }
        }
    }
}

const LEASE_FAMILIES: [Family; 7] = [
    family(
        "firehose_kinesis_leases_held",
        "gauge",
        "Shard leases this instance holds in the lease table; firehosed only",
    ),
    family(
        "firehose_kinesis_leases_taken_total",
        "counter",
        "Unowned or expired shard leases this instance took; firehosed only",
    ),
    family(
        "firehose_kinesis_leases_stolen_total",
        "counter",
        "Shard leases this instance took from a live instance to balance the fleet; firehosed only",
    ),
    family(
        "firehose_kinesis_leases_handed_off_total",
        "counter",
        "Shard leases taken from this instance that it handed off with a last checkpoint; firehosed only",
    ),
    family(
        "firehose_kinesis_leases_lost_total",
        "counter",
        "Shard leases this instance lost (not renewed within the failover time, or taken while it could not hand off); firehosed only",
    ),
    family(
        "firehose_kinesis_lease_renew_failures_total",
        "counter",
        "Lease renewals that failed (DynamoDB unreachable or erroring); firehosed only",
    ),
    family(
        "firehose_kinesis_lease_duplicate_records_total",
        "counter",
        "Records this instance delivered past the last checkpoint it could write before losing the lease: the next owner reads them again; firehosed only",
    ),
];

fn render_leases(out: &mut String, streams: &[StreamView]) {
    for (i, f) in LEASE_FAMILIES.iter().enumerate() {
        header(out, f);
        for s in streams {
            let Some(l) = s.leases else { continue };
            let v = [
                l.held,
                l.taken,
                l.stolen,
                l.handed_off,
                l.lost,
                l.renew_failures,
                l.duplicates,
            ][i];
            let _ = writeln!(out, "{}{{delivery_stream=\"{}\"}} {v}", f.name, s.name);
        }
    }
}

fn header(out: &mut String, f: &Family) {
    let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
    let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
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
                shards: vec![("shardId-000000000001".into(), 5, 50, 1000, 1)],
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
}
