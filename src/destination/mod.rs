//! Destinations: object naming (`template`, `timefmt`, `naming`), staging, the worker that
//! seals objects on size/interval/flush/close, and the sinks (S3, local directory).

pub mod directory;
pub mod naming;
pub mod partition;
pub mod s3;
pub mod sink;
pub mod stagers;
pub mod staging;
pub mod watermark;
pub mod worker;

pub(crate) use stagers::{Delivery, StagingPlan};
pub(crate) use worker::{DestinationHandle, Input, OnDelivered, WorkerSetup};
