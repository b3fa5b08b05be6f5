//! An Iceberg destination's description (AWS's IcebergDestinationDescription): what was sent
//! echoed as AWS echoes it, the rest from the specification. A Glue catalog is described by
//! its CatalogARN; the embedded sqlite catalog has no ARN, so CatalogConfiguration carries only
//! an `s3://` warehouse (the model allows nothing else there; docs/api.md). The backup is the
//! S3DestinationDescription, with its defaults filled in.

use super::View;
use super::destination::{Sent, logging_off, param, processing, processor, s3_description};
use crate::shapes::{
    BufferingHints, CatalogConfiguration, DestinationTableConfiguration,
    IcebergDestinationConfiguration, IcebergDestinationDescription, IcebergS3BackupMode,
    PartitionField, PartitionSpec, ProcessorParameterName, ProcessorType, RetryOptions,
    SchemaEvolutionConfiguration, TableCreationConfiguration,
};
use crate::spec::{BackupMode, CatalogSpec, DestinationSpec, IcebergTarget};

pub(super) fn description(
    d: &DestinationSpec,
    i: &IcebergTarget,
    view: &View,
) -> IcebergDestinationDescription {
    let sent: Option<&IcebergDestinationConfiguration> = view
        .sent()
        .and_then(|r| r.iceberg_destination_configuration.as_ref());
    let backup_sent = sent
        .and_then(|s| s.s3_configuration.as_ref())
        .map(Sent::Backup);
    IcebergDestinationDescription {
        destination_table_configuration_list: Some(tables(i)),
        schema_evolution_configuration: Some(SchemaEvolutionConfiguration {
            enabled: Some(i.schema_evolution),
        }),
        table_creation_configuration: Some(TableCreationConfiguration {
            enabled: Some(i.table_creation),
        }),
        buffering_hints: Some(BufferingHints {
            size_in_mbs: Some(d.buffering.size_mib as i64),
            interval_in_seconds: Some(d.buffering.interval_seconds as i64),
        }),
        cloud_watch_logging_options: Some(
            sent.and_then(|s| s.cloud_watch_logging_options.clone())
                .unwrap_or_else(logging_off),
        ),
        processing_configuration: Some(routing(i, view)),
        s3_backup_mode: Some(match i.backup_mode {
            BackupMode::FailedDataOnly => IcebergS3BackupMode::FailedDataOnly,
            BackupMode::AllData => IcebergS3BackupMode::AllData,
        }),
        retry_options: Some(RetryOptions {
            duration_in_seconds: Some(i.retry_duration_seconds as i64),
        }),
        role_arn: Some(
            sent.and_then(|s| s.role_arn.clone())
                .unwrap_or_else(|| view.default_role()),
        ),
        append_only: Some(i.append_only),
        catalog_configuration: Some(catalog(i, view, sent)),
        s3_destination_description: Some(s3_description(d, &i.backup, view, backup_sent)),
    }
}

fn tables(i: &IcebergTarget) -> Vec<DestinationTableConfiguration> {
    i.tables
        .iter()
        .map(|t| DestinationTableConfiguration {
            destination_table_name: Some(t.table.clone()),
            destination_database_name: Some(t.database.clone()),
            unique_keys: (!t.unique_keys.is_empty()).then(|| t.unique_keys.clone()),
            partition_spec: (!t.partition_spec.is_empty()).then(|| PartitionSpec {
                identity: Some(
                    t.partition_spec
                        .iter()
                        .map(|c| PartitionField {
                            source_name: Some(c.clone()),
                        })
                        .collect(),
                ),
            }),
            s3_error_output_prefix: t.error_output_prefix.clone(),
        })
        .collect()
}

/// The stream's processors, and the routing query as AWS's MetadataExtraction processor when
/// the stream has none of its own.
fn routing(i: &IcebergTarget, view: &View) -> crate::shapes::ProcessingConfiguration {
    let mut p = processing(view);
    if let (Some(q), None) = (&i.routing_query, &view.config.processing.metadata_query) {
        let processors = p.processors.get_or_insert_with(Vec::new);
        processors.push(processor(
            ProcessorType::MetadataExtraction,
            vec![
                param(ProcessorParameterName::MetadataExtractionQuery, q.clone()),
                param(ProcessorParameterName::JsonParsingEngine, "JQ-1.6".into()),
            ],
        ));
        p.enabled = Some(true);
    }
    p
}

fn catalog(
    i: &IcebergTarget,
    view: &View,
    sent: Option<&IcebergDestinationConfiguration>,
) -> CatalogConfiguration {
    if let Some(c) = sent.and_then(|s| s.catalog_configuration.clone()) {
        return c;
    }
    let warehouse = i.warehouse.clone().filter(|w| w.starts_with("s3://"));
    match &i.catalog {
        CatalogSpec::Glue { catalog_id, .. } => CatalogConfiguration {
            catalog_arn: Some(format!(
                "arn:aws:glue:{}:{}:catalog",
                view.region,
                catalog_id.as_deref().unwrap_or(view.account_id)
            )),
            warehouse_location: warehouse,
        },
        CatalogSpec::S3Tables {
            table_bucket_arn, ..
        } => CatalogConfiguration {
            // AWS names an S3 Tables catalog through Glue's federation.
            catalog_arn: table_bucket_arn.rsplit_once("bucket/").map(|(_, b)| {
                format!(
                    "arn:aws:glue:{}:{}:catalog/s3tablescatalog/{b}",
                    view.region, view.account_id
                )
            }),
            warehouse_location: warehouse,
        },
        CatalogSpec::Sql { .. } => CatalogConfiguration {
            catalog_arn: None,
            warehouse_location: warehouse,
        },
    }
}
