//! Exactly-once delivery's journal: before an object is uploaded, its identity (which stager
//! slot, the first and last log positions it holds, its key) is appended here and fsync'd. A
//! replay after a crash cuts the same objects from the same records (`ObjectStager`'s replay)
//! and writes each with a conditional put, so "already exists" means delivered. One journal per
//! destination, beside its staging files; entries wholly below the destination's cursor are
//! dropped when it is rewritten.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// A record's position in the stream's log: its sequence number and, for a de-aggregated
/// sub-record, its place among its parent's.
pub(crate) type Pos = (u64, u32);

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
    path: PathBuf,
    file: File,
    /// Entries written, for the rewrite: those that may still matter.
    kept: Vec<Entry>,
    appended: usize,
}

impl Journal {
    /// Opens the journal at `path`; returns it and, in log order, the entries that may still
    /// matter for a destination whose cursor is `cursor` (those ending at or past it, marked
    /// `delivered` when they start below it). The file is rewritten with only those.
    pub(crate) fn open(path: &Path, cursor: u64) -> io::Result<(Journal, Vec<Entry>)> {
        let mut entries = Vec::new();
        let mut lines = 0;
        match File::open(path) {
            Ok(f) => {
                // Bytes, not text: a torn tail may split a multi-byte character.
                for line in BufReader::new(f).split(b'\n') {
                    let line = line?;
                    lines += 1;
                    // A torn last line (kill -9 during the append) was never fsync'd, so its
                    // object was never uploaded: it is skipped.
                    if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
                        entries.push(e);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        entries.retain(|e| e.last.0 >= cursor);
        for e in &mut entries {
            e.delivered = e.first.0 < cursor;
        }
        entries.sort_by_key(|e| e.first);
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
            path: path.to_path_buf(),
            file,
            kept: entries.clone(),
            appended: 0,
        };
        Ok((journal, entries))
    }

    /// Appends `entries` durably (one fsync), rewriting the file first when it has grown,
    /// keeping what ends at or past `cursor`.
    pub(crate) fn record(&mut self, entries: &[Entry], cursor: u64) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        if self.appended >= REWRITE_AFTER {
            self.kept.retain(|e| e.last.0 >= cursor);
            self.file = rewrite(&self.path, &self.kept)?;
            self.appended = 0;
        }
        let mut text = String::new();
        for e in entries {
            text.push_str(&serde_json::to_string(e).map_err(io::Error::other)?);
            text.push('\n');
        }
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()?;
        self.kept.extend(entries.iter().cloned());
        self.appended += entries.len();
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
        let mut text = String::new();
        for e in entries {
            text.push_str(&serde_json::to_string(e).map_err(io::Error::other)?);
            text.push('\n');
        }
        f.write_all(text.as_bytes())?;
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
pub(crate) fn object_uuid(namespace: &str, slot: &str, first: Pos) -> uuid::Uuid {
    let name = format!("{namespace}/{slot}/{}.{}", first.0, first.1);
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(slot: &str, first: u64, last: u64) -> Entry {
        Entry {
            slot: slot.into(),
            first: (first, 0),
            last: (last, 0),
            key: format!("k{first}"),
            base: String::new(),
            delivered: false,
        }
    }

    #[test]
    fn entries_below_the_cursor_go_and_those_across_it_are_delivered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("journal");
        let (mut j, none) = Journal::open(&path, 0).expect("open");
        assert!(none.is_empty());
        let all = [
            entry("main", 0, 9),
            entry("backup", 5, 20),
            entry("main", 10, 30),
        ];
        j.record(&all, 0).expect("record");
        drop(j);
        // A torn line from a kill -9 mid-append is ignored.
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"slot\":\"main\",\"fir").expect("write");
        drop(f);
        let (_, kept) = Journal::open(&path, 12).expect("reopen");
        let got: Vec<(&str, u64, bool)> = kept
            .iter()
            .map(|e| (e.slot.as_str(), e.first.0, e.delivered))
            .collect();
        assert_eq!(got, [("backup", 5, true), ("main", 10, true)]);
        // A complete last entry whose newline never made it: the next append starts a line.
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        let line = serde_json::to_string(&entry("error/x", 40, 41)).expect("json");
        f.write_all(line.as_bytes()).expect("write");
        drop(f);
        let (mut j, kept) = Journal::open(&path, 12).expect("reopen");
        assert_eq!(kept.len(), 3);
        j.record(&[entry("main", 50, 51)], 12).expect("record");
        drop(j);
        let (_, kept) = Journal::open(&path, 12).expect("reopen");
        assert_eq!(
            kept.len(),
            4,
            "nothing glued to the unterminated line: {kept:?}"
        );
        let (_, kept) = Journal::open(&path, 10).expect("again");
        assert_eq!(kept.len(), 4, "the rewrite kept them all: {kept:?}");
        assert!(kept[0].delivered && !kept[1].delivered, "{kept:?}");
    }

    #[test]
    fn names_depend_on_the_identity_only() {
        let a = object_uuid("s/0", "main", (7, 0));
        assert_eq!(a, object_uuid("s/0", "main", (7, 0)));
        assert_ne!(a, object_uuid("s/0", "main", (7, 1)));
        assert_ne!(a, object_uuid("s/1", "main", (7, 0)));
        assert_ne!(a, object_uuid("s/0", "backup", (7, 0)));
    }
}
