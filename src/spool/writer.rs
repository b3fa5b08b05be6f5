//! The spool's writer: one thread per stream that takes every append waiting in its queue,
//! writes their frames as the producers made them (`segment::Frames`: framing and CRC run on
//! the request handlers' threads) with one vectored `write`, makes them durable with one
//! `fdatasync` (group commit), then answers all of them. Concurrent producers share the cost
//! of the sync, and this one thread does no per-record work.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};

use super::segment::{self, Frames};
use crate::sync::Lock;

/// One producer's records, waiting to be made durable.
pub(crate) struct Append {
    pub(crate) frames: Frames,
    /// Encoded size (frames), reserved in the budget by the caller.
    pub(crate) bytes: u64,
    /// The sequence number of the first record, once durable.
    pub(crate) reply: oneshot::Sender<io::Result<u64>>,
}

/// What the writer thread is asked to do.
pub(crate) enum Msg {
    Append(Append),
    /// Start a new segment if the active one holds records (every consumer has passed them,
    /// so the old one can be deleted); answers with the first seq of the segment rolled away.
    Roll(oneshot::Sender<Option<u64>>),
}

/// What is durable: every record below `next_seq`; the active segment up to `offset`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Committed {
    pub(crate) next_seq: u64,
    pub(crate) segment: u64,
    pub(crate) offset: u64,
}

/// Sizes of the segments on disk, by first seq (shared with the reclaimer).
pub(crate) type Segments = Arc<Mutex<BTreeMap<u64, u64>>>;

/// The most bytes one group commit gathers before it writes.
const GROUP_BYTES: u64 = 16 * 1024 * 1024;

pub(crate) struct Writer {
    pub(crate) dir: PathBuf,
    pub(crate) file: File,
    pub(crate) segment: u64,
    pub(crate) size: u64,
    pub(crate) next_seq: u64,
    pub(crate) segment_limit: u64,
    pub(crate) fsync: bool,
    pub(crate) committed: watch::Sender<Committed>,
    pub(crate) segments: Segments,
    /// Set when a failed write could not be cut off: every later append is refused (the file
    /// no longer ends where the committed records end).
    pub(crate) broken: Option<String>,
    /// Bytes of failed appends go back to it.
    pub(crate) budget: Arc<super::Budget>,
}

impl Writer {
    pub(crate) fn open_append(path: &std::path::Path) -> io::Result<File> {
        OpenOptions::new().create(true).append(true).open(path)
    }

    pub(crate) fn spawn(
        self,
        rx: mpsc::Receiver<Msg>,
        name: &str,
    ) -> io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name(format!("spool-{name}"))
            .spawn(move || self.run(rx))
    }

    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut held: Option<Msg> = None;
        loop {
            let msg = match held.take() {
                Some(m) => m,
                None => match rx.blocking_recv() {
                    Some(m) => m,
                    None => return,
                },
            };
            let first = match msg {
                Msg::Append(a) => a,
                Msg::Roll(reply) => {
                    let old = self.segment;
                    let rolled = if self.size > 0 {
                        self.roll().ok().map(|()| old)
                    } else {
                        None
                    };
                    let _ = reply.send(rolled);
                    continue;
                }
            };
            let mut bytes = first.bytes;
            let mut group = vec![first];
            while bytes < GROUP_BYTES {
                match rx.try_recv() {
                    Ok(Msg::Append(a)) => {
                        bytes += a.bytes;
                        group.push(a);
                    }
                    Ok(roll) => {
                        held = Some(roll);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.commit(group, bytes);
        }
    }

    fn commit(&mut self, group: Vec<Append>, bytes: u64) {
        if let Some(why) = &self.broken {
            fail(&self.budget, group, &io::Error::other(why.clone()));
            return;
        }
        if self.size > 0
            && self.size + bytes > self.segment_limit
            && let Err(e) = self.roll()
        {
            fail(&self.budget, group, &e);
            return;
        }
        let mut seq = self.next_seq;
        let mut firsts = Vec::with_capacity(group.len());
        let mut written_bytes = 0;
        for a in &group {
            firsts.push(seq);
            seq += a.frames.len() as u64;
            written_bytes += a.frames.bytes().len() as u64;
        }
        // The producers' frames as they are, in one vectored write.
        let mut slices: Vec<IoSlice<'_>> = group
            .iter()
            .map(|a| IoSlice::new(a.frames.bytes()))
            .collect();
        let written = write_all_vectored(&mut self.file, &mut slices).and_then(|()| {
            if self.fsync {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        match written {
            Ok(()) => {
                self.size += written_bytes;
                self.next_seq = seq;
                self.segments.locked().insert(self.segment, self.size);
                self.publish();
                for (a, first) in group.into_iter().zip(firsts) {
                    let _ = a.reply.send(Ok(first));
                }
            }
            Err(e) => {
                // Nothing of this group is acknowledged; cut any partial write off.
                if let Err(cut) = self.file.set_len(self.size) {
                    self.broken = Some(format!(
                        "the spool stopped accepting records after a failed write ({e}) could not be cut off ({cut}); restart firehosed"
                    ));
                }
                if crate::disk::is_full(&e) {
                    // Producers are told to slow down; the condition is logged by the disk
                    // check, once per interval, not once per write.
                    tracing::debug!(dir = %self.dir.display(), error = %e, "spool write found the disk full");
                } else {
                    tracing::error!(dir = %self.dir.display(), error = %e, "spool write failed");
                }
                fail(&self.budget, group, &e);
            }
        }
    }

    /// Starts a new segment at `next_seq`; the current one is complete and durable.
    fn roll(&mut self) -> io::Result<()> {
        let path = segment::path(&self.dir, self.next_seq);
        let file = Self::open_append(&path)?;
        if let Err(e) = File::open(&self.dir).and_then(|d| d.sync_all()) {
            // An empty segment that is not the active one would break the chain of segments.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        self.file = file;
        self.segment = self.next_seq;
        self.size = 0;
        self.segments.locked().insert(self.segment, 0);
        self.publish();
        Ok(())
    }

    fn publish(&self) {
        self.committed.send_replace(Committed {
            next_seq: self.next_seq,
            segment: self.segment,
            offset: self.size,
        });
    }
}

/// `Write::write_all_vectored`, which is not stable: writes every slice, in order, however
/// many writes it takes.
fn write_all_vectored(out: &mut impl Write, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match out.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn fail(budget: &super::Budget, group: Vec<Append>, e: &io::Error) {
    for a in group {
        budget.release(a.bytes);
        let _ = a.reply.send(Err(io::Error::new(e.kind(), e.to_string())));
    }
}
