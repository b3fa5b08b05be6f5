//! The write side of the control plane: CreateDeliveryStream (built in the background:
//! CREATING, then ACTIVE), DeleteDeliveryStream (drains, then forgets), UpdateDestination
//! (version check, a new version in object names), Tag/Untag/ListTagsForDeliveryStream.
//! Streams of the configuration file are changed in the file, not here.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::AppState;
use super::error::AwsError;
use super::firehose::check_name;
use crate::control::{api_stream_config, request};
use crate::streams::Prepared;

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
    let tags = tags_of(input.get("Tags"))?;
    let config = api_stream_config(&input, state.streams.records())?;
    debug_assert_eq!(config.name, name);
    let arn = state.streams.create(input, config, tags).await?;
    Ok(json!({"DeliveryStreamARN": arn}))
}

pub(super) async fn delete(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let name = name_of(&input)?;
    state.streams.delete(&name).await?;
    Ok(json!({}))
}

pub(super) async fn update_destination(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let name = name_of(&input)?;
    let streams = &state.streams;
    streams
        .update(&name, |record| -> Result<Prepared, AwsError> {
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
            let update = input
                .get("ExtendedS3DestinationUpdate")
                .or_else(|| input.get("S3DestinationUpdate"))
                .ok_or_else(|| {
                    AwsError::invalid_argument("ExtendedS3DestinationUpdate is required")
                })?;
            let mut request = record.request.clone().unwrap_or_default();
            let merged =
                request::merge_update(&request["ExtendedS3DestinationConfiguration"], update);
            request["ExtendedS3DestinationConfiguration"] = merged;
            // Checked before anything changes: an invalid update leaves the stream as it was.
            let config = api_stream_config(&request, streams.records())?;
            Ok(Prepared { request, config })
        })
        .await?;
    Ok(json!({}))
}

/// `Tags: [{Key, Value}]` of a request.
fn tags_of(tags: Option<&Value>) -> Result<BTreeMap<String, String>, AwsError> {
    let mut out = BTreeMap::new();
    for t in tags.and_then(Value::as_array).into_iter().flatten() {
        let key = t
            .get("Key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty() && k.len() <= 128)
            .ok_or_else(|| {
                AwsError::invalid_argument("every tag needs a Key of 1-128 characters")
            })?;
        let value = t.get("Value").and_then(Value::as_str).unwrap_or("");
        if value.len() > 256 {
            return Err(AwsError::invalid_argument(
                "a tag Value has at most 256 characters",
            ));
        }
        out.insert(key.to_string(), value.to_string());
    }
    if out.len() > MAX_TAGS {
        return Err(AwsError::limit_exceeded(format!(
            "a delivery stream has at most {MAX_TAGS} tags"
        )));
    }
    Ok(out)
}

pub(super) fn tag(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let name = name_of(&input)?;
    let new = tags_of(input.get("Tags"))?;
    state.streams.record(&name)?;
    state.streams.records().update(&name, |r| {
        let mut tags = r.tags.clone();
        tags.extend(new);
        if tags.len() > MAX_TAGS {
            return Err(AwsError::limit_exceeded(format!(
                "a delivery stream has at most {MAX_TAGS} tags"
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
