//! The Apache Iceberg destination (docs/iceberg.md): records are routed to tables
//! (`router.rs`: the transform's otfMetadata, the routing query, the only table), grouped by
//! table and partition tuple (`tuple.rs`) into one Parquet data file each, staged like any
//! partition's object, and committed by the sink (`sink.rs`) through `crate::iceberg`.

pub(crate) mod changes;
mod evolution;
pub(crate) mod router;
pub(crate) mod sink;
pub(crate) mod tuple;

pub(crate) use router::{Router, RouterSetup};
pub(crate) use sink::{IcebergSetup, IcebergSink};

#[cfg(test)]
mod tests;
