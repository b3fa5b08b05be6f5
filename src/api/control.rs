//! The write side of the control plane: CreateDeliveryStream (built in the background:
//! CREATING, then ACTIVE), DeleteDeliveryStream (drains, then forgets), UpdateDestination
//! (version check, a new version in object names), Tag/Untag/ListTagsForDeliveryStream.
//! Streams of the configuration file are changed in the file, not here.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::AppState;
use super::error::AwsError;
use super::firehose::check_name;
use crate::config::SourceConfig;
use crate::control::{Encryption, EncryptionStatus, StreamRecord, api_stream_config, request};
use crate::streams::{NewStream, Prepared};

/// AWS's limit of tags per stream.
const MAX_TAGS: usize = 50;

fn name_of(input: &Value) -> Result<String, AwsError> {
    let name = input
        .get("DeliveryStreamName")
        .and_then(Value::as_str)
        .map(str::to_string);
    check_name(name)
}

pub(super) async fn create(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let name = name_of(&input)?;
    // A name in use is that, whatever else is wrong with the request (and before Glue).
    state.streams.name_free(&name)?;
    request::incoming_rules(&input)?;
    let tags = tags_of(input.get("Tags"));
    let glue = state.streams.glue_columns(&input).await?;
    let config = api_stream_config(&input, state.streams.records(), glue.as_ref())?;
    debug_assert_eq!(config.name, name);
    let encryption = match input.get("DeliveryStreamEncryptionConfigurationInput") {
        Some(e) if !e.is_null() => {
            if matches!(config.source, SourceConfig::Kinesis(_)) {
                return Err(AwsError::invalid_argument(
                    "DeliveryStreamEncryptionConfigurationInput is not applicable for KinesisStreamAsSource stream type: the source stream's own encryption applies",
                ));
            }
            Some(encryption_of(e, EncryptionStatus::Enabled)?)
        }
        _ => None,
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
fn encryption_of(e: &Value, status: EncryptionStatus) -> Result<Encryption, AwsError> {
    let key_type = e
        .get("KeyType")
        .and_then(Value::as_str)
        .unwrap_or("AWS_OWNED_CMK")
        .to_string();
    let key_arn = e.get("KeyARN").and_then(Value::as_str).map(str::to_string);
    match (key_type.as_str(), &key_arn) {
        ("CUSTOMER_MANAGED_CMK", None) => Err(AwsError::invalid_argument(
            "KeyARN is required when KeyType is CUSTOMER_MANAGED_CMK",
        )),
        ("AWS_OWNED_CMK", Some(_)) => Err(AwsError::invalid_argument(
            "KeyARN must not be specified when KeyType is AWS_OWNED_CMK",
        )),
        _ => Ok(Encryption {
            key_type,
            key_arn,
            status,
            changed_ms: crate::record::now_ms(),
        }),
    }
}

pub(super) async fn delete(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let name = name_of(&input)?;
    state.streams.delete(&name).await?;
    Ok(json!({}))
}

pub(super) async fn update_destination(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let name = name_of(&input)?;
    let streams = &state.streams;
    // The Glue table of the updated request is read first (a network call), then the update
    // is checked again against the record under the stream's lock.
    let before = streams.record(&name)?;
    let glue = streams
        .glue_columns(&updated_request(&name, &before, &input)?)
        .await?;
    streams
        .update(&name, |record| -> Result<Prepared, AwsError> {
            let request = updated_request(&name, record, &input)?;
            request::incoming_rules(&request)?;
            // Checked before anything changes: an invalid update leaves the stream as it was.
            let config = api_stream_config(&request, streams.records(), glue.as_ref())?;
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
fn updated_request(name: &str, record: &StreamRecord, input: &Value) -> Result<Value, AwsError> {
    let current = super::firehose::required(
        input
            .get("CurrentDeliveryStreamVersionId")
            .and_then(Value::as_str),
        "currentDeliveryStreamVersionId",
    )?;
    if current != record.version.to_string() {
        return Err(AwsError::concurrent_modification(format!(
            "Cannot update firehose: {name} since the current version id: {} and specified version id: {current} do not match",
            record.version
        )));
    }
    let destination = input.get("DestinationId").and_then(Value::as_str);
    if destination != Some("destinationId-000000000001") {
        return Err(AwsError::invalid_argument(format!(
            "DestinationId {} not found (the stream has destinationId-000000000001)",
            destination.unwrap_or("(none)")
        )));
    }
    let given = |k: &str| input.get(k).filter(|v| !v.is_null());
    let mut request = record.request.clone().unwrap_or_default();
    let http = request
        .get("HttpEndpointDestinationConfiguration")
        .is_some();
    let update = match (
        given("ExtendedS3DestinationUpdate"),
        given("S3DestinationUpdate"),
        given("HttpEndpointDestinationUpdate"),
    ) {
        (None, None, Some(u)) if http => {
            let current = &request["HttpEndpointDestinationConfiguration"];
            request["HttpEndpointDestinationConfiguration"] =
                request::merge_http_update(current, u);
            return Ok(request);
        }
        (None, None, Some(_)) | (Some(_), None, None) | (None, Some(_), None) if http => {
            return Err(AwsError::invalid_argument(
                "firehosed does not change a destination's type: this stream's destination is an HTTP endpoint (HttpEndpointDestinationUpdate), and the update is for another type",
            ));
        }
        (None, None, Some(_)) => {
            return Err(AwsError::invalid_argument(
                "firehosed does not change a destination's type: this stream's destination is S3 (ExtendedS3DestinationUpdate or S3DestinationUpdate)",
            ));
        }
        // S3DestinationUpdate's members are a subset of the extended shape's.
        (Some(u), None, None) | (None, Some(u), None) => u,
        (None, None, None) => {
            return Err(AwsError::invalid_argument(
                "A destination update is required: ExtendedS3DestinationUpdate (or S3DestinationUpdate, HttpEndpointDestinationUpdate)",
            ));
        }
        _ => {
            return Err(AwsError::invalid_argument(
                "Only one destination update can be specified",
            ));
        }
    };
    let merged = request::merge_update(&request["ExtendedS3DestinationConfiguration"], update);
    request["ExtendedS3DestinationConfiguration"] = merged;
    Ok(request)
}

/// `Tags: [{Key, Value}]` of a request (the model has checked their lengths, patterns and
/// count).
fn tags_of(tags: Option<&Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for t in tags.and_then(Value::as_array).into_iter().flatten() {
        if let Some(key) = t.get("Key").and_then(Value::as_str) {
            let value = t.get("Value").and_then(Value::as_str).unwrap_or("");
            out.insert(key.to_string(), value.to_string());
        }
    }
    out
}

pub(super) fn tag(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let name = name_of(&input)?;
    let new = tags_of(input.get("Tags"));
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
    let name = name_of(&input)?;
    let keys: Vec<String> = input
        .get("TagKeys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
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
    let name = name_of(&input)?;
    let record = state.streams.record(&name)?;
    let start = input
        .get("ExclusiveStartTagKey")
        .and_then(Value::as_str)
        .unwrap_or("");
    let limit = input
        .get("Limit")
        .and_then(Value::as_u64)
        .unwrap_or(50)
        .clamp(1, 50) as usize;
    let after: Vec<(&String, &String)> = record
        .tags
        .iter()
        .filter(|(k, _)| k.as_str() > start)
        .collect();
    let tags: Vec<Value> = after
        .iter()
        .take(limit)
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({"Tags": tags, "HasMoreTags": after.len() > limit}))
}

/// StartDeliveryStreamEncryption (`start`) and StopDeliveryStreamEncryption: the stream must
/// exist first, then be DirectPut and ACTIVE; the status moves ENABLING -> ENABLED or
/// DISABLING -> DISABLED.
pub(super) fn set_encryption(
    state: &AppState,
    input: Value,
    start: bool,
) -> Result<Value, AwsError> {
    let name = name_of(&input)?;
    let record = state.streams.record(&name)?;
    let source = state
        .streams
        .get(&name)
        .map(|s| s.config.source.clone())
        .or_else(|| record.config.as_ref().map(|c| c.source.clone()));
    if matches!(source, Some(SourceConfig::Kinesis(_))) {
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
    let sent = input
        .get("DeliveryStreamEncryptionConfigurationInput")
        .filter(|v| !v.is_null())
        .cloned()
        .unwrap_or_else(|| json!({"KeyType": "AWS_OWNED_CMK"}));
    let started = if start {
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
