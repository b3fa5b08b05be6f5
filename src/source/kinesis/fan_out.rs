//! Enhanced fan-out's registered consumer: found by DescribeStreamConsumer (another instance of
//! the fleet, or an earlier run, registered it), else registered with RegisterStreamConsumer,
//! then waited for until ACTIVE. Never deregistered here: a fleet shares one consumer, and an
//! instance that stops does not know whether others still read through it (docs/kinesis.md says
//! how to remove it).

use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::types::ConsumerStatus;
use tokio::time::Instant;

use crate::retry::Backoff;

/// Why the consumer could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FanOutError {
    #[error("the Kinesis server gave no ARN for the stream (RegisterStreamConsumer needs one)")]
    NoStreamArn,
    #[error("stream consumer {consumer:?} cannot be registered or described: {detail}")]
    Refused { consumer: String, detail: String },
    #[error("stream consumer {consumer:?} is not ACTIVE after {waited:?} (last: {last})")]
    NotActive {
        consumer: String,
        waited: Duration,
        last: String,
    },
}

/// What one look at the consumer found.
enum Found {
    Active(String),
    /// CREATING, or DELETING (a new one is registered once it is gone).
    Pending(String),
    Missing,
}

/// The ARN of the ACTIVE consumer `name` of the stream `stream_arn`, registered if missing.
/// Throttling, 5xx and network errors are retried until `patience` is spent; a refusal
/// (access denied, a bad name) fails at once. The stream's 20-consumer limit answers
/// LimitExceeded, which is also the answer to too many calls: it fails once `patience` is
/// spent, with that answer as the last error.
pub(crate) async fn consumer(
    client: &Client,
    stream_arn: &str,
    name: &str,
    patience: Duration,
) -> Result<String, FanOutError> {
    let began = Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
    let mut last;
    loop {
        match look(client, stream_arn, name).await {
            Ok(Found::Active(arn)) => {
                tracing::info!(consumer = %arn, "subscribing as the registered stream consumer");
                return Ok(arn);
            }
            Ok(Found::Pending(status)) => last = format!("status {status}"),
            Ok(Found::Missing) => match register(client, stream_arn, name).await {
                Ok(()) => last = "registered".into(),
                Err(Step::Transient(e)) => last = e,
                Err(Step::Refused(detail)) => return Err(refused(name, detail)),
            },
            Err(Step::Transient(e)) => last = e,
            Err(Step::Refused(detail)) => return Err(refused(name, detail)),
        }
        if began.elapsed() >= patience {
            return Err(FanOutError::NotActive {
                consumer: name.to_string(),
                waited: patience,
                last,
            });
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

fn refused(name: &str, detail: String) -> FanOutError {
    FanOutError::Refused {
        consumer: name.to_string(),
        detail,
    }
}

/// A call's failure: worth another try, or a refusal.
enum Step {
    Transient(String),
    Refused(String),
}

async fn look(client: &Client, stream_arn: &str, name: &str) -> Result<Found, Step> {
    let out = client
        .describe_stream_consumer()
        .stream_arn(stream_arn)
        .consumer_name(name)
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(e) if code(&e) == Some("ResourceNotFoundException") => return Ok(Found::Missing),
        Err(e) => return Err(step(&e)),
    };
    let Some(c) = out.consumer_description() else {
        return Err(Step::Transient(
            "DescribeStreamConsumer said nothing".into(),
        ));
    };
    Ok(match c.consumer_status() {
        ConsumerStatus::Active => Found::Active(c.consumer_arn().to_string()),
        other => Found::Pending(other.as_str().to_string()),
    })
}

/// RegisterStreamConsumer; a consumer of that name registered meanwhile (ResourceInUse: by
/// another instance) is as good.
async fn register(client: &Client, stream_arn: &str, name: &str) -> Result<(), Step> {
    let out = client
        .register_stream_consumer()
        .stream_arn(stream_arn)
        .consumer_name(name)
        .send()
        .await;
    match out {
        Ok(_) => {
            tracing::info!(consumer = %name, stream = %stream_arn, "registered the stream consumer");
            Ok(())
        }
        Err(e) if code(&e) == Some("ResourceInUseException") => Ok(()),
        Err(e) => Err(step(&e)),
    }
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

/// Throttling (LimitExceeded is also the 5 calls/s of these operations), 5xx and transport
/// failures are transient; any other answer of the service is a refusal.
fn step<E>(e: &SdkError<E, aws_sdk_kinesis::config::http::HttpResponse>) -> Step
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let text = DisplayErrorContext(e).to_string();
    match e {
        SdkError::ServiceError(se) => {
            let throttled = matches!(
                se.err().code(),
                Some("LimitExceededException" | "ThrottlingException")
            );
            if throttled || se.raw().status().is_server_error() {
                Step::Transient(text)
            } else {
                Step::Refused(text)
            }
        }
        _ => Step::Transient(text),
    }
}
