//! Read-only control plane: DescribeDeliveryStream (with AWS's defaults filled in) and
//! ListDeliveryStreams. A description is written in AWS's output shapes (`shapes`) from the
//! stream's specification and, for an API stream, the members of its request that the
//! specification does not keep (role ARNs, logging options): AWS describes what was sent.

mod destination;
mod iceberg;

use serde_json::Value;

use super::AppState;
use super::error::AwsError;
use super::firehose::{answer, check_name, parse};
use crate::control::{Status, StreamRecord};
use crate::shapes::{
    CreateDeliveryStreamInput, DeliveryStreamDescription, DeliveryStreamEncryptionConfiguration,
    DeliveryStreamEncryptionStatus, DeliveryStreamFailureType, DeliveryStreamStatus,
    DeliveryStreamType, DescribeDeliveryStreamInput, DescribeDeliveryStreamOutput,
    FailureDescription, KeyType, KinesisStreamSourceDescription, ListDeliveryStreamsInput,
    ListDeliveryStreamsOutput, SourceDescription,
};
use crate::spec::{SourceSpec, StreamSpec};

pub(super) fn describe(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let input: DescribeDeliveryStreamInput = parse(input)?;
    let name = check_name(input.delivery_stream_name)?;
    let streams = &state.streams;
    let record = streams.records().get(&name);
    let running = streams.get(&name);
    let config = match (&running, &record) {
        (Some(s), _) => &s.config,
        // Being created or started (or failed): described from its checked specification.
        (None, Some(r)) => match &r.config {
            Some(config) => config,
            None => return Err(streams.not_found(&name).into()),
        },
        (None, None) => return Err(streams.not_found(&name).into()),
    };
    let view = View {
        config,
        version: running
            .as_ref()
            .map_or_else(|| record.as_ref().map_or(1, |r| r.version), |s| s.version),
        arn: running
            .as_ref()
            .map_or_else(|| streams.arn(&name), |s| s.arn.clone()),
        created_ms: record.as_ref().map_or_else(
            || {
                running
                    .as_ref()
                    .map_or(0, |s| s.created_at.timestamp_millis())
            },
            |r| r.created_ms,
        ),
        record: record.as_ref(),
        region: streams.region(),
        account_id: streams.account_id(),
    };
    answer(&DescribeDeliveryStreamOutput {
        delivery_stream_description: description(&view),
    })
}

/// What a description is made of.
pub(super) struct View<'a> {
    config: &'a StreamSpec,
    version: u32,
    arn: String,
    created_ms: i64,
    /// The control record: status, encryption, last update and, for an API stream, its
    /// request.
    record: Option<&'a StreamRecord>,
    region: &'a str,
    account_id: &'a str,
}

impl View<'_> {
    fn status(&self) -> Status {
        self.record.map_or(Status::Active, |r| r.status.clone())
    }

    /// The request an API stream was created (and updated) with; None for a file stream.
    pub(super) fn sent(&self) -> Option<&CreateDeliveryStreamInput> {
        self.record?.request.as_deref()
    }

    /// The role a file stream is described with (it has none: firehosed uses its own
    /// credentials); an API stream is described with the RoleARN it was created with.
    pub(super) fn default_role(&self) -> String {
        format!("arn:aws:iam::{}:role/firehosed", self.account_id)
    }
}

/// AWS's FailureDescription.Details is at most 1,024 characters.
const MAX_FAILURE_DETAILS: usize = 1024;

/// FailureDescription of a CREATING_FAILED stream, within the model's length (UTF-16 units,
/// as the model counts).
fn failure_description(why: &str) -> FailureDescription {
    let mut units = 0;
    let details: String = why
        .chars()
        .take_while(|c| {
            units += c.len_utf16();
            units <= MAX_FAILURE_DETAILS
        })
        .collect();
    FailureDescription {
        r#type: DeliveryStreamFailureType::UnknownError,
        details,
    }
}

fn description(view: &View) -> DeliveryStreamDescription {
    let destinations = view
        .config
        .destinations
        .iter()
        .enumerate()
        .map(|(i, d)| destination::description(i, d, view))
        .collect();
    let created = view.created_ms as f64 / 1000.0;
    let (kind, source) = match &view.config.source {
        SourceSpec::DirectPut => (DeliveryStreamType::DirectPut, None),
        SourceSpec::Kinesis(k) => {
            let sent_role = view
                .sent()
                .and_then(|r| r.kinesis_stream_source_configuration.as_ref())
                .and_then(|k| k.role_arn.clone());
            let source = SourceDescription {
                kinesis_stream_source_description: Some(KinesisStreamSourceDescription {
                    kinesis_stream_arn: Some(k.stream.arn(view.region, view.account_id)),
                    role_arn: Some(sent_role.unwrap_or_else(|| view.default_role())),
                    delivery_start_timestamp: Some(created),
                }),
                ..SourceDescription::default()
            };
            (DeliveryStreamType::KinesisStreamAsSource, Some(source))
        }
    };
    let status = view.status();
    // A record of an earlier version has no update time: its creation is the best known.
    let updated = view.record.and_then(|r| {
        r.updated_ms
            .or_else(|| (view.version > 1).then_some(r.created_ms))
    });
    DeliveryStreamDescription {
        delivery_stream_name: view.config.name.clone(),
        delivery_stream_arn: view.arn.clone(),
        delivery_stream_status: match status {
            Status::Creating => DeliveryStreamStatus::Creating,
            Status::Active => DeliveryStreamStatus::Active,
            Status::Deleting => DeliveryStreamStatus::Deleting,
            Status::Failed(_) => DeliveryStreamStatus::CreatingFailed,
        },
        delivery_stream_type: kind,
        version_id: view.version.to_string(),
        create_timestamp: Some(created),
        destinations,
        has_more_destinations: false,
        // A Kinesis-sourced stream has no encryption of its own to describe (AWS leaves it
        // out).
        delivery_stream_encryption_configuration: source.is_none().then(|| encryption(view)),
        last_update_timestamp: updated.map(|ms| ms as f64 / 1000.0),
        source,
        failure_description: match &status {
            Status::Failed(why) => Some(failure_description(why)),
            _ => None,
        },
    }
}

/// DeliveryStreamEncryptionConfiguration: what was set, its status now.
fn encryption(view: &View) -> DeliveryStreamEncryptionConfiguration {
    match view.record.and_then(|r| r.encryption.as_ref()) {
        Some(e) => {
            use crate::control::EncryptionStatus as S;
            let status = match e.status_at(crate::record::now_ms()) {
                S::Enabling => DeliveryStreamEncryptionStatus::Enabling,
                S::Enabled => DeliveryStreamEncryptionStatus::Enabled,
                S::Disabling => DeliveryStreamEncryptionStatus::Disabling,
                S::Disabled => DeliveryStreamEncryptionStatus::Disabled,
            };
            DeliveryStreamEncryptionConfiguration {
                key_arn: e.key_arn.clone(),
                key_type: KeyType::ALL.into_iter().find(|k| k.as_str() == e.key_type),
                status: Some(status),
                failure_description: None,
            }
        }
        None => DeliveryStreamEncryptionConfiguration {
            status: Some(DeliveryStreamEncryptionStatus::Disabled),
            ..DeliveryStreamEncryptionConfiguration::default()
        },
    }
}

pub(super) fn list(state: &AppState, input: Value) -> Result<Value, AwsError> {
    let input: ListDeliveryStreamsInput = parse(input)?;
    let limit = input.limit.unwrap_or(10);
    if !(1..=10_000).contains(&limit) {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 10000"
        )));
    }
    // Without DeliveryStreamType every type is listed, as AWS.
    let kind = input.delivery_stream_type;
    let start = input
        .exclusive_start_delivery_stream_name
        .unwrap_or_default();
    let streams = state.streams.all();
    let records = state.streams.records();
    let mut matching: Vec<String> = records
        .names()
        .into_iter()
        .filter(|name| {
            let source = streams
                .iter()
                .find(|s| s.name() == name)
                .map(|s| &s.config.source)
                .cloned()
                .or_else(|| records.get(name).and_then(|r| r.config.map(|c| c.source)));
            let this = match source {
                Some(SourceSpec::Kinesis(_)) => DeliveryStreamType::KinesisStreamAsSource,
                _ => DeliveryStreamType::DirectPut,
            };
            name.as_str() > start.as_str() && kind.is_none_or(|k| k == this)
        })
        .collect();
    matching.sort();
    let take = limit as usize;
    answer(&ListDeliveryStreamsOutput {
        has_more_delivery_streams: matching.len() > take,
        delivery_stream_names: matching.into_iter().take(take).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_details_stay_within_the_models_1024_characters() {
        let long = "é".repeat(3000);
        let d = failure_description(&long);
        assert_eq!(d.details.chars().count(), 1024);
        // Outside the BMP a character is two UTF-16 units.
        let wide = failure_description(&"😀".repeat(600));
        assert_eq!(wide.details.encode_utf16().count(), 1024);
        assert_eq!(d.r#type, DeliveryStreamFailureType::UnknownError);
        assert_eq!(failure_description("short").details, "short");
    }
}
