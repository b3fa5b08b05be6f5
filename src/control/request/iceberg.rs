//! An IcebergDestinationConfiguration as a destination specification: the catalog its
//! CatalogARN names (the Glue Data Catalog; or, with `api_iceberg_catalog`, the embedded one a
//! test suite or a VM without AWS uses), the tables, the switches, and its S3Configuration as
//! the backup that takes error records.

use crate::shapes::{IcebergDestinationConfiguration, IcebergS3BackupMode};
use crate::spec::{
    BackupMode, Buffering, CatalogSpec, Delivery, DestinationSpec, IcebergTarget, ProcessingSpec,
    TableSpec, Target,
};

use super::s3::{backup, non_negative};
use super::{InvalidRequest, Local, invalid};

/// An IcebergDestinationConfiguration (or a complete update of one): the stream-level
/// processing settings (the MetadataExtraction query routes records), and the destination.
pub(super) fn destination(
    i: &IcebergDestinationConfiguration,
    local: &Local,
) -> Result<(ProcessingSpec, DestinationSpec), InvalidRequest> {
    let c = i
        .catalog_configuration
        .as_ref()
        .ok_or_else(|| invalid("CatalogConfiguration is required"))?;
    let catalog = match &local.iceberg_catalog {
        Some(embedded) => embedded.clone(),
        None => catalog(c.catalog_arn.as_deref())?,
    };
    let s3 = i
        .s3_configuration
        .as_ref()
        .ok_or_else(|| invalid("S3Configuration is required"))?;
    let (bucket, prefix, error_output_prefix, compression) = backup(s3)?;
    let target = IcebergTarget {
        catalog,
        warehouse: c.warehouse_location.clone(),
        tables: tables(i),
        // AWS routes by the stream's MetadataExtraction processor: the destination uses the
        // stream's query.
        routing_query: None,
        append_only: i.append_only.unwrap_or(false),
        schema_evolution: i
            .schema_evolution_configuration
            .as_ref()
            .and_then(|s| s.enabled)
            .unwrap_or(false),
        table_creation: i
            .table_creation_configuration
            .as_ref()
            .and_then(|t| t.enabled)
            .unwrap_or(false),
        retry_duration_seconds: i
            .retry_options
            .as_ref()
            .and_then(|r| r.duration_in_seconds)
            .map_or(IcebergTarget::DEFAULT_RETRY_SECONDS, non_negative),
        backup_mode: match i.s3_backup_mode {
            Some(IcebergS3BackupMode::AllData) => BackupMode::AllData,
            _ => BackupMode::FailedDataOnly,
        },
        backup: Target::S3 {
            bucket,
            endpoint_url: None,
            kms_key_arn: None,
        },
    };
    let buffering = buffering(i.buffering_hints.as_ref());
    let processing =
        super::processing::processing(i.processing_configuration.as_ref(), &local.functions)?;
    let d = DestinationSpec {
        target: Target::Iceberg(Box::new(target)),
        prefix,
        error_output_prefix,
        buffering,
        compression,
        file_extension: None,
        time_zone: "UTC".into(),
        source_record_backup: None,
        dynamic_partitioning: None,
        format_conversion: None,
        delivery: Delivery::AtLeastOnce,
    };
    Ok((processing, d))
}

/// DestinationTableConfigurationList.
fn tables(i: &IcebergDestinationConfiguration) -> Vec<TableSpec> {
    i.destination_table_configuration_list
        .iter()
        .flatten()
        .map(|t| TableSpec {
            database: t.destination_database_name.clone().unwrap_or_default(),
            table: t.destination_table_name.clone().unwrap_or_default(),
            unique_keys: t.unique_keys.clone().unwrap_or_default(),
            partition_spec: t
                .partition_spec
                .iter()
                .flat_map(|p| p.identity.iter().flatten())
                .filter_map(|f| f.source_name.clone())
                .collect(),
            error_output_prefix: t.s3_error_output_prefix.clone(),
        })
        .collect()
}

/// BufferingHints, AWS's defaults for what is not given.
fn buffering(hints: Option<&crate::shapes::BufferingHints>) -> Buffering {
    Buffering {
        size_mib: hints
            .and_then(|b| b.size_in_mbs)
            .map_or(Buffering::DEFAULT.size_mib, non_negative),
        interval_seconds: hints
            .and_then(|b| b.interval_in_seconds)
            .map_or(Buffering::DEFAULT.interval_seconds, non_negative),
    }
}

/// The catalog a CatalogARN names: `arn:aws:glue:REGION:ACCOUNT:catalog` the Glue Data Catalog,
/// `...:catalog/s3tablescatalog/BUCKET` the S3 Tables table bucket BUCKET of that account.
fn catalog(arn: Option<&str>) -> Result<CatalogSpec, InvalidRequest> {
    let arn = arn.ok_or_else(|| {
        invalid("CatalogConfiguration.CatalogARN is required (or set api_iceberg_catalog in the configuration file)")
    })?;
    let parts: Vec<&str> = arn.split(':').collect();
    let bad = || {
        invalid(format!(
            "CatalogConfiguration.CatalogARN must be arn:aws:glue:REGION:ACCOUNT:catalog or ...:catalog/s3tablescatalog/BUCKET (got {arn})"
        ))
    };
    match parts.as_slice() {
        ["arn", _, "glue", _, account, "catalog"] => Ok(CatalogSpec::Glue {
            catalog_id: Some((*account).to_string()),
            endpoint_url: None,
        }),
        ["arn", partition, "glue", region, account, rest] => {
            let bucket = rest
                .strip_prefix("catalog/s3tablescatalog/")
                .filter(|b| !b.is_empty() && !b.contains('/'))
                .ok_or_else(bad)?;
            Ok(CatalogSpec::S3Tables {
                table_bucket_arn: format!(
                    "arn:{partition}:s3tables:{region}:{account}:bucket/{bucket}"
                ),
                endpoint_url: None,
            })
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_arn_names_the_glue_data_catalog_or_an_s3_tables_bucket() {
        assert_eq!(
            catalog(Some("arn:aws:glue:us-east-1:123456789012:catalog")).unwrap(),
            CatalogSpec::Glue {
                catalog_id: Some("123456789012".into()),
                endpoint_url: None
            }
        );
        assert_eq!(
            catalog(Some(
                "arn:aws:glue:us-east-1:123456789012:catalog/s3tablescatalog/b"
            ))
            .unwrap(),
            CatalogSpec::S3Tables {
                table_bucket_arn: "arn:aws:s3tables:us-east-1:123456789012:bucket/b".into(),
                endpoint_url: None
            }
        );
        assert!(catalog(Some("arn:aws:glue:us-east-1:123456789012:catalog/other/b")).is_err());
        assert!(catalog(Some("arn:aws:s3:::bucket")).is_err());
        assert!(catalog(None).is_err());
    }
}
