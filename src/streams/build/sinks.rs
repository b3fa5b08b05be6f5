//! Where a destination's objects go: an S3 bucket (checked to exist), a directory, an HTTP
//! endpoint with its backup, or Iceberg tables with theirs (`iceberg.rs`).

use super::{Build, BuildError, PlanParts, check_with_retries, prepare_dir};
use crate::aws;
use crate::destination::directory::DirectorySink;
use crate::destination::http::{HttpSetup, HttpSink};
use crate::destination::naming::{ErrorNaming, Naming};
use crate::destination::s3::S3Sink;
use crate::destination::sink::Sink;
use crate::destination::staging::ObjectStager;
use crate::metrics::DestinationMetrics;
use crate::spec::{DestinationSpec, Target};
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
                let sdk = self
                    .sdk
                    .expect("the SDK configuration is loaded for every S3 destination (needs_aws)");
                let endpoint = endpoint_url
                    .as_deref()
                    .or(config.aws.endpoint_url.as_deref());
                let client = aws::s3_client(sdk, endpoint, config.aws.force_path_style);
                let s3 = S3Sink::new(client, bucket.clone(), kms_key_arn.clone());
                check_with_retries(&s3)
                    .await
                    .map_err(|source| BuildError::Bucket {
                        stream: self.sc.name.clone(),
                        source,
                    })?;
                Ok(Sink::S3(s3))
            }
            Target::Directory(root) => {
                prepare_dir(root).map_err(|source| BuildError::Folder {
                    stream: self.sc.name.clone(),
                    what: "directory destination",
                    path: root.clone(),
                    source,
                })?;
                Ok(Sink::Directory(DirectorySink::new(root.clone())))
            }
            Target::Http(_) | Target::Iceberg(_) => Err(BuildError::NestedHttp {
                stream: self.sc.name.clone(),
            }),
        }
    }
}
