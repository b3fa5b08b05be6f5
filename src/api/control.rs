//! The write side of the control plane: CreateDeliveryStream (built in the background:
//! CREATING, then ACTIVE), DeleteDeliveryStream (drains, then forgets), UpdateDestination
//! (version check, a new version in object names), Tag/Untag/ListTagsForDeliveryStream.
//! Streams of the configuration file are changed in the file, not here.

use std::sync::Arc;

use serde_json::{Value, json};

use super::AppState;
use super::error::AwsError;
use super::firehose::check_name;
use crate::config::StreamConfig;
use crate::control::{Origin, Record, Status, api_stream_config, request};

/// AWS's limit of tags per stream.
const MAX_TAGS: usize = 50;

fn name_of(input: &Value) -> Result<String, AwsError> {
    let name = input
        .get("DeliveryStreamName")
        .and_then(Value::as_str)
        .map(str::to_string);
    check_name(name)
}

fn not_found(state: &AppState, name: &str) -> AwsError {
    AwsError::not_found(format!(
        "Firehose {name} under account {} not found.",
        state.account_id
    ))
}

/// The control record of stream `name`, or AWS's not-found error.
fn record_of(state: &AppState, name: &str) -> Result<Record, AwsError> {
    state
        .control
        .get(name)
        .ok_or_else(|| not_found(state, name))
}

/// The control records' not-found error, in AWS's words for this account.
fn named(state: &AppState, name: &str, e: AwsError) -> AwsError {
    if e.kind == "ResourceNotFoundException" {
        not_found(state, name)
    } else {
        e
    }
}

/// Every stream (running or being created), with `config` in place of its name's, within the
/// open-file limit.
fn check_open_files(state: &AppState, config: &StreamConfig) -> Result<(), AwsError> {
    let mut all = state.stream_configs();
    all.insert(config.name.clone(), config.clone());
    crate::app::open_files::check(all.values()).map_err(AwsError::limit_exceeded)
}

fn already_exists(state: &AppState, name: &str) -> AwsError {
    AwsError::resource_in_use(format!(
        "Firehose {name} under accountId {} already exists",
        state.account_id
    ))
}

fn file_stream(name: &str, what: &str) -> AwsError {
    AwsError::resource_in_use(format!(
        "Firehose {name} is defined in the configuration file; {what} it there (and restart), not through the API"
    ))
}

pub async fn create(state: &Arc<AppState>, input: Value) -> Result<Value, AwsError> {
    let name = name_of(&input)?;
    let tags = tags_of(input.get("Tags"))?;
    let config = api_stream_config(&input, &state.control)?;
    // Until the record is in: from then on the open-file check counts this stream.
    let admit = state.admission.lock().await;
    if state.control.get(&name).is_some() {
        return Err(already_exists(state, &name));
    }
    check_open_files(state, &config)?;
    let record = Record {
        origin: Origin::Api,
        request: Some(input),
        version: 1,
        tags,
        created_ms: crate::record::now_ms(),
        fingerprint: None,
        deleting: false,
        status: Status::Creating,
        config: Some(config.clone()),
    };
    let inserted = state
        .control
        .insert(&name, record)
        .map_err(|e| AwsError::unavailable(format!("cannot record the stream: {e}")))?;
    drop(admit);
    if !inserted {
        return Err(already_exists(state, &name));
    }
    let arn = state.builder.arn(&name);
    let state = state.clone();
    tokio::spawn(async move {
        let built = state.builder.build(&config, 1).await;
        let status = match built {
            Ok(stream) => {
                state.insert_stream(Arc::new(stream));
                tracing::info!(stream = %name, "created through the API");
                Status::Active
            }
            Err(e) => {
                tracing::error!(stream = %name, error = %format!("{e:#}"), "creating a stream failed");
                Status::Failed(format!("{e:#}"))
            }
        };
        state.control.set_status(&name, status);
    });
    Ok(json!({"DeliveryStreamARN": arn}))
}

pub async fn delete(state: &Arc<AppState>, input: Value) -> Result<Value, AwsError> {
    let name = name_of(&input)?;
    let _one_change = state.change(&name).await;
    let record = record_of(state, &name)?;
    match (record.origin, &record.status) {
        (Origin::File, _) => return Err(file_stream(&name, "remove")),
        (_, Status::Creating) => {
            return Err(AwsError::resource_in_use(format!(
                "Firehose {name} is being created; delete it once it is ACTIVE"
            )));
        }
        (_, Status::Deleting) => return Ok(json!({})),
        _ => {}
    }
    // Recorded on disk first: a restart in the middle finishes the delete.
    state.control.update(&name, |r| {
        r.status = Status::Deleting;
        r.deleting = true;
        Ok(())
    })?;
    let state = state.clone();
    tokio::spawn(async move {
        // Buffered records are delivered first (puts meanwhile get ServiceUnavailableException);
        // then the stream and its state go.
        if let Some(stream) = state.stream(&name) {
            stream.close().await;
        }
        state.remove_stream(&name);
        crate::control::remove_state(&state.builder.config.state_dir, &name);
        state.control.remove(&name);
        tracing::info!(stream = %name, "deleted through the API");
    });
    Ok(json!({}))
}

pub async fn update_destination(state: &Arc<AppState>, input: Value) -> Result<Value, AwsError> {
    let name = name_of(&input)?;
    // Admission before the stream's own lock, in the order a reload takes them.
    let _admit = state.admission.lock().await;
    let _one_change = state.change(&name).await;
    let record = record_of(state, &name)?;
    if record.origin == Origin::File {
        return Err(file_stream(&name, "change"));
    }
    if record.status != Status::Active {
        return Err(AwsError::resource_in_use(format!(
            "Firehose {name} is {}, not ACTIVE",
            record.status.api_name()
        )));
    }
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
        .ok_or_else(|| AwsError::invalid_argument("ExtendedS3DestinationUpdate is required"))?;
    let mut request = record.request.clone().unwrap_or_default();
    let merged = request::merge_update(&request["ExtendedS3DestinationConfiguration"], update);
    request["ExtendedS3DestinationConfiguration"] = merged;
    // Checked before anything changes: an invalid update leaves the stream as it was.
    let config = api_stream_config(&request, &state.control)?;
    check_open_files(state, &config)?;
    let version = record.version + 1;
    // The old stream drains (its objects keep the old version; puts meanwhile get
    // ServiceUnavailableException and are retried), then the new one takes over the same spool
    // from the cursor: nothing acknowledged is lost or written twice.
    if let Some(old) = state.stream(&name) {
        old.close().await;
    }
    let stream = state.builder.build(&config, version).await.map_err(|e| {
        AwsError::invalid_argument(format!("the updated destination cannot start: {e:#}"))
    });
    let stream = match stream {
        Ok(s) => s,
        Err(e) => {
            // Back to the previous configuration, so the stream keeps running.
            if let Some(old_config) = record.config.clone().or_else(|| {
                record
                    .request
                    .as_ref()
                    .and_then(|r| api_stream_config(r, &state.control).ok())
            }) && let Ok(old) = state.builder.build(&old_config, record.version).await
            {
                state.insert_stream(Arc::new(old));
            } else {
                state.remove_stream(&name);
                state
                    .control
                    .set_status(&name, Status::Failed(e.message.clone()));
            }
            return Err(e);
        }
    };
    state.insert_stream(Arc::new(stream));
    state.control.update(&name, |r| {
        r.request = Some(request);
        r.version = version;
        r.config = Some(config);
        Ok(())
    })?;
    Ok(json!({}))
}

/// `Tags: [{Key, Value}]` of a request.
fn tags_of(tags: Option<&Value>) -> Result<std::collections::BTreeMap<String, String>, AwsError> {
    let mut out = std::collections::BTreeMap::new();
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

pub fn tag(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let name = name_of(&input)?;
    let new = tags_of(input.get("Tags"))?;
    state
        .control
        .update(&name, |r| {
            let mut tags = r.tags.clone();
            tags.extend(new);
            if tags.len() > MAX_TAGS {
                return Err(AwsError::limit_exceeded(format!(
                    "a delivery stream has at most {MAX_TAGS} tags"
                )));
            }
            r.tags = tags;
            Ok(())
        })
        .map_err(|e| named(state, &name, e))?;
    Ok(json!({}))
}

pub fn untag(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let name = name_of(&input)?;
    let keys: Vec<String> = input
        .get("TagKeys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    state
        .control
        .update(&name, |r| {
            for k in &keys {
                r.tags.remove(k);
            }
            Ok(())
        })
        .map_err(|e| named(state, &name, e))?;
    Ok(json!({}))
}

pub fn list_tags(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let name = name_of(&input)?;
    let record = record_of(state, &name)?;
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
