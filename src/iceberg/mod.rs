//! Apache Iceberg tables (table format v2), written without the `iceberg` crate: data files are
//! Parquet from `encode::conversion` with the table's field ids, and this module writes what
//! makes them a table (docs/iceberg.md says why): the metadata file (`metadata`), manifests and
//! manifest lists in Avro (`manifest`, `avro`), each data file's metrics from its footer
//! (`metrics`), partition values (`partition`, `literal`), delete files (`deletes`), a fast
//! append or row delta (`append`), new tables and columns from records (`evolve`), and the
//! commit through a catalog's compare-and-swap (`table`, `catalog/`) on a warehouse's files
//! (`io`). Iceberg table specification: https://iceberg.apache.org/spec/

pub(crate) mod append;
pub(crate) mod arrow;
pub(crate) mod avro;
pub(crate) mod catalog;
pub(crate) mod deletes;
pub(crate) mod evolve;
pub(crate) mod io;
pub(crate) mod literal;
pub(crate) mod manifest;
pub(crate) mod metadata;
pub(crate) mod metrics;
pub(crate) mod partition;
pub(crate) mod table;
pub(crate) mod types;
