//! Where sealed objects go: an S3 bucket or a local directory laid out like one.

use super::directory::DirectorySink;
use super::s3::S3Sink;
use super::staging::Sealed;

/// Why one delivery attempt failed; `transient` failures are retried quickly, others slowly
/// (an operator must act: bucket missing, access denied), but records are never dropped.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct DeliveryError {
    pub(crate) transient: bool,
    pub(crate) message: String,
}

pub(crate) enum Sink {
    S3(S3Sink),
    Directory(DirectorySink),
}

impl Sink {
    pub(crate) async fn deliver(&self, object: &Sealed) -> Result<(), DeliveryError> {
        match self {
            Sink::S3(s) => s.deliver(object).await,
            Sink::Directory(d) => d.deliver(object).await,
        }
    }

    /// For logs: `s3://bucket` or the directory.
    pub(crate) fn describe(&self) -> String {
        match self {
            Sink::S3(s) => format!("s3://{}", s.bucket()),
            Sink::Directory(d) => d.root().display().to_string(),
        }
    }
}
