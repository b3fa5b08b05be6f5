//! CreateDeliveryStream and UpdateDestination requests, read into AWS's own shapes
//! (`shapes`, generated from the service model), turned once into a stream specification and
//! checked by `spec::check`, the same rules a configuration file's streams go through. What
//! only a request can say wrong (a destination firehosed does not have, a Lambda function with
//! no local runtime) is refused here, by AWS's member names.

mod http;
mod iceberg;
mod processing;
mod s3;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::transform::LambdaFunction;
use crate::glue::GlueColumn;
use crate::shapes::{
    CreateDeliveryStreamInput, DeliveryStreamType, ExtendedS3DestinationConfiguration,
    ExtendedS3DestinationUpdate, HttpEndpointDestinationConfiguration,
    HttpEndpointDestinationUpdate, S3BackupMode,
};
use crate::spec::{KinesisSourceSpec, KinesisStreamRef, SourceSpec, StartingPosition, StreamSpec};

/// Why a request cannot become a delivery stream (AWS answers InvalidArgumentException).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct InvalidRequest {
    pub(crate) message: String,
}

pub(super) fn invalid(message: impl Into<String>) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
    }
}

/// The specification's problems as one message, each with the key it is about (the
/// configuration file's names: `destinations[0].buffering.size_mib: must be 1..=128`).
pub(crate) fn problems_message(problems: Vec<crate::spec::check::Problem>) -> InvalidRequest {
    invalid(
        problems
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// What names in a request resolve to on this machine.
#[derive(Default)]
pub(crate) struct Local {
    /// `glue_catalog_dir`: Glue tables as `<dir>/<DatabaseName>/<TableName>.json`.
    pub(crate) catalog: Option<PathBuf>,
    /// `lambda_functions`: what a Lambda processor's LambdaArn runs.
    pub(crate) functions: BTreeMap<String, LambdaFunction>,
    /// `api_iceberg_catalog`: the catalog of API-created Iceberg destinations, instead of the
    /// Glue Data Catalog their CatalogARN names.
    pub(crate) iceberg_catalog: Option<crate::spec::CatalogSpec>,
}

/// The destination members of CreateDeliveryStreamInput firehosed has (AWS takes exactly
/// one); every other `...DestinationConfiguration`, and the other sources, are refused by name.
const SUPPORTED: [&str; 4] = [
    "S3DestinationConfiguration",
    "ExtendedS3DestinationConfiguration",
    "HttpEndpointDestinationConfiguration",
    "IcebergDestinationConfiguration",
];

/// The stream specification of a CreateDeliveryStream request (unchecked: `spec::check`).
/// `glue`: the columns of the request's Glue table (`glue_table`), read by the caller.
pub(crate) fn stream_spec(
    input: &CreateDeliveryStreamInput,
    local: &Local,
    glue: Option<&[GlueColumn]>,
) -> Result<StreamSpec, InvalidRequest> {
    let name = input
        .delivery_stream_name
        .clone()
        .ok_or_else(|| invalid("DeliveryStreamName is required"))?;
    let source = source(input)?;
    let present = input.members_present();
    let destinations: Vec<&str> = present
        .iter()
        .copied()
        .filter(|m| m.ends_with("DestinationConfiguration"))
        .collect();
    if destinations.len() > 1 {
        return Err(invalid(format!(
            "Only one destination configuration can be specified (got {})",
            destinations.join(", ")
        )));
    }
    if let Some(other) = present.iter().find(|m| {
        (m.ends_with("DestinationConfiguration") || m.ends_with("SourceConfiguration"))
            && !SUPPORTED.contains(m)
            && **m != "KinesisStreamSourceConfiguration"
            && **m != "DirectPutSourceConfiguration"
    }) {
        return Err(invalid(format!(
            "{other} is not supported by firehosed; use ExtendedS3DestinationConfiguration, HttpEndpointDestinationConfiguration or IcebergDestinationConfiguration"
        )));
    }
    let (processing, destination) = match (
        &input.http_endpoint_destination_configuration,
        &input.iceberg_destination_configuration,
    ) {
        (Some(h), _) => http::destination(h, local)?,
        (None, Some(i)) => iceberg::destination(i, local)?,
        (None, None) => {
            let s3 = extended(input).ok_or_else(|| {
                // AWS's words (same InvalidArgumentException).
                invalid("Exactly one destination configuration is supported for a Firehose")
            })?;
            s3::destination(&s3, local, glue)?
        }
    };
    Ok(StreamSpec {
        name,
        source,
        processing,
        destinations: vec![destination],
    })
}

/// The request's source: Direct PUT, or the Kinesis stream it names (read from LATEST, as
/// Firehose does).
fn source(input: &CreateDeliveryStreamInput) -> Result<SourceSpec, InvalidRequest> {
    match input
        .delivery_stream_type
        .unwrap_or(DeliveryStreamType::DirectPut)
    {
        DeliveryStreamType::DirectPut => Ok(SourceSpec::DirectPut),
        DeliveryStreamType::KinesisStreamAsSource => {
            let k = input
                .kinesis_stream_source_configuration
                .as_ref()
                .ok_or_else(|| {
                    invalid(
                        "KinesisStreamSourceConfiguration is required with KinesisStreamAsSource",
                    )
                })?;
            let arn = k.kinesis_stream_arn.clone().ok_or_else(|| {
                invalid("KinesisStreamSourceConfiguration.KinesisStreamARN is required")
            })?;
            Ok(SourceSpec::Kinesis(KinesisSourceSpec {
                stream: KinesisStreamRef::Arn(arn),
                endpoint_url: None,
                starting_position: StartingPosition::Latest,
                discovery_interval_seconds: 10,
                max_buffered_mib: 64,
                get_records_limit: 10_000,
                leases: None,
                enhanced_fan_out: None,
            }))
        }
        other => Err(invalid(format!(
            "DeliveryStreamType {} is not supported by firehosed (DirectPut, KinesisStreamAsSource)",
            other.as_str()
        ))),
    }
}

/// The request's S3 destination as the extended shape: S3DestinationConfiguration (deprecated,
/// still accepted by AWS) holds a subset of its members.
fn extended(input: &CreateDeliveryStreamInput) -> Option<ExtendedS3DestinationConfiguration> {
    input
        .extended_s3_destination_configuration
        .clone()
        .or_else(|| {
            input
                .s3_destination_configuration
                .as_ref()
                .and_then(same_members)
        })
}

/// A shape read as another whose members include all of its own (same names, same shapes).
pub(crate) fn same_members<A: serde::Serialize, B: serde::de::DeserializeOwned>(
    a: &A,
) -> Option<B> {
    serde_json::to_value(a)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// The request as it is kept: an S3DestinationConfiguration is kept as the
/// ExtendedS3DestinationConfiguration it is a subset of, so that updates of either shape merge
/// into one place (AWS describes such a stream with both descriptions, as any S3 stream).
pub(crate) fn normalized(mut input: CreateDeliveryStreamInput) -> CreateDeliveryStreamInput {
    if input.extended_s3_destination_configuration.is_none()
        && let Some(s3) = input.s3_destination_configuration.take()
    {
        input.extended_s3_destination_configuration = same_members(&s3);
    }
    input
}

/// The rules a new request (CreateDeliveryStream, or a stream's request with an
/// UpdateDestination merged in) must follow beyond the model's, which `stream_spec` leaves
/// to this: a request kept by an earlier version, which did not check them, still starts.
pub(crate) fn incoming_rules(input: &CreateDeliveryStreamInput) -> Result<(), InvalidRequest> {
    let kind = input
        .delivery_stream_type
        .unwrap_or(DeliveryStreamType::DirectPut);
    if kind == DeliveryStreamType::DirectPut && input.kinesis_stream_source_configuration.is_some()
    {
        return Err(invalid(
            "KinesisSourceStreamConfig is only applicable for KinesisStreamAsSource stream type",
        ));
    }
    let Some(s3) = extended(input) else {
        return Ok(());
    };
    let Some(backup) = s3
        .s3_backup_configuration
        .as_ref()
        .filter(|_| s3.s3_backup_mode == Some(S3BackupMode::Enabled))
    else {
        return Ok(());
    };
    // One bucket per destination: the backup goes where the objects go, as they go.
    if let Some(other) = &backup.bucket_arn
        && Some(other) != s3.bucket_arn.as_ref()
    {
        return Err(invalid(format!(
            "firehosed writes the source-record backup to the destination's bucket: S3BackupConfiguration.BucketARN {other} must be {}",
            s3.bucket_arn.as_deref().unwrap_or("the destination's")
        )));
    }
    let kms_of = |e: Option<&crate::shapes::EncryptionConfiguration>| {
        e.and_then(|e| e.kms_encryption_config.as_ref())
            .and_then(|k| k.awskms_key_arn.clone())
    };
    let backup_kms = kms_of(backup.encryption_configuration.as_ref());
    if backup_kms.is_some() && backup_kms != kms_of(s3.encryption_configuration.as_ref()) {
        return Err(invalid(
            "firehosed writes the source-record backup with the destination's encryption: S3BackupConfiguration.EncryptionConfiguration must be the destination's",
        ));
    }
    Ok(())
}

/// Every member `update` holds replaces the one of `current`, as AWS does (a shape's update
/// has its configuration's members, all optional).
pub(crate) fn merge_update<C, U>(current: &C, update: &U) -> C
where
    C: serde::Serialize + serde::de::DeserializeOwned + Clone,
    U: serde::Serialize,
{
    let (Ok(serde_json::Value::Object(mut merged)), Ok(serde_json::Value::Object(given))) =
        (serde_json::to_value(current), serde_json::to_value(update))
    else {
        return current.clone();
    };
    for (k, v) in given {
        if !v.is_null() {
            merged.insert(k, v);
        }
    }
    serde_json::from_value(serde_json::Value::Object(merged)).unwrap_or_else(|_| current.clone())
}

/// An ExtendedS3DestinationUpdate (or an S3DestinationUpdate, a subset of it) merged into the
/// stream's ExtendedS3DestinationConfiguration.
pub(crate) fn merge_s3_update(
    current: &ExtendedS3DestinationConfiguration,
    update: &ExtendedS3DestinationUpdate,
) -> ExtendedS3DestinationConfiguration {
    merge_update(current, update)
}

/// An HttpEndpointDestinationUpdate merged into the HttpEndpointDestinationConfiguration it
/// updates: members given replace the old ones, its S3Update merges into S3Configuration.
pub(crate) fn merge_http_update(
    current: &HttpEndpointDestinationConfiguration,
    update: &HttpEndpointDestinationUpdate,
) -> HttpEndpointDestinationConfiguration {
    let mut rest = update.clone();
    let s3_update = rest.s3_update.take();
    let mut merged = merge_update(current, &rest);
    if let (Some(u), Some(s3)) = (s3_update, current.s3_configuration.as_ref()) {
        merged.s3_configuration = Some(merge_update(s3, &u));
    }
    merged
}

/// The SchemaConfiguration of an enabled format conversion, where the Glue Data Catalog
/// (not `glue_catalog_dir`) is to be read: the caller reads its columns before the request is
/// checked.
pub(crate) fn glue_table(
    input: &CreateDeliveryStreamInput,
    local: &Local,
) -> Option<crate::glue::TableRef> {
    if local.catalog.is_some() {
        return None;
    }
    let c = input
        .extended_s3_destination_configuration
        .as_ref()?
        .data_format_conversion_configuration
        .as_ref()
        .filter(|c| c.enabled != Some(false))?;
    let schema = c.schema_configuration.as_ref()?;
    Some(crate::glue::TableRef {
        catalog_id: schema.catalog_id.clone(),
        database: schema.database_name.clone()?,
        table: schema.table_name.clone()?,
        region: schema.region.clone(),
        version_id: schema.version_id.clone(),
    })
}

#[cfg(test)]
mod tests;
