//! The durable spool of a Direct PUT stream: a segment log under
//! `state_dir/spool/<stream>/`. A record is acknowledged only once `append` returns, i.e. once
//! it is fsync'd (group commit in `writer`). Each destination reads it in order (`reader`) and
//! moves its cursor past the records whose object is written; segments every cursor has passed
//! are deleted. After a crash, each destination replays from its cursor.

pub(crate) mod reader;
pub(crate) mod segment;
pub(crate) mod writer;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};

use crate::disk::Room;
use crate::sync::Lock;
pub(crate) use reader::Reader;
pub(crate) use segment::Frames;
use writer::{Append, Committed, Msg, Segments, Writer};

/// The disk budget shared by every stream's spool: at most `max` bytes, and never so much that
/// less than the reserve stays free on the filesystem (`room`).
#[derive(Debug)]
pub(crate) struct Budget {
    max: u64,
    used: AtomicU64,
    room: Option<Room>,
}

impl Budget {
    pub(crate) fn new(max_bytes: u64, room: Option<Room>) -> Arc<Budget> {
        Arc::new(Budget {
            max: max_bytes,
            used: AtomicU64::new(0),
            room,
        })
    }

    fn try_reserve(&self, n: u64) -> bool {
        let reserved = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                (u + n <= self.max).then_some(u + n)
            })
            .is_ok();
        if reserved && self.room.as_ref().is_some_and(|r| !r.take(n)) {
            self.release(n);
            return false;
        }
        reserved
    }

    pub(crate) fn release(&self, n: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
    }

    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    fn add(&self, n: u64) {
        self.used.fetch_add(n, Ordering::AcqRel);
    }
}

/// Budget bytes held for an append; given back on drop unless the write was durable.
struct Reservation<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl<'a> Reservation<'a> {
    fn take(budget: &'a Budget, bytes: u64) -> Option<Self> {
        budget
            .try_reserve(bytes)
            .then(|| Reservation { budget, bytes })
    }

    /// The writer has the append: it keeps the bytes (given back when their segment is
    /// deleted) or gives them back if the write fails.
    fn hand_over(&mut self) {
        self.bytes = 0;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.release(self.bytes);
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct SpoolSettings {
    pub(crate) segment_bytes: u64,
    pub(crate) fsync: bool,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SpoolError {
    #[error("the spool disk budget is full")]
    Full,
    #[error("the spool is closed")]
    Closed,
    #[error("spool write failed: {0}")]
    Io(#[from] io::Error),
}

pub(crate) struct Spool {
    dir: PathBuf,
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    committed: watch::Receiver<Committed>,
    budget: Arc<Budget>,
    segments: Segments,
    cursors: Mutex<Vec<u64>>,
    /// The generation of each cursor file's newest slot.
    generations: Mutex<Vec<u32>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    id: u64,
}

/// The RecordIds of records acknowledged together (consecutive sequence numbers of one
/// spool), made when they are shown: a batch's answer writes them without a string each.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordIds {
    spool: u64,
    first: u64,
    count: u64,
}

impl RecordIds {
    pub(crate) fn len(&self) -> usize {
        self.count as usize
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = String> + '_ {
        (self.first..self.first + self.count).map(|seq| format!("{:016x}{seq:016x}", self.spool))
    }

    /// Each id as `{"RecordId":"..."}`, separated by commas (a PutRecordBatch answer's
    /// RequestResponses).
    /// The digits are written from a table, not through `fmt` (formatting 500 ids was a sixth
    /// of the acknowledgement path's instructions: BENCHMARKS.md).
    pub(crate) fn write_json_entries(&self, out: &mut String) {
        const HEAD: &[u8] = b"{\"RecordId\":\"";
        let mut entry = [0u8; 1 + HEAD.len() + 32 + 2];
        entry[1..1 + HEAD.len()].copy_from_slice(HEAD);
        let digits = 1 + HEAD.len();
        hex16(self.spool, &mut entry[digits..digits + 16]);
        entry[digits + 32..].copy_from_slice(b"\"}");
        out.reserve(self.count as usize * entry.len());
        for (i, seq) in (self.first..self.first + self.count).enumerate() {
            entry[0] = b',';
            hex16(seq, &mut entry[digits + 16..digits + 32]);
            let text = if i == 0 { &entry[1..] } else { &entry[..] };
            // ASCII throughout: the conversion cannot fail.
            out.push_str(std::str::from_utf8(text).unwrap_or_default());
        }
    }
}

/// `n` as 16 lowercase hex digits into `out` (16 bytes), as `{:016x}` writes it.
fn hex16(n: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, d) in out.iter_mut().enumerate() {
        *d = DIGITS[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
}

impl Spool {
    /// Opens (or creates) the spool in `dir` for `consumers` destinations: cuts a torn tail off
    /// the last segment, loads every consumer's cursor, starts the writer thread.
    pub(crate) fn open(
        dir: &Path,
        consumers: usize,
        settings: SpoolSettings,
        budget: Arc<Budget>,
    ) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let id = load_or_create_id(dir)?;
        let list = recover_segments(dir)?;
        let (last_first, last_size) = *list.last().unwrap_or(&(0, 0));
        let last_path = segment::path(dir, last_first);
        let (count, valid) = segment::scan(&last_path)?;
        if valid < last_size {
            tracing::warn!(segment = %last_path.display(), dropped_bytes = last_size - valid,
                "cut an incomplete, never acknowledged tail off the spool");
            let f = std::fs::OpenOptions::new().write(true).open(&last_path)?;
            f.set_len(valid)?;
            f.sync_all()?;
        }
        let next_seq = last_first + count;
        let segments: Segments = Arc::new(Mutex::new(
            list.iter()
                .map(|(first, size)| (*first, if *first == last_first { valid } else { *size }))
                .collect(),
        ));
        let on_disk: u64 = segments.locked().values().sum();
        budget.add(on_disk);
        let loaded = (0..consumers)
            .map(|i| load_cursor(dir, i))
            .collect::<io::Result<Vec<_>>>()?;
        let cursors: Vec<u64> = loaded
            .iter()
            .map(|c| c.map_or(list[0].0, |(seq, _)| seq).min(next_seq))
            .collect();
        let generations: Vec<u32> = loaded.iter().map(|c| c.map_or(0, |(_, g)| g)).collect();
        let committed = Committed {
            next_seq,
            segment: last_first,
            offset: valid,
        };
        let (committed_tx, committed_rx) = watch::channel(committed);
        let (tx, rx) = mpsc::channel(1024);
        let writer = Writer {
            dir: dir.to_path_buf(),
            file: Writer::open_append(&last_path)?,
            segment: last_first,
            size: valid,
            next_seq,
            segment_limit: settings.segment_bytes,
            fsync: settings.fsync,
            committed: committed_tx,
            segments: segments.clone(),
            broken: None,
            budget: budget.clone(),
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let handle = writer.spawn(rx, &name)?;
        let spool = Spool {
            dir: dir.to_path_buf(),
            tx: Mutex::new(Some(tx)),
            committed: committed_rx,
            budget,
            segments,
            cursors: Mutex::new(cursors),
            generations: Mutex::new(generations),
            writer: Mutex::new(Some(handle)),
            id,
        };
        spool.reclaim()?;
        Ok(spool)
    }

    /// Makes `records` durable (tests; the daemon frames them first: `append_frames`).
    #[cfg(test)]
    pub(crate) async fn append(
        &self,
        records: Vec<bytes::Bytes>,
        arrival_ms: i64,
    ) -> Result<u64, SpoolError> {
        self.append_frames(Frames::of(&records, arrival_ms)).await
    }

    /// Makes records durable, framed by the caller (`Frames`: on the producer's task, not the
    /// writer's); returns the sequence number of the first. Fails fast with `Full` when the
    /// disk budget cannot take them.
    pub(crate) async fn append_frames(&self, frames: Frames) -> Result<u64, SpoolError> {
        let bytes = frames.bytes().len() as u64;
        let tx = self.tx.locked().clone().ok_or(SpoolError::Closed)?;
        // Given back if the producer goes away before the writer has the append; from then on
        // the writer gives it back if the write fails.
        let mut reservation = Reservation::take(&self.budget, bytes).ok_or(SpoolError::Full)?;
        let (reply, rx) = oneshot::channel();
        let append = Append {
            frames,
            bytes,
            reply,
        };
        tx.send(Msg::Append(append))
            .await
            .map_err(|_| SpoolError::Closed)?;
        reservation.hand_over();
        match rx.await {
            Ok(Ok(first)) => Ok(first),
            // Another process filled the disk: the producer slows down, as for a full budget.
            Ok(Err(e)) if crate::disk::is_full(&e) => Err(SpoolError::Full),
            Ok(Err(e)) => Err(SpoolError::Io(e)),
            Err(_) => Err(SpoolError::Closed),
        }
    }

    #[cfg(test)]
    /// A reader from consumer `i`'s cursor.
    pub(crate) fn reader(&self, i: usize) -> io::Result<Reader> {
        Reader::open(self.dir.clone(), self.cursor(i), self.committed.clone())
    }

    /// A reader from `seq` (clamped to what exists).
    pub(crate) fn reader_from(&self, seq: u64) -> io::Result<Reader> {
        Reader::open(self.dir.clone(), seq, self.committed.clone())
    }

    pub(crate) fn cursor(&self, i: usize) -> u64 {
        self.cursors.locked().get(i).copied().unwrap_or(0)
    }

    /// One past the last durable record.
    pub(crate) fn end(&self) -> u64 {
        self.committed.borrow().next_seq
    }

    /// Records not yet delivered by every consumer.
    pub(crate) fn backlog(&self) -> u64 {
        let min = self.cursors.locked().iter().min().copied();
        self.end().saturating_sub(min.unwrap_or_else(|| self.end()))
    }

    /// Bytes of this stream's segments on disk.
    pub(crate) fn disk_bytes(&self) -> u64 {
        self.segments.locked().values().sum()
    }

    /// Consumer `i` has delivered every record below `next_seq`: persists its cursor and
    /// deletes the segments every consumer is done with; when every consumer has caught up, the
    /// active segment is rolled so that it can go too. Blocking I/O.
    pub(crate) fn release(&self, i: usize, next_seq: u64) -> io::Result<()> {
        {
            // Held while the slot is written: two releases of one destination never interleave.
            let mut generations = self.generations.locked();
            let Some(generation) = generations.get_mut(i) else {
                return Ok(());
            };
            let next = generation.wrapping_add(1);
            store_cursor(&self.dir, i, next_seq, next)?;
            *generation = next;
        }
        let min = {
            let mut c = self.cursors.locked();
            if let Some(slot) = c.get_mut(i) {
                *slot = (*slot).max(next_seq);
            }
            c.iter().min().copied()
        };
        if min == Some(self.end()) && self.committed.borrow().offset > 0 {
            let tx = self.tx.locked().clone();
            if let Some(tx) = tx {
                let (reply, rx) = oneshot::channel();
                if tx.blocking_send(Msg::Roll(reply)).is_ok() {
                    let _ = rx.blocking_recv();
                }
            }
        }
        self.reclaim()
    }

    fn reclaim(&self) -> io::Result<()> {
        let Some(min) = self.cursors.locked().iter().min().copied() else {
            return Ok(());
        };
        let active = self.committed.borrow().segment;
        // Taken out of the map under its lock: two destinations reclaiming at once never
        // delete (or give back the budget of) one segment twice.
        let doomed: Vec<(u64, u64)> = {
            let mut segments = self.segments.locked();
            let firsts: Vec<u64> = segments.keys().copied().collect();
            let doomed: Vec<u64> = firsts
                .windows(2)
                .filter(|w| w[1] <= min && w[0] != active)
                .map(|w| w[0])
                .collect();
            doomed
                .into_iter()
                .filter_map(|first| segments.remove(&first).map(|size| (first, size)))
                .collect()
        };
        let mut result = Ok(());
        for (first, size) in doomed {
            match std::fs::remove_file(segment::path(&self.dir, first)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => result = Err(e),
            }
            self.budget.release(size);
        }
        result
    }

    /// The RecordIds of `count` records from `first` on: unique across restarts and spools (a
    /// random id kept in the spool, then the sequence number).
    pub(crate) fn record_ids(&self, first: u64, count: u64) -> RecordIds {
        RecordIds {
            spool: self.id,
            first,
            count,
        }
    }

    /// Stops the writer (after every queued append is answered).
    pub(crate) fn close(&self) {
        self.tx.locked().take();
        // Taken out first: the writer's lock is not held while the thread is joined.
        let handle = self.writer.locked().take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// The segments of the spool in `dir` (first sequence number, size), at least one: empty
/// segments left by a roll that failed half-way are removed.
fn recover_segments(dir: &Path) -> io::Result<Vec<(u64, u64)>> {
    let mut list = segment::list(dir)?;
    // An empty segment before the last is the leftover of a roll that failed half-way.
    let last = list.last().map(|(first, _)| *first);
    for (first, size) in list.iter().filter(|(f, s)| *s == 0 && Some(*f) != last) {
        tracing::warn!(
            segment = first,
            size,
            "removing an empty spool segment left by a failed roll"
        );
        std::fs::remove_file(segment::path(dir, *first))?;
    }
    list.retain(|(f, s)| *s > 0 || Some(*f) == last);
    if list.is_empty() {
        std::fs::File::create(segment::path(dir, 0))?;
        std::fs::File::open(dir)?.sync_all()?;
        list.push((0, 0));
    }
    Ok(list)
}

fn load_or_create_id(dir: &Path) -> io::Result<u64> {
    let path = dir.join("spool-id");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(id) = u64::from_str_radix(text.trim(), 16)
    {
        return Ok(id);
    }
    let id: u64 = rand::random();
    write_atomically(&path, format!("{id:016x}\n").as_bytes())?;
    Ok(id)
}

fn cursor_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("cursor-{i}"))
}

/// A cursor file holds two slots of `SLOT` bytes, written in turn in place: the next sequence
/// number (8 bytes), a generation (4) and the CRC-32 of both (4). Writing in place needs no new
/// disk block, so a delivery is recorded (and spool space given back) even on a full disk; a
/// torn slot fails its CRC and the other one, one delivery older, is used.
const SLOT: usize = 16;

fn encode_slot(next_seq: u64, generation: u32) -> [u8; SLOT] {
    let mut slot = [0u8; SLOT];
    slot[..8].copy_from_slice(&next_seq.to_le_bytes());
    slot[8..12].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32fast::hash(&slot[..12]);
    slot[12..].copy_from_slice(&crc.to_le_bytes());
    slot
}

/// (next_seq, generation) of a slot whose CRC holds.
fn decode_slot(slot: &[u8]) -> Option<(u64, u32)> {
    let crc = u32::from_le_bytes(slot.get(12..16)?.try_into().ok()?);
    (crc32fast::hash(slot.get(..12)?) == crc).then(|| {
        let seq = u64::from_le_bytes(slot[..8].try_into().unwrap_or_default());
        let generation = u32::from_le_bytes(slot[8..12].try_into().unwrap_or_default());
        (seq, generation)
    })
}

/// A destination's cursor and the generation of its newest slot. Cursor files of earlier
/// versions (the number as text) are read too.
fn load_cursor(dir: &Path, i: usize) -> io::Result<Option<(u64, u32)>> {
    let path = cursor_path(dir, i);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if let Some(seq) = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
    {
        return Ok(Some((seq, 0)));
    }
    // The newer of the two valid slots; generations wrap, and differ by one.
    let newest = bytes
        .chunks(SLOT)
        .take(2)
        .filter_map(decode_slot)
        .reduce(|a, b| {
            if (b.1.wrapping_sub(a.1) as i32) > 0 {
                b
            } else {
                a
            }
        });
    if newest.is_none() {
        // Empty or unreadable: replaying from the oldest segment on disk is safe (segments go
        // only once a cursor past them is stored), at the price of duplicates.
        tracing::warn!(file = %path.display(),
            "an unreadable spool cursor: this destination replays from the oldest spool segment");
    }
    Ok(newest)
}

/// Writes cursor `next_seq` with `generation` into its slot, in place, and makes it durable.
fn store_cursor(dir: &Path, i: usize, next_seq: u64, generation: u32) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let path = cursor_path(dir, i);
    let file = match std::fs::OpenOptions::new().write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut both = encode_slot(next_seq, generation).to_vec();
            both.extend_from_slice(&encode_slot(next_seq, generation));
            return write_atomically(&path, &both);
        }
        Err(e) => return Err(e),
    };
    if file.metadata()?.len() < (2 * SLOT) as u64 {
        // New, or text from an earlier version: both slots, written whole beside it and renamed
        // over it, so that a failed first write (a full disk) leaves the old cursor as it was.
        let mut both = encode_slot(next_seq, generation).to_vec();
        both.extend_from_slice(&encode_slot(next_seq, generation));
        return write_atomically(&path, &both);
    }
    let at = (generation as usize % 2 * SLOT) as u64;
    file.write_all_at(&encode_slot(next_seq, generation), at)?;
    file.sync_data()
}

/// Write a temp file, fsync it, rename it over `path`, fsync the folder.
pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        io::Write::write_all(&mut f, data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests;
