//! The Glue Data Catalog as an Iceberg catalog (AWS's CatalogARN
//! `arn:aws:glue:REGION:ACCOUNT:catalog`): a table is a Glue table whose parameters say
//! `table_type = ICEBERG` and name its `metadata_location`. A commit reads the table (its
//! VersionId and current location), then UpdateTable with that VersionId and the new location,
//! `previous_metadata_location` set, everything else of the table kept: Glue refuses an update
//! from a stale version (ConcurrentModificationException), which is the compare-and-swap
//! (Iceberg's GlueCatalog commits the same way). moto's Glue ignores VersionId, so the swap
//! also checks the location it read before it writes.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_glue::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_glue::types::{StorageDescriptor, Table, TableInput};

use super::{CatalogError, Swap, TableIdent};

pub(crate) struct GlueCatalog {
    client: aws_sdk_glue::Client,
    catalog_id: Option<String>,
}

const METADATA_LOCATION: &str = "metadata_location";

impl GlueCatalog {
    pub(crate) fn new(
        sdk: &aws_config::SdkConfig,
        endpoint_url: Option<&str>,
        catalog_id: Option<String>,
    ) -> GlueCatalog {
        let mut builder = aws_sdk_glue::config::Builder::from(sdk).timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .build(),
        );
        if let Some(url) = endpoint_url {
            builder = builder.endpoint_url(url);
        }
        GlueCatalog {
            client: aws_sdk_glue::Client::from_conf(builder.build()),
            catalog_id,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match &self.catalog_id {
            Some(id) => format!("Glue Data Catalog {id}"),
            None => "Glue Data Catalog".to_string(),
        }
    }

    fn call_error<E>(&self, call: &str, e: &aws_sdk_glue::error::SdkError<E>) -> CatalogError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = e.raw_response().map(|r| r.status().as_u16());
        let code = e.as_service_error().and_then(ProvideErrorMetadata::code);
        if code == Some("AccessDeniedException") || status == Some(403) {
            return CatalogError::AccessDenied {
                catalog: self.describe(),
                detail: format!("{call}: {}", DisplayErrorContext(e)),
            };
        }
        let throttled = e
            .as_service_error()
            .and_then(ProvideErrorMetadata::code)
            .is_some_and(|c| c.contains("Throttl") || c == "OperationTimeoutException");
        CatalogError::Call {
            catalog: self.describe(),
            detail: format!("{call}: {}", DisplayErrorContext(e)),
            transient: throttled || status.is_none_or(|s| s >= 500 || s == 429),
        }
    }

    /// A TableInput the SDK would not build (a defect: every field it needs is set).
    fn input_error(&self, e: &aws_sdk_glue::error::BuildError) -> CatalogError {
        CatalogError::Call {
            catalog: self.describe(),
            detail: e.to_string(),
            transient: false,
        }
    }

    async fn table(&self, t: &TableIdent) -> Result<Table, CatalogError> {
        let out = self
            .client
            .get_table()
            .set_catalog_id(self.catalog_id.clone())
            .database_name(&t.namespace)
            .name(&t.name)
            .send()
            .await;
        match out {
            Ok(o) => o.table.ok_or_else(|| CatalogError::NoSuchTable(t.clone())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception()) =>
            {
                Err(CatalogError::NoSuchTable(t.clone()))
            }
            Err(e) => Err(self.call_error("GetTable", &e)),
        }
    }

    pub(crate) async fn metadata_location(&self, t: &TableIdent) -> Result<String, CatalogError> {
        let table = self.table(t).await?;
        iceberg_location(&table).ok_or_else(|| CatalogError::NotIceberg(t.clone()))
    }

    pub(crate) async fn swap(
        &self,
        t: &TableIdent,
        old: &str,
        new: &str,
    ) -> Result<Swap, CatalogError> {
        let table = self.table(t).await?;
        if iceberg_location(&table).as_deref() != Some(old) {
            return Ok(Swap::Conflict);
        }
        let mut parameters = table.parameters.clone().unwrap_or_default();
        parameters.insert(METADATA_LOCATION.to_string(), new.to_string());
        parameters.insert("previous_metadata_location".to_string(), old.to_string());
        let input = TableInput::builder()
            .name(&table.name)
            .set_description(table.description.clone())
            .set_owner(table.owner.clone())
            .set_storage_descriptor(table.storage_descriptor.clone())
            .set_partition_keys(table.partition_keys.clone())
            .set_table_type(table.table_type.clone())
            .set_parameters(Some(parameters))
            .build()
            .map_err(|e| self.input_error(&e))?;
        let out = self
            .client
            .update_table()
            .set_catalog_id(self.catalog_id.clone())
            .database_name(&t.namespace)
            .table_input(input)
            .set_version_id(table.version_id.clone())
            .skip_archive(true)
            .send()
            .await;
        match out {
            Ok(_) => Ok(Swap::Done),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_concurrent_modification_exception()) =>
            {
                Ok(Swap::Conflict)
            }
            Err(e) => Err(self.call_error("UpdateTable", &e)),
        }
    }

    /// A Glue table as Iceberg's GlueCatalog creates one: EXTERNAL_TABLE, `table_type`
    /// ICEBERG, its location and first metadata file.
    pub(crate) async fn create(
        &self,
        t: &TableIdent,
        metadata_location: &str,
    ) -> Result<(), CatalogError> {
        let location = metadata_location
            .rsplit_once("/metadata/")
            .map_or(metadata_location, |(l, _)| l);
        let input = TableInput::builder()
            .name(&t.name)
            .table_type("EXTERNAL_TABLE")
            .set_parameters(Some(HashMap::from([
                ("table_type".to_string(), "ICEBERG".to_string()),
                (METADATA_LOCATION.to_string(), metadata_location.to_string()),
            ])))
            .storage_descriptor(StorageDescriptor::builder().location(location).build())
            .build()
            .map_err(|e| self.input_error(&e))?;
        // A database that does not exist is created first, as AWS's table creation does.
        for first in [true, false] {
            let out = self
                .client
                .create_table()
                .set_catalog_id(self.catalog_id.clone())
                .database_name(&t.namespace)
                .table_input(input.clone())
                .send()
                .await;
            match out {
                Ok(_) => return Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_already_exists_exception()) =>
                {
                    return Err(CatalogError::Exists(t.clone()));
                }
                Err(e)
                    if first
                        && e.as_service_error()
                            .is_some_and(|s| s.is_entity_not_found_exception()) =>
                {
                    self.create_database(&t.namespace).await?;
                }
                Err(e) => return Err(self.call_error("CreateTable", &e)),
            }
        }
        Err(CatalogError::NoSuchTable(t.clone()))
    }

    /// Creates database `name` (another writer having created it is fine).
    async fn create_database(&self, name: &str) -> Result<(), CatalogError> {
        let input = aws_sdk_glue::types::DatabaseInput::builder()
            .name(name)
            .build()
            .map_err(|e| self.input_error(&e))?;
        let out = self
            .client
            .create_database()
            .set_catalog_id(self.catalog_id.clone())
            .database_input(input)
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_already_exists_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(self.call_error("CreateDatabase", &e)),
        }
    }
}

/// The metadata file of a Glue table that is an Iceberg table.
fn iceberg_location(table: &Table) -> Option<String> {
    let p = table.parameters.as_ref()?;
    let iceberg = p
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("table_type") && v.eq_ignore_ascii_case("ICEBERG"));
    iceberg.then(|| p.get(METADATA_LOCATION).cloned()).flatten()
}
