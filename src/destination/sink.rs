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

/// What a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    Written,
    /// Exactly-once: an object of that name was there already (an earlier run, or an attempt
    /// whose answer was lost, wrote it): these records are delivered.
    AlreadyThere,
}

pub(crate) enum Sink {
    S3(S3Sink),
    Directory(DirectorySink),
}

impl Sink {
    /// Writes the object; one with an identity (exactly-once) only if its name is free.
    pub(crate) async fn deliver(&self, object: &Sealed) -> Result<Written, DeliveryError> {
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
