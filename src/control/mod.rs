//! The control plane's records: every delivery stream's origin (the configuration file, or
//! CreateDeliveryStream), version, tags and status. Streams created through the API are kept
//! as their request under `state_dir/streams/<name>.json` and built again at start-up; a
//! file stream's record only keeps its tags. `request` turns AWS's request shapes into the
//! configuration's, so both kinds of stream pass the same checks.

pub(crate) mod request;

pub(crate) use request::InvalidRequest;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::glue::GlueColumn;
use crate::shapes::CreateDeliveryStreamInput;

use crate::spec::StreamSpec;
use crate::sync::Lock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Origin {
    /// `delivery_streams` of the configuration file: changed there, not through the API.
    File,
    Api,
}

/// DeliveryStreamStatus.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Status {
    Creating,
    #[default]
    Active,
    Deleting,
    /// CREATING_FAILED, with the reason (DeliveryStreamDescription.FailureDescription).
    Failed(String),
}

impl Status {
    pub(crate) fn api_name(&self) -> &'static str {
        match self {
            Status::Creating => "CREATING",
            Status::Active => "ACTIVE",
            Status::Deleting => "DELETING",
            Status::Failed(_) => "CREATING_FAILED",
        }
    }
}

/// What the control plane knows of one stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StreamRecord {
    pub(crate) origin: Origin,
    /// The CreateDeliveryStream input, updates merged in (API streams).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) request: Option<Box<CreateDeliveryStreamInput>>,
    pub(crate) version: u32,
    #[serde(default)]
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) created_ms: i64,
    /// The last UpdateDestination (or, for a file stream, the start that found its
    /// configuration changed); AWS leaves LastUpdateTimestamp out until there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) updated_ms: Option<i64>,
    /// DeliveryStreamEncryptionConfiguration: what CreateDeliveryStream or
    /// Start/StopDeliveryStreamEncryption set (None: DISABLED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) encryption: Option<Encryption>,
    /// The columns of the request's Glue table as last read from the Data Catalog: a restart
    /// starts the stream on them, whether Glue answers then or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) glue_columns: Option<Vec<GlueColumn>>,
    /// The digest of a file stream's specification (`spec::digest`): a change while the
    /// daemon was down still moves the version on at the next start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) digest: Option<String>,
    /// What releases before the canonical digest kept instead (an MD5 of Debug text, which a
    /// dependency's upgrade could move): read once, replaced by `digest` keeping the version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fingerprint: Option<String>,
    /// DeleteDeliveryStream began: a restart finishes it instead of starting the stream.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) deleting: bool,
    #[serde(skip)]
    pub(crate) status: Status,
    /// The checked configuration (for DescribeDeliveryStream while the stream is created).
    #[serde(skip)]
    pub(crate) config: Option<StreamSpec>,
}

impl StreamRecord {
    /// Version 1, no tags, ACTIVE.
    pub(crate) fn new(origin: Origin, created_ms: i64) -> Self {
        StreamRecord {
            origin,
            request: None,
            version: 1,
            tags: BTreeMap::new(),
            created_ms,
            updated_ms: None,
            encryption: None,
            glue_columns: None,
            digest: None,
            fingerprint: None,
            deleting: false,
            status: Status::Active,
            config: None,
        }
    }
}

/// A stream's server-side encryption setting, as DescribeDeliveryStream shows it. firehosed
/// keeps and reports it; it does not encrypt the spool (docs/security.md: what lies on disk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Encryption {
    /// AWS_OWNED_CMK | CUSTOMER_MANAGED_CMK.
    pub(crate) key_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key_arn: Option<String>,
    /// As set by the last change: ENABLING or DISABLING until ENCRYPTION_SETTLES_MS later.
    pub(crate) status: EncryptionStatus,
    /// When the last change was made (ms since the epoch).
    #[serde(default)]
    pub(crate) changed_ms: i64,
}

/// How long a Start/StopDeliveryStreamEncryption stays ENABLING / DISABLING (AWS takes a while;
/// clients poll DescribeDeliveryStream until it settles).
pub(crate) const ENCRYPTION_SETTLES_MS: i64 = 500;

impl Encryption {
    /// The status DescribeDeliveryStream shows at `now_ms`.
    pub(crate) fn status_at(&self, now_ms: i64) -> EncryptionStatus {
        if now_ms - self.changed_ms >= ENCRYPTION_SETTLES_MS {
            self.status.settled()
        } else {
            self.status
        }
    }
}

/// DeliveryStreamEncryptionConfiguration.Status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum EncryptionStatus {
    Enabling,
    Enabled,
    Disabling,
    Disabled,
}

impl EncryptionStatus {
    /// Where a change in progress ends (also what a restart in the middle of one finds).
    pub(crate) fn settled(self) -> EncryptionStatus {
        match self {
            EncryptionStatus::Enabling | EncryptionStatus::Enabled => EncryptionStatus::Enabled,
            EncryptionStatus::Disabling | EncryptionStatus::Disabled => EncryptionStatus::Disabled,
        }
    }
}

/// Why a control record could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlError {
    #[error("Firehose {0} not found.")]
    NotFound(String),
    #[error("cannot record the change: {0}")]
    Io(#[from] std::io::Error),
}

/// Every stream's record; API streams' records persisted.
pub(crate) struct StreamRecords {
    dir: PathBuf,
    records: Mutex<BTreeMap<String, StreamRecord>>,
    /// `relax_aws_limits` of the configuration file, applied to API streams too.
    pub(crate) relax: bool,
    /// What Glue tables and Lambda functions in requests resolve to.
    pub(crate) local: request::Local,
}

impl StreamRecords {
    /// Loads the records kept under `state_dir/streams`, and makes one for every file stream.
    pub(crate) fn open(
        state_dir: &Path,
        file_streams: &[StreamSpec],
        relax: bool,
        local: request::Local,
    ) -> std::io::Result<Self> {
        let dir = state_dir.join("streams");
        std::fs::create_dir_all(&dir)?;
        let mut records = load_records(&dir)?;
        let changed = merge_file_streams(&mut records, file_streams);
        let control = StreamRecords {
            dir,
            records: Mutex::new(records),
            relax,
            local,
        };
        for name in changed {
            if let Some(r) = control.get(&name) {
                control.persist(&name, &r)?;
            }
        }
        Ok(control)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, StreamRecord>> {
        self.records.locked()
    }

    pub(crate) fn get(&self, name: &str) -> Option<StreamRecord> {
        self.lock().get(name).cloned()
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// API streams to build at start-up, with their requests.
    pub(crate) fn api_streams(&self) -> Vec<(String, StreamRecord)> {
        self.lock()
            .iter()
            .filter(|(_, r)| r.origin == Origin::Api)
            .map(|(n, r)| (n.clone(), r.clone()))
            .collect()
    }

    /// Adds a record; false if the name is taken.
    pub(crate) fn insert(&self, name: &str, record: StreamRecord) -> std::io::Result<bool> {
        let mut records = self.lock();
        if records.contains_key(name) {
            return Ok(false);
        }
        self.persist(name, &record)?;
        records.insert(name.to_string(), record);
        Ok(true)
    }

    /// Changes a record (and its file); `ControlError::NotFound` if there is no such stream.
    /// `change` may refuse with an error of the caller's own.
    pub(crate) fn update<T, E: From<ControlError>>(
        &self,
        name: &str,
        change: impl FnOnce(&mut StreamRecord) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut records = self.lock();
        let record = records
            .get_mut(name)
            .ok_or_else(|| ControlError::NotFound(name.to_string()))?;
        let mut changed = record.clone();
        let out = change(&mut changed)?;
        self.persist(name, &changed).map_err(ControlError::Io)?;
        *record = changed;
        Ok(out)
    }

    /// Whether records put now are encrypted at rest as the stream's encryption says (PutRecord's
    /// `Encrypted`): looked up under the lock, nothing cloned.
    pub(crate) fn encrypted(&self, name: &str) -> bool {
        self.lock()
            .get(name)
            .and_then(|r| r.encryption.as_ref())
            .is_some_and(|e| e.status_at(crate::record::now_ms()) == EncryptionStatus::Enabled)
    }

    /// Sets a stream's status (in memory: statuses are not kept across restarts).
    /// CREATING while the daemon starts the stream, with the configuration it is starting
    /// (when given), in memory only: what Describe and the open-file check see meanwhile.
    pub(crate) fn set_starting(&self, name: &str, config: Option<StreamSpec>) {
        if let Some(r) = self.lock().get_mut(name) {
            r.status = Status::Creating;
            if config.is_some() {
                r.config = config;
            }
        }
    }

    pub(crate) fn set_status(&self, name: &str, status: Status) {
        if let Some(r) = self.lock().get_mut(name) {
            r.status = status;
        }
    }

    /// Forgets a stream (its file too, under the lock, so a new stream of the same name that
    /// comes right after keeps its own).
    pub(crate) fn remove(&self, name: &str) {
        let mut records = self.lock();
        records.remove(name);
        let _ = std::fs::remove_file(self.dir.join(format!("{name}.json")));
    }

    /// Writes the record atomically (temp file, fsync, rename).
    fn persist(&self, name: &str, record: &StreamRecord) -> std::io::Result<()> {
        let path = self.dir.join(format!("{name}.json"));
        let tmp = self.dir.join(format!(".{name}.json.tmp"));
        let text = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()
    }
}

/// The records kept in `dir`, one file per stream. An unreadable one keeps its name taken (a new
/// stream must not inherit its spool) as a failed stream that Delete clears.
fn load_records(dir: &Path) -> std::io::Result<BTreeMap<String, StreamRecord>> {
    let mut records = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Some(name) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let parsed = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                serde_json::from_slice::<StreamRecord>(&bytes).map_err(|e| e.to_string())
            });
        let record = parsed.unwrap_or_else(|e| {
            tracing::error!(file = %path.display(), error = %e, "an unreadable stream record");
            StreamRecord {
                status: Status::Failed(format!(
                    "its record {} cannot be read: {e}",
                    path.display()
                )),
                ..StreamRecord::new(Origin::Api, 0)
            }
        });
        let mut record = record;
        if let Some(e) = record.encryption.as_mut() {
            e.status = e.status.settled();
        }
        records.insert(name, record);
    }
    Ok(records)
}

/// Brings the records in line with the file's streams: a record for each (the file wins over an
/// API stream of the same name), the version moved on when its configuration changed, records
/// of streams no longer in the file dropped. Returns the names whose record must be written.
fn merge_file_streams(
    records: &mut BTreeMap<String, StreamRecord>,
    file_streams: &[StreamSpec],
) -> Vec<String> {
    let now = crate::record::now_ms();
    let mut changed = Vec::new();
    for sc in file_streams {
        let digest = crate::spec::digest(sc);
        let r = records.entry(sc.name.clone()).or_insert_with(|| {
            changed.push(sc.name.clone());
            StreamRecord::new(Origin::File, now)
        });
        if r.origin == Origin::Api {
            tracing::warn!(stream = %sc.name,
                "the configuration file defines a stream created through the API: the file's wins");
            r.origin = Origin::File;
            r.request = None;
        }
        if r.digest.as_deref() == Some(digest.as_str()) {
            continue;
        }
        match (&r.digest, r.fingerprint.take()) {
            (Some(_), _) => {
                r.version += 1;
                r.updated_ms = Some(now);
            }
            // Written by a release before the canonical digest: its fingerprint cannot be
            // computed again (that was the defect), so the configuration found at this first
            // start is taken as the one it describes and the version stays.
            (None, Some(_)) => {
                tracing::info!(stream = %sc.name, version = r.version,
                    "the stream's record now keeps its configuration's canonical digest; its version is kept");
            }
            (None, None) => {}
        }
        r.digest = Some(digest.as_str().to_string());
        if !changed.contains(&sc.name) {
            changed.push(sc.name.clone());
        }
    }
    records
        .retain(|name, r| r.origin == Origin::Api || file_streams.iter().any(|s| s.name == *name));
    changed
}

/// Removes a deleted stream's spool, staging files and checkpoints.
pub(crate) fn remove_state(state_dir: &Path, name: &str) {
    for part in ["spool", "staging", "checkpoints"] {
        let _ = std::fs::remove_dir_all(state_dir.join(part).join(name));
    }
}

/// The checked specification of a CreateDeliveryStream request (the rules of the
/// configuration file's streams, `spec::check`); its problems as one InvalidArgumentException.
/// `glue`: the columns of its Glue table, read by the caller (`request::glue_table`).
pub(crate) fn api_stream_config(
    input: &CreateDeliveryStreamInput,
    records: &StreamRecords,
    glue: Option<&[GlueColumn]>,
) -> Result<StreamSpec, InvalidRequest> {
    let spec = request::stream_spec(input, &records.local, glue)?;
    let problems = crate::spec::check::check(
        &spec,
        crate::spec::check::Scope {
            relax: records.relax,
        },
    );
    if problems.is_empty() {
        Ok(spec)
    } else {
        Err(request::problems_message(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encryption_change_reads_enabling_then_settles() {
        let e = Encryption {
            key_type: "AWS_OWNED_CMK".into(),
            key_arn: None,
            status: EncryptionStatus::Enabling,
            changed_ms: 1_000,
        };
        assert_eq!(e.status_at(1_000), EncryptionStatus::Enabling);
        assert_eq!(
            e.status_at(1_000 + ENCRYPTION_SETTLES_MS - 1),
            EncryptionStatus::Enabling
        );
        assert_eq!(
            e.status_at(1_000 + ENCRYPTION_SETTLES_MS),
            EncryptionStatus::Enabled
        );
        let off = Encryption {
            status: EncryptionStatus::Disabling,
            ..e
        };
        assert_eq!(off.status_at(1_001), EncryptionStatus::Disabling);
        assert_eq!(off.status_at(i64::MAX / 2), EncryptionStatus::Disabled);
    }

    #[test]
    fn request_text_is_not_read_as_environment_references() {
        let control = StreamRecords {
            dir: PathBuf::new(),
            records: Mutex::new(BTreeMap::new()),
            relax: false,
            local: request::Local::default(),
        };
        let req = serde_json::from_value(serde_json::json!({"DeliveryStreamName": "x",
            "ExtendedS3DestinationConfiguration": {"BucketARN": "arn:aws:s3:::lake",
                "Prefix": "a/${NOT_AN_ENV_VAR}/b$${c}/"}}))
        .expect("a request");
        let config = api_stream_config(&req, &control, None).expect("taken as written");
        assert_eq!(
            config.destinations[0].prefix.as_deref(),
            Some("a/${NOT_AN_ENV_VAR}/b$${c}/")
        );
    }
}

#[cfg(test)]
mod versions_golden;
