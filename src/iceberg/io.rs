//! A warehouse's files: `file:///abs/path` on this machine, `s3://bucket/key` through the S3
//! client of the `aws` settings (or the catalog's endpoint). Metadata files are written
//! create-only (a local exclusive link, an S3 conditional put), so two writers can never
//! replace each other's; data files have names nobody else uses. Local writes are fsync'd,
//! file and directory, before they count as written.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;

/// The largest metadata file (JSON or Avro) this reads.
const MAX_METADATA_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum IoError {
    #[error("{0:?} is neither a file:// nor an s3:// location")]
    Location(String),
    #[error("{location}: {source}")]
    Local {
        location: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{location}: S3 {detail}")]
    S3 {
        location: String,
        detail: String,
        /// The request may succeed if tried again (throttling, 5xx, a connection lost).
        transient: bool,
        /// S3 refused our credentials (AWS: `S3.AccessDenied`).
        denied: bool,
    },
    #[error("{0} exists already")]
    Exists(String),
    #[error("{0} does not exist")]
    Missing(String),
    #[error("{0} is larger than a metadata file may be")]
    TooLarge(String),
}

impl IoError {
    pub(crate) fn transient(&self) -> bool {
        match self {
            IoError::S3 { transient, .. } => *transient,
            IoError::Local { .. } => true,
            _ => false,
        }
    }
}

/// Where a location is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    Local(PathBuf),
    S3 { bucket: String, key: String },
}

impl Location {
    pub(crate) fn parse(location: &str) -> Result<Location, IoError> {
        let bad = || IoError::Location(location.to_string());
        if let Some(path) = location.strip_prefix("file://") {
            let p = Path::new(path);
            if !p.is_absolute() || p.components().any(|c| c == std::path::Component::ParentDir) {
                return Err(bad());
            }
            return Ok(Location::Local(p.to_path_buf()));
        }
        let rest = location
            .strip_prefix("s3://")
            .or_else(|| location.strip_prefix("s3a://"))
            .ok_or_else(bad)?;
        let (bucket, key) = rest.split_once('/').ok_or_else(bad)?;
        if bucket.is_empty() || key.is_empty() {
            return Err(bad());
        }
        Ok(Location::S3 {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

/// Reads and writes a warehouse's files.
#[derive(Clone)]
pub(crate) struct FileIo {
    s3: Option<aws_sdk_s3::Client>,
}

impl FileIo {
    /// `s3`: the client for `s3://` locations (None: only `file://`).
    pub(crate) fn new(s3: Option<aws_sdk_s3::Client>) -> FileIo {
        FileIo { s3 }
    }

    fn s3(&self, location: &str) -> Result<&aws_sdk_s3::Client, IoError> {
        self.s3
            .as_ref()
            .ok_or_else(|| IoError::Location(location.to_string()))
    }

    /// A metadata file's bytes.
    pub(crate) async fn read(&self, location: &str) -> Result<Vec<u8>, IoError> {
        match Location::parse(location)? {
            Location::Local(path) => {
                let loc = location.to_string();
                tokio::task::spawn_blocking(move || read_local(&loc, &path))
                    .await
                    .map_err(|e| local(location, std::io::Error::other(e)))?
            }
            Location::S3 { bucket, key } => {
                let out = self
                    .s3(location)?
                    .get_object()
                    .bucket(&bucket)
                    .key(&key)
                    .send()
                    .await;
                let out = match out {
                    Ok(o) => o,
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                        return Err(IoError::Missing(location.to_string()));
                    }
                    Err(e) => {
                        return Err(s3_error(
                            location,
                            &e,
                            e.raw_response().map(|r| r.status().as_u16()),
                        ));
                    }
                };
                if out.content_length().unwrap_or(0) as u64 > MAX_METADATA_BYTES {
                    return Err(IoError::TooLarge(location.to_string()));
                }
                let body = out.body.collect().await.map_err(|e| IoError::S3 {
                    location: location.to_string(),
                    detail: e.to_string(),
                    transient: true,
                    denied: false,
                })?;
                Ok(body.to_vec())
            }
        }
    }

    /// Writes a new file; `Exists` if the location is taken.
    pub(crate) async fn write_new(&self, location: &str, bytes: Vec<u8>) -> Result<(), IoError> {
        match Location::parse(location)? {
            Location::Local(path) => {
                let loc = location.to_string();
                tokio::task::spawn_blocking(move || write_local(&loc, &path, &bytes))
                    .await
                    .map_err(|e| local(location, std::io::Error::other(e)))?
            }
            Location::S3 { bucket, key } => {
                let put = self
                    .s3(location)?
                    .put_object()
                    .bucket(&bucket)
                    .key(&key)
                    .if_none_match("*")
                    .body(ByteStream::from(bytes))
                    .send()
                    .await;
                match put {
                    Ok(_) => Ok(()),
                    Err(e) if e.code() == Some("PreconditionFailed") => {
                        Err(IoError::Exists(location.to_string()))
                    }
                    Err(e) => Err(s3_error(
                        location,
                        &e,
                        e.raw_response().map(|r| r.status().as_u16()),
                    )),
                }
            }
        }
    }

    /// Copies a staged local file to `location` (a data file: a name nobody else writes).
    pub(crate) async fn upload(&self, location: &str, from: &Path) -> Result<(), IoError> {
        match Location::parse(location)? {
            Location::Local(path) => {
                let (loc, from) = (location.to_string(), from.to_path_buf());
                tokio::task::spawn_blocking(move || {
                    let bytes = std::fs::read(&from).map_err(|e| local(&loc, e))?;
                    write_local(&loc, &path, &bytes)
                })
                .await
                .map_err(|e| local(location, std::io::Error::other(e)))?
            }
            Location::S3 { bucket, key } => {
                let body = ByteStream::from_path(from)
                    .await
                    .map_err(|e| local(location, std::io::Error::other(e)))?;
                self.s3(location)?
                    .put_object()
                    .bucket(&bucket)
                    .key(&key)
                    .body(body)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        s3_error(location, &e, e.raw_response().map(|r| r.status().as_u16()))
                    })
            }
        }
    }
}

fn local(location: &str, source: std::io::Error) -> IoError {
    IoError::Local {
        location: location.to_string(),
        source,
    }
}

fn s3_error<E: std::error::Error + 'static>(location: &str, e: &E, status: Option<u16>) -> IoError {
    IoError::S3 {
        location: location.to_string(),
        detail: DisplayErrorContext(e).to_string(),
        transient: status.is_none_or(|s| s >= 500 || s == 429 || s == 408),
        denied: status == Some(403),
    }
}

fn read_local(location: &str, path: &Path) -> Result<Vec<u8>, IoError> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(IoError::Missing(location.to_string()));
        }
        Err(e) => return Err(local(location, e)),
    };
    let mut out = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(f, MAX_METADATA_BYTES + 1),
        &mut out,
    )
    .map_err(|e| local(location, e))?;
    if out.len() as u64 > MAX_METADATA_BYTES {
        return Err(IoError::TooLarge(location.to_string()));
    }
    Ok(out)
}

/// Writes `bytes` to a temporary file beside `path`, fsyncs it, and links it in: the name
/// appears whole or not at all, and never replaces another file.
fn write_local(location: &str, path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    let dir = path
        .parent()
        .ok_or_else(|| IoError::Location(location.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|e| local(location, e))?;
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
    let result = (|| {
        let mut f = std::fs::File::create_new(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(IoError::Exists(location.to_string()));
        }
        Err(e) => return Err(local(location, e)),
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| local(location, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_relative_or_escaping_paths_are_refused() {
        assert_eq!(
            Location::parse("file:///w/t/a.json").unwrap(),
            Location::Local("/w/t/a.json".into())
        );
        assert_eq!(
            Location::parse("s3://b/w/t").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                key: "w/t".into()
            }
        );
        for bad in [
            "file://rel/x",
            "file:///w/../etc",
            "s3://",
            "s3://b",
            "s3:///k",
            "gs://b/k",
            "/w/t",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn local_files_are_written_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let loc = format!(
            "file://{}/t/metadata/00000-a.metadata.json",
            dir.path().display()
        );
        let io = FileIo::new(None);
        io.write_new(&loc, b"one".to_vec()).await.unwrap();
        assert!(matches!(
            io.write_new(&loc, b"two".to_vec()).await,
            Err(IoError::Exists(_))
        ));
        assert_eq!(io.read(&loc).await.unwrap(), b"one");
        let missing = format!("file://{}/nope", dir.path().display());
        assert!(matches!(io.read(&missing).await, Err(IoError::Missing(_))));
        assert!(io.read("s3://b/k").await.is_err());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("t/metadata"))
            .unwrap()
            .collect();
        assert_eq!(names.len(), 1);
    }
}
