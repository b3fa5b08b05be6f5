//! The end-to-end tier: the real binary against real local servers (moto, kinesalite, s3s-fs,
//! Python and Node clients), one module per capability, each opening with the guarantee it
//! proves. One test binary (not one per file): the crate and `support` are linked once.

mod support;

mod api;
mod aws_fidelity;
mod chaos;
mod chaos_proxy;
mod cli;
mod clients;
mod cloudwatch_logs;
mod connections;
mod container;
mod contracts;
mod control_plane;
mod delivery;
mod durability;
mod exactly_once;
mod fleet;
mod format_conversion;
mod fuzz_corpus;
mod house;
mod http_endpoint;
mod iceberg;
mod iceberg_changes;
mod iceberg_tables;
mod kinesis;
mod kinesis_fan_out;
mod model;
mod observability;
mod operational_faults;
mod orc_conversion;
mod package;
mod partitioning;
mod readme;
mod reload;
mod s3_failures;
mod security;
mod security_reload;
mod startup_faults;
mod systemd;
mod systemd_container;
mod testing_guide;
mod transform;
mod transform_failures;
