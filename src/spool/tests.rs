use super::*;
use bytes::Bytes;

fn settings(segment_bytes: u64) -> SpoolSettings {
    SpoolSettings {
        segment_bytes,
        fsync: true,
    }
}

fn data(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

async fn read_all(r: &mut Reader) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    loop {
        let batch = r.read(1 << 20).await.expect("reads");
        if batch.is_empty() {
            return out;
        }
        out.extend(
            batch
                .into_iter()
                .map(|rec| (rec.seq, String::from_utf8_lossy(&rec.data).into_owned())),
        );
    }
}

#[tokio::test]
async fn append_read_release_reclaims_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let budget = Budget::new(1 << 30, None);
    let spool = Spool::open(dir.path(), 1, settings(100), budget.clone()).expect("opens");
    for i in 0..10 {
        let first = spool
            .append(
                vec![data(&format!("a{i}")), data(&format!("b{i}"))],
                1000 + i,
            )
            .await
            .expect("durable");
        assert_eq!(first, 2 * i as u64);
    }
    assert_eq!(spool.end(), 20);
    assert!(
        segment::list(dir.path()).expect("list").len() > 3,
        "small segments roll"
    );
    let mut r = spool.reader(0).expect("reader");
    let all = read_all(&mut r).await;
    assert_eq!(all.len(), 20);
    assert_eq!(all[0], (0, "a0".into()));
    assert_eq!(all[19], (19, "b9".into()));
    assert!(budget.used() > 0);
    let spool = Arc::new(spool);
    let s = spool.clone();
    tokio::task::spawn_blocking(move || s.release(0, 20))
        .await
        .expect("joins")
        .expect("released");
    assert_eq!(
        segment::list(dir.path()).expect("list"),
        vec![(20, 0)],
        "caught up: the active segment was rolled and every segment reclaimed"
    );
    assert_eq!(budget.used(), 0);
    assert_eq!(spool.backlog(), 0);
    spool.close();
}

#[tokio::test]
async fn reopen_replays_from_the_cursor_and_cuts_a_torn_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let spool = Spool::open(dir.path(), 2, settings(1 << 20), Budget::new(1 << 30, None))
            .expect("opens");
        for i in 0..5 {
            spool
                .append(vec![data(&format!("r{i}"))], i)
                .await
                .expect("durable");
        }
        spool.release(0, 3).expect("consumer 0 delivered 0..3"); // not caught up: no roll
        spool.close();
    }
    // A crash in the middle of a write leaves half a frame behind.
    let last = segment::list(dir.path())
        .expect("list")
        .last()
        .copied()
        .expect("a segment");
    let path = segment::path(dir.path(), last.0);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    std::io::Write::write_all(&mut f, &[7, 0, 0, 0, 1, 2]).expect("torn write");
    drop(f);

    let spool =
        Spool::open(dir.path(), 2, settings(1 << 20), Budget::new(1 << 30, None)).expect("reopens");
    assert_eq!(spool.end(), 5);
    let mut r0 = spool.reader(0).expect("reader 0");
    let mut r1 = spool.reader(1).expect("reader 1");
    assert_eq!(
        read_all(&mut r0).await,
        vec![(3, "r3".into()), (4, "r4".into())]
    );
    assert_eq!(
        read_all(&mut r1).await.len(),
        5,
        "consumer 1 never released anything"
    );
    let first = spool.append(vec![data("after")], 9).await.expect("durable");
    assert_eq!(first, 5, "sequence numbers continue after the cut");
    assert_eq!(read_all(&mut r0).await, vec![(5, "after".into())]);
    spool.close();
}

#[tokio::test]
async fn a_full_budget_refuses_without_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool =
        Spool::open(dir.path(), 1, settings(1 << 20), Budget::new(100, None)).expect("opens");
    spool
        .append(vec![data(&"x".repeat(50))], 1)
        .await
        .expect("fits");
    let err = spool
        .append(vec![data(&"y".repeat(50))], 2)
        .await
        .expect_err("over budget");
    assert!(matches!(err, SpoolError::Full));
    assert_eq!(spool.end(), 1);
    let spool = Arc::new(spool);
    let s = spool.clone();
    tokio::task::spawn_blocking(move || s.release(0, 1))
        .await
        .expect("joins")
        .expect("released");
    spool
        .append(vec![data(&"y".repeat(50))], 2)
        .await
        .expect("fits once delivered data is reclaimed");
    spool.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_all_durable_and_ordered_per_producer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Arc::new(
        Spool::open(dir.path(), 1, settings(4096), Budget::new(1 << 30, None)).expect("opens"),
    );
    let mut tasks = Vec::new();
    for p in 0..8 {
        let spool = spool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                spool
                    .append(vec![data(&format!("{p}:{i}"))], 0)
                    .await
                    .expect("durable");
            }
        }));
    }
    for t in tasks {
        t.await.expect("producer");
    }
    let mut r = spool.reader(0).expect("reader");
    let all = read_all(&mut r).await;
    assert_eq!(all.len(), 400);
    for p in 0..8 {
        let mine: Vec<u32> = all
            .iter()
            .filter_map(|(_, s)| {
                s.strip_prefix(&format!("{p}:"))
                    .and_then(|i| i.parse().ok())
            })
            .collect();
        assert_eq!(mine, (0..50).collect::<Vec<_>>());
    }
    spool.close();
}

#[tokio::test]
async fn refusals_do_not_give_budget_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let budget = Budget::new(1 << 20, None);
    let spool = Spool::open(dir.path(), 1, settings(1 << 20), budget.clone()).expect("opens");
    let batch = || {
        (0..100)
            .map(|_| data(&"f".repeat(1000)))
            .collect::<Vec<_>>()
    };
    while spool.append(batch(), 1).await.is_ok() {}
    let used = budget.used();
    let big = || vec![data(&"b".repeat(150_000))];
    assert!(matches!(
        spool.append(big(), 2).await,
        Err(SpoolError::Full)
    ));
    assert_eq!(budget.used(), used);
    assert!(matches!(
        spool.append(big(), 3).await,
        Err(SpoolError::Full)
    ));
    assert_eq!(budget.used(), used);
    spool.close();
}

#[test]
fn a_cursor_is_written_in_place_and_a_torn_slot_falls_back_to_the_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    // An earlier version's text cursor is read, then replaced by slots.
    std::fs::write(dir.path().join("cursor-0"), "7\n").expect("text cursor");
    assert_eq!(
        super::load_cursor(dir.path(), 0).expect("reads"),
        Some((7, 0))
    );
    for (seq, generation) in [(10, 1), (20, 2), (30, 3)] {
        super::store_cursor(dir.path(), 0, seq, generation).expect("stored");
        assert_eq!(
            super::load_cursor(dir.path(), 0).expect("reads"),
            Some((seq, generation))
        );
    }
    let path = dir.path().join("cursor-0");
    assert_eq!(
        std::fs::metadata(&path).expect("file").len(),
        32,
        "two slots, in place"
    );
    // Tear the newest slot (generation 3 is in slot 1): the other, one delivery older, is used.
    let mut bytes = std::fs::read(&path).expect("file");
    bytes[16 + 3] ^= 0xff;
    std::fs::write(&path, &bytes).expect("torn");
    assert_eq!(
        super::load_cursor(dir.path(), 0).expect("reads"),
        Some((20, 2))
    );
    // Generations wrap: u32::MAX then 0 is newer.
    super::store_cursor(dir.path(), 0, 40, u32::MAX).expect("stored");
    super::store_cursor(dir.path(), 0, 50, 0).expect("stored");
    assert_eq!(
        super::load_cursor(dir.path(), 0).expect("reads"),
        Some((50, 0))
    );
    // Both slots torn, or an empty file: no cursor (the destination replays from the oldest
    // segment: duplicates, never a gap), rather than a spool that cannot open.
    std::fs::write(&path, [0u8; 32]).expect("zeroed");
    assert_eq!(super::load_cursor(dir.path(), 0).expect("reads"), None);
    std::fs::write(&path, b"").expect("emptied");
    assert_eq!(super::load_cursor(dir.path(), 0).expect("reads"), None);
}

/// A batch's RecordIds: unique per spool and sequence number, and written into an answer as
/// serde_json writes `[{"RecordId": id}, ...]` (the general way of PutRecordBatch's answer).
#[tokio::test]
async fn record_ids_are_the_spool_s_and_written_as_serde_json_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spool =
        Spool::open(dir.path(), 1, settings(100), Budget::new(1 << 30, None)).expect("opens");
    let ids = spool.record_ids(7, 3);
    let listed: Vec<String> = ids.iter().collect();
    assert_eq!(listed.len(), ids.len());
    assert!(listed.iter().all(|id| id.len() == 32
        && id.ends_with(&format!(
            "{:016x}",
            7 + listed.iter().position(|x| x == id).unwrap_or(0)
        ))));
    let other = Spool::open(
        &dir.path().join("b"),
        1,
        settings(100),
        Budget::new(1 << 30, None),
    )
    .expect("opens");
    assert!(
        other.record_ids(7, 1).iter().next() != listed.first().cloned(),
        "another spool, other ids"
    );
    let mut text = String::from("[");
    ids.write_json_entries(&mut text);
    text.push(']');
    let general: Vec<serde_json::Value> = listed
        .iter()
        .map(|id| serde_json::json!({"RecordId": id}))
        .collect();
    assert_eq!(text, serde_json::to_string(&general).expect("json"));
    // Every hex digit, in every place.
    let high = spool.record_ids(0xfedc_ba98_7654_3210, 2);
    let mut text = String::new();
    high.write_json_entries(&mut text);
    let listed: Vec<String> = high.iter().collect();
    assert_eq!(
        text,
        format!(
            r#"{{"RecordId":"{}"}},{{"RecordId":"{}"}}"#,
            listed[0], listed[1]
        )
    );
    assert!(listed[0].ends_with("fedcba9876543210"), "{}", listed[0]);
}
