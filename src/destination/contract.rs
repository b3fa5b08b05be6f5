//! The contract every object store keeps (an S3 bucket, a directory, memory), one suite run
//! over each: the unit tests run it on a directory and on memory, tests/e2e/contracts.rs on S3
//! (moto, with its conditional writes). An object is written whole under its key or not at
//! all; an at-least-once object replaces one of its name; an exactly-once object is written
//! only if its name is free (`AlreadyThere` otherwise, the first one kept), also past the
//! multipart threshold; the conditional-write check says yes.

use std::path::PathBuf;

use super::sink::{DeliveryError, Sink, Written};
use super::staging::Sealed;

/// A scenario of the contract that a store broke.
#[derive(Debug, thiserror::Error)]
#[error("{scenario}: {what}")]
pub struct ContractError {
    scenario: &'static str,
    what: String,
}

fn broke(scenario: &'static str, what: impl Into<String>) -> ContractError {
    ContractError {
        scenario,
        what: what.into(),
    }
}

/// Runs the contract on an S3 bucket (tests/e2e/contracts.rs: moto on loopback).
pub async fn s3(endpoint: &str, bucket: &str) -> Result<(), ContractError> {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "contract", "contract", None, None, "contract",
        ))
        .load()
        .await;
    let client = crate::aws::s3_client(&sdk, Some(endpoint), Some(true));
    let sink = Sink::S3(super::s3::S3Sink::new(client, bucket.to_string(), None));
    all(&sink).await
}

/// Every scenario, on `sink`.
pub(crate) async fn all(sink: &Sink) -> Result<(), ContractError> {
    let dir = std::env::temp_dir().join(format!(
        "firehosed-contract-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| broke("setup", e.to_string()))?;
    let run = Scenarios { sink, dir: &dir };
    let result = run.all().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

struct Scenarios<'a> {
    sink: &'a Sink,
    dir: &'a PathBuf,
}

impl Scenarios<'_> {
    async fn all(&self) -> Result<(), ContractError> {
        let run = uuid::Uuid::new_v4().simple().to_string();
        self.whole(&format!("{run}/plain/a.gz"), b"{\"a\":1}\n".to_vec())
            .await?;
        self.replaced(&format!("{run}/plain/b")).await?;
        self.exactly_once(&format!("{run}/once/c"), 1024).await?;
        // Past the multipart threshold (S3's CompleteMultipartUpload is conditional too).
        let big = super::s3::MULTIPART_THRESHOLD as usize + 1024 * 1024 + 7;
        self.exactly_once(&format!("{run}/once/big"), big).await?;
        self.conditional_writes().await
    }

    /// A sealed object of `bytes` under `key` (exactly-once when `once`).
    fn sealed(&self, key: &str, bytes: &[u8], once: bool) -> Result<Sealed, ContractError> {
        let path = self.dir.join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::write(&path, bytes).map_err(|e| broke("setup", e.to_string()))?;
        let identity = once.then(|| {
            let at = super::journal::Pos::LOWEST;
            let entry = super::journal::Entry {
                slot: "main".into(),
                first: at.clone(),
                last: at,
                key: key.to_string(),
                base: String::new(),
                delivered: false,
            };
            (entry, false)
        });
        Ok(Sealed {
            id: 0,
            path,
            key: key.to_string(),
            records: 1,
            raw_bytes: bytes.len() as u64,
            size: bytes.len() as u64,
            oldest_ms: 0,
            first_seq: 0,
            next_seq: 1,
            identity,
            partition: None,
            changes: None,
        })
    }

    async fn put(
        &self,
        scenario: &'static str,
        key: &str,
        bytes: &[u8],
        once: bool,
    ) -> Result<Written, ContractError> {
        let object = self.sealed(key, bytes, once)?;
        self.sink
            .deliver(&object, super::stagers::Kind::Main)
            .await
            .map_err(|e: DeliveryError| broke(scenario, e.to_string()))
    }

    async fn expect(
        &self,
        scenario: &'static str,
        key: &str,
        want: &[u8],
    ) -> Result<(), ContractError> {
        match read_back(self.sink, key).await {
            Ok(Some(got)) if got == want => Ok(()),
            Ok(Some(got)) => Err(broke(
                scenario,
                format!(
                    "{key} holds {} bytes, not the {} written",
                    got.len(),
                    want.len()
                ),
            )),
            Ok(None) => Err(broke(scenario, format!("{key} is not there"))),
            Err(e) => Err(broke(scenario, e.to_string())),
        }
    }

    /// An object is written whole under its key.
    async fn whole(&self, key: &str, bytes: Vec<u8>) -> Result<(), ContractError> {
        let scenario = "a written object reads back whole";
        match self.put(scenario, key, &bytes, false).await? {
            Written::Put => self.expect(scenario, key, &bytes).await,
            other => Err(broke(scenario, format!("answered {other:?}"))),
        }
    }

    /// An at-least-once object replaces one of its name (a retry after a lost answer).
    async fn replaced(&self, key: &str) -> Result<(), ContractError> {
        let scenario = "an at-least-once object replaces one of its name";
        self.put(scenario, key, b"first", false).await?;
        self.put(scenario, key, b"second", false).await?;
        self.expect(scenario, key, b"second").await
    }

    /// An exactly-once object is written only if its name is free; the second write of the
    /// name answers AlreadyThere and leaves the first.
    async fn exactly_once(&self, key: &str, size: usize) -> Result<(), ContractError> {
        let scenario = "an exactly-once object is written only if its name is free";
        let first: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let second: Vec<u8> = first.iter().map(|b| b ^ 0xff).collect();
        match self.put(scenario, key, &first, true).await? {
            Written::Put => {}
            other => {
                return Err(broke(
                    scenario,
                    format!("the first write answered {other:?}"),
                ));
            }
        }
        match self.put(scenario, key, &second, true).await? {
            Written::AlreadyThere => {}
            other => {
                return Err(broke(
                    scenario,
                    format!("the second write answered {other:?}"),
                ));
            }
        }
        self.expect(scenario, key, &first).await
    }

    /// The start-up check of exactly-once delivery says the store refuses a second write.
    async fn conditional_writes(&self) -> Result<(), ContractError> {
        let scenario = "the conditional-write check holds";
        let supported = match self.sink {
            Sink::S3(s3) => s3
                .conditional_writes()
                .await
                .map_err(|e| broke(scenario, e.to_string()))?,
            Sink::Directory(d) => d
                .exclusive_links()
                .map_err(|e| broke(scenario, e.to_string()))?,
            Sink::Http(_) | Sink::Iceberg(_) => {
                return Err(broke(
                    scenario,
                    "an HTTP endpoint or Iceberg table is not a store",
                ));
            }
            #[cfg(test)]
            Sink::Memory(_) => true,
        };
        match supported {
            true => Ok(()),
            false => Err(broke(scenario, "the store says it takes a second write")),
        }
    }
}

/// An object's bytes as the store keeps them.
async fn read_back(sink: &Sink, key: &str) -> Result<Option<Vec<u8>>, DeliveryError> {
    match sink {
        Sink::S3(s3) => s3.get(key).await,
        Sink::Directory(d) => {
            let Some(path) = d.path_for(key) else {
                return Ok(None);
            };
            match std::fs::read(path) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(DeliveryError {
                    transient: false,
                    message: e.to_string(),
                }),
            }
        }
        Sink::Http(_) | Sink::Iceberg(_) => Ok(None),
        #[cfg(test)]
        Sink::Memory(m) => Ok(m.objects().get(key).cloned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_keeps_the_contract() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = Sink::Directory(super::super::directory::DirectorySink::new(
            dir.path().to_path_buf(),
        ));
        all(&sink).await.expect("the contract");
    }

    #[tokio::test]
    async fn memory_keeps_the_contract() {
        let sink = Sink::Memory(std::sync::Arc::default());
        all(&sink).await.expect("the contract");
    }
}
