//! The configuration file's streams: started at start-up together with the API streams of
//! earlier runs (`Streams::restore`), and applied again when the file is reloaded
//! (`Streams::apply_file`): streams added start, streams removed drain and go, streams whose
//! configuration changed drain on the old one and start again on the new one, from the same
//! spool, with the next version (their objects' names carry it, as AWS's do).

use crate::sync::Lock;
use std::path::PathBuf;
use std::sync::Arc;

use super::admission::Change;
use super::{Builder, Refused, Streams, StreamsError, TooManyOpenFiles, open_files};
use crate::config::Config;
use crate::control::{Origin, Status, StreamRecord, StreamRecords, api_stream_config};
use crate::report::Chain;
use crate::spec::StreamSpec;
use crate::spec::digest;

/// Why the daemon cannot start its streams.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RestoreError {
    #[error("reading {}", dir.display())]
    Records {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Build(#[from] super::BuildError),
}

/// The API streams of earlier runs, as `Streams::open` found them: what `start_all` restores.
pub(crate) struct Earlier(Vec<(String, StreamRecord)>);

/// What one reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) added: Vec<String>,
    pub(crate) removed: Vec<String>,
    pub(crate) changed: Vec<String>,
}

/// Err when the file's streams together could need more files open than the limit allows.
pub(crate) fn check_open_files(file_streams: &[StreamSpec]) -> Result<(), TooManyOpenFiles> {
    open_files::check(file_streams)
}

impl Streams {
    /// `open`, then `start_all`: every stream running, or the error that stops the start-up.
    pub(crate) async fn restore(
        config: &Config,
        builder: Builder,
    ) -> Result<Arc<Streams>, RestoreError> {
        let (streams, earlier) = Self::open(config, builder)?;
        streams.start_all(config, earlier).await?;
        Ok(streams)
    }

    /// The streams of the file and of earlier runs, recorded and none running yet, so that the
    /// API can serve while a start-up check waits out a fault: every file stream CREATING (its
    /// configuration in its record, counted by the open-file check of changes made meanwhile)
    /// until `start_all` has built it; the API streams of earlier runs CREATING too (an update
    /// or delete waits for them), or DELETING when a delete had begun. Returns those API streams:
    /// `start_all` restores them, and only them (one created through the API meanwhile is
    /// started by its own create).
    pub(crate) fn open(
        config: &Config,
        builder: Builder,
    ) -> Result<(Arc<Streams>, Earlier), RestoreError> {
        let local = crate::control::request::Local {
            catalog: config.glue_catalog_dir.clone(),
            functions: config.lambda_functions.clone(),
            iceberg_catalog: config.api_iceberg_catalog.clone(),
        };
        let records = StreamRecords::open(
            &config.state_dir,
            &config.streams,
            config.relax_aws_limits,
            local,
        )
        .map_err(|source| RestoreError::Records {
            dir: config.state_dir.join("streams"),
            source,
        })?;
        let streams = Arc::new(Streams::new(records, builder));
        for sc in &config.streams {
            streams.records.set_starting(&sc.name, Some(sc.clone()));
        }
        let earlier = Earlier(streams.records.api_streams());
        for (name, record) in &earlier.0 {
            if record.deleting {
                streams.records.set_status(name, Status::Deleting);
            } else if !matches!(record.status, Status::Failed(_)) {
                streams.records.set_starting(name, None);
            }
        }
        Ok((streams, earlier))
    }

    /// Starts the file's streams, each ACTIVE once built (one that cannot start stops the
    /// start-up), and the API streams of earlier runs (one that cannot start is CREATING_FAILED,
    /// the others run).
    pub(crate) async fn start_all(
        &self,
        config: &Config,
        earlier: Earlier,
    ) -> Result<(), RestoreError> {
        for sc in &config.streams {
            let version = self.records.get(&sc.name).map_or(1, |r| r.version);
            self.run(sc, version).await?;
            self.records.set_status(&sc.name, Status::Active);
        }
        for (name, record) in earlier.0 {
            self.restore_api_stream(&name, record).await;
        }
        Ok(())
    }

    /// An API stream of an earlier run: a delete that began is finished; the others are checked
    /// again (and counted against the open-file limit, which may have been lowered) and started.
    async fn restore_api_stream(&self, name: &str, record: StreamRecord) {
        if record.deleting {
            self.retire(name).await;
            tracing::info!(stream = %name, "finished deleting a stream");
            return;
        }
        if let Status::Failed(_) = record.status {
            return;
        }
        let checked = match record.request.as_ref() {
            Some(req) => match self.restored_glue_columns(req, &record).await {
                Ok(glue) => {
                    api_stream_config(req, &self.records, glue.as_deref()).map_err(|e| e.message)
                }
                Err(e) => Err(Chain(&e).to_string()),
            },
            None => Err("its record holds no request".to_string()),
        };
        let checked = checked.and_then(|sc| {
            let _ = self.records.update(name, |r| {
                r.config = Some(sc.clone());
                Ok::<_, crate::control::ControlError>(())
            });
            let started = self.all();
            let configs = started.iter().map(|s| &s.config);
            match open_files::check(configs.chain([&sc])) {
                Ok(()) => Ok(sc),
                Err(e) => Err(Chain(&e).to_string()),
            }
        });
        let context = "a stream created through the API cannot start (delete it, or restart once its target is reachable)";
        match checked {
            Ok(sc) => {
                let _ = self.start(&sc, record.version, context).await;
            }
            Err(why) => {
                tracing::error!(stream = %name, error = %why, "{context}");
                self.records.set_status(name, Status::Failed(why));
            }
        }
    }

    /// The Glue columns a restored stream starts on: those its record kept, else (a record of
    /// an earlier version) read again.
    async fn restored_glue_columns(
        &self,
        request: &crate::shapes::CreateDeliveryStreamInput,
        record: &StreamRecord,
    ) -> Result<Option<Vec<crate::glue::GlueColumn>>, StreamsError> {
        match &record.glue_columns {
            Some(kept) => Ok(Some(kept.clone())),
            None => self.glue_columns(request).await,
        }
    }

    /// Applies a reloaded file's streams; Err (nothing changed) when they would pass the
    /// open-file limit or the drain began. The API streams stay; a file stream that shares a
    /// name with one is ignored until that one is deleted. Every change is admitted at once,
    /// then made one stream at a time with no lock held; once the drain begins the change in
    /// progress finishes and the rest are left for the next start.
    pub(crate) async fn apply_file(&self, file: &[StreamSpec]) -> Result<Summary, Refused> {
        let plan = self.plan(file);
        let changes: Vec<Change<'_>> = plan
            .iter()
            .map(|(name, step)| Change {
                name,
                config: match step {
                    Step::Remove => None,
                    Step::Change(sc, _) | Step::Add(sc) => Some(sc),
                },
            })
            .collect();
        let guards = {
            let mut admission = self.admission.locked();
            admission.begin(&changes, self.configs())?;
            drop(admission);
            self.guards(&changes)
        };
        let mut out = Summary::default();
        for ((name, step), guard) in plan.iter().zip(guards) {
            if self.closing() {
                tracing::warn!(stream = %name,
                    "the drain began during a reload: this stream's change is left for the next start");
                continue;
            }
            match step {
                Step::Remove => {
                    self.retire(name).await;
                    out.removed.push(name.clone());
                }
                Step::Change(sc, version) => self.apply_changed(sc, *version, &mut out).await,
                Step::Add(sc) => self.apply_added(sc, &mut out).await,
            }
            drop(guard);
        }
        Ok(out)
    }

    /// What a reload of `file` does to each stream: removals first, then the file's streams in
    /// order (those unchanged and running are left out).
    fn plan<'f>(&self, file: &'f [StreamSpec]) -> Vec<(String, Step<'f>)> {
        let mut plan = Vec::new();
        for name in self.records.names() {
            let file_stream = self
                .records
                .get(&name)
                .is_some_and(|r| r.origin == Origin::File);
            if file_stream && !file.iter().any(|s| s.name == name) {
                plan.push((name, Step::Remove));
            }
        }
        for sc in file {
            match self.records.get(&sc.name) {
                Some(r) if r.origin == Origin::Api => {
                    tracing::warn!(stream = %sc.name,
                        "the new configuration defines a stream created through the API: delete it through the API first; the file's definition is ignored until then");
                }
                Some(r) => {
                    let unchanged = self.get(&sc.name).is_some()
                        && r.digest.as_deref() == Some(digest(sc).as_str());
                    if !unchanged {
                        plan.push((sc.name.clone(), Step::Change(sc, r.version)));
                    }
                }
                None => plan.push((sc.name.clone(), Step::Add(sc))),
            }
        }
        plan
    }

    /// A file stream that is in the new file too: restarted with the next version when its
    /// configuration changed (or it is not running).
    async fn apply_changed(&self, sc: &StreamSpec, version: u32, out: &mut Summary) {
        let print = digest(sc);
        let version = version + 1;
        if let Some(old) = self.get(&sc.name) {
            old.close().await;
        }
        let context = "the changed stream cannot start; its records stay in the spool";
        if self.start(sc, version, context).await.is_ok() {
            let _ = self.records.update(&sc.name, |r| {
                r.version = version;
                r.digest = Some(print.as_str().to_string());
                Ok::<_, crate::control::ControlError>(())
            });
            out.changed.push(sc.name.clone());
        }
    }

    /// A stream new in the file.
    async fn apply_added(&self, sc: &StreamSpec, out: &mut Summary) {
        let record = StreamRecord {
            digest: Some(digest(sc).as_str().to_string()),
            status: Status::Creating,
            config: Some(sc.clone()),
            ..StreamRecord::new(Origin::File, crate::record::now_ms())
        };
        if !self.records.insert(&sc.name, record).unwrap_or(false) {
            return;
        }
        if self
            .start(sc, 1, "the added stream cannot start")
            .await
            .is_ok()
        {
            out.added.push(sc.name.clone());
        }
    }
}

/// One stream's part in a reload.
enum Step<'f> {
    Remove,
    /// A file stream whose configuration changed (or that is not running), with its version.
    Change(&'f StreamSpec, u32),
    Add(&'f StreamSpec),
}
