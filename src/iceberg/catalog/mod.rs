//! Where a table's current metadata file is named, and the one atomic step of a commit:
//! swapping that name from the file a writer read to the file it wrote, only if nobody swapped
//! it in between. Two catalogs: an embedded SQL catalog in sqlite, laid out as pyiceberg's
//! `SqlCatalog` lays it out (`sql.rs`), the Glue Data Catalog (`glue.rs`, UpdateTable with
//! the VersionId read, as Iceberg's own Glue catalog commits), and Amazon S3 Tables
//! (`s3tables.rs`, UpdateTableMetadataLocation with the version token read).

pub(crate) mod glue;
pub(crate) mod s3tables;
pub(crate) mod sql;

use std::fmt;

/// A table in a catalog: `database.table` in AWS's words.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TableIdent {
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl TableIdent {
    pub(crate) fn new(namespace: &str, name: &str) -> TableIdent {
        TableIdent {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

impl fmt::Display for TableIdent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.namespace, self.name)
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum CatalogError {
    #[error("{catalog}: {detail}")]
    Call {
        catalog: String,
        detail: String,
        /// Worth trying again (throttling, a server error, a connection lost, a busy database).
        transient: bool,
    },
    #[error("table {0} does not exist")]
    NoSuchTable(TableIdent),
    #[error("table {0} exists already")]
    Exists(TableIdent),
    #[error("{0} is not an Iceberg table (no metadata_location)")]
    NotIceberg(TableIdent),
    /// The catalog refused our credentials (AWS: `Glue.AccessDenied`).
    #[error("{catalog} refused access: {detail}")]
    AccessDenied { catalog: String, detail: String },
}

impl CatalogError {
    pub(crate) fn transient(&self) -> bool {
        matches!(
            self,
            CatalogError::Call {
                transient: true,
                ..
            }
        )
    }
}

/// What a swap did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Swap {
    Done,
    /// Another writer committed first: read the table again and redo the commit on it.
    Conflict,
}

pub(crate) enum Catalog {
    Sql(sql::SqlCatalog),
    Glue(glue::GlueCatalog),
    S3Tables(s3tables::S3TablesCatalog),
}

impl Catalog {
    /// The table's current metadata file.
    pub(crate) async fn metadata_location(&self, t: &TableIdent) -> Result<String, CatalogError> {
        match self {
            Catalog::Sql(c) => c.metadata_location(t).await,
            Catalog::Glue(c) => c.metadata_location(t).await,
            Catalog::S3Tables(c) => c.metadata_location(t).await,
        }
    }

    /// Names `new` as the table's metadata if `old` still is.
    pub(crate) async fn swap(
        &self,
        t: &TableIdent,
        old: &str,
        new: &str,
    ) -> Result<Swap, CatalogError> {
        match self {
            Catalog::Sql(c) => c.swap(t, old, new).await,
            Catalog::Glue(c) => c.swap(t, old, new).await,
            Catalog::S3Tables(c) => c.swap(t, old, new).await,
        }
    }

    /// Registers a new table whose first metadata file is written at `metadata_location`.
    pub(crate) async fn create(
        &self,
        t: &TableIdent,
        metadata_location: &str,
    ) -> Result<(), CatalogError> {
        match self {
            Catalog::Sql(c) => c.create(t, metadata_location).await,
            Catalog::Glue(c) => c.create(t, metadata_location).await,
            // AWS: "For Amazon S3 Tables, Firehose doesn't support automatic table creation".
            Catalog::S3Tables(c) => Err(CatalogError::Call {
                catalog: c.describe(),
                detail: "tables are not created in S3 Tables (nor by AWS): create it first".into(),
                transient: false,
            }),
        }
    }

    /// Where a new table's files go under `warehouse`: pyiceberg's SqlCatalog puts them in
    /// `<warehouse>/<namespace>/<table>`, Glue (Hive's layout) in `<warehouse>/<db>.db/<table>`.
    pub(crate) fn default_location(&self, warehouse: &str, t: &TableIdent) -> String {
        let w = warehouse.trim_end_matches('/');
        match self {
            Catalog::Sql(_) => format!("{w}/{}/{}", t.namespace, t.name),
            Catalog::Glue(_) | Catalog::S3Tables(_) => {
                format!("{w}/{}.db/{}", t.namespace, t.name)
            }
        }
    }

    /// For logs and errors: `sqlite:///path (catalog default)`, `Glue Data Catalog 123...`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Catalog::Sql(c) => c.describe(),
            Catalog::Glue(c) => c.describe(),
            Catalog::S3Tables(c) => c.describe(),
        }
    }
}
