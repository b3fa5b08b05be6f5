//! Destinations: object naming (`template`, `timefmt`, `naming`), staging, the worker that
//! seals objects on size/interval/flush/close, and the sinks (S3, local directory).

pub(crate) mod contract;
pub(crate) mod directory;
pub(crate) mod http;
pub(crate) mod iceberg;
pub(crate) mod journal;
#[cfg(test)]
pub(crate) mod memory;
pub(crate) mod naming;
pub(crate) mod partition;
pub(crate) mod s3;
pub(crate) mod shards;
pub(crate) mod sink;
pub(crate) mod stagers;
pub(crate) mod staging;
pub(crate) mod watermark;
pub(crate) mod worker;

pub(crate) use stagers::{Delivery, StagingPlan};
pub(crate) use worker::{DestinationHandle, Input, OnDelivered, WorkerSetup};
