//! Exactly-once journals of a Kinesis-sourced destination, one per shard (see
//! `destination::shards`): in files beside the staging folder when the checkpoints are files,
//! or in the shard's lease item when a fleet shares the stream. In the lease item the
//! instance that takes a lease over adopts the identities its previous owner recorded, and cuts
//! those objects again (finding them already there, or writing them with the same records);
//! the previous owner can record nothing once the new owner's tenure began (the write is
//! conditional on `firehosedTenure`), so it never uploads an object the new owner does not
//! know of.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::destination::StagingPlan;
use crate::destination::journal::{Journal, JournalError, Pos, Store};
use crate::destination::naming::Naming;
use crate::destination::shards::ShardPlans;
use crate::destination::stagers::{ExactlyOnce, Layout, StagingError};
use crate::disk::Patience;
use crate::retry::Backoff;
use crate::source::kinesis::checkpoint::{Checkpoint, Checkpoints};
use crate::source::kinesis::lease_store::{LeaseStore, Position, TableError};
use crate::source::kinesis::leases::{Manager, Progress};
use crate::spec::DestinationSpec;

/// Where a Kinesis source keeps its checkpoints, and so its destinations their shard journals.
pub(crate) enum ShardJournals<'a> {
    Files(&'a Arc<Checkpoints>),
    Leases(&'a Manager),
}

/// What a destination's staging plans are made of (one plan, or one per Kinesis shard).
pub(crate) struct PlanParts {
    pub(crate) dir: PathBuf,
    pub(crate) naming: Naming,
    pub(crate) destination: DestinationSpec,
    pub(crate) layout: Layout,
    pub(crate) delimiter: bool,
    pub(crate) patience: Arc<Patience>,
}

impl PlanParts {
    pub(crate) fn plan(&self) -> StagingPlan {
        StagingPlan::build(
            self.dir.clone(),
            self.naming.clone(),
            &self.destination,
            &self.layout,
            self.delimiter,
            self.patience.clone(),
        )
    }

    /// The plan of `shard`, its journal `journal` holding `replay`.
    fn with_journal(
        &self,
        namespace: &str,
        shard: &Arc<str>,
        (journal, replay): (Journal, Vec<crate::destination::journal::Entry>),
    ) -> StagingPlan {
        let mut plan = self.plan();
        plan.exactly_once = Some(ExactlyOnce {
            namespace: format!("{namespace}/{shard}").into(),
            journal,
            replay,
            shard: Some(shard.clone()),
        });
        plan
    }
}

/// Shard journals in `journals/<shardId>.journal`, opened at the checkpoint files.
pub(crate) fn in_files(
    parts: PlanParts,
    namespace: String,
    journals: PathBuf,
    checkpoints: Arc<Checkpoints>,
) -> Box<dyn ShardPlans> {
    Box::new(FilePlans {
        parts,
        namespace,
        journals,
        checkpoints,
    })
}

/// Shard plans whose journals and checkpoints are files (one instance reads every shard: no
/// tenure ever ends).
struct FilePlans {
    parts: PlanParts,
    namespace: String,
    journals: PathBuf,
    checkpoints: Arc<Checkpoints>,
}

impl ShardPlans for FilePlans {
    fn plan(
        &mut self,
        shard: &Arc<str>,
        _tenure: &Arc<str>,
    ) -> Result<Option<StagingPlan>, StagingError> {
        let path = self.journals.join(format!("{}.journal", file_safe(shard)));
        let opened = Journal::open(&path, &file_cursor(&self.checkpoints, shard))
            .map_err(StagingError::Journal)?;
        Ok(Some(self.parts.with_journal(
            &self.namespace,
            shard,
            opened,
        )))
    }

    fn cursor(&self, shard: &str) -> Pos {
        file_cursor(&self.checkpoints, shard)
    }

    fn fenced(&self, _tenure: &Arc<str>) {}

    fn is_fenced(&self, _tenure: &Arc<str>) -> bool {
        false
    }
}

/// Shard journals in the lease items (attribute `firehosedJournal<index>`), read when a tenure's
/// first record comes (after the tenure began: every write of the previous one is there).
/// Staging runs on blocking threads, so the table is called through `handle`.
pub(crate) fn in_leases(
    parts: PlanParts,
    namespace: String,
    index: usize,
    table: LeaseStore,
    progress: Arc<Progress>,
    handle: tokio::runtime::Handle,
) -> Box<dyn ShardPlans> {
    progress.set_exactly_once();
    Box::new(LeasePlans {
        parts,
        namespace,
        index,
        table,
        progress,
        handle,
    })
}

/// Shard plans whose journals live in the lease items, written under the reading tenure.
struct LeasePlans {
    parts: PlanParts,
    namespace: String,
    /// The destination's index: its journal is attribute `firehosedJournal<index>`.
    index: usize,
    table: LeaseStore,
    progress: Arc<Progress>,
    handle: tokio::runtime::Handle,
}

impl ShardPlans for LeasePlans {
    fn plan(
        &mut self,
        shard: &Arc<str>,
        tenure: &Arc<str>,
    ) -> Result<Option<StagingPlan>, StagingError> {
        let (t, index) = (&self.table, self.index);
        let read = retrying(&self.handle, || t.journal(shard, index), || true).map_err(|e| {
            StagingError::Journal(std::io::Error::other(format!(
                "reading the journal of {shard} from the lease table: {e}"
            )))
        })?;
        let Some((lease, text)) = read else {
            return Ok(None);
        };
        if lease.tenure.as_deref() != Some(tenure.as_ref()) || self.progress.is_fenced(tenure) {
            return Ok(None);
        }
        let cursor = match &lease.checkpoint {
            Position::Sequence(seq, sub) => Pos::past_shard_record(&seq.as_str().into(), *sub),
            _ => Pos::LOWEST,
        };
        let store = LeaseJournals {
            table: self.table.clone(),
            progress: self.progress.clone(),
            handle: self.handle.clone(),
            key: shard.to_string(),
            index,
            tenure: tenure.to_string(),
        };
        let opened = Journal::in_store(Box::new(store), &text, &cursor);
        Ok(Some(self.parts.with_journal(
            &self.namespace,
            shard,
            opened,
        )))
    }

    fn cursor(&self, shard: &str) -> Pos {
        match self.progress.written(shard) {
            Some(at) => Pos::past_shard_record(&at.sequence, at.sub),
            None => Pos::LOWEST,
        }
    }

    fn fenced(&self, tenure: &Arc<str>) {
        self.progress.fence(tenure.clone())
    }

    fn is_fenced(&self, tenure: &Arc<str>) -> bool {
        self.progress.is_fenced(tenure)
    }
}

/// How long a journal call to the table is retried before the step fails (the process then
/// exits and a restart replays). A journal write gives up sooner, as fenced, once the lease
/// manager (unable to renew either) has ended the tenure.
const TABLE_PATIENCE: Duration = Duration::from_secs(300);

/// A lease item holds at most 400 KB (DynamoDB's limit), every destination's journal of the
/// shard included.
const MAX_JOURNAL_BYTES: usize = 96 * 1024;

/// Runs a table call on `handle`, retrying failures other than a refused condition while
/// `go_on` says so.
fn retrying<T, F>(
    handle: &tokio::runtime::Handle,
    call: impl Fn() -> F,
    go_on: impl Fn() -> bool,
) -> Result<T, TableError>
where
    F: std::future::Future<Output = Result<T, TableError>>,
{
    let since = std::time::Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    loop {
        match handle.block_on(call()) {
            Err(TableError::Call(e)) if since.elapsed() < TABLE_PATIENCE && go_on() => {
                tracing::debug!(error = %e, "lease table call failed; retrying");
                std::thread::sleep(backoff.next_delay());
            }
            other => return other,
        }
    }
}

/// A shard's journal in its lease item, written under one tenure.
struct LeaseJournals {
    table: LeaseStore,
    progress: Arc<Progress>,
    handle: tokio::runtime::Handle,
    key: String,
    index: usize,
    tenure: String,
}

impl Store for LeaseJournals {
    fn replace(&mut self, text: &str) -> Result<(), JournalError> {
        let (t, key, tenure) = (&self.table, &self.key, &self.tenure);
        if text.len() > MAX_JOURNAL_BYTES {
            return Err(JournalError::Io(std::io::Error::other(format!(
                "the exactly-once journal of {key} ({} bytes: objects sealed but not yet below the checkpoint) no longer fits its lease item (at most {MAX_JOURNAL_BYTES} bytes per destination)",
                text.len()
            ))));
        }
        let going = || !self.progress.is_fenced(tenure);
        match retrying(
            &self.handle,
            || t.write_journal(key, self.index, tenure, text),
            going,
        ) {
            Ok(()) => Ok(()),
            Err(TableError::Conflict) => Err(JournalError::Fenced),
            Err(_) if self.progress.is_fenced(tenure) => Err(JournalError::Fenced),
            Err(e) => Err(JournalError::Io(std::io::Error::other(format!(
                "writing the journal of {key} to the lease table: {e}"
            )))),
        }
    }
}

/// A shard's checkpoint file as a journal cursor: past the record it names (nothing
/// delivered without one).
fn file_cursor(checkpoints: &Checkpoints, shard: &str) -> Pos {
    match checkpoints.get(shard) {
        Some(Checkpoint {
            sequence_number: Some(seq),
            subsequence_number,
            ..
        }) => Pos::past_shard_record(&seq.into(), subsequence_number),
        _ => Pos::LOWEST,
    }
}

/// A shard id as a file name: as it is when it is made of letters, digits, `-` and `_` (as
/// Kinesis's are), hex otherwise.
fn file_safe(shard: &str) -> String {
    let plain = !shard.is_empty()
        && shard
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match plain {
        true => shard.to_string(),
        false => shard.bytes().map(|b| format!("{b:02x}")).collect(),
    }
}

/// Removes the journals of shards that are finished (read to their end and delivered): no
/// replay meets them again. Creates the folder.
pub(crate) fn forget_finished_shards(
    journals: &Path,
    checkpoints: &Checkpoints,
) -> std::io::Result<()> {
    std::fs::create_dir_all(journals)?;
    for entry in std::fs::read_dir(journals)? {
        let path = entry?.path();
        let shard = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".journal"));
        if shard.is_some_and(|s| checkpoints.is_finished(s)) {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}
