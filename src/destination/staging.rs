//! Staging: the object being built for a destination, compressed as records arrive into a file
//! under state_dir, so memory stays flat whatever the buffer size. Blocking I/O: callers run it
//! off the async workers.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

use super::journal::{self, Entry, Pos};
use super::naming::{Naming, ObjectName};
use crate::disk::{Patience, PatientFile};
use crate::encode::parquet::{Conversion, Park, ParquetWriter};
use crate::encode::{Compression, Encoder};
use crate::processing::ErrorOutput;
use crate::processing::error_record::format_conversion_failed;
use crate::record::Record;

/// Records that did not fit the conversion's schema: their error records, and their bytes.
#[derive(Debug, Default)]
pub(crate) struct Rejected {
    pub(crate) lines: Vec<ErrorOutput>,
    pub(crate) bytes: u64,
}

/// What writes the open object: a compressed byte stream, or a Parquet file (format
/// conversion).
enum Writer {
    Bytes(Encoder<BufWriter<PatientFile>>),
    Parquet(Box<ParquetWriter<StagingFile>>),
}

/// A staging file that can be closed while its object waits (a suspended partition) and is
/// opened again, for appending, on the next write.
pub(crate) struct StagingFile {
    path: PathBuf,
    file: Option<BufWriter<PatientFile>>,
    patience: Arc<Patience>,
    capacity: usize,
}

impl StagingFile {
    fn open(&mut self) -> io::Result<&mut BufWriter<PatientFile>> {
        if self.file.is_none() {
            let file = File::options().append(true).open(&self.path)?;
            let file = PatientFile::new(file, self.patience.clone());
            self.file = Some(BufWriter::with_capacity(self.capacity, file));
        }
        match self.file.as_mut() {
            Some(f) => Ok(f),
            None => Err(io::Error::other("staging file not open")),
        }
    }

    fn into_file(self) -> io::Result<File> {
        match self.file {
            Some(f) => f
                .into_inner()
                .map(PatientFile::into_file)
                .map_err(|e| e.into_error()),
            None => File::options().append(true).open(&self.path),
        }
    }
}

impl Write for StagingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.open()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Park for StagingFile {
    fn park(&mut self) -> io::Result<()> {
        if let Some(f) = self.file.take() {
            f.into_inner().map_err(|e| e.into_error())?;
        }
        Ok(())
    }

    fn is_parked(&self) -> bool {
        self.file.is_none()
    }
}

/// A finished object waiting to be delivered.
#[derive(Debug)]
pub(crate) struct Sealed {
    pub(crate) id: u64,
    pub(crate) path: PathBuf,
    pub(crate) key: String,
    pub(crate) records: u64,
    pub(crate) raw_bytes: u64,
    pub(crate) size: u64,
    pub(crate) oldest_ms: i64,
    /// The lowest log sequence number in the object.
    pub(crate) first_seq: u64,
    /// One past the last record's spool sequence number: the cursor once this is delivered.
    pub(crate) next_seq: u64,
    /// Exactly-once: the object's identity, and whether the journal holds it already (a
    /// replay cut it again) or must before it is uploaded. Written with a conditional put.
    pub(crate) identity: Option<(Entry, bool)>,
}

struct Open {
    id: u64,
    uuid: uuid::Uuid,
    path: PathBuf,
    /// None while a byte stream is suspended: the file is closed and ends with a complete
    /// compressed member. (A suspended Parquet writer keeps its state and parks its file.)
    encoder: Option<Writer>,
    records: u64,
    raw_bytes: u64,
    /// What the records count toward the size limit (`cost`).
    cost: u64,
    oldest_ms: i64,
    first_seq: u64,
    next_seq: u64,
    /// Positions of the first and last record (exactly-once identities).
    first: Pos,
    last: Pos,
    opened: Instant,
}

/// Exactly-once delivery of a stager's objects: names derived from their identity, and the
/// journal's entries of this slot that a replay cuts again.
pub(crate) struct Identity {
    /// The destination's: `<stream>/<destination index>`.
    pub(crate) namespace: Arc<str>,
    pub(crate) slot: String,
    /// The journal's entries of this slot, in log order, not yet cut again.
    pub(crate) replay: std::collections::VecDeque<Entry>,
    /// The open object is the front entry's, cut again: it seals when the log passes that
    /// entry's last record, not on size, interval or with its companions.
    rebuilding: bool,
}

impl Identity {
    pub(crate) fn new(
        namespace: Arc<str>,
        slot: String,
        replay: std::collections::VecDeque<Entry>,
    ) -> Self {
        Identity {
            namespace,
            slot,
            replay,
            rebuilding: false,
        }
    }
}

/// Where a record goes in a stager with an identity.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Into the open object, sealed on size as usual.
    Fresh,
    /// Into the object a journal entry names, cut again.
    Rebuild,
    /// Nowhere: the journal says its object was delivered.
    Skip,
}

pub(crate) struct ObjectStager {
    dir: PathBuf,
    naming: Naming,
    compression: Compression,
    delimiter: bool,
    size_limit: u64,
    current: Option<Open>,
    next_id: u64,
    ids: Option<Arc<AtomicU64>>,
    buffer: usize,
    conversion: Option<Arc<Conversion>>,
    /// Waits for space when a write finds the disk full.
    patience: Arc<Patience>,
    /// Set for exactly-once delivery.
    identity: Option<Identity>,
    /// Records are framed (`FRAME_HEADER` then the bytes) for a sink that sends them one by
    /// one (an HTTP endpoint), not concatenated; the object's key is its uuid (the request id).
    framed: bool,
    /// How GZIP is compressed (on every core for the main object, lean for partitions).
    gzip: GzipMode,
}

/// How an object's GZIP stream is made (`encode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GzipMode {
    /// One deflate stream (error and backup objects).
    OneStream,
    /// Blocks on every core (a destination's main object: one object takes all the data).
    Parallel,
    /// No deflate state kept between writes (partitions: hundreds may be open at once).
    Lean,
}

impl GzipMode {
    fn encoder<W: Write + std::io::Seek>(
        self,
        compression: Compression,
        out: W,
        entry_name_len: usize,
    ) -> io::Result<Encoder<W>> {
        match self {
            GzipMode::OneStream => Encoder::new(compression, out, entry_name_len),
            GzipMode::Parallel => Encoder::new_parallel(compression, out, entry_name_len),
            GzipMode::Lean => Encoder::new_lean(compression, out, entry_name_len),
        }
    }
}

/// A framed record's header: its length (u32) and arrival time (i64 ms), little-endian.
pub(crate) const FRAME_HEADER: usize = 12;

impl ObjectStager {
    pub(crate) fn new(
        dir: PathBuf,
        naming: Naming,
        compression: Compression,
        delimiter: bool,
        size_limit: u64,
    ) -> Self {
        ObjectStager {
            dir,
            naming,
            compression,
            delimiter,
            size_limit,
            current: None,
            next_id: 0,
            ids: None,
            buffer: 256 * 1024,
            conversion: None,
            patience: Arc::default(),
            identity: None,
            framed: false,
            gzip: GzipMode::OneStream,
        }
    }

    /// Compresses GZIP on every core (`encode::parallel_gzip`).
    pub(crate) fn with_parallel_compression(mut self) -> Self {
        self.gzip = GzipMode::Parallel;
        self
    }

    /// Compresses GZIP keeping no deflate state between writes (`encode::lean_gzip`).
    pub(crate) fn with_lean_compression(mut self) -> Self {
        self.gzip = GzipMode::Lean;
        self
    }

    /// What a record of `len` bytes counts toward the size limit: its bytes, or for a framed
    /// object its share of the request body (base64 and `{"data":""},`), so that a request never
    /// exceeds the buffer size however small its records.
    fn cost(&self, len: u64) -> u64 {
        match self.framed {
            true => 4 * len.div_ceil(3) + 12,
            false => len,
        }
    }

    /// Frames each record instead of concatenating them (see `framed`).
    pub(crate) fn with_framing(mut self) -> Self {
        self.framed = true;
        self
    }

    /// Names objects by their identity and cuts the journal's objects again (exactly-once).
    pub(crate) fn with_identity(mut self, identity: Option<Identity>) -> Self {
        self.identity = identity;
        self
    }

    /// The open object is one a replay cuts again: it seals only when complete.
    pub(crate) fn rebuilding(&self) -> bool {
        self.identity.as_ref().is_some_and(|i| i.rebuilding)
    }

    /// The journal still has entries for this slot (the stager must stay).
    pub(crate) fn replaying(&self) -> bool {
        self.identity.as_ref().is_some_and(|i| !i.replay.is_empty())
    }

    /// Where the record at `pos` goes; seals the objects it completes.
    fn route(&mut self, pos: &Pos, sealed: &mut Vec<Sealed>) -> io::Result<Route> {
        loop {
            let Some(id) = self.identity.as_mut() else {
                return Ok(Route::Fresh);
            };
            let Some(front) = id.replay.front() else {
                return Ok(Route::Fresh);
            };
            if *pos > front.last {
                sealed.extend(self.end_entry()?);
                continue;
            }
            if *pos < front.first {
                return Ok(Route::Fresh);
            }
            // A Parquet object's records are converted again even when it was delivered: the
            // records the schema refused went to an error object that may not have been, and
            // only the conversion says which they were. Cut again, it is found already there.
            if front.delivered && self.conversion.is_none() {
                return Ok(Route::Skip);
            }
            if !id.rebuilding {
                // A fresh object open before this entry (records the original did not have
                // here) seals first under its own name.
                sealed.extend(self.seal()?);
                if let Some(id) = self.identity.as_mut() {
                    id.rebuilding = true;
                }
            }
            return Ok(Route::Rebuild);
        }
    }

    /// The front journal entry is done: its object seals (if any of its records came again).
    fn end_entry(&mut self) -> io::Result<Option<Sealed>> {
        if self.rebuilding() && self.current.is_some() {
            return self.seal();
        }
        if let Some(id) = self.identity.as_mut() {
            id.replay.pop_front();
            id.rebuilding = false;
        }
        Ok(None)
    }

    /// Seals the objects of journal entries the log has passed (`end`: every record below it
    /// was handed over).
    pub(crate) fn finish_replayed(&mut self, end: &Pos) -> io::Result<Vec<Sealed>> {
        let mut sealed = Vec::new();
        while let Some(front) = self.identity.as_ref().and_then(|i| i.replay.front()) {
            if front.last >= *end {
                break;
            }
            sealed.extend(self.end_entry()?);
        }
        Ok(sealed)
    }

    /// How (and in whose name) its writes wait for space on a full disk.
    pub(crate) fn with_patience(mut self, patience: Arc<Patience>) -> Self {
        self.patience = patience;
        self
    }

    /// Writes records as Parquet rows of this conversion's schema; records that do not fit go
    /// back to the caller as `format-conversion-failed` error records.
    pub(crate) fn with_conversion(mut self, conversion: Option<Arc<Conversion>>) -> Self {
        self.conversion = conversion;
        self
    }

    /// The write buffer of the staging file (smaller for the many stagers of partitions).
    pub(crate) fn with_buffer(mut self, bytes: usize) -> Self {
        self.buffer = bytes;
        self
    }

    /// Takes object ids from a counter shared by every stager of the destination, so ids
    /// never meet.
    pub(crate) fn with_ids(mut self, ids: Arc<AtomicU64>) -> Self {
        self.ids = Some(ids);
        self
    }

    /// The lowest sequence number in the open object.
    pub(crate) fn first_seq(&self) -> Option<u64> {
        self.current.as_ref().map(|c| c.first_seq)
    }

    /// When the open object got its first record.
    pub(crate) fn opened(&self) -> Option<Instant> {
        self.current.as_ref().map(|c| c.opened)
    }

    pub(crate) fn oldest_ms(&self) -> Option<i64> {
        self.current.as_ref().map(|c| c.oldest_ms)
    }

    /// Appends records; returns the objects that filled up (never more than `size_limit` raw
    /// bytes each). Records that do not fit the conversion's schema go to `rejected`. On an I/O
    /// error the open object is discarded and its record count returned.
    pub(crate) fn append(
        &mut self,
        batch: &[Record],
        now: Instant,
        rejected: &mut Rejected,
    ) -> Result<Vec<Sealed>, (io::Error, u64)> {
        let mut sealed = Vec::new();
        for record in batch {
            let route = match self.identity {
                Some(_) => self
                    .route(&Pos::of(record), &mut sealed)
                    .map_err(|e| (e, 0))?,
                None => Route::Fresh,
            };
            if route == Route::Skip {
                continue;
            }
            // An object cut again holds what the original held, whatever its size.
            let sized = route == Route::Fresh;
            let len = record.data.len() as u64 + u64::from(self.delimiter);
            let cost = self.cost(len);
            if sized
                && self
                    .current
                    .as_ref()
                    .is_some_and(|c| c.records > 0 && c.cost + cost > self.size_limit)
            {
                sealed.extend(self.seal().map_err(|e| (e, 0))?);
            }
            if let Err(e) = self.write(record, len, now, rejected) {
                return Err((e, self.discard()));
            }
            if sized
                && self
                    .current
                    .as_ref()
                    .is_some_and(|c| c.cost >= self.size_limit)
            {
                sealed.extend(self.seal().map_err(|e| (e, 0))?);
            }
        }
        Ok(sealed)
    }

    fn write(
        &mut self,
        record: &Record,
        len: u64,
        now: Instant,
        rejected: &mut Rejected,
    ) -> io::Result<()> {
        if self.current.is_none() {
            self.current = Some(self.open(record.arrival_ms, now)?);
        }
        let (compression, buffer, base_len, gzip) = (
            self.compression,
            self.buffer,
            self.naming.base_len(),
            self.gzip,
        );
        let patience = self.patience.clone();
        let cost = self.cost(len);
        let Some(cur) = self.current.as_mut() else {
            return Ok(());
        };
        if cur.encoder.is_none() {
            // Resume a suspended object: a new compressed member appended to the file.
            let file = std::fs::OpenOptions::new().append(true).open(&cur.path)?;
            let out = BufWriter::with_capacity(buffer, PatientFile::new(file, patience));
            cur.encoder = Some(Writer::Bytes(gzip.encoder(compression, out, base_len)?));
        }
        match cur.encoder.as_mut() {
            Some(Writer::Bytes(encoder)) => {
                if self.framed {
                    let mut header = [0u8; FRAME_HEADER];
                    header[..4].copy_from_slice(&(len as u32).to_le_bytes());
                    header[4..].copy_from_slice(&record.arrival_ms.to_le_bytes());
                    encoder.write_all(&header)?;
                }
                encoder.write_all(&record.data)?;
                if self.delimiter {
                    encoder.write_all(b"\n")?;
                }
            }
            Some(Writer::Parquet(writer)) => {
                if let Err(why) = writer.append(&record.data)? {
                    if let Some(c) = &self.conversion {
                        rejected.lines.push(format_conversion_failed(
                            record,
                            &why.to_string(),
                            &c.table,
                        ));
                        rejected.bytes += record.data.len() as u64;
                    }
                    // An object is never open without a record.
                    if cur.records == 0 {
                        self.discard();
                    }
                    return Ok(());
                }
            }
            None => return Ok(()),
        }
        cur.records += 1;
        cur.raw_bytes += len;
        cur.cost += cost;
        cur.oldest_ms = cur.oldest_ms.min(record.arrival_ms);
        cur.first_seq = cur.first_seq.min(record.seq);
        cur.next_seq = cur.next_seq.max(record.seq + 1);
        if self.identity.is_some() {
            let pos = Pos::of(record);
            if cur.records == 1 || pos < cur.first {
                cur.first = pos.clone();
            }
            if pos > cur.last {
                cur.last = pos;
            }
        }
        Ok(())
    }

    fn open(&mut self, arrival_ms: i64, now: Instant) -> io::Result<Open> {
        self.next_id = match &self.ids {
            Some(ids) => ids.fetch_add(1, Ordering::Relaxed) + 1,
            None => self.next_id + 1,
        };
        let uuid = uuid::Uuid::new_v4();
        let path = self.dir.join(format!("{uuid}.part"));
        let file = PatientFile::create(&path, self.patience.clone())?;
        let out = BufWriter::with_capacity(self.buffer, file);
        let writer = match &self.conversion {
            Some(c) => Writer::Parquet(Box::new(c.writer(StagingFile {
                path: path.clone(),
                file: Some(out),
                patience: self.patience.clone(),
                capacity: self.buffer,
            })?)),
            None => Writer::Bytes(self.gzip.encoder(
                self.compression,
                out,
                self.naming.base_len(),
            )?),
        };
        Ok(Open {
            id: self.next_id,
            uuid,
            encoder: Some(writer),
            path,
            records: 0,
            raw_bytes: 0,
            cost: 0,
            oldest_ms: arrival_ms,
            first_seq: u64::MAX,
            next_seq: 0,
            first: Pos::LOWEST,
            last: Pos::LOWEST,
            opened: now,
        })
    }

    /// Whether the open object holds an encoder (memory and a file handle).
    pub(crate) fn is_active(&self) -> bool {
        self.current.as_ref().is_some_and(|c| match &c.encoder {
            Some(Writer::Parquet(w)) => !w.is_suspended(),
            Some(Writer::Bytes(_)) => true,
            None => false,
        })
    }

    /// Ends the open object's compressed member and closes its file, keeping the object open:
    /// the next record starts a new member (gzip members and snappy frames concatenate; a ZIP
    /// entry cannot be split, so ZIP objects are never suspended). Frees the encoder's memory
    /// and the file handle of an idle partition.
    /// Returns whether it suspended anything.
    pub(crate) fn suspend(&mut self) -> io::Result<bool> {
        if self.compression == Compression::Zip {
            return Ok(false);
        }
        let Some(cur) = self.current.as_mut() else {
            return Ok(false);
        };
        if let Some(Writer::Parquet(w)) = cur.encoder.as_mut() {
            // The row group is written out and the file parked; the writer keeps its place.
            if w.is_suspended() {
                return Ok(false);
            }
            if let Err(e) = w.suspend() {
                self.discard();
                return Err(e);
            }
            return Ok(true);
        }
        let Some(Writer::Bytes(encoder)) = cur.encoder.take() else {
            return Ok(false);
        };
        let result = encoder
            .finish("")
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()));
        if let Err(e) = result {
            self.discard();
            return Err(e);
        }
        Ok(true)
    }

    /// Finishes the open object (fsync'd, named), if it has records.
    pub(crate) fn seal(&mut self) -> io::Result<Option<Sealed>> {
        let Some(cur) = self.current.take() else {
            return Ok(None);
        };
        let (name, identity) = self.name(&cur);
        let result = (|| {
            let file = match cur.encoder {
                Some(Writer::Bytes(encoder)) => encoder
                    .finish(&name.base)?
                    .into_inner()
                    .map_err(|e| e.into_error())?
                    .into_file(),
                Some(Writer::Parquet(writer)) => writer.finish()?.into_file()?,
                // Suspended: the file already ends with a complete member.
                None => File::options().append(true).open(&cur.path)?,
            };
            file.sync_all()?;
            file.metadata()
        })();
        match result {
            Ok(meta) => Ok(Some(Sealed {
                id: cur.id,
                path: cur.path,
                key: match self.framed {
                    true => cur.uuid.to_string(),
                    false => name.key,
                },
                records: cur.records,
                raw_bytes: cur.raw_bytes,
                size: meta.len(),
                oldest_ms: cur.oldest_ms,
                first_seq: cur.first_seq,
                next_seq: cur.next_seq,
                identity,
            })),
            Err(e) => {
                let _ = std::fs::remove_file(&cur.path);
                Err(e)
            }
        }
    }

    /// The sealing object's name: random (at-least-once), the journal entry's (cut again), or
    /// derived from its identity (a new exactly-once object).
    fn name(&mut self, cur: &Open) -> (ObjectName, Option<(Entry, bool)>) {
        let Some(id) = self.identity.as_mut() else {
            return (self.naming.object(cur.oldest_ms, &cur.uuid), None);
        };
        if id.rebuilding {
            id.rebuilding = false;
            if let Some(entry) = id.replay.pop_front() {
                let fresh = self.naming.object(cur.oldest_ms, &cur.uuid);
                // The ZIP entry's name as journaled (its length is reserved in the header: a
                // journaled base of another length, after a version change, is not used).
                let base = Some(entry.base.clone())
                    .filter(|b| b.len() == fresh.base.len())
                    .unwrap_or(fresh.base);
                let name = ObjectName {
                    key: entry.key.clone(),
                    base,
                };
                return (name, Some((entry, true)));
            }
        }
        let uuid = journal::object_uuid(&id.namespace, &id.slot, &cur.first);
        let name = self.naming.object(cur.oldest_ms, &uuid);
        let entry = Entry {
            slot: id.slot.clone(),
            first: cur.first.clone(),
            last: cur.last.clone(),
            key: name.key.clone(),
            base: name.base.clone(),
            delivered: false,
        };
        (name, Some((entry, false)))
    }

    /// Drops the open object, if any (see `StagerSet::discard_all`).
    pub(crate) fn discard_open(&mut self) {
        self.discard();
    }

    fn discard(&mut self) -> u64 {
        match self.current.take() {
            Some(cur) => {
                let _ = std::fs::remove_file(&cur.path);
                cur.records
            }
            None => 0,
        }
    }
}

/// Removes staging files a previous run left behind (their records were never acknowledged as
/// delivered). Returns how many were removed.
pub(crate) fn clear_leftovers(dir: &Path) -> io::Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "part") {
            std::fs::remove_file(&path)?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::template::Template;
    use bytes::Bytes;

    fn naming() -> Naming {
        Naming {
            stream: "s".into(),
            version: 1,
            prefix: Template::default(),
            extension: String::new(),
            time_zone: chrono_tz::UTC,
            error: None,
            partition: None,
        }
    }

    fn stager(dir: &Path, limit: u64, delimiter: bool) -> ObjectStager {
        let naming = naming();
        ObjectStager::new(
            dir.to_path_buf(),
            naming,
            Compression::Uncompressed,
            delimiter,
            limit,
        )
    }

    fn rec(data: &str, at: i64) -> Record {
        Record {
            data: Bytes::from(data.to_string()),
            arrival_ms: at,
            seq: at as u64,
            sub: 0,
            kinesis: None,
        }
    }

    fn exactly_once(dir: &Path, limit: u64, replay: Vec<Entry>) -> ObjectStager {
        let slot = "main".to_string();
        let replay = journal::of_slot(&replay, &slot);
        stager(dir, limit, false).with_identity(Some(Identity::new("s/0".into(), slot, replay)))
    }

    fn cut(s: &mut ObjectStager, seqs: std::ops::Range<i64>) -> Vec<Sealed> {
        let batch: Vec<Record> = seqs.map(|i| rec("abcd", i)).collect();
        let mut sealed = s
            .append(&batch, Instant::now(), &mut Rejected::default())
            .expect("appends");
        sealed.extend(s.seal().expect("seals"));
        sealed
    }

    fn summary(sealed: &[Sealed]) -> Vec<(String, u64, bool)> {
        sealed
            .iter()
            .map(|o| {
                let (_, recorded) = o.identity.clone().expect("an identity");
                (o.key.clone(), o.records, recorded)
            })
            .collect()
    }

    #[test]
    fn a_replay_cuts_the_journal_s_objects_again_under_the_same_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        // First run: objects of two records (size 10), the last one never journaled.
        let mut first = exactly_once(dir.path(), 10, Vec::new());
        let run1 = cut(&mut first, 1000..1007);
        assert_eq!(run1.len(), 4);
        let entries: Vec<Entry> = run1[..3]
            .iter()
            .map(|o| o.identity.clone().expect("identity").0)
            .collect();
        let journal_path = dir.path().join("journal");
        let (mut j, _) = journal::Journal::open(&journal_path, &Pos::log(1000)).expect("journal");
        j.record(&entries, &Pos::log(1000)).expect("record");
        // Replay with another size limit: the journal's objects come back as they were, the
        // rest is named by its first record, as the first run named it.
        let (_, replay) = journal::Journal::open(&journal_path, &Pos::log(1000)).expect("reopen");
        let mut again = exactly_once(dir.path(), 100, replay);
        let run2 = cut(&mut again, 1000..1007);
        let expect: Vec<(String, u64, bool)> = summary(&run1)
            .into_iter()
            .enumerate()
            .map(|(i, (k, n, _))| (k, n, i < 3))
            .collect();
        assert_eq!(summary(&run2), expect);
        // With the cursor at 1003: the object holding 1002-1003 was delivered (1003 is
        // skipped), 1004-1005 is cut again, 1006 on is new.
        let (_, replay) = journal::Journal::open(&journal_path, &Pos::log(1003)).expect("reopen");
        assert_eq!(replay.len(), 2);
        let mut third = exactly_once(dir.path(), 100, replay);
        let run3 = cut(&mut third, 1003..1008);
        let got = summary(&run3);
        assert_eq!(got[0], (run1[2].key.clone(), 2, true));
        assert_eq!((got[1].1, got[1].2), (2, false));
        assert_eq!(got[1].0, run1[3].key, "named by its first record (1006)");
        assert_eq!(got.len(), 2, "1003 went nowhere: {got:?}");
    }

    #[test]
    fn objects_never_exceed_the_size_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = stager(dir.path(), 10, false);
        let now = Instant::now();
        let batch: Vec<Record> = (0..7).map(|i| rec("abcd", 1000 + i)).collect();
        let sealed = s
            .append(&batch, now, &mut Rejected::default())
            .expect("appends");
        assert_eq!(sealed.len(), 3, "4+4 fits in 10, a third record does not");
        for o in &sealed {
            assert_eq!(o.raw_bytes, 8);
            assert_eq!(std::fs::read(&o.path).expect("staged").len(), 8);
        }
        let last = s.seal().expect("seals").expect("one record left");
        assert_eq!(last.records, 1);
        assert!(s.seal().expect("nothing open").is_none());
    }

    #[test]
    fn a_suspended_object_resumes_with_a_new_member() {
        use std::io::Read;
        let dir = tempfile::tempdir().expect("tempdir");
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::HadoopSnappy,
            Compression::Uncompressed,
        ] {
            let mut s = ObjectStager::new(
                dir.path().to_path_buf(),
                naming(),
                compression,
                true,
                1 << 20,
            );
            let now = Instant::now();
            s.append(&[rec("a", 1), rec("b", 2)], now, &mut Rejected::default())
                .expect("appends");
            assert!(s.suspend().expect("suspends"));
            assert!(!s.is_active());
            assert!(
                !s.suspend().expect("twice is fine"),
                "nothing left to suspend"
            );
            s.append(&[rec("c", 3)], now, &mut Rejected::default())
                .expect("resumes");
            assert!(s.is_active());
            s.suspend().expect("suspends");
            let o = s.seal().expect("seals").expect("open");
            assert_eq!(o.records, 3);
            let data = std::fs::read(&o.path).expect("staged");
            let mut back = Vec::new();
            match compression {
                Compression::Gzip => {
                    flate2::read::MultiGzDecoder::new(&data[..])
                        .read_to_end(&mut back)
                        .expect("gzip members");
                }
                Compression::Snappy => {
                    snap::read::FrameDecoder::new(&data[..])
                        .read_to_end(&mut back)
                        .expect("snappy frames");
                }
                Compression::HadoopSnappy => {
                    let mut pos = 0;
                    while pos < data.len() {
                        let raw =
                            u32::from_be_bytes(data[pos..pos + 4].try_into().expect("4")) as usize;
                        let clen = u32::from_be_bytes(data[pos + 4..pos + 8].try_into().expect("4"))
                            as usize;
                        let block = snap::raw::Decoder::new()
                            .decompress_vec(&data[pos + 8..pos + 8 + clen])
                            .expect("block");
                        assert_eq!(block.len(), raw);
                        back.extend(block);
                        pos += 8 + clen;
                    }
                }
                _ => back = data,
            }
            assert_eq!(back, b"a\nb\nc\n", "{compression:?}");
        }
    }

    #[test]
    fn a_framed_object_counts_each_record_s_share_of_the_request_body() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = stager(dir.path(), 100, false).with_framing();
        let records: Vec<Record> = (0..20).map(|i| rec("x", i)).collect();
        let sealed = s
            .append(&records, Instant::now(), &mut Rejected::default())
            .expect("stages");
        // A 1-byte record is 16 bytes of body ({"data":"eA=="},): six fit in 100.
        assert_eq!(sealed.len(), 3);
        assert!(sealed.iter().all(|o| o.records == 6 && o.raw_bytes == 6));
        assert!(
            sealed.iter().all(|o| uuid::Uuid::parse_str(&o.key).is_ok()),
            "the key is the request id"
        );
    }

    #[test]
    fn delimiter_and_oldest_arrival() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = stager(dir.path(), 1 << 20, true);
        let now = Instant::now();
        s.append(
            &[rec("a", 2000), rec("b", 1000)],
            now,
            &mut Rejected::default(),
        )
        .expect("appends");
        let o = s.seal().expect("seals").expect("open");
        assert_eq!(std::fs::read(&o.path).expect("staged"), b"a\nb\n");
        assert_eq!(o.oldest_ms, 1000);
        assert_eq!(o.next_seq, 2001, "one past the highest sequence number");
        assert!(o.key.contains("s-1-1970-01-01-00-00-01-"), "{}", o.key);
        assert!(clear_leftovers(dir.path()).expect("clears") >= 1);
    }

    fn parquet_stager(dir: &Path) -> ObjectStager {
        use crate::encode::parquet::schema::{Column, HiveType};
        use crate::encode::parquet::{CatalogTable, Conversion, ParquetOptions, Rules};
        let conversion = Arc::new(Conversion::new(
            vec![Column {
                name: "id".into(),
                ty: HiveType::BigInt,
            }],
            Rules::default(),
            Vec::new(),
            ParquetOptions::DEFAULT,
            CatalogTable::default(),
        ));
        ObjectStager::new(
            dir.to_path_buf(),
            naming(),
            Compression::Uncompressed,
            false,
            1 << 20,
        )
        .with_conversion(Some(conversion))
    }

    /// Open file descriptors of this process on staging files (nextest runs a test per process).
    fn open_staging_files() -> usize {
        std::fs::read_dir("/proc/self/fd")
            .expect("fds")
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|t| t.extension().is_some_and(|x| x == "part"))
            .count()
    }

    #[test]
    fn a_suspended_parquet_object_closes_its_file_and_resumes_into_a_valid_file() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = parquet_stager(dir.path());
        let now = Instant::now();
        let mut rejected = Rejected::default();
        s.append(
            &[
                rec("{\"id\":1}", 1),
                rec("not json", 2),
                rec("{\"id\":2}", 3),
            ],
            now,
            &mut rejected,
        )
        .expect("appends");
        assert_eq!(rejected.lines.len(), 1);
        assert_eq!(rejected.bytes, 8);
        assert_eq!(open_staging_files(), 1);
        assert!(s.suspend().expect("suspends"));
        assert!(!s.is_active());
        assert_eq!(
            open_staging_files(),
            0,
            "a suspended partition holds no file"
        );
        assert!(!s.suspend().expect("twice is fine"));
        s.append(&[rec("{\"id\":3}", 4)], now, &mut rejected)
            .expect("resumes");
        assert!(s.is_active());
        assert!(s.suspend().expect("suspends again"));
        let o = s.seal().expect("seals").expect("open");
        assert_eq!((o.records, o.first_seq, o.next_seq), (3, 1, 5));
        let file = File::open(&o.path).expect("staged");
        let reader = SerializedFileReader::new(file).expect("a valid Parquet file");
        assert_eq!(reader.metadata().num_row_groups(), 2);
        assert_eq!(reader.metadata().file_metadata().num_rows(), 3);
    }

    #[test]
    fn an_object_whose_first_record_does_not_fit_is_not_left_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = parquet_stager(dir.path());
        let mut rejected = Rejected::default();
        let sealed = s
            .append(&[rec("[1]", 1)], Instant::now(), &mut rejected)
            .expect("appends");
        assert!(sealed.is_empty());
        assert_eq!(rejected.lines.len(), 1);
        assert_eq!(s.first_seq(), None, "nothing holds the cursor");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
        assert!(s.seal().expect("seals").is_none());
    }
}
