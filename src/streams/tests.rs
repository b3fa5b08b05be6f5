//! The one owner of running streams, in process: no change waits on another stream's drain
//! (an update held by a destination that does not answer holds up no create, delete or
//! reload), a delete that comes during an update wins, the drain waits for a create's build
//! in flight and stops what it started, and a flush answers once every record put before it is
//! in the store. Streams deliver into a memory store; nothing here needs AWS or a network.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{Builder, NewStream, Prepared, Streams, StreamsError};
use crate::config::Config;
use crate::control::Status;
use crate::destination::memory::MemorySink;
use crate::shapes::CreateDeliveryStreamInput;
use crate::spec::StreamSpec;
use crate::spool::Budget;

/// A failure instead of a hang: every test here ends in well under this.
const LIVENESS: Duration = Duration::from_secs(60);

/// The configuration of a daemon in `dir` with `streams` (YAML list items).
fn config(dir: &std::path::Path, streams: &str) -> Config {
    let text = format!(
        "state_dir: '{}'\naws: {{region: us-east-1}}\ndelivery_streams:\n{streams}",
        dir.display()
    );
    match crate::config::parse("test.yaml", &text, &|_| None) {
        Ok(c) => c,
        Err(e) => panic!("the test configuration is valid: {e}\n{text}"),
    }
}

/// A Direct PUT stream into bucket `bucket` (the memory store) with a 15-minute interval:
/// nothing is delivered before a flush or a drain.
fn stream(name: &str, bucket: &str, exactly_once: bool) -> String {
    let delivery = match exactly_once {
        true => "\n        delivery: exactly_once",
        false => "",
    };
    format!(
        "  - name: {name}\n    source: {{direct_put: {{}}}}\n    destinations:\n      - s3: {{bucket: {bucket}}}\n        buffering: {{size_mib: 1, interval_seconds: 900}}{delivery}\n"
    )
}

/// The specification of one stream, as the API path would have checked it.
fn spec(dir: &std::path::Path, yaml: &str) -> StreamSpec {
    match config(dir, yaml).streams.pop() {
        Some(s) => s,
        None => panic!("one stream in {yaml}"),
    }
}

struct Daemon {
    streams: Arc<Streams>,
    sink: Arc<MemorySink>,
    dir: tempfile::TempDir,
}

/// Streams restored from a file with `file_streams`, every S3 destination in one memory store.
async fn daemon(file_streams: &str) -> Daemon {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), file_streams);
    super::prepare_dir(&config.state_dir).expect("state_dir");
    let sink = Arc::new(MemorySink::default());
    let (fatal, _) = crate::fatal::channel();
    let budget = Budget::new(64 * 1024 * 1024, None);
    let builder = Builder::new(config.clone(), None, "us-east-1".into(), budget, fatal)
        .with_memory_sink(sink.clone());
    let streams = match Streams::restore(&config, builder).await {
        Ok(s) => s,
        Err(e) => panic!("the streams start: {e}"),
    };
    Daemon { streams, sink, dir }
}

impl Daemon {
    async fn put(&self, name: &str, records: &[&str]) {
        let stream = self.streams.get(name).expect("the stream runs");
        let data = records
            .iter()
            .map(|r| Bytes::from(format!("{r}\n")))
            .collect();
        stream.put(data).await.expect("the records are taken");
    }

    async fn create(&self, yaml: &str) -> Result<String, StreamsError> {
        let config = spec(self.dir.path(), yaml);
        self.streams
            .create(NewStream {
                request: CreateDeliveryStreamInput {
                    delivery_stream_name: Some(config.name.clone()),
                    ..CreateDeliveryStreamInput::default()
                },
                config,
                tags: Default::default(),
                encryption: None,
                glue_columns: None,
            })
            .await
    }

    fn status(&self, name: &str) -> Option<Status> {
        self.streams.records().get(name).map(|r| r.status)
    }

    /// Waits until stream `name` is ACTIVE (its build ran in a task).
    async fn active(&self, name: &str) {
        while self.status(name) != Some(Status::Active) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until the store saw `n` attempts.
    async fn attempts(&self, n: u64) {
        while self.sink.attempts() < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Every record in the store, in key order.
    fn delivered(&self) -> Vec<String> {
        let objects = self.sink.objects();
        objects
            .values()
            .flat_map(|bytes| {
                String::from_utf8_lossy(bytes)
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// UpdateDestination of `name` to `config`, with the record's request kept.
async fn update(
    streams: Arc<Streams>,
    name: String,
    config: StreamSpec,
) -> Result<(), StreamsError> {
    streams
        .update(&name, |record| {
            Ok::<_, StreamsError>(Prepared {
                request: record.request.as_deref().cloned().unwrap_or_default(),
                config,
                glue_columns: None,
            })
        })
        .await
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(LIVENESS, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what} never ended"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_held_by_a_destination_that_does_not_answer_holds_up_no_other_change() {
    within("the test", async {
        let d = daemon(&(stream("file-a", "lake", false) + &stream("file-b", "lake", false))).await;
        d.create(&stream("held", "lake", false))
            .await
            .expect("created");
        d.active("held").await;
        d.create(&stream("doomed", "lake", false))
            .await
            .expect("created");
        d.active("doomed").await;
        d.put("held", &["h1", "h2"]).await;

        // The update's drain delivers h1, h2: the store holds every attempt.
        d.sink.hold(true);
        let next = spec(d.dir.path(), &stream("held", "lake", false));
        let updating = tokio::spawn(update(d.streams.clone(), "held".into(), next));
        d.attempts(1).await;

        // Meanwhile: a create, a delete and a reload (file-b removed) all go through.
        d.create(&stream("fresh", "lake", false))
            .await
            .expect("a create during the update");
        d.streams
            .delete("doomed")
            .await
            .expect("a delete during the update");
        let file = config(d.dir.path(), &stream("file-a", "lake", false)).streams;
        let summary = d
            .streams
            .apply_file(&file)
            .await
            .expect("a reload during the update");
        assert_eq!(summary.removed, vec!["file-b".to_string()]);
        d.active("fresh").await;
        assert!(
            !updating.is_finished(),
            "the update still waits on its drain"
        );
        // A second change of the stream being updated is refused, not queued behind it.
        let again = spec(d.dir.path(), &stream("held", "lake", false));
        let refused = update(d.streams.clone(), "held".into(), again).await;
        assert!(
            matches!(refused, Err(StreamsError::Changing(_))),
            "{refused:?}"
        );

        d.sink.hold(false);
        updating
            .await
            .expect("joined")
            .expect("the update went through");
        let record = d.streams.records().get("held").expect("the record");
        assert_eq!((record.version, record.status), (2, Status::Active));
        assert_eq!(
            d.delivered(),
            vec!["h1", "h2"],
            "drained once, nothing lost"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_during_an_update_wins_and_the_new_configuration_never_starts() {
    within("the test", async {
        let d = daemon(&stream("file-a", "lake", false)).await;
        d.create(&stream("s", "lake", false))
            .await
            .expect("created");
        d.active("s").await;
        d.put("s", &["r1"]).await;
        d.sink.hold(true);
        let next = spec(d.dir.path(), &stream("s", "lake", false));
        let updating = tokio::spawn(update(d.streams.clone(), "s".into(), next));
        d.attempts(1).await;
        d.streams.delete("s").await.expect("the delete is taken");
        assert_eq!(d.status("s"), Some(Status::Deleting));
        d.sink.hold(false);
        let outcome = updating.await.expect("joined");
        assert!(
            matches!(outcome, Err(StreamsError::NotFound { .. })),
            "{outcome:?}"
        );
        while d.status("s").is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(d.streams.get("s").is_none(), "nothing runs under the name");
        assert_eq!(
            d.delivered(),
            vec!["r1"],
            "the record put before the delete is delivered"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_waits_for_a_create_in_flight_and_stops_what_it_started() {
    within("the test", async {
        let d = daemon(&stream("file-a", "lake", false)).await;
        // An exactly-once stream's build probes the store: held, the build stays in flight.
        d.sink.hold(true);
        d.create(&stream("late", "lake", true))
            .await
            .expect("recorded");
        d.attempts(1).await;
        assert_eq!(d.status("late"), Some(Status::Creating));
        let streams = d.streams.clone();
        let deadline = tokio::time::Instant::now() + LIVENESS;
        let draining = tokio::spawn(async move { streams.close_all(deadline).await });
        while !d.streams.closing() {
            tokio::task::yield_now().await;
        }
        assert!(!draining.is_finished(), "the drain waits for the build");
        // New changes are refused once the drain began.
        let refused = d.create(&stream("after", "lake", false)).await;
        assert!(
            matches!(refused, Err(StreamsError::ShuttingDown)),
            "{refused:?}"
        );

        d.sink.hold(false);
        assert!(
            draining.await.expect("joined"),
            "drained before the deadline"
        );
        assert!(d.streams.tasks.is_empty(), "no task outlives the drain");
        let late = d
            .streams
            .get("late")
            .expect("the build finished and its stream ran");
        let put = late.put(vec![Bytes::from_static(b"x")]).await;
        assert!(put.is_err(), "the stream the build started was drained too");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_answers_once_every_record_put_before_it_is_in_the_store() {
    within("the test", async {
        let d = daemon(&stream("file-a", "lake", false)).await;
        let records: Vec<String> = (0..500).map(|i| format!("{i:04}")).collect();
        for chunk in records.chunks(100) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            d.put("file-a", &refs).await;
        }
        let stream = d.streams.get("file-a").expect("runs");
        let keys = stream.flush().await.expect("the flush answers");
        let objects = d.sink.objects();
        assert!(
            !keys.is_empty(),
            "the flush names the objects it waited for"
        );
        for k in &keys {
            assert!(
                objects.contains_key(k),
                "{k} is in the store when the flush answers"
            );
        }
        assert_eq!(d.delivered(), records, "every record, in order, once");
        assert!(
            d.streams
                .close_all(tokio::time::Instant::now() + LIVENESS)
                .await
        );
    })
    .await;
}
