//! Where a destination's objects go: an S3 bucket (checked to exist), a directory, an HTTP
//! endpoint with its backup, or Iceberg tables with theirs (`iceberg.rs`).

use super::checks::check_with_retries;
use super::{Build, BuildError, PlanParts, prepare_dir};
use crate::aws;
use crate::control::Origin;
use crate::destination::directory::DirectorySink;
use crate::destination::http::{HttpSetup, HttpSink};
use crate::destination::naming::{ErrorNaming, Naming};
use crate::destination::s3::BucketError;
use crate::destination::s3::S3Sink;
use crate::destination::sink::Sink;
use crate::destination::staging::ObjectStager;
use crate::metrics::DestinationMetrics;
use crate::report::Chain;
use crate::spec::{DestinationSpec, Target};
use std::path::Path;
use std::time::Duration;

/// How long an API stream's start waits for the (advisory) bucket check.
const API_BUCKET_CHECK: Duration = Duration::from_secs(2);
use std::sync::Arc;

impl Build<'_> {
    /// Where destination `d`'s objects go; an S3 bucket must exist. An HTTP endpoint's
    /// `http-endpoint-failed` objects are staged in `parts.dir` and named like its errors.
    pub(super) async fn sink(
        &self,
        d: &DestinationSpec,
        parts: &PlanParts,
        metrics: &Arc<DestinationMetrics>,
        label: &str,
    ) -> Result<Sink, BuildError> {
        if let (Target::Iceberg(i), Some(router)) = (&d.target, &parts.layout.tables) {
            let error_prefix = parts.layout.error_prefix.clone();
            return self
                .iceberg_sink(
                    i,
                    router.clone(),
                    &parts.naming,
                    error_prefix,
                    metrics,
                    label,
                )
                .await;
        }
        let Target::Http(http) = &d.target else {
            return self.target_sink(&d.target).await;
        };
        let backup = self.target_sink(&http.backup).await?;
        let naming = Naming {
            error: Some(ErrorNaming {
                template: parts.layout.error_prefix.clone(),
                output_type: "http-endpoint-failed",
            }),
            ..parts.naming.clone()
        };
        let failed = ObjectStager::new(
            parts.dir.clone(),
            naming,
            d.compression,
            false,
            d.buffering.size_bytes(),
        )
        .with_patience(parts.patience.clone());
        let sink = HttpSink::new(HttpSetup {
            endpoint: http,
            source_arn: self.builder.arn(&self.sc.name),
            backup,
            failed,
            metrics: metrics.clone(),
            label: label.to_string(),
        })
        .map_err(|source| BuildError::Http {
            stream: self.sc.name.clone(),
            source,
        })?;
        Ok(Sink::Http(Box::new(sink)))
    }

    /// The sink of an S3 bucket or a directory.
    pub(super) async fn target_sink(&self, target: &Target) -> Result<Sink, BuildError> {
        let config = &self.builder.config;
        match target {
            Target::S3 {
                bucket,
                endpoint_url,
                kms_key_arn,
            } => {
                if let Some(memory) = self.builder.memory_sink() {
                    return Ok(memory);
                }
                if let Some(dir) = self.builder.s3_directory(self.origin) {
                    if !is_bucket_name(bucket) {
                        return Err(BuildError::BucketName {
                            stream: self.sc.name.clone(),
                            bucket: bucket.clone(),
                        });
                    }
                    return self.directory_sink(&dir.join(bucket), "api_s3_directory");
                }
                let sdk = self
                    .sdk
                    .expect("the SDK configuration is loaded for every S3 destination (needs_aws)");
                let endpoint = endpoint_url
                    .as_deref()
                    .or(config.aws.endpoint_url.as_deref());
                let client = aws::s3_client(sdk, endpoint, config.aws.force_path_style);
                let s3 = S3Sink::new(client, bucket.clone(), kms_key_arn.clone());
                self.check_bucket(&s3).await?;
                Ok(Sink::S3(s3))
            }
            Target::Directory(root) => self.directory_sink(root, "directory destination"),
            Target::Http(_) | Target::Iceberg(_) => Err(BuildError::NestedHttp {
                stream: self.sc.name.clone(),
            }),
        }
    }

    /// A directory's sink, the directory made and proven writable first.
    fn directory_sink(&self, root: &Path, what: &'static str) -> Result<Sink, BuildError> {
        prepare_dir(root).map_err(|source| BuildError::Folder {
            stream: self.sc.name.clone(),
            what,
            path: root.to_path_buf(),
            source,
        })?;
        Ok(Sink::Directory(DirectorySink::new(root.to_path_buf())))
    }

    /// A file stream's bucket must exist and be reachable (a VM's configuration is wrong
    /// otherwise: the start stops with one line). An API stream is ACTIVE without it, as on
    /// AWS, where a missing bucket or a denied write is a delivery failure, retried while the
    /// records wait ("Handle data delivery failures" in AWS's developer guide): its records stay
    /// in the spool and are delivered once the bucket exists.
    async fn check_bucket(&self, s3: &S3Sink) -> Result<(), BuildError> {
        let checked = match self.origin {
            Origin::File => check_with_retries(s3).await,
            // Only to say so in the log: bounded, so that API streams restored at start-up
            // behind an unreachable endpoint do not hold the start one SDK timeout each.
            Origin::Api => tokio::time::timeout(API_BUCKET_CHECK, s3.check_bucket())
                .await
                .unwrap_or_else(|_| {
                    Err(BucketError::Unreachable {
                        bucket: s3.bucket().to_string(),
                        detail: format!("no answer within {API_BUCKET_CHECK:?}"),
                    })
                }),
        };
        match (checked, self.origin) {
            (Ok(()), _) => Ok(()),
            (Err(e), Origin::Api) => {
                tracing::warn!(stream = %self.sc.name, error = %Chain(&e),
                    "the destination's bucket cannot be written yet; records are kept and delivered once it can");
                Ok(())
            }
            (Err(source), Origin::File) => Err(BuildError::Bucket {
                stream: self.sc.name.clone(),
                source,
            }),
        }
    }
}

/// S3's bucket naming rules: 3-63 characters of lowercase letters, digits, dots and hyphens,
/// beginning and ending with a letter or digit, no two dots in a row.
fn is_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    #[test]
    fn bucket_names_are_s3s() {
        for ok in ["abc", "my-bucket.logs", "a1b", &"a".repeat(63)] {
            assert!(super::is_bucket_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "..",
            "...",
            "a..b",
            "../etc",
            "a/b",
            "Abc",
            ".abc",
            "abc-",
            &"a".repeat(64),
        ] {
            assert!(!super::is_bucket_name(bad), "{bad}");
        }
    }
}
