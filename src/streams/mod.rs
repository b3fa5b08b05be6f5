//! The one owner of the running delivery streams. Whatever starts, changes or ends a stream
//! comes through here: the API handlers (create, update, delete), a reload of the file
//! (`file`), and start-up (`Streams::restore`). Each change is the same few steps in one place:
//! admission (the open-file budget, checked and changed under one lock), build, insert, and the
//! stream's status (ACTIVE, or CREATING_FAILED with the reason); or close (drain), remove, and
//! forget its state. Control records (`control`) say what each stream is; this module runs them.

mod build;
mod file;
mod open_files;
mod shard_journals;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;

use crate::config::StreamConfig;
use crate::control::{
    ControlError, Encryption, InvalidRequest, Origin, Status, StreamRecord, StreamRecords,
};
use crate::report::Chain;
use crate::stream::DeliveryStream;
pub(crate) use build::{BuildError, Builder, needs_aws, prepare_dir};
pub(crate) use file::{Summary, check_open_files};
pub(crate) use open_files::{TooManyOpenFiles, limit as open_file_limit, staging_files};

/// Why a change of the set of streams was refused. The API maps each to AWS's error once.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamsError {
    #[error("Firehose {name} under account {account} not found.")]
    NotFound { name: String, account: String },
    #[error("Firehose {name} under accountId {account} already exists")]
    AlreadyExists { name: String, account: String },
    #[error(
        "Firehose {name} is defined in the configuration file; {action} it there (and restart), not through the API"
    )]
    FileStream { name: String, action: &'static str },
    #[error("Firehose {0} is being created; delete it once it is ACTIVE")]
    BeingCreated(String),
    #[error("Firehose {name} is {status}, not ACTIVE")]
    NotActive { name: String, status: &'static str },
    #[error(transparent)]
    TooManyOpenFiles(#[from] TooManyOpenFiles),
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
    /// An updated stream that could not start (it runs on its previous configuration again).
    #[error("the updated destination cannot start: {0}")]
    CannotStart(String),
    #[error(transparent)]
    Record(#[from] ControlError),
    /// The request's Glue table could not be read.
    #[error(transparent)]
    Glue(#[from] crate::glue::GlueError),
    #[error(transparent)]
    Credentials(#[from] crate::aws::NoCredentials),
}

/// A change of an API stream prepared by its caller from the stream's record: the request
/// to keep and its checked configuration.
pub(crate) struct Prepared {
    pub(crate) request: Value,
    pub(crate) config: StreamConfig,
    /// The Glue table's columns the configuration was checked with.
    pub(crate) glue_columns: Option<Value>,
}

/// A CreateDeliveryStream, checked: what its record keeps.
pub(crate) struct NewStream {
    pub(crate) request: Value,
    pub(crate) config: StreamConfig,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) encryption: Option<Encryption>,
    pub(crate) glue_columns: Option<Value>,
}

pub(crate) struct Streams {
    running: RwLock<BTreeMap<String, Arc<DeliveryStream>>>,
    records: StreamRecords,
    builder: Builder,
    /// One lock per stream name: one change of a stream at a time (two updates cannot both
    /// pass the version check), while other streams change freely.
    changes: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Held while the set of streams is checked against the open-file limit and changed
    /// (create, update, reload): two changes cannot both pass. Taken before a stream's own lock.
    admission: tokio::sync::Mutex<()>,
}

impl Streams {
    fn new(records: StreamRecords, builder: Builder) -> Self {
        Streams {
            running: RwLock::new(BTreeMap::new()),
            records,
            builder,
            changes: Mutex::new(BTreeMap::new()),
            admission: tokio::sync::Mutex::new(()),
        }
    }

    /// The running stream `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<DeliveryStream>> {
        self.running
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub(crate) fn all(&self) -> Vec<Arc<DeliveryStream>> {
        self.running
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Every stream's record: its origin, version, tags, status.
    pub(crate) fn records(&self) -> &StreamRecords {
        &self.records
    }

    pub(crate) fn arn(&self, name: &str) -> String {
        self.builder.arn(name)
    }

    /// The configuration the daemon started with (reloads change only its streams).
    pub(crate) fn file_config(&self) -> &crate::config::Config {
        &self.builder.config
    }

    pub(crate) fn region(&self) -> &str {
        &self.builder.region
    }

    pub(crate) fn account_id(&self) -> &str {
        self.builder.account_id()
    }

    pub(crate) fn not_found(&self, name: &str) -> StreamsError {
        StreamsError::NotFound {
            name: name.to_string(),
            account: self.account_id().to_string(),
        }
    }

    /// The record of stream `name`, or not found.
    pub(crate) fn record(&self, name: &str) -> Result<StreamRecord, StreamsError> {
        self.records.get(name).ok_or_else(|| self.not_found(name))
    }

    /// The configuration of every stream: running, or being created (its checked config).
    fn configs(&self) -> BTreeMap<String, StreamConfig> {
        let mut all: BTreeMap<_, _> = self
            .all()
            .iter()
            .map(|s| (s.config.name.clone(), s.config.clone()))
            .collect();
        for name in self.records.names() {
            if !all.contains_key(&name)
                && let Some(config) = self.records.get(&name).and_then(|r| r.config)
            {
                all.insert(name, config);
            }
        }
        all
    }

    /// Every stream (running or being created), with `config` in place of its name's, within
    /// the open-file limit. Call under `admission`.
    fn admit(&self, config: &StreamConfig) -> Result<(), TooManyOpenFiles> {
        let mut all = self.configs();
        all.insert(config.name.clone(), config.clone());
        open_files::check(all.values())
    }

    /// Waits for, and holds, the right to change stream `name`.
    async fn change(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    fn insert_running(&self, stream: Arc<DeliveryStream>) {
        self.running
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(stream.name().to_string(), stream);
    }

    fn remove_running(&self, name: &str) {
        self.running
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    /// Builds and runs `config` with `version`: ACTIVE; or, when it cannot start,
    /// CREATING_FAILED with the reason, logged with `context`. The one place a stream starts
    /// (an update's way back to its previous configuration goes through `run`, below it).
    async fn start(
        &self,
        config: &StreamConfig,
        version: u32,
        context: &str,
    ) -> Result<(), BuildError> {
        let name = &config.name;
        match self.run(config, version).await {
            Ok(()) => {
                self.records.set_status(name, Status::Active);
                Ok(())
            }
            Err(e) => {
                let why = Chain(&e).to_string();
                tracing::error!(stream = %name, error = %why, "{context}");
                self.records.set_status(name, Status::Failed(why));
                Err(e)
            }
        }
    }

    /// Builds `config` with `version` and puts it in place of the stream of its name; when it
    /// cannot start, no stream of that name runs.
    async fn run(&self, config: &StreamConfig, version: u32) -> Result<(), BuildError> {
        match self.builder.build(config, version).await {
            Ok(stream) => {
                self.insert_running(Arc::new(stream));
                Ok(())
            }
            Err(e) => {
                self.remove_running(&config.name);
                Err(e)
            }
        }
    }

    /// Drains stream `name` (every buffered record delivered), then forgets it: running stream,
    /// spool, staging, checkpoints, record. The one place a stream ends.
    async fn retire(&self, name: &str) {
        if let Some(stream) = self.get(name) {
            stream.close().await;
        }
        self.remove_running(name);
        crate::control::remove_state(&self.builder.config.state_dir, name);
        self.records.remove(name);
    }

    /// Err(AlreadyExists) when a stream of this name exists (checked again when it is created).
    pub(crate) fn name_free(&self, name: &str) -> Result<(), StreamsError> {
        match self.records.get(name) {
            Some(_) => Err(StreamsError::AlreadyExists {
                name: name.to_string(),
                account: self.account_id().to_string(),
            }),
            None => Ok(()),
        }
    }

    /// The columns of the request's Glue table, read from the Data Catalog with the `aws`
    /// settings (None: the request converts nothing, or tables are read from
    /// `glue_catalog_dir`).
    pub(crate) async fn glue_columns(
        &self,
        request: &Value,
    ) -> Result<Option<Value>, StreamsError> {
        let Some(table) = crate::control::request::glue_table(request, &self.records.local) else {
            return Ok(None);
        };
        let sdk = self.builder.sdk_with_credentials().await?;
        let endpoint = self.builder.config.aws.endpoint_url.as_deref();
        Ok(Some(crate::glue::columns(sdk, endpoint, &table).await?))
    }

    /// CreateDeliveryStream: the record is kept at once (CREATING) and the stream built in the
    /// background (ACTIVE, or CREATING_FAILED). Returns the stream's ARN.
    pub(crate) async fn create(self: &Arc<Self>, new: NewStream) -> Result<String, StreamsError> {
        let NewStream {
            request,
            config,
            tags,
            encryption,
            glue_columns,
        } = new;
        let name = config.name.clone();
        let already = || StreamsError::AlreadyExists {
            name: name.clone(),
            account: self.account_id().to_string(),
        };
        {
            // Until the record is in: from then on the open-file check counts this stream.
            let _admit = self.admission.lock().await;
            if self.records.get(&name).is_some() {
                return Err(already());
            }
            self.admit(&config)?;
            let record = StreamRecord {
                request: Some(request),
                tags,
                encryption,
                glue_columns,
                status: Status::Creating,
                config: Some(config.clone()),
                ..StreamRecord::new(Origin::Api, crate::record::now_ms())
            };
            if !self
                .records
                .insert(&name, record)
                .map_err(ControlError::Io)?
            {
                return Err(already());
            }
        }
        let this = self.clone();
        tokio::spawn(async move {
            if this
                .start(&config, 1, "creating a stream failed")
                .await
                .is_ok()
            {
                tracing::info!(stream = %config.name, "created through the API");
            }
        });
        Ok(self.arn(&name))
    }

    /// DeleteDeliveryStream: recorded on disk first (a restart in the middle finishes it), then
    /// drained and forgotten in the background; puts meanwhile get ServiceUnavailableException.
    pub(crate) async fn delete(self: &Arc<Self>, name: &str) -> Result<(), StreamsError> {
        let _one_change = self.change(name).await;
        let record = self.record(name)?;
        match (record.origin, &record.status) {
            (Origin::File, _) => {
                return Err(StreamsError::FileStream {
                    name: name.to_string(),
                    action: "remove",
                });
            }
            (_, Status::Creating) => return Err(StreamsError::BeingCreated(name.to_string())),
            (_, Status::Deleting) => return Ok(()),
            _ => {}
        }
        self.records.update(name, |r| {
            r.status = Status::Deleting;
            r.deleting = true;
            Ok::<_, ControlError>(())
        })?;
        let (this, name) = (self.clone(), name.to_string());
        tokio::spawn(async move {
            this.retire(&name).await;
            tracing::info!(stream = %name, "deleted through the API");
        });
        Ok(())
    }

    /// UpdateDestination of an ACTIVE API stream: `prepare` checks the request against the
    /// record (version, destination) and returns the merged request and its checked
    /// configuration; nothing changes when it refuses. The old stream drains (its objects keep
    /// the old version), then the new one takes over the same spool from the cursor with the
    /// next version: nothing acknowledged is lost or written twice.
    pub(crate) async fn update<E: From<StreamsError>>(
        &self,
        name: &str,
        prepare: impl FnOnce(&StreamRecord) -> Result<Prepared, E>,
    ) -> Result<(), E> {
        let _admit = self.admission.lock().await;
        let _one_change = self.change(name).await;
        let record = self.record(name)?;
        if record.origin == Origin::File {
            return Err(StreamsError::FileStream {
                name: name.to_string(),
                action: "change",
            }
            .into());
        }
        if record.status != Status::Active {
            return Err(StreamsError::NotActive {
                name: name.to_string(),
                status: record.status.api_name(),
            }
            .into());
        }
        let Prepared {
            request,
            config,
            glue_columns,
        } = prepare(&record)?;
        self.admit(&config).map_err(StreamsError::from)?;
        let version = record.version + 1;
        if let Some(old) = self.get(name) {
            old.close().await;
        }
        if let Err(e) = self.run(&config, version).await {
            let why = Chain(&e).to_string();
            // Back to the configuration it had, so the stream keeps running; if even that
            // fails, it is CREATING_FAILED with the update's reason.
            let back = match record.config.as_ref() {
                Some(old) => self.run(old, record.version).await.is_ok(),
                None => false,
            };
            tracing::error!(stream = %name, error = %why, back_on_the_previous_configuration = back,
                "the updated destination cannot start");
            if !back {
                self.records.set_status(name, Status::Failed(why.clone()));
            }
            return Err(StreamsError::CannotStart(why).into());
        }
        self.records
            .update(name, |r| {
                r.request = Some(request);
                r.glue_columns = glue_columns;
                r.version = version;
                r.updated_ms = Some(crate::record::now_ms());
                r.config = Some(config);
                Ok::<_, ControlError>(())
            })
            .map_err(StreamsError::from)?;
        Ok(())
    }

    /// Every running stream drains at the same time; returns once all have, or at `deadline`
    /// with what each still holds logged (delivered after the next start).
    pub(crate) async fn close_all(&self, deadline: tokio::time::Instant) -> bool {
        let mut closing = tokio::task::JoinSet::new();
        for stream in self.all() {
            closing.spawn(async move { stream.close().await });
        }
        let drained = tokio::time::timeout_at(deadline, async {
            while closing.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            for s in self.all() {
                tracing::warn!(stream = %s.name(), undelivered_records = s.log.backlog(),
                    "drain timeout: these records stay in the spool and are delivered after the next start");
            }
        }
        drained.is_ok()
    }
}
