//! AWS SDK clients built from the `aws` settings: region, endpoint override, path style.
//! Credentials come from the standard chain (env, profile, SSO, IMDSv2).

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::config::AwsSettings;

/// The shared SDK configuration. Region: the setting, else the SDK chain, else us-east-1.
pub(crate) async fn sdk_config(settings: &AwsSettings) -> SdkConfig {
    let region = RegionProviderChain::first_try(settings.region.clone().map(Region::new))
        .or_default_provider()
        .or_else(Region::new("us-east-1"));
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region);
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// No credentials could be found for the SDK clients.
#[derive(Debug, thiserror::Error)]
#[error(
    "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (a local S3 or Kinesis server takes any values), or AWS_PROFILE with ~/.aws/credentials, or run with an instance or task role"
)]
pub(crate) struct NoCredentials;

/// Resolves the credentials, so that a missing key is said in one line at start-up instead of
/// inside every S3 or Kinesis call's error (the caller keeps a success: this walks the chain).
pub(crate) async fn check_credentials(sdk: &SdkConfig) -> Result<(), NoCredentials> {
    use aws_sdk_s3::config::ProvideCredentials;
    let provider = sdk.credentials_provider().ok_or(NoCredentials)?;
    match provider.provide_credentials().await {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::debug!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "the credential chain found nothing");
            Err(NoCredentials)
        }
    }
}

/// An S3 client. The SDK's own retries are off: the uploader retries with its own backoff and
/// never gives up on an object, so retries are counted and logged in one place.
pub(crate) fn s3_client(
    sdk: &SdkConfig,
    endpoint_url: Option<&str>,
    force_path_style: Option<bool>,
) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(sdk)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(60))
                .operation_attempt_timeout(Duration::from_secs(300))
                .build(),
        );
    if let Some(url) = endpoint_url {
        builder = builder.endpoint_url(url);
    }
    if let Some(path_style) = force_path_style {
        builder = builder.force_path_style(path_style);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// The region the SDK settled on, for ARNs.
pub(crate) fn region_name(sdk: &SdkConfig) -> String {
    sdk.region()
        .map(ToString::to_string)
        .unwrap_or_else(|| "us-east-1".into())
}

/// A Kinesis client; as for S3, the readers retry with their own backoff (and count throttling).
/// The lease table's client: calls time out within a third of the failover time (at most 5 s),
/// so a DynamoDB that hangs is seen as failing renewals, not as a stuck instance.
pub(crate) fn dynamodb_client(
    sdk: &SdkConfig,
    endpoint_url: Option<&str>,
    failover: Duration,
) -> aws_sdk_dynamodb::Client {
    let attempt = (failover / 3).clamp(Duration::from_millis(500), Duration::from_secs(5));
    let mut builder = aws_sdk_dynamodb::config::Builder::from(sdk)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(attempt)
                .operation_attempt_timeout(attempt)
                .build(),
        );
    if let Some(url) = endpoint_url {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

pub(crate) fn kinesis_client(
    sdk: &SdkConfig,
    endpoint_url: Option<&str>,
) -> aws_sdk_kinesis::Client {
    let mut builder = aws_sdk_kinesis::config::Builder::from(sdk)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(url) = endpoint_url {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_kinesis::Client::from_conf(builder.build())
}
