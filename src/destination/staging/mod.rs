//! Staging: the object being built for a destination, compressed (or converted) as records
//! arrive into a file under state_dir, so memory stays flat whatever the buffer size; sealed on
//! size, named, fsync'd. One object's life: `file` writes it, `replay` names it when the
//! destination is exactly-once. Blocking I/O: callers run it off the async workers.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

use super::journal::{Entry, Pos};
use super::naming::Naming;
use crate::destination::iceberg::changes::{Change, Op, RowChanges, Tracker};
use crate::disk::{Patience, PatientFile};
use crate::encode::Compression;
use crate::encode::columnar::Misfit;
use crate::encode::conversion::Conversion;
use crate::encode::conversion::MisfitOutput;
use crate::processing::ErrorOutput;
use crate::processing::error_record::{self, format_conversion_failed};
use crate::record::Record;

/// The error record of a record that does not fit `c`'s schema: AWS's format conversion's, or
/// an Iceberg table's.
fn misfit_output(c: &Conversion, record: &Record, why: &Misfit) -> ErrorOutput {
    match c.misfits {
        MisfitOutput::FormatConversion => {
            format_conversion_failed(record, &why.to_string(), &c.table)
        }
        MisfitOutput::Iceberg => {
            let code = if why.is_missing_column() {
                error_record::ICEBERG_MISSING_COLUMN
            } else {
                error_record::ICEBERG_SCHEMA_MISMATCH
            };
            let table = match (&c.table.database, &c.table.table) {
                (Some(d), Some(t)) => format!("table {d}.{t}: "),
                _ => String::new(),
            };
            ErrorOutput {
                prefix: c.error_prefix.clone(),
                ..error_record::iceberg_failed(record, code, &format!("{table}{why}"))
            }
        }
    }
}

/// Records that did not fit the conversion's schema: their error records, and their bytes.
#[derive(Debug, Default)]
pub(crate) struct Rejected {
    pub(crate) lines: Vec<ErrorOutput>,
    pub(crate) bytes: u64,
}

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
    /// A partition's object: its partition (an Iceberg destination's: the table and its
    /// partition tuple).
    pub(crate) partition: Option<Arc<crate::keys::template::PartitionValues>>,
    /// An Iceberg table with unique keys: what the object's commit removes besides adding its
    /// rows (its data file holds the rows of inserts and updates only).
    pub(crate) changes: Option<Box<RowChanges>>,
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
    /// Rows written to a converted object's file (a delete writes none).
    rows: u64,
    /// Row-level operations seen, if the records carry any.
    changes: Option<Tracker>,
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
    /// A conversion to take once a replay has cut its objects again (`change_conversion`).
    pending: Option<Arc<Conversion>>,
    /// Waits for space when a write finds the disk full.
    patience: Arc<Patience>,
    /// Set for exactly-once delivery.
    identity: Option<Identity>,
    /// Records are framed (`FRAME_HEADER` then the bytes) for a sink that sends them one by
    /// one (an HTTP endpoint), not concatenated; the object's key is its uuid (the request id).
    framed: bool,
    /// How GZIP is compressed (on every core for the main object, lean for partitions).
    gzip: GzipMode,
    /// Where format conversion encodes (beside the staging thread for a main object and
    /// Iceberg data files, on it for partitions).
    convert: ConvertMode,
}

/// How an object's GZIP stream is made (`encode`).
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
            pending: None,
            patience: Arc::default(),
            identity: None,
            framed: false,
            gzip: GzipMode::OneStream,
            convert: ConvertMode::Inline,
        }
    }

    /// Encodes converted rows on other cores (`encode::conversion::segments`).
    pub(crate) fn with_parallel_conversion(mut self) -> Self {
        self.convert = ConvertMode::Beside;
        self
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

    /// Writes later records with `conversion` (an Iceberg table whose schema changed): the
    /// open object, written with the one before, is sealed first and returned. An object a
    /// replay cuts again keeps its conversion (it must end where the journal says); the new
    /// one is taken at the first record after the replay.
    pub(crate) fn change_conversion(
        &mut self,
        conversion: &Arc<Conversion>,
    ) -> io::Result<Option<Sealed>> {
        let same = self
            .conversion
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, conversion));
        if same {
            self.pending = None;
            return Ok(None);
        }
        if self.replaying() {
            // Taken at the first record after the replay (`append_changes`).
            self.pending = Some(conversion.clone());
            return Ok(None);
        }
        self.pending = None;
        let sealed = self.seal()?;
        self.conversion = Some(conversion.clone());
        Ok(sealed)
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
        self.append_changes(batch, &[], now, rejected)
    }

    /// `append`, each record with its row-level operation on an Iceberg table with unique
    /// keys (`changes` is empty, or one per record): a delete adds no row, and the object
    /// tracks what its commit must remove (`changes::Tracker`).
    pub(crate) fn append_changes(
        &mut self,
        batch: &[Record],
        changes: &[Option<Change>],
        now: Instant,
        rejected: &mut Rejected,
    ) -> Result<Vec<Sealed>, (io::Error, u64)> {
        let mut sealed = Vec::new();
        for (i, record) in batch.iter().enumerate() {
            let change = changes.get(i).and_then(Option::as_ref);
            let route = match self.identity {
                Some(_) => self
                    .route(&Pos::of(record), &mut sealed)
                    .map_err(|e| (e, 0))?,
                None => Route::Fresh,
            };
            if route == Route::Skip {
                continue;
            }
            // The first record past the journal's objects takes a conversion that changed
            // while they were cut again.
            if route == Route::Fresh && self.pending.is_some() && !self.replaying() {
                sealed.extend(self.seal().map_err(|e| (e, 0))?);
                self.conversion = self.pending.take();
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
            if let Err(e) = self.write(record, change, len, now, rejected) {
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
        // Row groups encoded beside this thread go to the file at the end of each step.
        if let Some(Writer::Parquet(w)) = self.current.as_mut().and_then(|c| c.encoder.as_mut())
            && let Err(e) = w.write_ready()
        {
            return Err((e, self.discard()));
        }
        Ok(sealed)
    }

    fn write(
        &mut self,
        record: &Record,
        change: Option<&Change>,
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
            // A delete's record adds no row; only its key is kept.
            Some(Writer::Parquet(_)) if change.is_some_and(|c| c.op == Op::Delete) => {}
            Some(Writer::Parquet(writer)) => {
                if let Err(why) = writer.append(&record.data)? {
                    if let Some(c) = &self.conversion {
                        rejected.lines.push(misfit_output(c, record, &why));
                        rejected.bytes += record.data.len() as u64;
                    }
                    // An object is never open without a record.
                    if cur.records == 0 {
                        self.discard();
                    }
                    return Ok(());
                }
                cur.rows += 1;
            }
            None => return Ok(()),
        }
        if let Some(c) = change {
            let row = (c.op != Op::Delete).then(|| cur.rows.saturating_sub(1));
            cur.changes.get_or_insert_default().record(c, row);
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
            Some(c) => Writer::Parquet(Box::new(c.writer_in(
                StagingFile {
                    path: path.clone(),
                    file: Some(out),
                    patience: self.patience.clone(),
                    capacity: self.buffer,
                },
                self.convert,
            )?)),
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
            rows: 0,
            changes: None,
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
                partition: self.naming.partition.clone(),
                changes: cur.changes.map(|t| Box::new(t.finish())),
            })),
            Err(e) => {
                let _ = std::fs::remove_file(&cur.path);
                Err(e)
            }
        }
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

mod file;
mod replay;
#[cfg(test)]
mod tests;

use crate::encode::conversion::Mode as ConvertMode;
pub(crate) use file::StagingFile;
use file::{GzipMode, Writer};
pub(crate) use replay::Identity;
use replay::Route;
