//! firehosed: Amazon Data Firehose on a VM you own and inside test suites.
//!
//! The flow (DESIGN.md section 1): `api` accepts records -> `stream::put` makes them durable in
//! the `spool` (the acknowledgement) -> the stream's processor reads the log once, runs
//! `processing` (the transform) and hands each destination its records, error records and
//! backups -> `destination` stages, seals and delivers objects -> S3 or a folder -> the
//! destination's watermark moves its log cursor.
//!
//! Module map:
//! - `app`: start-up, serving, drain on shutdown; `app::build` makes a running stream,
//!   `app::reload` applies a re-read file (SIGHUP), `app::open_files` the open-file budget.
//! - `config`: YAML -> checked model; every error with FILE:LINE:COLUMN and key path
//!   (`config::transform` also holds `lambda_functions`, what API Lambda processors run).
//! - `control`: the control plane's records (origin, version, tags, status; API streams kept in
//!   state_dir/streams) and `control::request`, AWS request shapes -> the config's shape.
//! - `api`: the Firehose awsJson 1.1 API, plain ingest, flush, /healthz, /metrics.
//! - `source`: one ordered log per stream: the spool (Direct PUT) or the in-memory log fed by
//!   the Kinesis source (`source::kinesis`: shard discovery, readers, KPL, checkpoints).
//! - `spool`: the durable segment log: group commit, per-destination cursors, replay, budget.
//! - `stream`: a running delivery stream (put, flush, close) and its `processor`.
//! - `processing`: `deaggregate` (JSON / delimited records), the transform
//!   (`transform::{contract, subprocess, wasm}`: the Lambda contract, the child-process and WASM
//!   runtimes), `error_record` (AWS's error JSON), `metadata` (the jq partition-key query).
//! - `destination`: object keys (`template`, `timefmt`, `naming`), `staging`, the `worker`
//!   (flush on size / interval / flush / close), `stagers` (main or per-partition, error and
//!   backup objects), `partition` (a record's partition from its keys), the `watermark` (when
//!   the log cursor may move), `sink`s (`s3`, `directory`), `retry`.
//! - `encode`: compression codecs (GZIP, ZIP, Snappy, HADOOP_SNAPPY) and `encode::parquet`, the
//!   JSON -> Parquet format conversion (`schema` Hive types, `json` parser, `rows`/`values`
//!   coercions, `columns` builders, `timestamp` parsing, `ParquetWriter`).
//! - `aws`: SDK clients from the `aws` settings.
//! - `metrics`: every metric name, Prometheus rendering.
//! - `notify`: systemd's sd_notify protocol (READY, STOPPING, WATCHDOG).
//! - `record`: the record type.

pub mod api;
pub mod app;
pub mod aws;
pub mod config;
pub mod control;
pub mod destination;
pub mod encode;
pub mod fatal;
pub mod jq;
pub mod keys;
pub mod metrics;
pub mod notify;
pub mod processing;
pub mod record;
pub mod report;
pub mod retry;
pub mod source;
pub mod spool;
pub mod stream;
pub mod streams;
