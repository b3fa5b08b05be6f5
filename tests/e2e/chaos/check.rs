//! The invariant checker of a chaos run, after the faults stop and everything drains: what the
//! destinations hold, read straight from s3s-fs's folder (objects are files at
//! `<root>/<bucket>/<key>`) and from the fleet's directories, against what the producers logged
//! as acknowledged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use super::load::action;
use crate::support::*;

/// What an object holds, as the checker needs it: the id of each JSON record (of the record an
/// error record carries, once that record is checked to be well formed), or each line as it is
/// (Kinesis records).
#[derive(Clone, Copy)]
pub(super) enum Parse {
    Ids,
    Lines,
    /// Parquet files: the `id` column of every row.
    ParquetIds,
}

/// The objects read so far, by path: an object is written once, so one already read (same size
/// and time) is not read again while the checker waits for the drain.
#[derive(Default)]
pub(super) struct Objects {
    cache: HashMap<PathBuf, (u64, SystemTime, Arc<Vec<String>>)>,
}

impl Objects {
    /// Every file under `dir` (key -> its items), in key order, or the first that cannot be
    /// read whole yet (an upload still being written). firehosed's own objects (`.firehosed/`:
    /// the exactly-once start-up probe) are not records.
    pub(super) fn under(
        &mut self,
        dir: &Path,
        gzip: bool,
        parse: Parse,
    ) -> Result<BTreeMap<String, Arc<Vec<String>>>, String> {
        let mut out = BTreeMap::new();
        for key in files_under(dir) {
            if key.starts_with(".firehosed/") {
                continue;
            }
            let path = dir.join(&key);
            let unreadable = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
            let meta = std::fs::metadata(&path).map_err(|e| unreadable(&e))?;
            let stamp = (meta.len(), meta.modified().map_err(|e| unreadable(&e))?);
            if let Some((len, mtime, items)) = self.cache.get(&path)
                && (*len, *mtime) == stamp
            {
                out.insert(key, items.clone());
                continue;
            }
            let raw = std::fs::read(&path).map_err(|e| unreadable(&e))?;
            if let (Parse::ParquetIds, false) = (parse, key.contains("errors")) {
                let items = Arc::new(parquet_ids(raw).map_err(|e| unreadable(&e))?);
                self.cache.insert(path, (stamp.0, stamp.1, items.clone()));
                out.insert(key, items);
                continue;
            }
            let data = if gzip {
                let mut d = Vec::new();
                flate2::read::MultiGzDecoder::new(&raw[..])
                    .read_to_end(&mut d)
                    .map_err(|e| unreadable(&e))?;
                d
            } else {
                raw
            };
            let text = String::from_utf8(data).map_err(|e| unreadable(&e))?;
            let lines = text.lines().filter(|l| !l.is_empty());
            let items: Vec<String> = match parse {
                Parse::Lines => lines.map(str::to_string).collect(),
                Parse::Ids | Parse::ParquetIds if key.contains("errors") => {
                    lines.map(|l| error_record_id(&key, l)).collect()
                }
                Parse::Ids | Parse::ParquetIds => lines
                    .map(|l| id_of(l).unwrap_or_else(|| panic!("{key}: a line with no id: {l:?}")))
                    .collect(),
            };
            let items = Arc::new(items);
            self.cache.insert(path, (stamp.0, stamp.1, items.clone()));
            out.insert(key, items);
        }
        Ok(out)
    }

    /// The items of every file under each of `dirs`, files in the order they were written.
    pub(super) fn in_write_order(&mut self, dirs: &[PathBuf]) -> Result<Vec<String>, String> {
        let mut files: Vec<(SystemTime, String, Arc<Vec<String>>)> = Vec::new();
        for dir in dirs {
            for (key, items) in self.under(dir, false, Parse::Lines)? {
                let path = dir.join(&key);
                let (_, mtime, _) = self.cache.get(&path).ok_or("read, not cached")?;
                files.push((*mtime, path.display().to_string(), items));
            }
        }
        files.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        Ok(files
            .into_iter()
            .flat_map(|(_, _, items)| items.iter().cloned().collect::<Vec<_>>())
            .collect())
    }
}

/// The `id` column of every row of a Parquet file (read with the parquet crate's Arrow reader).
fn parquet_ids(raw: Vec<u8>) -> Result<Vec<String>, parquet::errors::ParquetError> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(raw),
    )?
    .build()?;
    let mut ids = Vec::new();
    for batch in reader {
        let batch = batch?;
        let column = batch
            .column_by_name("id")
            .ok_or_else(|| parquet::errors::ParquetError::General("no id column".into()))?;
        let strings = column.as_string::<i32>();
        ids.extend((0..strings.len()).map(|i| strings.value(i).to_string()));
    }
    Ok(ids)
}

/// The `"id":"..."` of a record as the producers wrote it (and the Lambda handler kept it):
/// found, not parsed, so that reading a run's millions of records stays cheap.
fn id_of(line: &str) -> Option<String> {
    let start = line.find("\"id\":\"")? + 6;
    let len = line[start..].find('"')?;
    Some(line[start..start + len].to_string())
}

/// The id of the record an error record carries, checking the error record is well formed as
/// AWS writes them (errorCode, errorMessage, attemptsMade, timestamps, rawData).
fn error_record_id(key: &str, line: &str) -> String {
    let e: Value = serde_json::from_str(line)
        .unwrap_or_else(|err| panic!("error record in {key} is not JSON ({err})"));
    for field in ["errorCode", "errorMessage", "rawData"] {
        assert!(e[field].is_string(), "{key}: no {field} in {e}");
    }
    assert!(e["attemptsMade"].as_u64().is_some(), "{key}: {e}");
    assert!(
        e["attemptEndingTimestamp"].as_i64() >= e["arrivalTimestamp"].as_i64(),
        "{key}: {e}"
    );
    let raw = base64_decode(e["rawData"].as_str().unwrap_or_default());
    let raw = String::from_utf8_lossy(&raw);
    id_of(&raw).unwrap_or_else(|| panic!("{key}: rawData is not the record: {raw:?}"))
}

/// The HTTP endpoint's request log, read as it grows: id -> how many times it arrived in a
/// request the endpoint answered with 200.
#[derive(Default)]
pub(super) struct EndpointLog {
    read: usize,
    pub(super) delivered: BTreeMap<String, u32>,
}

impl EndpointLog {
    /// Takes the whole lines written since the last call.
    pub(super) fn update(&mut self, path: &Path) {
        let Ok(text) = std::fs::read(path) else {
            return;
        };
        let Some(end) = text.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        if end < self.read {
            return;
        }
        for line in text[self.read..end]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let r: Value = serde_json::from_slice(line).expect("a request log line");
            assert_eq!(
                r["violations"],
                serde_json::json!([]),
                "a request broke AWS's specification: {r}"
            );
            if r["answer"] != "ok" {
                continue;
            }
            for d in r["records"].as_array().into_iter().flatten() {
                let raw = base64_decode(d.as_str().unwrap_or_default());
                let text = String::from_utf8_lossy(&raw);
                let id = id_of(&text).unwrap_or_else(|| panic!("a record with no id: {text:?}"));
                *self.delivered.entry(id).or_default() += 1;
            }
        }
        self.read = end + 1;
    }
}

/// item -> how many times it is in the objects whose keys start with `prefix`.
pub(super) fn count(
    objects: &BTreeMap<String, Arc<Vec<String>>>,
    prefix: &str,
) -> BTreeMap<String, u32> {
    let mut count = BTreeMap::new();
    for (_, items) in objects.iter().filter(|(k, _)| k.starts_with(prefix)) {
        for i in items.iter() {
            *count.entry(i.clone()).or_default() += 1;
        }
    }
    count
}

/// What one destination holds against what was acknowledged.
#[derive(Debug, Default, Clone)]
pub(super) struct Tally {
    pub(super) acked: usize,
    pub(super) missing: usize,
    /// Deliveries beyond the first (of any id, acknowledged or not).
    pub(super) duplicates: usize,
    /// Records in the wrong place (a dropped record delivered, a failed one in the data, one
    /// in both the data and the error output, an id nobody sent).
    pub(super) misplaced: usize,
    pub(super) example: Option<String>,
}

impl Tally {
    fn missed(&mut self, id: &str) {
        self.missing += 1;
        self.example.get_or_insert_with(|| format!("missing {id}"));
    }

    fn wrong(&mut self, what: String) {
        self.misplaced += 1;
        self.example.get_or_insert(what);
    }
}

/// A plain stream: every acknowledged id delivered; ids nobody sent are misplaced.
pub(super) fn plain(
    acked: &BTreeSet<String>,
    sent_prefix: &str,
    got: &BTreeMap<String, u32>,
) -> Tally {
    let mut t = Tally {
        acked: acked.len(),
        ..Tally::default()
    };
    for id in acked {
        if !got.contains_key(id) {
            t.missed(id);
        }
    }
    for (id, n) in got {
        t.duplicates += (*n as usize).saturating_sub(1);
        if !id.starts_with(sent_prefix) {
            t.wrong(format!("{id} was never sent"));
        }
    }
    t
}

/// The stream through the Lambda handler: keep -> the data, fail -> the error output, drop ->
/// nowhere; every record in exactly one of them.
pub(super) fn transformed(
    acked: &BTreeSet<String>,
    data: &BTreeMap<String, u32>,
    errors: &BTreeMap<String, u32>,
) -> Tally {
    let mut t = Tally {
        acked: acked.len(),
        ..Tally::default()
    };
    let seq = |id: &str| -> u64 {
        id.rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{id}: not a producer's id"))
    };
    for id in acked {
        let place = match action(seq(id)) {
            "keep" => data,
            "fail" => errors,
            _ => continue,
        };
        if !place.contains_key(id) {
            t.missed(id);
        }
    }
    for (id, n) in data {
        t.duplicates += (*n as usize).saturating_sub(1);
        if action(seq(id)) != "keep" {
            t.wrong(format!("{id} ({}) delivered", action(seq(id))));
        }
        if errors.contains_key(id) {
            t.wrong(format!("{id} both delivered and in the error output"));
        }
    }
    for (id, n) in errors {
        t.duplicates += (*n as usize).saturating_sub(1);
        if action(seq(id)) != "fail" {
            t.wrong(format!("{id} ({}) in the error output", action(seq(id))));
        }
    }
    t
}

/// Per partition key, the first deliveries come in Kinesis's order (the sequence numbers the
/// producer logged; within a shard they grow, and a child's follow its parents'): the first
/// pair out of order, if any.
pub(super) fn order_violation(
    lines: &[String],
    sequence: &HashMap<String, String>,
) -> Option<String> {
    // Sequence numbers are decimal strings of up to 128 bits: compared by length, then text.
    let mut last: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    let mut taken = BTreeSet::new();
    for l in lines.iter().filter(|l| taken.insert(l.as_str())) {
        let Some(seq) = sequence.get(l) else {
            return Some(format!("{l}: not a record Kinesis accepted"));
        };
        let Some(key) = l.rsplit('-').nth(1) else {
            return Some(format!("{l}: not a producer's record"));
        };
        let at = (seq.len(), seq.as_str());
        if let Some(prev) = last.insert(key, at)
            && at < prev
        {
            return Some(format!(
                "key {key}: {l} (sequence {seq}) delivered after sequence {}",
                prev.1
            ));
        }
    }
    None
}
