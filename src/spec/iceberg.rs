//! An Apache Iceberg destination (AWS's IcebergDestinationConfiguration, docs/iceberg.md): the
//! catalog and warehouse, the tables records may go to, how a record picks its table, and the
//! backup that takes what cannot be delivered. The destination's error prefix, buffering and
//! the backup's prefix and compression are the `DestinationSpec`'s own fields.

use serde::Serialize;

use super::{BackupMode, Target, is_300, is_false};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct IcebergTarget {
    pub(crate) catalog: CatalogSpec,
    /// Where new tables' files go (`file:///...` or `s3://...`): AWS's WarehouseLocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) warehouse: Option<String>,
    /// AWS's DestinationTableConfigurationList.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tables: Vec<TableSpec>,
    /// `routing.query`: a jq query giving each record `destinationDatabaseName`,
    /// `destinationTableName` and `operation` (AWS's MetadataExtraction for Iceberg).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) routing_query: Option<String>,
    /// Every record is an insert, whatever its operation says.
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) append_only: bool,
    /// Add the top-level fields records bring as columns (AWS: SchemaEvolutionConfiguration).
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) schema_evolution: bool,
    /// Create a table a record is routed to that does not exist (AWS: TableCreationConfiguration).
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) table_creation: bool,
    /// How long a failing commit is retried before its data files go to the error output
    /// (AWS's RetryOptions.DurationInSeconds, default 300).
    #[serde(skip_serializing_if = "is_300")]
    pub(crate) retry_duration_seconds: u64,
    /// AWS's S3BackupMode: FailedDataOnly (the default; AWS supports no other yet) or AllData.
    #[serde(skip_serializing_if = "BackupMode::is_default")]
    pub(crate) backup_mode: BackupMode,
    /// Where error records (and AllData copies) go: a bucket or a directory, never an Iceberg
    /// table or an HTTP endpoint (AWS's S3Configuration).
    pub(crate) backup: Target,
}

impl IcebergTarget {
    pub(crate) const DEFAULT_RETRY_SECONDS: u64 = 300;
}

/// Which catalog names the tables' metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) enum CatalogSpec {
    /// The embedded catalog: a sqlite database laid out as pyiceberg's SqlCatalog.
    Sql {
        /// pyiceberg's form: `sqlite:////var/lib/firehosed/iceberg.db`.
        uri: String,
        /// The `catalog_name` column (pyiceberg's catalog name); default `default`.
        name: String,
    },
    /// The Glue Data Catalog (AWS's CatalogARN `arn:aws:glue:REGION:ACCOUNT:catalog`).
    Glue {
        #[serde(skip_serializing_if = "Option::is_none")]
        catalog_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        endpoint_url: Option<String>,
    },
    /// Amazon S3 Tables (AWS's CatalogARN `...:catalog/s3tablescatalog/BUCKET`).
    S3Tables {
        /// `arn:aws:s3tables:REGION:ACCOUNT:bucket/NAME`.
        table_bucket_arn: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        endpoint_url: Option<String>,
    },
}

/// One of `tables` (AWS's DestinationTableConfiguration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TableSpec {
    pub(crate) database: String,
    pub(crate) table: String,
    /// Columns that identify a row for updates and deletes (AWS: UniqueKeys).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) unique_keys: Vec<String>,
    /// Identity partition columns of a table created by `table_creation` (AWS: PartitionSpec).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) partition_spec: Vec<String>,
    /// Errors of this table's records go under this prefix (AWS's S3ErrorOutputPrefix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_output_prefix: Option<String>,
}
