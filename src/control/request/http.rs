//! An HttpEndpointDestinationConfiguration as a destination specification: the endpoint and
//! its request settings, the retry duration, and its S3Configuration as the backup (bucket,
//! prefixes, compression), with the backup mode.

use crate::shapes::{
    ContentEncoding, HttpEndpointDestinationConfiguration, HttpEndpointS3BackupMode,
};
use crate::spec::{
    BackupMode, Buffering, Delivery, DestinationSpec, HttpEndpoint, ProcessingSpec, Target,
};

use super::s3::{backup, non_negative};
use super::{InvalidRequest, Local, invalid};

/// An HttpEndpointDestinationConfiguration (or a complete update of one): the stream-level
/// processing settings, and the destination.
pub(super) fn destination(
    h: &HttpEndpointDestinationConfiguration,
    local: &Local,
) -> Result<(ProcessingSpec, DestinationSpec), InvalidRequest> {
    let e = h
        .endpoint_configuration
        .as_ref()
        .ok_or_else(|| invalid("EndpointConfiguration is required"))?;
    let url = e
        .url
        .clone()
        .ok_or_else(|| invalid("EndpointConfiguration.Url is required"))?;
    if h.secrets_manager_configuration
        .as_ref()
        .is_some_and(|sm| sm.enabled == Some(true))
    {
        return Err(invalid(
            "SecretsManagerConfiguration is not supported by firehosed; give EndpointConfiguration.AccessKey",
        ));
    }
    let request = h.request_configuration.as_ref();
    let common_attributes = common_attributes(request)?;
    let s3 = h
        .s3_configuration
        .as_ref()
        .ok_or_else(|| invalid("S3Configuration is required"))?;
    let (bucket, prefix, error_output_prefix, compression) = backup(s3)?;
    let endpoint = HttpEndpoint {
        url,
        name: e.name.clone(),
        access_key: e.access_key.clone(),
        gzip: request.and_then(|r| r.content_encoding) == Some(ContentEncoding::Gzip),
        common_attributes,
        retry_duration_seconds: h
            .retry_options
            .as_ref()
            .and_then(|r| r.duration_in_seconds)
            .map_or(HttpEndpoint::DEFAULT_RETRY_SECONDS, non_negative),
        request_timeout_seconds: HttpEndpoint::DEFAULT_TIMEOUT_SECONDS,
        backup_mode: match h.s3_backup_mode {
            Some(HttpEndpointS3BackupMode::AllData) => BackupMode::AllData,
            _ => BackupMode::FailedDataOnly,
        },
        backup: Target::S3 {
            bucket,
            endpoint_url: None,
            kms_key_arn: None,
        },
    };
    let hints = h.buffering_hints.as_ref();
    let buffering = Buffering {
        size_mib: hints
            .and_then(|b| b.size_in_mbs)
            .map_or(Buffering::DEFAULT.size_mib, non_negative),
        interval_seconds: hints
            .and_then(|b| b.interval_in_seconds)
            .map_or(Buffering::DEFAULT.interval_seconds, non_negative),
    };
    let processing =
        super::processing::processing(h.processing_configuration.as_ref(), &local.functions)?;
    let d = DestinationSpec {
        target: Target::Http(Box::new(endpoint)),
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

/// RequestConfiguration.CommonAttributes, in the order sent, each name once.
fn common_attributes(
    request: Option<&crate::shapes::HttpEndpointRequestConfiguration>,
) -> Result<Vec<(String, String)>, InvalidRequest> {
    let mut out: Vec<(String, String)> = Vec::new();
    for a in request
        .and_then(|r| r.common_attributes.as_ref())
        .into_iter()
        .flatten()
    {
        let name = a
            .attribute_name
            .clone()
            .ok_or_else(|| invalid("CommonAttributes[].AttributeName is required"))?;
        if out.iter().any(|(n, _)| *n == name) {
            return Err(invalid(format!(
                "CommonAttributes has the AttributeName {name:?} more than once"
            )));
        }
        out.push((name, a.attribute_value.clone().unwrap_or_default()));
    }
    Ok(out)
}
