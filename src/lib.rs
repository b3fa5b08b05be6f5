//! firehosed: Amazon Data Firehose on a VM you own and inside test suites.
//!
//! The flow (DESIGN.md section 1): `api` accepts records -> `stream` (the slot of the durable
//! spool) fans them out -> `destination` stages, seals and delivers objects -> S3 or a folder.
//!
//! Module map:
//! - `app`: start-up, serving, drain on shutdown.
//! - `config`: YAML -> checked model; every error with FILE:LINE:COLUMN and key path.
//! - `api`: the Firehose awsJson 1.1 API, plain ingest, flush, /healthz, /metrics.
//! - `stream`: a running delivery stream (put, flush, close).
//! - `destination`: object keys (`template`, `timefmt`, `naming`), `staging`, the `worker`
//!   (flush on size / interval / flush / close), `sink`s (`s3`, `directory`), `retry`.
//! - `encode`: compression codecs (GZIP, ZIP, Snappy, HADOOP_SNAPPY).
//! - `aws`: SDK clients from the `aws` settings.
//! - `metrics`: every metric name, Prometheus rendering.
//! - `record`: the record type.

pub mod api;
pub mod app;
pub mod aws;
pub mod config;
pub mod destination;
pub mod encode;
pub mod metrics;
pub mod record;
pub mod spool;
pub mod stream;
