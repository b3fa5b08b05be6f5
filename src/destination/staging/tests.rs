//! One object's life: never larger than its size limit, suspended and resumed as a new
//! compressed member (or a valid Parquet file), framed for an HTTP endpoint, and, exactly-once,
//! cut again after a restart under the names the journal holds.

use super::*;
use crate::destination::journal;
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
                    let clen =
                        u32::from_be_bytes(data[pos + 4..pos + 8].try_into().expect("4")) as usize;
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
    use crate::encode::columnar::Rules;
    use crate::encode::columnar::schema::{Column, HiveType};
    use crate::encode::conversion::{CatalogTable, Conversion};
    use crate::encode::parquet::ParquetOptions;
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

/// The conversion of `parquet_stager` with the columns `names` (all BIGINT).
fn conversion_of(names: &[&str]) -> Arc<Conversion> {
    use crate::encode::columnar::Rules;
    use crate::encode::columnar::schema::{Column, HiveType};
    use crate::encode::conversion::CatalogTable;
    use crate::encode::parquet::ParquetOptions;
    let columns = names
        .iter()
        .map(|n| Column {
            name: (*n).into(),
            ty: HiveType::BigInt,
        })
        .collect();
    Arc::new(Conversion::new(
        columns,
        Rules::default(),
        Vec::new(),
        ParquetOptions::DEFAULT,
        CatalogTable::default(),
    ))
}

#[test]
fn a_new_conversion_seals_the_object_written_with_the_old_one() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let old = conversion_of(&["id"]);
    let mut s = parquet_stager(dir.path()).with_conversion(Some(old.clone()));
    let now = Instant::now();
    let mut rejected = Rejected::default();
    s.append(&[rec(r#"{"id":1,"x":7}"#, 1)], now, &mut rejected)
        .expect("appends");
    // The same conversion (a table read again that nobody changed): nothing happens.
    assert!(s.change_conversion(&old).expect("same").is_none());
    // A column added (schema evolution): the open object ends with the columns it had.
    let new = conversion_of(&["id", "x"]);
    let sealed = s
        .change_conversion(&new)
        .expect("sealed")
        .expect("an object");
    assert_eq!(sealed.records, 1);
    s.append(&[rec(r#"{"id":2,"x":8}"#, 2)], now, &mut rejected)
        .expect("appends");
    let next = s.seal().expect("seals").expect("open");
    let columns = |o: &Sealed| {
        let reader =
            SerializedFileReader::new(File::open(&o.path).expect("staged")).expect("parquet");
        reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .num_columns()
    };
    assert_eq!((columns(&sealed), columns(&next)), (1, 2));
    // Nothing open: a change seals nothing.
    assert!(s.change_conversion(&old).expect("nothing open").is_none());
}

#[test]
fn a_new_conversion_during_a_replay_is_taken_once_the_journal_s_objects_are_cut_again() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let identity = |replay: Vec<Entry>| {
        let slot = "main".to_string();
        let replay = journal::of_slot(&replay, &slot);
        Some(Identity::new("s/0".into(), slot, replay))
    };
    let now = Instant::now();
    let mut rejected = Rejected::default();
    let batch: Vec<Record> = (1..=4)
        .map(|i| rec(&format!(r#"{{"id":{i},"x":{i}}}"#), i))
        .collect();
    // First run: records 1-2 in one journaled object, written with the columns of the time.
    let old = conversion_of(&["id"]);
    let mut first = parquet_stager(dir.path())
        .with_conversion(Some(old.clone()))
        .with_identity(identity(Vec::new()));
    first
        .append(&batch[..2], now, &mut rejected)
        .expect("appends");
    let journaled = first.seal().expect("seals").expect("open");
    let entry = journaled.identity.clone().expect("identity").0;
    // After a crash the table has a new column; the replay cuts the journal's object again as
    // it was, then the new records take the new columns.
    let mut again = parquet_stager(dir.path())
        .with_conversion(Some(old))
        .with_identity(identity(vec![entry]));
    let new = conversion_of(&["id", "x"]);
    assert!(again.change_conversion(&new).expect("pending").is_none());
    let mut sealed = again.append(&batch, now, &mut rejected).expect("appends");
    sealed.extend(again.seal().expect("seals"));
    let columns = |o: &Sealed| {
        let reader =
            SerializedFileReader::new(File::open(&o.path).expect("staged")).expect("parquet");
        reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .num_columns()
    };
    let got: Vec<(String, u64, usize)> = sealed
        .iter()
        .map(|o| (o.key.clone(), o.records, columns(o)))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0],
        (journaled.key.clone(), 2, 1),
        "cut again as journaled"
    );
    assert_eq!(
        (got[1].1, got[1].2),
        (2, 2),
        "the records after it, with the new column"
    );
}
