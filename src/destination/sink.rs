//! Where sealed objects go: an S3 bucket, a local directory laid out like one, an HTTP
//! endpoint (with one of those as its backup), or memory (the unit tier). Each store keeps the
//! same contract, proven by one suite run over every one of them (`contract.rs`).

use super::directory::DirectorySink;
use super::http::HttpSink;
use super::iceberg::IcebergSink;
use super::s3::S3Sink;
use super::stagers::Kind;
use super::staging::Sealed;

/// Why one delivery attempt failed; `transient` failures are retried quickly, others slowly
/// (an operator must act: bucket missing, access denied), but records are never dropped.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(crate) struct DeliveryError {
    pub(crate) transient: bool,
    pub(crate) message: String,
}

/// What a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// Written now.
    Put,
    /// Exactly-once: an object of that name was there already (an earlier run, or an attempt
    /// whose answer was lost, wrote it): these records are delivered.
    AlreadyThere,
    /// An HTTP endpoint did not take the records within the retry duration: they are in the
    /// backup, as error records.
    BackedUp,
}

pub(crate) enum Sink {
    S3(S3Sink),
    Directory(DirectorySink),
    Http(Box<HttpSink>),
    Iceberg(Box<IcebergSink>),
    #[cfg(test)]
    Memory(std::sync::Arc<super::memory::MemorySink>),
}

impl Sink {
    /// Writes the object; one with an identity (exactly-once) only if its name is free.
    /// An HTTP endpoint sends main objects to the endpoint and the rest to its backup.
    pub(crate) async fn deliver(
        &self,
        object: &Sealed,
        kind: Kind,
    ) -> Result<Written, DeliveryError> {
        match self {
            Sink::S3(s) => s.deliver(object).await,
            Sink::Directory(d) => d.deliver(object).await,
            Sink::Http(h) => Box::pin(h.deliver(object, kind)).await,
            Sink::Iceberg(i) => Box::pin(i.deliver(object, kind)).await,
            #[cfg(test)]
            Sink::Memory(m) => m.deliver(object).await,
        }
    }

    /// For logs: `s3://bucket` or the directory.
    pub(crate) fn describe(&self) -> String {
        match self {
            Sink::S3(s) => format!("s3://{}", s.bucket()),
            Sink::Directory(d) => d.root().display().to_string(),
            Sink::Http(h) => format!("{} (backup {})", h.url(), h.backup().describe()),
            Sink::Iceberg(i) => i.describe(),
            #[cfg(test)]
            Sink::Memory(_) => "memory".into(),
        }
    }
}
