//! The write side of the control plane: CreateDeliveryStream (built in the background:
//! CREATING, then ACTIVE), DeleteDeliveryStream (drains, then forgets), UpdateDestination
//! (version check, a new version in object names), Tag/Untag/ListTagsForDeliveryStream.
//! Streams of the configuration file are changed in the file, not here. Every request is read
//! into AWS's shapes (`shapes`) once the model check has passed.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::AppState;
use super::error::AwsError;
use super::firehose::{check_name, parse, required};
use crate::control::{Encryption, EncryptionStatus, StreamRecord, api_stream_config, request};
use crate::shapes::{
    CreateDeliveryStreamInput, DeleteDeliveryStreamInput,
    DeliveryStreamEncryptionConfigurationInput, KeyType, ListTagsForDeliveryStreamInput,
    StartDeliveryStreamEncryptionInput, StopDeliveryStreamEncryptionInput, Tag,
    TagDeliveryStreamInput, UntagDeliveryStreamInput, UpdateDestinationInput,
};
use crate::spec::SourceSpec;
use crate::streams::{NewStream, Prepared};

/// AWS's limit of tags per stream.
const MAX_TAGS: usize = 50;

pub(super) async fn create(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let input: CreateDeliveryStreamInput = parse(input)?;
    let name = check_name(input.delivery_stream_name.clone())?;
    // A name in use is that, whatever else is wrong with the request (and before Glue).
    state.streams.name_free(&name)?;
    request::incoming_rules(&input)?;
    let tags = tags_of(input.tags.as_deref());
    let glue = state.streams.glue_columns(&input).await?;
    let config = api_stream_config(&input, state.streams.records(), glue.as_deref())?;
    debug_assert_eq!(config.name, name);
    let encryption = match &input.delivery_stream_encryption_configuration_input {
        Some(e) => {
            if matches!(config.source, SourceSpec::Kinesis(_)) {
                return Err(AwsError::invalid_argument(
                    "DeliveryStreamEncryptionConfigurationInput is not applicable for KinesisStreamAsSource stream type: the source stream's own encryption applies",
                ));
            }
            Some(encryption_of(e, EncryptionStatus::Enabled)?)
        }
        None => None,
    };
    let arn = state
        .streams
        .create(NewStream {
            request: request::normalized(input),
            config,
            tags,
            encryption,
            glue_columns: glue,
        })
        .await?;
    Ok(json!({"DeliveryStreamARN": arn}))
}

/// A DeliveryStreamEncryptionConfigurationInput (the model has checked KeyType's values): a
/// customer managed key needs its ARN, an AWS owned one takes none, as AWS documents.
fn encryption_of(
    e: &DeliveryStreamEncryptionConfigurationInput,
    status: EncryptionStatus,
) -> Result<Encryption, AwsError> {
    let key_type = e.key_type.unwrap_or(KeyType::AwsOwnedCmk);
    match (key_type, &e.key_arn) {
        (KeyType::CustomerManagedCmk, None) => Err(AwsError::invalid_argument(
            "KeyARN is required when KeyType is CUSTOMER_MANAGED_CMK",
        )),
        (KeyType::AwsOwnedCmk, Some(_)) => Err(AwsError::invalid_argument(
            "KeyARN must not be specified when KeyType is AWS_OWNED_CMK",
        )),
        _ => Ok(Encryption {
            key_type: key_type.as_str().to_string(),
            key_arn: e.key_arn.clone(),
            status,
            changed_ms: crate::record::now_ms(),
        }),
    }
}

pub(super) async fn delete(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let input: DeleteDeliveryStreamInput = parse(input)?;
    let name = check_name(input.delivery_stream_name)?;
    state.streams.delete(&name).await?;
    Ok(json!({}))
}

pub(super) async fn update_destination(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let input: UpdateDestinationInput = parse(input)?;
    let name = check_name(input.delivery_stream_name.clone())?;
    let streams = &state.streams;
    // The Glue table of the updated request is read first (a network call), then the update
    // is checked again against the record as it is when the change is admitted.
    let before = streams.record(&name)?;
    let glue = streams
        .glue_columns(&updated_request(&name, &before, &input)?)
        .await?;
    streams
        .update(&name, |record| -> Result<Prepared, AwsError> {
            let request = updated_request(&name, record, &input)?;
            request::incoming_rules(&request)?;
            // Checked before anything changes: an invalid update leaves the stream as it was.
            let config = api_stream_config(&request, streams.records(), glue.as_deref())?;
            Ok(Prepared {
                request,
                config,
                glue_columns: glue,
            })
        })
        .await?;
    Ok(json!({}))
}

/// The stream's request with an UpdateDestination merged in, once its version, destination
/// and update members are checked.
fn updated_request(
    name: &str,
    record: &StreamRecord,
    input: &UpdateDestinationInput,
) -> Result<CreateDeliveryStreamInput, AwsError> {
    let current = required(
        input.current_delivery_stream_version_id.as_deref(),
        "currentDeliveryStreamVersionId",
    )?;
    if current != record.version.to_string() {
        return Err(AwsError::concurrent_modification(format!(
            "Cannot update firehose: {name} since the current version id: {} and specified version id: {current} do not match",
            record.version
        )));
    }
    let destination = input.destination_id.as_deref();
    if destination != Some("destinationId-000000000001") {
        return Err(AwsError::invalid_argument(format!(
            "DestinationId {} not found (the stream has destinationId-000000000001)",
            destination.unwrap_or("(none)")
        )));
    }
    let mut request = record.request.as_deref().cloned().unwrap_or_default();
    let updates: Vec<&str> = input
        .members_present()
        .into_iter()
        .filter(|m| m.ends_with("DestinationUpdate"))
        .collect();
    if let Some(current) = request.iceberg_destination_configuration.as_ref() {
        let Some(u) = input
            .iceberg_destination_update
            .as_ref()
            .filter(|_| updates.len() == 1)
        else {
            return Err(AwsError::invalid_argument(
                "firehosed does not change a destination's type: this stream's destination is Iceberg tables (IcebergDestinationUpdate, one update)",
            ));
        };
        // Every member given replaces the stream's (S3Configuration whole, as the model has it).
        request.iceberg_destination_configuration = Some(request::merge_update(current, u));
        return Ok(request);
    }
    let http = request.http_endpoint_destination_configuration.as_ref();
    match (http, updates.as_slice()) {
        (_, []) => Err(AwsError::invalid_argument(
            "A destination update is required: ExtendedS3DestinationUpdate (or S3DestinationUpdate, HttpEndpointDestinationUpdate)",
        )),
        (_, [_, _, ..]) => Err(AwsError::invalid_argument(
            "Only one destination update can be specified",
        )),
        (Some(current), _) => {
            let Some(u) = &input.http_endpoint_destination_update else {
                return Err(AwsError::invalid_argument(
                    "firehosed does not change a destination's type: this stream's destination is an HTTP endpoint (HttpEndpointDestinationUpdate), and the update is for another type",
                ));
            };
            request.http_endpoint_destination_configuration =
                Some(request::merge_http_update(current, u));
            Ok(request)
        }
        (None, _) => {
            // S3DestinationUpdate's members are a subset of the extended shape's.
            let update = match (
                &input.extended_s3_destination_update,
                &input.s3_destination_update,
            ) {
                (Some(u), _) => Some(u.clone()),
                (None, Some(u)) => request::same_members(u),
                (None, None) => None,
            };
            let Some(update) = update else {
                return Err(AwsError::invalid_argument(
                    "firehosed does not change a destination's type: this stream's destination is S3 (ExtendedS3DestinationUpdate or S3DestinationUpdate)",
                ));
            };
            let current = request
                .extended_s3_destination_configuration
                .clone()
                .unwrap_or_default();
            request.extended_s3_destination_configuration =
                Some(request::merge_s3_update(&current, &update));
            Ok(request)
        }
    }
}

/// `Tags: [{Key, Value}]` of a request (the model has checked their lengths, patterns and
/// count).
fn tags_of(tags: Option<&[Tag]>) -> BTreeMap<String, String> {
    tags.into_iter()
        .flatten()
        .filter_map(|t| {
            let key = t.key.clone()?;
            Some((key, t.value.clone().unwrap_or_default()))
        })
        .collect()
}

pub(super) fn tag(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let input: TagDeliveryStreamInput = parse(input)?;
    let name = check_name(input.delivery_stream_name)?;
    let new = tags_of(input.tags.as_deref());
    state.streams.record(&name)?;
    state.streams.records().update(&name, |r| {
        let mut tags = r.tags.clone();
        tags.extend(new);
        if tags.len() > MAX_TAGS {
            return Err(AwsError::limit_exceeded(format!(
                "A Firehose stream can have at most {MAX_TAGS} tags: {name} has {} and the request adds {}",
                r.tags.len(),
                tags.len() - r.tags.len()
            )));
        }
        r.tags = tags;
        Ok(())
    })?;
    Ok(json!({}))
}

pub(super) fn untag(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let input: UntagDeliveryStreamInput = parse(input)?;
    let name = check_name(input.delivery_stream_name)?;
    let keys = input.tag_keys.unwrap_or_default();
    state.streams.record(&name)?;
    state.streams.records().update(&name, |r| {
        for k in &keys {
            r.tags.remove(k);
        }
        Ok::<_, AwsError>(())
    })?;
    Ok(json!({}))
}

pub(super) fn list_tags(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let input: ListTagsForDeliveryStreamInput = parse(input)?;
    let name = check_name(input.delivery_stream_name)?;
    let record = state.streams.record(&name)?;
    let start = input.exclusive_start_tag_key.unwrap_or_default();
    let limit = input.limit.unwrap_or(50).clamp(1, 50) as usize;
    let after: Vec<(&String, &String)> = record
        .tags
        .iter()
        .filter(|(k, _)| k.as_str() > start.as_str())
        .collect();
    let tags: Vec<Tag> = after
        .iter()
        .take(limit)
        .map(|(k, v)| Tag {
            key: Some((*k).clone()),
            value: Some((*v).clone()),
        })
        .collect();
    super::firehose::answer(&crate::shapes::ListTagsForDeliveryStreamOutput {
        tags,
        has_more_tags: after.len() > limit,
    })
}

/// StartDeliveryStreamEncryption (`start`) and StopDeliveryStreamEncryption: the stream must
/// exist first, then be DirectPut and ACTIVE; the status moves ENABLING -> ENABLED or
/// DISABLING -> DISABLED.
pub(super) fn set_encryption(
    state: &AppState,
    input: Value,
    start: bool,
) -> Result<Value, AwsError> {
    let (name, sent) = if start {
        let input: StartDeliveryStreamEncryptionInput = parse(input)?;
        (
            input.delivery_stream_name,
            input.delivery_stream_encryption_configuration_input,
        )
    } else {
        let input: StopDeliveryStreamEncryptionInput = parse(input)?;
        (input.delivery_stream_name, None)
    };
    let name = check_name(name)?;
    let record = state.streams.record(&name)?;
    let source = state
        .streams
        .get(&name)
        .map(|s| s.config.source.clone())
        .or_else(|| record.config.as_ref().map(|c| c.source.clone()));
    if matches!(source, Some(SourceSpec::Kinesis(_))) {
        return Err(AwsError::invalid_argument(format!(
            "Server side encryption is not supported for Firehose stream {name}: its source is a Kinesis data stream, whose own encryption applies"
        )));
    }
    if record.status != crate::control::Status::Active {
        return Err(AwsError::resource_in_use(format!(
            "Firehose {name} is not in the ACTIVE state (it is {})",
            record.status.api_name()
        )));
    }
    let moving = if start {
        EncryptionStatus::Enabling
    } else {
        EncryptionStatus::Disabling
    };
    let started = if start {
        let sent = sent.unwrap_or(DeliveryStreamEncryptionConfigurationInput {
            key_arn: None,
            key_type: Some(KeyType::AwsOwnedCmk),
        });
        Some(encryption_of(&sent, moving)?)
    } else {
        None
    };
    // The change settles by itself (Encryption::status_at): no timer to outlive the stream.
    state.streams.records().update(&name, |r| {
        r.encryption = match (started, r.encryption.take()) {
            (Some(new), _) => Some(new),
            (None, Some(e)) => Some(Encryption {
                status: moving,
                changed_ms: crate::record::now_ms(),
                ..e
            }),
            (None, None) => None,
        };
        Ok::<_, AwsError>(())
    })?;
    Ok(json!({}))
}
