//! Exactly-once delivery's journal: before an object is uploaded, its identity (which stager
//! slot, the first and last positions it holds, its key) is appended here and fsync'd. A
//! replay after a crash cuts the same objects from the same records (`ObjectStager`'s replay)
//! and writes each with a conditional put, so "already exists" means delivered. One journal per
//! destination (Direct PUT: positions in the spool), or per destination and Kinesis shard
//! (positions are the shard's sequence numbers, the same on every read), beside the staging
//! files; entries wholly below the cursor are dropped when it is rewritten.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::record::{Record, SequenceNumber};

/// Where a record is in its source, as an identity counts it: its position in the spool
/// (Direct PUT), or, for a Kinesis record, its shard's sequence and subsequence number (the
/// memory log's positions differ from run to run; these do not). Serialized as a number or as
/// `["<sequence number>", subsequence]`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum At {
    Log(u64),
    Shard(SequenceNumber, u64),
}

impl Ord for At {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self, other) {
            (At::Log(a), At::Log(b)) => a.cmp(b),
            (At::Shard(a, x), At::Shard(b, y)) => a.cmp(b).then(x.cmp(y)),
            // Never met in one journal; the lowest spool position is below every shard's.
            (At::Log(_), At::Shard(..)) => Ordering::Less,
            (At::Shard(..), At::Log(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for At {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for At {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for At {}

/// A record's identity position: where it is, and its place among the sub-records split from
/// it (record de-aggregation; 0 otherwise). Serialized as `[at, sub]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub(crate) struct Pos(pub(crate) At, pub(crate) u32);

impl Pos {
    /// Below every position: nothing is delivered.
    pub(crate) const LOWEST: Pos = Pos(At::Log(0), 0);

    /// The record's position: its Kinesis sequence numbers when it has them.
    pub(crate) fn of(r: &Record) -> Pos {
        match &r.kinesis {
            Some(k) => Pos(
                At::Shard(k.sequence_number.clone(), k.subsequence_number),
                r.sub,
            ),
            None => Pos(At::Log(r.seq), r.sub),
        }
    }

    /// The cursor of a spool: every record below log position `seq` is delivered.
    pub(crate) fn log(seq: u64) -> Pos {
        Pos(At::Log(seq), 0)
    }

    /// Just past Kinesis record (`sequence`, `subsequence`) and every sub-record split from it:
    /// the cursor of a shard checkpointed there.
    pub(crate) fn past_shard_record(sequence: &SequenceNumber, subsequence: u64) -> Pos {
        Pos(
            At::Shard(sequence.clone(), subsequence.saturating_add(1)),
            0,
        )
    }
}

/// One object's identity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Entry {
    /// The stager slot: `main`, `backup`, `error/<type>`, `partition/<values as JSON>`.
    pub(crate) slot: String,
    pub(crate) first: Pos,
    pub(crate) last: Pos,
    pub(crate) key: String,
    /// The file name without the extension (a ZIP object's entry name).
    #[serde(default)]
    pub(crate) base: String,
    /// Known delivered (it starts below the cursor): its records are skipped on replay.
    #[serde(skip)]
    pub(crate) delivered: bool,
}

/// Entries beyond this many since the last rewrite make the next write rewrite the file.
const REWRITE_AFTER: usize = 4096;

pub(crate) struct Journal {
    /// Entries written, for the rewrite: those that may still matter.
    kept: Vec<Entry>,
    at: Place,
}

/// Where a journal lives.
enum Place {
    File {
        path: PathBuf,
        file: File,
        appended: usize,
    },
    /// With a shard's lease, for a fleet (`leases`): rewritten whole on every write.
    Store(Box<dyn Store>),
}

/// A journal kept beside a shard's lease rather than in a file: the instance that takes the
/// lease over adopts the identities recorded there, and an instance whose tenure of the lease
/// ended can no longer record any (`Fenced`), so it never uploads an object the new owner does
/// not know of.
pub(crate) trait Store: Send {
    /// Replaces the journal with `text` (JSON lines), if the tenure still holds.
    fn replace(&mut self, text: &str) -> Result<(), JournalError>;
}

/// Why an identity could not be recorded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JournalError {
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The journal's lease is in another tenure: another instance cuts these objects now.
    #[error("the lease's tenure ended: another instance records this shard's objects now")]
    Fenced,
}

/// The entries of `text` (JSON lines; unreadable lines skipped) that still matter at `cursor`,
/// in log order, marked delivered when they start below it; and how many lines it had.
fn entries_at(lines: impl Iterator<Item = Vec<u8>>, cursor: &Pos) -> (Vec<Entry>, usize) {
    let mut entries = Vec::new();
    let mut n = 0;
    for line in lines {
        n += 1;
        // A torn last line (kill -9 during the append) was never fsync'd, so its object was
        // never uploaded: it is skipped.
        if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
            entries.push(e);
        }
    }
    entries.retain(|e| e.last >= *cursor);
    for e in &mut entries {
        e.delivered = e.first < *cursor;
    }
    entries.sort_by(|a, b| a.first.cmp(&b.first));
    (entries, n)
}

fn as_lines(entries: &[Entry]) -> io::Result<String> {
    let mut text = String::new();
    for e in entries {
        text.push_str(&serde_json::to_string(e).map_err(io::Error::other)?);
        text.push('\n');
    }
    Ok(text)
}

impl Journal {
    /// Opens the journal at `path`; returns it and, in log order, the entries that may still
    /// matter for a destination whose cursor is `cursor` (those ending at or past it, marked
    /// `delivered` when they start below it). The file is rewritten with only those.
    pub(crate) fn open(path: &Path, cursor: &Pos) -> io::Result<(Journal, Vec<Entry>)> {
        let mut raw = Vec::new();
        match File::open(path) {
            Ok(f) => {
                // Bytes, not text: a torn tail may split a multi-byte character.
                for line in BufReader::new(f).split(b'\n') {
                    raw.push(line?);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let (entries, lines) = entries_at(raw.into_iter(), cursor);
        // Rewritten only when it holds something to forget (or a torn line): a start-up on a
        // full disk needs no new block for an unchanged journal.
        let file = if lines == entries.len() && ends_with_newline(path)? {
            // What was read may not be on disk yet (written, then kill -9 before its sync):
            // objects are cut from it now, so it is synced first.
            let f = OpenOptions::new().append(true).open(path)?;
            f.sync_all()?;
            f
        } else {
            rewrite(path, &entries)?
        };
        let journal = Journal {
            kept: entries.clone(),
            at: Place::File {
                path: path.to_path_buf(),
                file,
                appended: 0,
            },
        };
        Ok((journal, entries))
    }

    /// A journal in `store`, whose text is now `text`; returns it and the entries that still
    /// matter at `cursor` (as `open`).
    pub(crate) fn in_store(
        store: Box<dyn Store>,
        text: &str,
        cursor: &Pos,
    ) -> (Journal, Vec<Entry>) {
        let lines = text.lines().map(|l| l.as_bytes().to_vec());
        let (entries, _) = entries_at(lines, cursor);
        let journal = Journal {
            kept: entries.clone(),
            at: Place::Store(store),
        };
        (journal, entries)
    }

    /// Records `entries` durably (a file: appended, one fsync, rewritten first when it has
    /// grown; a store: rewritten whole), keeping what ends at or past `cursor`.
    pub(crate) fn record(&mut self, entries: &[Entry], cursor: &Pos) -> Result<(), JournalError> {
        if entries.is_empty() {
            return Ok(());
        }
        match &mut self.at {
            Place::File {
                path,
                file,
                appended,
            } => {
                if *appended >= REWRITE_AFTER {
                    self.kept.retain(|e| e.last >= *cursor);
                    *file = rewrite(path, &self.kept)?;
                    *appended = 0;
                }
                file.write_all(as_lines(entries)?.as_bytes())?;
                file.sync_data()?;
                *appended += entries.len();
                self.kept.extend(entries.iter().cloned());
            }
            Place::Store(store) => {
                let mut kept: Vec<Entry> = self
                    .kept
                    .iter()
                    .filter(|e| e.last >= *cursor)
                    .cloned()
                    .collect();
                kept.extend(entries.iter().cloned());
                store.replace(&as_lines(&kept)?)?;
                self.kept = kept;
            }
        }
        Ok(())
    }
}

/// Whether the file ends with a complete line (or is empty): a later append must not be glued
/// to a torn one. False when there is no file.
fn ends_with_newline(path: &Path) -> io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if f.metadata()?.len() == 0 {
        return Ok(true);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// Writes `entries` to a temporary file, fsyncs it, renames it over `path` and fsyncs the
/// folder; returns the file opened for appending.
fn rewrite(path: &Path, entries: &[Entry]) -> io::Result<File> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(as_lines(entries)?.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    OpenOptions::new().append(true).open(path)
}

/// The entries of one slot, in log order.
pub(crate) fn of_slot(entries: &[Entry], slot: &str) -> VecDeque<Entry> {
    entries.iter().filter(|e| e.slot == slot).cloned().collect()
}

/// The name-based UUID (v5) of an object: the destination's namespace, its slot and its first
/// record's position. The same records cut into the same object on a replay get the same name.
pub(crate) fn object_uuid(namespace: &str, slot: &str, first: &Pos) -> uuid::Uuid {
    let name = match &first.0 {
        At::Log(seq) => format!("{namespace}/{slot}/{seq}.{}", first.1),
        At::Shard(seq, subseq) => format!("{namespace}/{slot}/{seq}.{subseq}.{}", first.1),
    };
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(slot: &str, first: u64, last: u64) -> Entry {
        Entry {
            slot: slot.into(),
            first: Pos::log(first),
            last: Pos::log(last),
            key: format!("k{first}"),
            base: String::new(),
            delivered: false,
        }
    }

    #[test]
    fn entries_below_the_cursor_go_and_those_across_it_are_delivered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal");
        let (mut j, none) = Journal::open(&path, &Pos::LOWEST).expect("open");
        assert!(none.is_empty());
        let all = [
            entry("main", 0, 9),
            entry("backup", 5, 20),
            entry("main", 10, 30),
        ];
        j.record(&all, &Pos::LOWEST).expect("record");
        drop(j);
        // A torn line from a kill -9 mid-append is ignored.
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"slot\":\"main\",\"fir").expect("write");
        drop(f);
        let (_, kept) = Journal::open(&path, &Pos::log(12)).expect("reopen");
        let got: Vec<(&str, Pos, bool)> = kept
            .iter()
            .map(|e| (e.slot.as_str(), e.first.clone(), e.delivered))
            .collect();
        assert_eq!(
            got,
            [("backup", Pos::log(5), true), ("main", Pos::log(10), true)]
        );
        // A complete last entry whose newline never made it: the next append starts a line.
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        let line = serde_json::to_string(&entry("error/x", 40, 41)).expect("json");
        f.write_all(line.as_bytes()).expect("write");
        drop(f);
        let (mut j, kept) = Journal::open(&path, &Pos::log(12)).expect("reopen");
        assert_eq!(kept.len(), 3);
        j.record(&[entry("main", 50, 51)], &Pos::log(12))
            .expect("record");
        drop(j);
        let (_, kept) = Journal::open(&path, &Pos::log(12)).expect("reopen");
        assert_eq!(
            kept.len(),
            4,
            "nothing glued to the unterminated line: {kept:?}"
        );
        let (_, kept) = Journal::open(&path, &Pos::log(10)).expect("again");
        assert_eq!(kept.len(), 4, "the rewrite kept them all: {kept:?}");
        assert!(kept[0].delivered && !kept[1].delivered, "{kept:?}");
    }

    #[test]
    fn names_depend_on_the_identity_only() {
        let at = |seq, sub| Pos(At::Log(seq), sub);
        let a = object_uuid("s/0", "main", &at(7, 0));
        assert_eq!(a, object_uuid("s/0", "main", &at(7, 0)));
        assert_ne!(a, object_uuid("s/0", "main", &at(7, 1)));
        assert_ne!(a, object_uuid("s/1", "main", &at(7, 0)));
        assert_ne!(a, object_uuid("s/0", "backup", &at(7, 0)));
        // The names of journals written before shard positions existed stay the same.
        assert_eq!(
            a,
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, b"s/0/main/7.0")
        );
    }

    #[test]
    fn shard_positions_order_as_numbers_and_read_back_from_the_journal() {
        let shard = |seq: &str, subseq| Pos(At::Shard(seq.into(), subseq), 0);
        assert!(shard("9", 5) < shard("10", 0), "numeric, not text");
        assert!(shard("10", 0) < shard("10", 1));
        assert!(shard("10", 0) < Pos(At::Shard("10".into(), 0), 1));
        let cursor = Pos::past_shard_record(&"10".into(), 3);
        assert!(shard("10", 3) < cursor && cursor <= shard("10", 4));
        assert!(
            Pos(At::Shard("10".into(), 3), 7) < cursor,
            "its sub-records too"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal");
        let (mut j, _) = Journal::open(&path, &Pos::LOWEST).expect("open");
        let e = |first: Pos, last: Pos| Entry {
            slot: "main".into(),
            first,
            last,
            key: "k".into(),
            base: String::new(),
            delivered: false,
        };
        let long = "49590338271490256608559692538361571095921575989136588898";
        j.record(
            &[
                e(shard("8", 0), shard("10", 2)),
                e(shard("10", 3), shard(long, 0)),
            ],
            &Pos::LOWEST,
        )
        .expect("record");
        drop(j);
        let (_, kept) = Journal::open(&path, &cursor).expect("reopen");
        assert_eq!(kept.len(), 1, "the first ends below the checkpoint");
        assert!(kept[0].delivered, "it starts at the checkpoint");
        assert_eq!(kept[0].last, shard(long, 0));
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains(&format!("[[\"{long}\",0],0]")), "{text}");
    }
}
