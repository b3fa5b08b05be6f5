//! The one owner of the running delivery streams. Whatever starts, changes or ends a stream
//! comes through here: the API handlers (create, update, delete), a reload of the file
//! (`file`), and start-up (`Streams::restore`). Each change is the same few steps in one place:
//! admission (the open-file budget, checked and changed under one lock), build, insert, and the
//! stream's status (ACTIVE, or CREATING_FAILED with the reason); or close (drain), remove, and
//! forget its state. Control records (`control`) say what each stream is; this module runs them.

mod admission;
mod build;
mod changes;
mod file;
mod open_files;
mod shard_journals;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

pub(crate) use admission::Refused;
use admission::{Admission, Change};

use crate::glue::GlueColumn;
use crate::shapes::CreateDeliveryStreamInput;

use crate::control::{
    ControlError, Encryption, InvalidRequest, Status, StreamRecord, StreamRecords,
};
use crate::report::Chain;
use crate::spec::StreamSpec;
use crate::stream::DeliveryStream;
use crate::sync::{Lock, ReadWrite};
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
    /// Another change of the stream is in progress (an UpdateDestination draining).
    #[error("Firehose {0} is being changed by another request; try again once it is done")]
    Changing(String),
    /// The daemon is draining: no stream changes any more.
    #[error("firehosed is shutting down")]
    ShuttingDown,
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

impl From<Refused> for StreamsError {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Closing => StreamsError::ShuttingDown,
            Refused::Changing(name) => StreamsError::Changing(name),
            Refused::TooManyOpenFiles(e) => StreamsError::TooManyOpenFiles(e),
        }
    }
}

/// A change of an API stream prepared by its caller from the stream's record: the request
/// to keep and its checked configuration.
pub(crate) struct Prepared {
    pub(crate) request: CreateDeliveryStreamInput,
    pub(crate) config: StreamSpec,
    /// The Glue table's columns the configuration was checked with.
    pub(crate) glue_columns: Option<Vec<GlueColumn>>,
}

/// A CreateDeliveryStream, checked: what its record keeps.
pub(crate) struct NewStream {
    pub(crate) request: CreateDeliveryStreamInput,
    pub(crate) config: StreamSpec,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) encryption: Option<Encryption>,
    pub(crate) glue_columns: Option<Vec<GlueColumn>>,
}

pub(crate) struct Streams {
    running: RwLock<BTreeMap<String, Arc<DeliveryStream>>>,
    records: StreamRecords,
    builder: Builder,
    /// The changes in progress (one per stream), their open-file reservations, and whether the
    /// drain began. Held only for a check and a mark, never across a drain, a build or a
    /// network call (`admission.rs`).
    admission: Mutex<Admission>,
    /// Woken whenever a change ends (a delete waits for an update of its stream to end).
    change_ended: tokio::sync::Notify,
    /// Every task the streams start (a create's build, a delete's drain): the drain waits for
    /// them, so none is cut off mid-step.
    tasks: tokio_util::task::TaskTracker,
}

/// A change admitted for stream `name`: its mark and reservation go when it is dropped.
struct ChangeGuard<'a> {
    streams: &'a Streams,
    name: String,
}

impl Drop for ChangeGuard<'_> {
    fn drop(&mut self) {
        self.streams.admission.locked().end(&self.name);
        self.streams.change_ended.notify_waiters();
    }
}

impl Streams {
    fn new(records: StreamRecords, builder: Builder) -> Self {
        Streams {
            running: RwLock::new(BTreeMap::new()),
            records,
            builder,
            admission: Mutex::new(Admission::new(open_files::limit())),
            change_ended: tokio::sync::Notify::new(),
            tasks: tokio_util::task::TaskTracker::new(),
        }
    }

    /// The running stream `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<DeliveryStream>> {
        self.running.reading().get(name).cloned()
    }

    pub(crate) fn all(&self) -> Vec<Arc<DeliveryStream>> {
        self.running.reading().values().cloned().collect()
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

    /// Whether stream `name` is recorded and CREATING (being created through the API, or being
    /// started with the daemon): puts to it are told to come back, not that it does not exist.
    pub(crate) fn is_creating(&self, name: &str) -> bool {
        self.records
            .get(name)
            .is_some_and(|r| r.status == crate::control::Status::Creating)
    }

    /// The record of stream `name`, or not found.
    pub(crate) fn record(&self, name: &str) -> Result<StreamRecord, StreamsError> {
        self.records.get(name).ok_or_else(|| self.not_found(name))
    }

    /// The configuration of every stream: running, or being created (its checked config).
    fn configs(&self) -> BTreeMap<String, StreamSpec> {
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

    /// The guards of `changes`, just admitted (`Admission::begin`).
    fn guards(&self, changes: &[Change<'_>]) -> Vec<ChangeGuard<'_>> {
        changes
            .iter()
            .map(|c| ChangeGuard {
                streams: self,
                name: c.name.to_string(),
            })
            .collect()
    }

    /// Waits until no change of `name` is in progress (none of everything when `name` is
    /// None). Holds nothing while it waits.
    async fn changes_ended(&self, name: Option<&str>) {
        loop {
            let ended = self.change_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let busy = {
                let a = self.admission.locked();
                name.map_or_else(|| a.any_changing(), |n| a.is_changing(n))
            };
            if !busy {
                return;
            }
            ended.await;
        }
    }

    /// Whether the drain began (a change in progress stops at its next check).
    fn closing(&self) -> bool {
        self.admission.locked().is_closing()
    }

    fn insert_running(&self, stream: Arc<DeliveryStream>) {
        self.running
            .writing()
            .insert(stream.name().to_string(), stream);
    }

    fn remove_running(&self, name: &str) {
        self.running.writing().remove(name);
    }

    /// Runs `config` with `version` (`run`): ACTIVE; or, when it cannot start, CREATING_FAILED
    /// with the reason, logged with `context`.
    async fn start(
        &self,
        config: &StreamSpec,
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
    /// cannot start, no stream of that name runs. The one place a stream starts (start-up,
    /// create, update and its way back, reload).
    async fn run(&self, config: &StreamSpec, version: u32) -> Result<(), BuildError> {
        // Every stream's record is kept before it runs (restore, create, reload's add); were
        // one missing, the stricter rules of a file stream apply.
        let origin = self
            .records
            .get(&config.name)
            .map_or(crate::control::Origin::File, |r| r.origin);
        // Boxed: a build is a large future, awaited by every change (see lib.rs).
        match Box::pin(self.builder.build(config, version, origin)).await {
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
        request: &CreateDeliveryStreamInput,
    ) -> Result<Option<Vec<GlueColumn>>, StreamsError> {
        let Some(table) = crate::control::request::glue_table(request, &self.records.local) else {
            return Ok(None);
        };
        let sdk = self.builder.sdk_with_credentials().await?;
        let endpoint = self.builder.config.aws.endpoint_url.as_deref();
        Ok(Some(crate::glue::columns(sdk, endpoint, &table).await?))
    }

    /// The drain: no change is admitted from now on; every running stream drains at the same
    /// time while the changes and tasks in progress end (each stops at its next check), then
    /// whatever they started drains too. Returns once all have, or at `deadline` with what each
    /// still holds logged (delivered after the next start).
    pub(crate) async fn close_all(&self, deadline: tokio::time::Instant) -> bool {
        self.admission.locked().close();
        self.tasks.close();
        let drained = tokio::time::timeout_at(deadline, async {
            tokio::join!(
                self.close_running(),
                self.changes_ended(None),
                self.tasks.wait()
            );
            self.close_running().await;
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

    /// Closes every running stream at once (a stream closed already returns at once).
    async fn close_running(&self) {
        let mut closing = tokio::task::JoinSet::new();
        for stream in self.all() {
            closing.spawn(async move { stream.close().await });
        }
        while closing.join_next().await.is_some() {}
    }
}
