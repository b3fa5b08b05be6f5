//! firehosed: Amazon Data Firehose on a VM you own and inside test suites.
//!
//! docs/architecture.md is the map of the code: the record path, the control path, every
//! module and what it owns (top to bottom: a module imports only those below it), the seams
//! and the test tiers. It is the one map; keep it true in the commit that changes the code.
//!
//! Public items are what the binary, the benches and the examples use; everything else is
//! `pub(crate)` (the `unreachable_pub` lint keeps it so).

// A function longer than 80 lines of code holds more than one idea: split it by meaning
// (clippy.toml sets the threshold). Tests may be one long scenario.
#![warn(clippy::too_many_lines)]
// The future of a reload (reload -> a stream's start -> its build -> each start-up check) is
// deeper than rustc's default query depth lets it lay out on a cold build (seen in a fresh-clone
// CI run); a stream's build is boxed as well (`Streams::run`), which keeps the futures above it
// small.
#![recursion_limit = "256"]
#![cfg_attr(test, allow(clippy::too_many_lines))]

pub mod allocator;
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
/// tests/e2e/contracts.rs to run on the real backends; hidden, used by nothing else.
#[doc(hidden)]
pub mod contracts {
    pub use crate::destination::contract::{ContractError, s3 as s3_sink};
    pub use crate::source::kinesis::lease_store::contract::{
        LeaseContractError, dynamodb as dynamodb_leases,
    };
    pub use crate::source::kinesis::shard_source::contract::{
        ShardContractError, kinesis as kinesis_shards, kinesis_fan_out as kinesis_subscriptions,
    };
}
mod glue;
mod iceberg;
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
