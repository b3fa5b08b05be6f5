//! The Glue Data Catalog, where AWS reads a format conversion's schema
//! (DataFormatConversionConfiguration.SchemaConfiguration): GetTable, or GetTableVersion for a
//! VersionId other than LATEST, through aws-sdk-glue with the `aws` settings and endpoint
//! override of the other clients (`AWS_ENDPOINT_URL_GLUE` too). The answer is the table's
//! StorageDescriptor columns, whose types are Hive type names as Glue keeps them; the
//! configuration's decoder parses them like any other schema. `glue_catalog_dir` (files laid
//! out like GetTable's answer) stays the offline option.

use std::time::Duration;

use aws_config::{Region, SdkConfig};
use aws_sdk_glue::error::DisplayErrorContext;
use aws_sdk_glue::types::StorageDescriptor;

/// A column as the Data Catalog keeps it: its name and Hive type name. A stream's record keeps
/// them (`[{"name", "type"}]`) so a restart starts on what Glue answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct GlueColumn {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) ty: String,
}

/// A SchemaConfiguration: which table, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableRef {
    pub(crate) catalog_id: Option<String>,
    pub(crate) database: String,
    pub(crate) table: String,
    pub(crate) region: Option<String>,
    /// None or "LATEST": the table as it is now.
    pub(crate) version_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum GlueError {
    #[error("Glue table {database}.{table} does not exist in the Data Catalog")]
    NotFound { database: String, table: String },
    #[error("Glue table {database}.{table} has no columns in its StorageDescriptor")]
    NoColumns { database: String, table: String },
    #[error("Glue {call} for table {database}.{table} failed: {detail}")]
    Call {
        call: &'static str,
        database: String,
        table: String,
        detail: String,
    },
}

/// The table's columns.
pub(crate) async fn columns(
    sdk: &SdkConfig,
    endpoint_url: Option<&str>,
    t: &TableRef,
) -> Result<Vec<GlueColumn>, GlueError> {
    // Bounded like the other clients: a Glue endpoint that does not answer fails the create
    // (or the restart of a stream whose record kept no columns) instead of holding it.
    let mut builder = aws_sdk_glue::config::Builder::from(sdk).timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_timeout(Duration::from_secs(30))
            .build(),
    );
    if let Some(url) = endpoint_url {
        builder = builder.endpoint_url(url);
    }
    if let Some(region) = &t.region {
        builder = builder.region(Region::new(region.clone()));
    }
    let client = aws_sdk_glue::Client::from_conf(builder.build());
    let not_found = || GlueError::NotFound {
        database: t.database.clone(),
        table: t.table.clone(),
    };
    let failed = |call: &'static str, detail: String| GlueError::Call {
        call,
        database: t.database.clone(),
        table: t.table.clone(),
        detail,
    };
    let descriptor: Option<StorageDescriptor> = match t.version_id.as_deref() {
        None | Some("LATEST") => {
            let out = client
                .get_table()
                .set_catalog_id(t.catalog_id.clone())
                .database_name(&t.database)
                .name(&t.table)
                .send()
                .await
                .map_err(|e| match e.as_service_error() {
                    Some(se) if se.is_entity_not_found_exception() => not_found(),
                    _ => failed("GetTable", DisplayErrorContext(&e).to_string()),
                })?;
            out.table.and_then(|t| t.storage_descriptor)
        }
        Some(version) => {
            let out = client
                .get_table_version()
                .set_catalog_id(t.catalog_id.clone())
                .database_name(&t.database)
                .table_name(&t.table)
                .version_id(version)
                .send()
                .await
                .map_err(|e| match e.as_service_error() {
                    Some(se) if se.is_entity_not_found_exception() => not_found(),
                    _ => failed("GetTableVersion", DisplayErrorContext(&e).to_string()),
                })?;
            out.table_version
                .and_then(|v| v.table)
                .and_then(|t| t.storage_descriptor)
        }
    };
    let columns: Vec<GlueColumn> = descriptor
        .map(|d| d.columns.unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .map(|c| GlueColumn {
            name: c.name,
            ty: c.r#type.unwrap_or_default(),
        })
        .collect();
    if columns.is_empty() {
        return Err(GlueError::NoColumns {
            database: t.database.clone(),
            table: t.table.clone(),
        });
    }
    Ok(columns)
}
