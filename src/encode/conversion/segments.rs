//! Format conversion on every core (issue 38): the rows of one file are cut into *segments* of
//! about `segment_bytes` of record bytes, and each segment is encoded (Parquet row groups, ORC
//! stripes) on a thread of its own while the staging thread goes on parsing the next records.
//! The parts a segment makes are written to the file by the staging thread alone, in the order
//! of the rows. Parsing stays on the staging thread because a record's outcome (rows, or why it
//! does not fit) is needed at once (error records, Iceberg row positions).
//!
//! Every boundary (a batch, a segment, a row group inside a segment) is a function of what the
//! writer is given (the records, the configuration, when it is suspended), never of the
//! threads' timing: a file has the same bytes whether its segments were encoded beside the
//! staging thread or on it (`Mode::Inline`, for partitions, of which hundreds may be open, and
//! for the one-core baseline). A segment that cannot have a thread (none can be started, or
//! `MAX_THREADS` are at work in the process) is encoded on the staging thread after every older
//! segment's parts are written, so the order and the bytes stay the same.
//!
//! Memory: at most `MAX_SEGMENTS` segments are alive, the staging thread waiting for the oldest
//! before it starts another; a segment holds at most `QUEUED_BATCHES` batches waiting and one
//! being encoded (the staging thread waits when the encoder is that far behind) and its
//! unfinished row group (up to the row-group bound and one batch) plus the finished ones not
//! yet written.

use std::collections::VecDeque;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;

use arrow_array::{Array, StructArray};

/// Segments alive at once (the one being fed and those still encoding or not yet written).
const MAX_SEGMENTS: usize = 2;
/// Batches a segment's thread may be behind the staging thread.
const QUEUED_BATCHES: usize = 2;
/// Segment threads at work in the process at once, per core: many Iceberg tables or
/// destinations filling at once share the cores instead of each taking threads.
const MAX_THREADS_PER_CORE: usize = 4;

/// Segment threads at work in the process.
static THREADS: AtomicUsize = AtomicUsize::new(0);

fn max_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * MAX_THREADS_PER_CORE
}

/// A finished part of a file: a row group or a stripe.
pub(super) trait Part: Send + 'static {
    fn rows(&self) -> usize;
}

/// What encodes one segment's rows into parts (a fresh one per segment).
pub(super) trait Encoder: Send + 'static {
    type Part: Part;
    /// Encodes rows, adding to `done` the parts they complete.
    fn push(&mut self, rows: StructArray, done: &mut Vec<Self::Part>) -> io::Result<()>;
    /// Ends the segment: its last part, if it holds rows.
    fn end(&mut self, done: &mut Vec<Self::Part>) -> io::Result<()>;
}

/// Where finished parts go, in order: the file.
pub(super) trait PartSink<P> {
    fn write_part(&mut self, part: P) -> io::Result<()>;
}

/// Where a file's segments are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Each segment on a thread of its own, beside the staging thread (a destination's main
    /// object and Iceberg data files: one file takes all the data).
    Beside,
    /// On the staging thread (partitions; same bytes).
    Inline,
}

/// A segment being encoded here or beside.
enum Segment<E: Encoder> {
    Here(E),
    Beside {
        /// The rows to encode; `None` once the segment is closed.
        rows: Option<SyncSender<StructArray>>,
        parts: Receiver<io::Result<Vec<E::Part>>>,
        thread: Option<JoinHandle<()>>,
    },
}

/// The segments of one file, in order.
pub(super) struct Segments<E: Encoder> {
    make: Box<dyn Fn() -> E + Send>,
    mode: Mode,
    segment_bytes: usize,
    /// The segment being fed, and the record bytes fed to it.
    open: Option<Segment<E>>,
    fed: usize,
    /// Closed segments, oldest first, whose parts are not all written.
    closed: VecDeque<Segment<E>>,
    /// Rows pushed and not yet written to the file.
    unwritten: usize,
    /// Set when the file is given up (the writer dropped): its threads stop encoding.
    abandoned: Arc<AtomicBool>,
}

impl<E: Encoder> Drop for Segments<E> {
    fn drop(&mut self) {
        self.abandoned.store(true, Ordering::Relaxed);
    }
}

impl<E: Encoder> Segments<E> {
    pub(super) fn new(make: Box<dyn Fn() -> E + Send>, mode: Mode, segment_bytes: usize) -> Self {
        Segments {
            make,
            mode,
            segment_bytes: segment_bytes.max(1),
            open: None,
            fed: 0,
            closed: VecDeque::new(),
            unwritten: 0,
            abandoned: Arc::default(),
        }
    }

    /// Rows pushed and not yet in the file.
    pub(super) fn unwritten_rows(&self) -> usize {
        self.unwritten
    }

    /// Encodes `rows` (from `bytes` of records) after the rows pushed before; writes into
    /// `sink` whatever parts are finished.
    pub(super) fn push(
        &mut self,
        rows: StructArray,
        bytes: usize,
        sink: &mut impl PartSink<E::Part>,
    ) -> io::Result<()> {
        self.unwritten += rows.len();
        if self.open.is_none() {
            let segment = start(&*self.make, self.mode, &self.abandoned);
            if matches!(segment, Segment::Here(_)) {
                // Encoded here: what older segments make goes to the file first.
                self.write_closed(sink)?;
            }
            self.open = Some(segment);
        }
        let Some(segment) = self.open.as_mut() else {
            return Err(io::Error::other("no conversion segment is open"));
        };
        match segment {
            Segment::Here(encoder) => {
                let mut done = Vec::new();
                encoder.push(rows, &mut done)?;
                self.write(done, sink)?;
            }
            Segment::Beside { rows: Some(tx), .. } => {
                // A send fails only when the thread ended on an error: it is read below.
                if tx.send(rows).is_err() {
                    self.close(sink)?;
                }
            }
            Segment::Beside { rows: None, .. } => {
                return Err(io::Error::other(
                    "a conversion segment was fed after its end",
                ));
            }
        }
        self.fed += bytes;
        if self.fed >= self.segment_bytes {
            self.close(sink)?;
        }
        self.write_ready(sink)
    }

    /// Ends the open segment; waits for the oldest while too many are alive.
    fn close(&mut self, sink: &mut impl PartSink<E::Part>) -> io::Result<()> {
        self.fed = 0;
        match self.open.take() {
            Some(Segment::Here(mut encoder)) => {
                let mut done = Vec::new();
                encoder.end(&mut done)?;
                self.write(done, sink)?;
            }
            Some(Segment::Beside {
                parts, mut thread, ..
            }) => {
                let thread = thread.take();
                self.closed.push_back(Segment::Beside {
                    rows: None,
                    parts,
                    thread,
                });
            }
            None => {}
        }
        while self.closed.len() >= MAX_SEGMENTS {
            self.wait_oldest(sink)?;
        }
        Ok(())
    }

    /// Writes the parts already finished, in order, without waiting.
    pub(super) fn write_ready(&mut self, sink: &mut impl PartSink<E::Part>) -> io::Result<()> {
        loop {
            let head = match self.closed.front() {
                Some(s) => s,
                None => match &self.open {
                    Some(s) => s,
                    None => return Ok(()),
                },
            };
            let Segment::Beside { parts, .. } = head else {
                return Ok(());
            };
            match parts.try_recv() {
                Ok(done) => self.write(done?, sink)?,
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => {
                    if self.closed.is_empty() {
                        // The open segment's thread ended before its end: an error it sent
                        // was read above, so it died another way.
                        return Err(io::Error::other("a conversion thread stopped"));
                    }
                    self.wait_oldest(sink)?;
                }
            }
        }
    }

    /// Waits for the oldest closed segment and writes all its parts.
    fn wait_oldest(&mut self, sink: &mut impl PartSink<E::Part>) -> io::Result<()> {
        let Some(oldest) = self.closed.pop_front() else {
            return Ok(());
        };
        let Segment::Beside { parts, thread, .. } = oldest else {
            return Ok(());
        };
        for done in parts.iter() {
            self.write(done?, sink)?;
        }
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            return Err(io::Error::other("a conversion thread panicked"));
        }
        Ok(())
    }

    /// Ends the open segment and writes every part still to come, in order.
    pub(super) fn drain(&mut self, sink: &mut impl PartSink<E::Part>) -> io::Result<()> {
        self.close(sink)?;
        self.write_closed(sink)
    }

    /// Waits for every closed segment and writes their parts, oldest first.
    fn write_closed(&mut self, sink: &mut impl PartSink<E::Part>) -> io::Result<()> {
        while !self.closed.is_empty() {
            self.wait_oldest(sink)?;
        }
        Ok(())
    }

    fn write(&mut self, done: Vec<E::Part>, sink: &mut impl PartSink<E::Part>) -> io::Result<()> {
        for part in done {
            self.unwritten = self.unwritten.saturating_sub(part.rows());
            sink.write_part(part)?;
        }
        Ok(())
    }
}

/// A fresh segment: on a thread of its own in `Mode::Beside` (here if the process has
/// `max_threads` at work already, or no thread can be started).
fn start<E: Encoder>(make: &dyn Fn() -> E, mode: Mode, abandoned: &Arc<AtomicBool>) -> Segment<E> {
    if mode == Mode::Inline {
        return Segment::Here(make());
    }
    if THREADS.fetch_add(1, Ordering::AcqRel) >= max_threads() {
        THREADS.fetch_sub(1, Ordering::AcqRel);
        return Segment::Here(make());
    }
    let (rows_tx, rows_rx) = mpsc::sync_channel::<StructArray>(QUEUED_BATCHES);
    let (parts_tx, parts_rx) = mpsc::channel();
    let encoder = make();
    let abandoned = abandoned.clone();
    let spawned = std::thread::Builder::new()
        .name("convert".into())
        .spawn(move || {
            encode_segment(encoder, rows_rx, parts_tx, &abandoned);
            THREADS.fetch_sub(1, Ordering::AcqRel);
        });
    match spawned {
        Ok(thread) => Segment::Beside {
            rows: Some(rows_tx),
            parts: parts_rx,
            thread: Some(thread),
        },
        Err(e) => {
            THREADS.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(error = %e, "cannot start a conversion thread; converting inline");
            Segment::Here(make())
        }
    }
}

/// A segment's thread: encodes the rows as they come, sends the parts as they finish, and
/// the last part when the staging thread closes the segment. A panic becomes an error.
fn encode_segment<E: Encoder>(
    mut encoder: E,
    rows: Receiver<StructArray>,
    parts: mpsc::Sender<io::Result<Vec<E::Part>>>,
    abandoned: &AtomicBool,
) {
    let run = catch_unwind(AssertUnwindSafe(|| -> io::Result<()> {
        for batch in rows.iter() {
            if abandoned.load(Ordering::Relaxed) {
                return Ok(());
            }
            let mut done = Vec::new();
            encoder.push(batch, &mut done)?;
            if !done.is_empty() && parts.send(Ok(done)).is_err() {
                // The file was given up: nothing more to do.
                return Ok(());
            }
        }
        if abandoned.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut done = Vec::new();
        encoder.end(&mut done)?;
        if !done.is_empty() {
            let _ = parts.send(Ok(done));
        }
        Ok(())
    }));
    let failure = match run {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(_) => io::Error::other("a conversion thread panicked"),
    };
    let _ = parts.send(Err(failure));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use arrow_array::{ArrayRef, Int64Array};
    use arrow_schema::{DataType, Field};

    /// A part: the values of the rows it holds.
    struct Values(Vec<i64>);

    impl Part for Values {
        fn rows(&self) -> usize {
            self.0.len()
        }
    }

    /// Makes a part every `every` rows; fails on the value `fail_at`, panics on `panic_at`;
    /// counts the encoders alive.
    struct Toy {
        every: usize,
        held: Vec<i64>,
        fail_at: Option<i64>,
        panic_at: Option<i64>,
        alive: Arc<AtomicUsize>,
        /// Time each push takes.
        delay: std::time::Duration,
    }

    impl Drop for Toy {
        fn drop(&mut self) {
            self.alive.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl Encoder for Toy {
        type Part = Values;

        fn push(&mut self, rows: StructArray, done: &mut Vec<Values>) -> io::Result<()> {
            let column = rows.column(0).as_any().downcast_ref::<Int64Array>();
            for v in column.into_iter().flatten().flatten() {
                if Some(v) == self.fail_at {
                    return Err(io::Error::other(format!("cannot encode {v}")));
                }
                assert!(Some(v) != self.panic_at, "an encoder's bug at {v}");
                self.held.push(v);
                if self.held.len() == self.every {
                    done.push(Values(std::mem::take(&mut self.held)));
                }
            }
            // Slow enough that the staging thread runs ahead.
            std::thread::sleep(self.delay);
            Ok(())
        }

        fn end(&mut self, done: &mut Vec<Values>) -> io::Result<()> {
            if !self.held.is_empty() {
                done.push(Values(std::mem::take(&mut self.held)));
            }
            Ok(())
        }
    }

    #[derive(Default)]
    struct File {
        parts: Vec<Vec<i64>>,
    }

    impl PartSink<Values> for File {
        fn write_part(&mut self, part: Values) -> io::Result<()> {
            self.parts.push(part.0);
            Ok(())
        }
    }

    fn batch(from: i64, n: i64) -> StructArray {
        let values: ArrayRef = Arc::new(Int64Array::from_iter_values(from..from + n));
        StructArray::from(vec![(
            Arc::new(Field::new("v", DataType::Int64, false)),
            values,
        )])
    }

    struct Run {
        parts: Vec<Vec<i64>>,
        most_alive: usize,
        error: Option<String>,
    }

    /// Pushes 0..rows in batches of 7 rows (10 bytes each), segments of 50 bytes.
    fn run(mode: Mode, rows: i64, fail_at: Option<i64>, panic_at: Option<i64>) -> Run {
        let (alive, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (a, m) = (alive.clone(), most.clone());
        let make = move || {
            let now = a.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            Toy {
                every: 3,
                held: Vec::new(),
                fail_at,
                panic_at,
                alive: a.clone(),
                delay: std::time::Duration::from_micros(200),
            }
        };
        let mut segments = Segments::new(Box::new(make), mode, 50);
        let mut file = File::default();
        let mut error = None;
        let mut from = 0;
        while from < rows && error.is_none() {
            let n = 7.min(rows - from);
            if let Err(e) = segments.push(batch(from, n), 10, &mut file) {
                error = Some(e.to_string());
            }
            from += n;
        }
        if error.is_none()
            && let Err(e) = segments.drain(&mut file)
        {
            error = Some(e.to_string());
        }
        if error.is_none() {
            assert_eq!(segments.unwritten_rows(), 0);
        }
        drop(segments);
        Run {
            parts: file.parts,
            most_alive: most.load(Ordering::SeqCst),
            error,
        }
    }

    #[test]
    fn parts_are_written_in_order_and_the_same_on_the_staging_thread_or_beside_it() {
        let beside = run(Mode::Beside, 2_000, None, None);
        let inline = run(Mode::Inline, 2_000, None, None);
        assert_eq!(beside.error, None);
        let all: Vec<i64> = beside.parts.iter().flatten().copied().collect();
        assert_eq!(all, (0..2_000).collect::<Vec<_>>());
        // A segment is 5 batches of 7 rows: 35 rows in parts of 3, its last part of 2.
        assert_eq!(beside.parts[11], vec![33, 34]);
        assert_eq!(beside.parts, inline.parts);
        assert!(
            beside.most_alive <= MAX_SEGMENTS,
            "{} encoders alive at once",
            beside.most_alive
        );
        assert_eq!(inline.most_alive, 1);
    }

    #[test]
    fn an_encoder_error_or_panic_beside_reaches_the_writer_and_nothing_after_it_is_written() {
        for mode in [Mode::Beside, Mode::Inline] {
            let failed = run(mode, 2_000, Some(500), None);
            let why = failed.error.expect("the failure is reported");
            assert!(why.contains("cannot encode 500"), "{why}");
            let written: Vec<i64> = failed.parts.iter().flatten().copied().collect();
            assert!(written.iter().all(|v| *v < 500), "{mode:?}");
        }
        let panicked = run(Mode::Beside, 2_000, None, Some(700));
        let why = panicked.error.expect("the panic is reported");
        assert!(why.contains("panicked"), "{why}");
    }

    /// When no thread can be had for a segment (the process's threads at their limit), it is
    /// encoded here only after the older segments' parts are written: the order holds.
    #[test]
    fn a_segment_without_a_thread_is_written_after_the_older_ones() {
        let alive = Arc::new(AtomicUsize::new(0));
        let make = move || {
            alive.fetch_add(1, Ordering::SeqCst);
            Toy {
                every: 3,
                held: Vec::new(),
                fail_at: None,
                panic_at: None,
                alive: alive.clone(),
                // Far slower than the staging thread: a closed segment is still encoding
                // when the next one starts.
                delay: std::time::Duration::from_millis(3),
            }
        };
        let mut segments = Segments::new(Box::new(make), Mode::Beside, 50);
        let mut file = File::default();
        // Two segments beside (five batches of 7 rows each), then no thread for the rest.
        for i in 0..10 {
            segments
                .push(batch(i * 7, 7), 10, &mut file)
                .expect("pushed");
        }
        let limit = max_threads() * 1000;
        THREADS.fetch_add(limit, Ordering::AcqRel);
        let rest = (|| {
            for i in 10..20 {
                segments.push(batch(i * 7, 7), 10, &mut file)?;
            }
            segments.drain(&mut file)
        })();
        THREADS.fetch_sub(limit, Ordering::AcqRel);
        rest.expect("drained");
        let all: Vec<i64> = file.parts.iter().flatten().copied().collect();
        assert_eq!(all, (0..140).collect::<Vec<_>>(), "in order");
    }
}
