//! firehosed: Amazon Data Firehose on a VM you own and inside test suites.
//!
//! The flow (docs/architecture.md): `api` accepts records -> `stream` makes them durable in the
//! `spool` (the acknowledgement) -> the stream's processor reads the log once, runs
//! `processing` (de-aggregation, the transform, partition keys) and hands each destination its
//! records, error records and backups -> `destination` stages, seals and delivers objects to S3
//! or a folder -> the destination's watermark moves its log cursor (the cursor update is
//! injected into the destination, never imported by it).
//!
//! Module map, top to bottom (a module imports only modules below it; tests/house.rs checks):
//! - `app`: start-up, serving, the drain on shutdown, reload (SIGHUP). The only user of anyhow.
//! - `api`: the Firehose awsJson 1.1 API, plain ingest, flush, /healthz, /readyz, /metrics;
//!   AWS-shaped errors, mapped once from the lower modules' typed errors.
//! - `streams`: the one owner of the running streams (create / update / delete / restore /
//!   apply a reloaded file), the open-file admission, and `streams::build`, which assembles a
//!   stream from its configuration.
//! - `control`: the control plane's records (origin, version, tags, status; API streams kept in
//!   state_dir/streams) and `control::request`, AWS request shapes -> the configuration's shape.
//! - `stream`: a running delivery stream (put, flush, close) and its `processor`.
//! - `source`: one ordered log per stream: the spool (Direct PUT) or the in-memory log fed by
//!   the Kinesis source (`source::kinesis`: shard discovery, readers, KPL, checkpoints).
//! - `destination`: object `naming`, `staging` (one object's encoder and file), `stagers` (the
//!   objects a destination builds at once), the `worker` (flush on size / interval / flush /
//!   close) and its uploader, `partition`, the `watermark`, sinks (`s3`, `directory`).
//! - `processing`: `deaggregate`, the transform (`transform::{contract, subprocess, wasm,
//!   batch}`), `error_record` (AWS's error JSON).
//! - `spool`: the durable segment log: group commit, per-destination cursors, replay, budget.
//! - `aws`: SDK clients from the `aws` settings.
//! - `config`: YAML -> checked model; every error with FILE:LINE:COLUMN and key path.
//! - `encode`: compression codecs (GZIP, ZIP, Snappy, HADOOP_SNAPPY) and `encode::parquet`, the
//!   JSON -> Parquet conversion.
//! - Shared below all of them: `disk` (free space under state_dir: the spool's reserve, staging
//!   that waits for space), `keys` (prefix templates, Java time formats), `jq` (the
//!   partition-key query), `retry` (backoff, log gating), `fatal` (a fatal local error reported
//!   to `app`), `report` (an error and its causes on one line), `metrics`, `notify` (systemd's
//!   sd_notify), `record` (the record type).
//!
//! Public items are what the binary, the benches and the examples use; everything else is
//! `pub(crate)` (the `unreachable_pub` lint keeps it so).

mod api;
pub mod app;
mod auth;
mod aws;
pub mod config;
mod control;
mod destination;
mod disk;
pub mod encode;
mod fatal;
#[doc(hidden)]
pub mod fuzzing;
/// The contract suites of the seams (object stores, lease stores, shard sources), for
/// tests/contracts.rs to run on the real backends; hidden, used by nothing else.
#[doc(hidden)]
pub mod contracts {
    pub use crate::destination::contract::{ContractError, s3 as s3_sink};
    pub use crate::source::kinesis::lease_store::contract::{
        LeaseContractError, dynamodb as dynamodb_leases,
    };
    pub use crate::source::kinesis::shard_source::contract::{
        ShardContractError, kinesis as kinesis_shards,
    };
}
mod glue;
mod jq;
mod keys;
mod metrics;
mod notify;
mod processing;
mod record;
mod report;
mod retry;
mod shapes;
mod source;
mod spec;
mod spool;
mod stream;
mod streams;
mod sync;
