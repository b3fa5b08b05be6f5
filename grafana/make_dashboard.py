"""Writes grafana/firehosed.json, the Grafana dashboard of firehosed's Prometheus metrics
(docs/metrics.md). Edit the panels here and rerun: python3 grafana/make_dashboard.py"""
import json
import os

panels = [
    # (title, unit, [(expr, legend)])
    ("Incoming records/s (IncomingRecords)", "ops",
     [("sum by (delivery_stream) (rate(firehose_incoming_records_total[$__rate_interval]))", "{{delivery_stream}}")]),
    ("Incoming bytes/s (IncomingBytes)", "Bps",
     [("sum by (delivery_stream) (rate(firehose_incoming_bytes_total[$__rate_interval]))", "{{delivery_stream}}")]),
    ("Throttled records/s (ThrottledRecords)", "ops",
     [("sum by (delivery_stream) (rate(firehose_throttled_records_total[$__rate_interval]))", "{{delivery_stream}}")]),
    ("Delivered records/s (DeliveryToS3.Records)", "ops",
     [("sum by (delivery_stream, destination) (rate(firehose_delivery_to_s3_records_total[$__rate_interval]))", "{{delivery_stream}} #{{destination}}")]),
    ("Data freshness (DeliveryToS3.DataFreshness)", "s",
     [("max by (delivery_stream, destination) (firehose_delivery_to_s3_data_freshness_seconds)", "{{delivery_stream}} #{{destination}}")]),
    ("Delivery success ratio (DeliveryToS3.Success)", "percentunit",
     [("sum by (delivery_stream) (rate(firehose_delivery_to_s3_success_total[$__rate_interval])) / (sum by (delivery_stream) (rate(firehose_delivery_to_s3_success_total[$__rate_interval])) + sum by (delivery_stream) (rate(firehose_delivery_to_s3_failures_total[$__rate_interval])))", "{{delivery_stream}}")]),
    ("Objects written/s (DeliveryToS3.ObjectCount)", "ops",
     [("sum by (delivery_stream) (rate(firehose_delivery_to_s3_object_count_total[$__rate_interval]))", "{{delivery_stream}}")]),
    ("Error-prefix records/s", "ops",
     [("sum by (delivery_stream) (rate(firehose_error_output_records_total[$__rate_interval]))", "all errors {{delivery_stream}}"),
      ("sum by (delivery_stream) (rate(firehose_failed_conversion_records_total[$__rate_interval]))", "FailedConversion {{delivery_stream}}"),
      ("sum by (delivery_stream) (rate(firehose_transform_records_failed_total[$__rate_interval]))", "transform {{delivery_stream}}"),
      ("sum by (delivery_stream) (rate(firehose_partition_count_exceeded_records_total[$__rate_interval]))", "PartitionCountExceeded {{delivery_stream}}")]),
    ("Spool: bytes on disk and backlog", "short",
     [("sum by (delivery_stream) (firehose_spool_bytes)", "bytes {{delivery_stream}}"),
      ("sum by (delivery_stream) (firehose_spool_backlog_records)", "backlog records {{delivery_stream}}")]),
    ("Transform (ExecuteProcessing)", "short",
     [("sum by (delivery_stream) (rate(firehose_execute_processing_invocations_total[$__rate_interval]))", "invocations/s {{delivery_stream}}"),
      ("sum by (delivery_stream) (rate(firehose_execute_processing_failures_total[$__rate_interval]))", "failures/s {{delivery_stream}}"),
      ("sum by (delivery_stream) (rate(firehose_execute_processing_duration_seconds_total[$__rate_interval])) / sum by (delivery_stream) (rate(firehose_execute_processing_invocations_total[$__rate_interval]))", "mean duration s {{delivery_stream}}")]),
    ("Active partitions (dynamic partitioning)", "short",
     [("sum by (delivery_stream, destination) (firehose_active_partitions)", "{{delivery_stream}} #{{destination}}")]),
    ("Kinesis: millis behind latest (KinesisMillisBehindLatest)", "ms",
     [("max by (delivery_stream, shard) (firehose_kinesis_millis_behind_latest)", "{{delivery_stream}} {{shard}}")]),
    ("Kinesis: records read/s (DataReadFromKinesisStream.Records)", "ops",
     [("sum by (delivery_stream) (rate(firehose_data_read_from_kinesis_stream_records_total[$__rate_interval]))", "{{delivery_stream}}")]),
    ("Kinesis fleet: shard leases per instance", "short",
     [("sum by (delivery_stream, instance) (firehose_kinesis_leases_held)", "held {{instance}} {{delivery_stream}}"),
      ("sum by (delivery_stream, instance) (increase(firehose_kinesis_leases_taken_total[$__rate_interval]))", "taken {{instance}}"),
      ("sum by (delivery_stream, instance) (increase(firehose_kinesis_leases_stolen_total[$__rate_interval]))", "stolen {{instance}}"),
      ("sum by (delivery_stream, instance) (increase(firehose_kinesis_leases_lost_total[$__rate_interval]))", "lost {{instance}}"),
      ("sum by (delivery_stream, instance) (increase(firehose_kinesis_lease_renew_failures_total[$__rate_interval]))", "renew failures {{instance}}"),
      ("sum by (delivery_stream, instance) (increase(firehose_kinesis_lease_duplicate_records_total[$__rate_interval]))", "duplicate records {{instance}}")]),
    ("Kinesis enhanced fan-out: subscriptions", "short",
     [("sum by (delivery_stream) (increase(firehose_kinesis_subscriptions_started_total[$__rate_interval]))", "started {{delivery_stream}}"),
      ("sum by (delivery_stream) (increase(firehose_kinesis_subscriptions_ended_total[$__rate_interval]))", "ended at the 5-minute limit {{delivery_stream}}"),
      ("sum by (delivery_stream, kind) (increase(firehose_kinesis_subscription_errors_total[$__rate_interval]))", "errors {{kind}} {{delivery_stream}}")]),
    ("Staging errors (local disk)", "short",
     [("sum by (delivery_stream) (increase(firehose_staging_errors_total[$__rate_interval]))", "{{delivery_stream}}")]),
]

out = []
for i, (title, unit, targets) in enumerate(panels):
    out.append({
        "id": i + 1,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [{"refId": chr(65 + j), "expr": e, "legendFormat": l,
                     "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                    for j, (e, l) in enumerate(targets)],
    })

dashboard = {
    "title": "firehosed",
    "uid": "firehosed",
    "description": "firehosed's metrics with their AWS names (docs/metrics.md)",
    "schemaVersion": 39,
    "version": 1,
    "editable": True,
    "time": {"from": "now-1h", "to": "now"},
    "refresh": "30s",
    "tags": ["firehosed", "firehose"],
    "templating": {"list": [{
        "name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus",
    }]},
    "panels": out,
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "firehosed.json")
with open(path, "w") as f:
    json.dump(dashboard, f, indent=2)
    f.write("\n")
