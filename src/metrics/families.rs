//! Every metric family: its Prometheus name (AWS's CloudWatch name in Prometheus spelling,
//! docs/aws-behaviour.md section 11), its kind, its HELP line (which names the AWS metric), and
//! the accessor that reads its value. A family is bound to its value by name, here, not by its
//! place in a list. docs/metrics.md lists them.

use super::Value::{self, Count, Level, Millis, Seconds};

/// Reads a family's value from what it is about (given the time, ms since the epoch).
type Read<T> = fn(&T, i64) -> Value;
/// The same for one kind of a shard's subscription errors.
type ReadKind = fn(&ShardView, SubscribeError, i64) -> Value;
/// The same for a stream (its view borrows the stream: any lifetime).
type ReadStream = fn(&StreamView, i64) -> Value;
use super::{
    DestinationMetrics, Family, LeaseView, MetricType, ServerMetrics, ShardView, StreamView,
    SubscribeError,
};

pub(super) const STREAM: &[Family<ReadStream>] = &[
    Family {
        name: "firehose_incoming_bytes_total",
        kind: MetricType::Counter,
        help: "IncomingBytes: bytes of records accepted",
        read: |s, _| Count(s.stream.incoming_bytes.get()),
    },
    Family {
        name: "firehose_incoming_records_total",
        kind: MetricType::Counter,
        help: "IncomingRecords: records accepted",
        read: |s, _| Count(s.stream.incoming_records.get()),
    },
    Family {
        name: "firehose_incoming_put_requests_total",
        kind: MetricType::Counter,
        help: "IncomingPutRequests: PutRecord, PutRecordBatch and plain ingest requests accepted",
        read: |s, _| Count(s.stream.incoming_put_requests.get()),
    },
    Family {
        name: "firehose_throttled_records_total",
        kind: MetricType::Counter,
        help: "ThrottledRecords: records refused with ServiceUnavailableException",
        read: |s, _| Count(s.stream.throttled_records.get()),
    },
    Family {
        name: "firehose_spool_bytes",
        kind: MetricType::Gauge,
        help: "Bytes of the durable spool on disk; firehosed only",
        read: |s, _| Count(s.spool_bytes),
    },
    Family {
        name: "firehose_spool_backlog_records",
        kind: MetricType::Gauge,
        help: "Acknowledged records not yet delivered by every destination; firehosed only",
        read: |s, _| Count(s.backlog_records),
    },
    Family {
        name: "firehose_execute_processing_invocations_total",
        kind: MetricType::Counter,
        help: "Transform invocations, retries included (ExecuteProcessing.Success = 1 - failures / invocations)",
        read: |s, _| Count(s.stream.transform_invocations.get()),
    },
    Family {
        name: "firehose_execute_processing_failures_total",
        kind: MetricType::Counter,
        help: "Failed transform invocations (error, timeout, bad response), each retried; firehosed only",
        read: |s, _| Count(s.stream.transform_failed_invocations.get()),
    },
    Family {
        name: "firehose_execute_processing_duration_seconds_total",
        kind: MetricType::Counter,
        help: "ExecuteProcessing.Duration: time spent in transform invocations",
        read: |s, _| Millis(s.stream.transform_duration_ms.get()),
    },
    Family {
        name: "firehose_succeed_processing_records_total",
        kind: MetricType::Counter,
        help: "SucceedProcessing.Records: records the transform returned Ok",
        read: |s, _| Count(s.stream.transform_ok_records.get()),
    },
    Family {
        name: "firehose_succeed_processing_bytes_total",
        kind: MetricType::Counter,
        help: "SucceedProcessing.Bytes: bytes of the records the transform returned Ok",
        read: |s, _| Count(s.stream.transform_ok_bytes.get()),
    },
    Family {
        name: "firehose_transform_records_dropped_total",
        kind: MetricType::Counter,
        help: "Records the transform returned Dropped; firehosed only",
        read: |s, _| Count(s.stream.transform_dropped_records.get()),
    },
    Family {
        name: "firehose_transform_records_failed_total",
        kind: MetricType::Counter,
        help: "Records sent to the error prefix by the transform (ProcessingFailed or failed invocations); firehosed only",
        read: |s, _| Count(s.stream.transform_failed_records.get()),
    },
    Family {
        name: "firehose_decompressed_records_total",
        kind: MetricType::Counter,
        help: "Records decompressed by processing.decompression (GZIP); firehosed only",
        read: |s, _| Count(s.stream.decompressed_records.get()),
    },
    Family {
        name: "firehose_decompression_failed_records_total",
        kind: MetricType::Counter,
        help: "Records sent to the decompression-failed error prefix (not GZIP, too big decompressed, not a CloudWatch Logs document); firehosed only",
        read: |s, _| Count(s.stream.decompression_failed_records.get()),
    },
    Family {
        name: "firehose_cloudwatch_logs_events_extracted_total",
        kind: MetricType::Counter,
        help: "Log events extracted from CloudWatch Logs DATA_MESSAGE documents, one record each; firehosed only",
        read: |s, _| Count(s.stream.log_events_extracted.get()),
    },
    Family {
        name: "firehose_cloudwatch_logs_control_messages_dropped_total",
        kind: MetricType::Counter,
        help: "CloudWatch Logs CONTROL_MESSAGE documents dropped by the extraction; firehosed only",
        read: |s, _| Count(s.stream.control_messages_dropped.get()),
    },
];

pub(super) const DESTINATION: &[Family<Read<DestinationMetrics>>] = &[
    Family {
        name: "firehose_delivery_to_s3_records_total",
        kind: MetricType::Counter,
        help: "DeliveryToS3.Records: records delivered",
        read: |m, _| Count(m.delivered_records.get()),
    },
    Family {
        name: "firehose_delivery_to_s3_bytes_total",
        kind: MetricType::Counter,
        help: "DeliveryToS3.Bytes: record bytes delivered (before compression)",
        read: |m, _| Count(m.delivered_bytes.get()),
    },
    Family {
        name: "firehose_delivery_to_s3_object_count_total",
        kind: MetricType::Counter,
        help: "DeliveryToS3.ObjectCount: objects delivered",
        read: |m, _| Count(m.delivered_objects.get()),
    },
    Family {
        name: "firehose_delivery_to_s3_object_bytes_total",
        kind: MetricType::Counter,
        help: "Bytes of the delivered objects (after compression); firehosed only",
        read: |m, _| Count(m.delivered_object_bytes.get()),
    },
    Family {
        name: "firehose_delivery_to_s3_success_total",
        kind: MetricType::Counter,
        help: "DeliveryToS3.Success: successful object writes (ratio = success / (success + failures))",
        read: |m, _| Count(m.put_success.get()),
    },
    Family {
        name: "firehose_delivery_to_s3_failures_total",
        kind: MetricType::Counter,
        help: "Failed object write attempts, each retried; firehosed only",
        read: |m, _| Count(m.put_failures.get()),
    },
    Family {
        name: "firehose_delivery_to_s3_data_freshness_seconds",
        kind: MetricType::Gauge,
        help: "DeliveryToS3.DataFreshness: age of the oldest record not yet delivered",
        read: |m, now_ms| Seconds(m.data_freshness_seconds(now_ms)),
    },
    Family {
        name: "firehose_staging_errors_total",
        kind: MetricType::Counter,
        help: "Local disk errors while staging records; firehosed only",
        read: |m, _| Count(m.staging_errors.get()),
    },
    Family {
        name: "firehose_error_output_records_total",
        kind: MetricType::Counter,
        help: "Error records written under the error prefix; firehosed only",
        read: |m, _| Count(m.error_records.get()),
    },
    Family {
        name: "firehose_backup_to_s3_records_total",
        kind: MetricType::Counter,
        help: "BackupToS3.Records: source records written under the backup prefix",
        read: |m, _| Count(m.backup_records.get()),
    },
    Family {
        name: "firehose_active_partitions",
        kind: MetricType::Gauge,
        help: "ActivePartitionsLimit usage: partitions with an open buffer (dynamic partitioning)",
        read: |m, _| Count(m.active_partitions()),
    },
    Family {
        name: "firehose_partition_count_exceeded_records_total",
        kind: MetricType::Counter,
        help: "PartitionCountExceeded: records sent to the error prefix because the active-partition limit was reached",
        read: |m, _| Count(m.partition_count_exceeded.get()),
    },
    Family {
        name: "firehose_partition_suspensions_total",
        kind: MetricType::Counter,
        help: "Idle partitions whose encoder and staging file were closed (their object stays open); firehosed only",
        read: |m, _| Count(m.partition_suspensions.get()),
    },
    Family {
        name: "firehose_succeed_conversion_records_total",
        kind: MetricType::Counter,
        help: "SucceedConversion.Records: records converted to Parquet",
        read: |m, _| Count(m.conversion_ok_records.get()),
    },
    Family {
        name: "firehose_succeed_conversion_bytes_total",
        kind: MetricType::Counter,
        help: "SucceedConversion.Bytes: bytes of the records converted to Parquet",
        read: |m, _| Count(m.conversion_ok_bytes.get()),
    },
    Family {
        name: "firehose_failed_conversion_records_total",
        kind: MetricType::Counter,
        help: "FailedConversion.Records: records that did not fit the schema (sent to the error prefix)",
        read: |m, _| Count(m.conversion_failed_records.get()),
    },
    Family {
        name: "firehose_failed_conversion_bytes_total",
        kind: MetricType::Counter,
        help: "FailedConversion.Bytes: bytes of the records that did not fit the schema",
        read: |m, _| Count(m.conversion_failed_bytes.get()),
    },
    Family {
        name: "firehose_staging_disk_full_waits_total",
        kind: MetricType::Counter,
        help: "Staging writes that found the disk under state_dir full and waited for space; firehosed only",
        read: |m, _| Count(m.disk_full_waits.get()),
    },
    Family {
        name: "firehose_delivery_objects_already_there_total",
        kind: MetricType::Counter,
        help: "Exactly-once objects not written because an object of that name existed (an earlier run or an attempt whose answer was lost wrote it); firehosed only",
        read: |m, _| Count(m.objects_already_there.get()),
    },
    Family {
        name: "firehose_delivery_objects_fenced_total",
        kind: MetricType::Counter,
        help: "Exactly-once objects of a Kinesis shard dropped unwritten because its lease moved to another instance, which cuts them; firehosed only",
        read: |m, _| Count(m.objects_fenced.get()),
    },
    Family {
        name: "firehose_delivery_to_http_endpoint_failed_requests_total",
        kind: MetricType::Counter,
        help: "HTTP endpoint requests that failed (timeout, connection, a status other than 200, an invalid answer), each attempt",
        read: |m, _| Count(m.http_failed_requests.get()),
    },
    Family {
        name: "firehose_delivery_to_http_endpoint_failed_records_total",
        kind: MetricType::Counter,
        help: "Records an HTTP endpoint did not take within the retry duration, written to the backup as http-endpoint-failed error records",
        read: |m, _| Count(m.http_failed_records.get()),
    },
];

pub(super) const SERVER: &[Family<Read<ServerMetrics>>] = &[
    Family {
        name: "firehose_api_unauthenticated_requests_total",
        kind: MetricType::Counter,
        help: "Requests refused for their signature (missing, malformed, unknown key, wrong, expired); firehosed only",
        read: |s, _| Count(s.unauthenticated.get()),
    },
    Family {
        name: "firehose_api_denied_requests_total",
        kind: MetricType::Counter,
        help: "Requests refused by their principal's policy (AccessDeniedException); firehosed only",
        read: |s, _| Count(s.denied.get()),
    },
    Family {
        name: "firehose_api_connections_refused_total",
        kind: MetricType::Counter,
        help: "Connections over server.max_connections, answered Slow down. and closed; firehosed only",
        read: |s, _| Count(s.connections_refused.get()),
    },
    Family {
        name: "firehose_api_connections_timed_out_total",
        kind: MetricType::Counter,
        help: "Connections closed idle, or too slow sending a request's headers or body; firehosed only",
        read: |s, _| Count(s.connections_timed_out.get()),
    },
];

pub(super) const KINESIS: &[Family<Read<ShardView>>] = &[
    Family {
        name: "firehose_data_read_from_kinesis_stream_records_total",
        kind: MetricType::Counter,
        help: "DataReadFromKinesisStream.Records: records read from the source stream, per shard",
        read: |s, _| Count(s.records),
    },
    Family {
        name: "firehose_data_read_from_kinesis_stream_bytes_total",
        kind: MetricType::Counter,
        help: "DataReadFromKinesisStream.Bytes: bytes read from the source stream, per shard",
        read: |s, _| Count(s.bytes),
    },
    Family {
        name: "firehose_kinesis_millis_behind_latest",
        kind: MetricType::Gauge,
        help: "KinesisMillisBehindLatest: how far the shard's reader is behind the tip, per shard",
        read: |s, _| Level(s.millis_behind),
    },
    Family {
        name: "firehose_kinesis_get_records_throttled_total",
        kind: MetricType::Counter,
        help: "GetRecords calls refused with ProvisionedThroughputExceeded / LimitExceeded; firehosed only",
        read: |s, _| Count(s.throttled),
    },
    Family {
        name: "firehose_kinesis_subscriptions_started_total",
        kind: MetricType::Counter,
        help: "Enhanced fan-out: SubscribeToShard calls answered with a subscription, per shard; firehosed only",
        read: |s, _| Count(s.subscriptions),
    },
    Family {
        name: "firehose_kinesis_subscriptions_ended_total",
        kind: MetricType::Counter,
        help: "Enhanced fan-out: subscriptions the server ended at its time limit (AWS: 5 minutes) and renewed, per shard; firehosed only",
        read: |s, _| Count(s.subscriptions_ended),
    },
];

/// Enhanced fan-out's failed subscriptions, per shard and kind (in_use, throttled, not_found,
/// other).
pub(super) const SUBSCRIBE_ERRORS: &[Family<ReadKind>] = &[Family {
    name: "firehose_kinesis_subscription_errors_total",
    kind: MetricType::Counter,
    help: "Enhanced fan-out: SubscribeToShard refused or a subscription cut short, per shard and kind; firehosed only",
    read: |s, kind, _| Count(s.subscribe_errors[kind as usize]),
}];

pub(super) const LEASE: &[Family<Read<LeaseView>>] = &[
    Family {
        name: "firehose_kinesis_leases_held",
        kind: MetricType::Gauge,
        help: "Shard leases this instance holds in the lease table; firehosed only",
        read: |l, _| Count(l.held),
    },
    Family {
        name: "firehose_kinesis_leases_taken_total",
        kind: MetricType::Counter,
        help: "Unowned or expired shard leases this instance took; firehosed only",
        read: |l, _| Count(l.taken),
    },
    Family {
        name: "firehose_kinesis_leases_stolen_total",
        kind: MetricType::Counter,
        help: "Shard leases this instance took from a live instance to balance the fleet; firehosed only",
        read: |l, _| Count(l.stolen),
    },
    Family {
        name: "firehose_kinesis_leases_handed_off_total",
        kind: MetricType::Counter,
        help: "Shard leases taken from this instance that it handed off with a last checkpoint; firehosed only",
        read: |l, _| Count(l.handed_off),
    },
    Family {
        name: "firehose_kinesis_leases_lost_total",
        kind: MetricType::Counter,
        help: "Shard leases this instance lost (not renewed within the failover time, or taken while it could not hand off); firehosed only",
        read: |l, _| Count(l.lost),
    },
    Family {
        name: "firehose_kinesis_lease_renew_failures_total",
        kind: MetricType::Counter,
        help: "Lease renewals that failed (DynamoDB unreachable or erroring); firehosed only",
        read: |l, _| Count(l.renew_failures),
    },
    Family {
        name: "firehose_kinesis_lease_duplicate_records_total",
        kind: MetricType::Counter,
        help: "Records this instance delivered past the last checkpoint it could write before losing the lease: the next owner reads them again; firehosed only",
        read: |l, _| Count(l.duplicates),
    },
];
