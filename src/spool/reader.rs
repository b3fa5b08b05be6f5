//! A consumer's view of the spool: reads durable records in order from its cursor, following
//! the writer from segment to segment, and waits for more when it has caught up.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use bytes::Bytes;
use tokio::sync::watch;

use super::segment::{self, Frame};
use super::writer::Committed;
use crate::record::Record;

pub(crate) struct Reader {
    state: Option<State>,
    committed: watch::Receiver<Committed>,
    next_seq: u64,
}

struct State {
    dir: PathBuf,
    segment: u64,
    file: File,
    offset: u64,
    next_seq: u64,
}

impl Reader {
    /// A reader positioned at `from_seq` (clamped to what exists).
    pub(crate) fn open(
        dir: PathBuf,
        from_seq: u64,
        committed: watch::Receiver<Committed>,
    ) -> io::Result<Reader> {
        let end = committed.borrow().next_seq;
        let segments = segment::list(&dir)?;
        let wanted = from_seq.min(end);
        let (first, _) = segments
            .iter()
            .rev()
            .find(|(first, _)| *first <= wanted)
            .or(segments.first())
            .copied()
            .ok_or_else(|| io::Error::other("the spool has no segment"))?;
        let from = wanted.max(first);
        let path = segment::path(&dir, first);
        let offset = segment::offset_of(&path, from - first)?;
        let mut file = File::open(&path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Reader {
            state: Some(State {
                dir,
                segment: first,
                file,
                offset,
                next_seq: from,
            }),
            committed,
            next_seq: from,
        })
    }

    /// The sequence number of the next record this reader returns.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Waits until there is a record to read; false when the writer is gone.
    pub(crate) async fn wait(&mut self) -> bool {
        let next = self.next_seq;
        self.committed.wait_for(|c| c.next_seq > next).await.is_ok()
    }

    /// Reads durable records from the cursor, about `max_bytes` of them; empty when caught up.
    pub(crate) async fn read(&mut self, max_bytes: usize) -> io::Result<Vec<Record>> {
        let committed = *self.committed.borrow();
        if self.next_seq >= committed.next_seq {
            return Ok(Vec::new());
        }
        let Some(mut state) = self.state.take() else {
            return Err(io::Error::other(
                "a previous read of this spool reader failed",
            ));
        };
        let (state, result) = tokio::task::spawn_blocking(move || {
            let r = state.read(committed, max_bytes);
            (state, r)
        })
        .await
        .map_err(io::Error::other)?;
        self.next_seq = state.next_seq;
        self.state = Some(state);
        result
    }
}

impl State {
    fn read(&mut self, c: Committed, max_bytes: usize) -> io::Result<Vec<Record>> {
        loop {
            if self.next_seq >= c.next_seq {
                return Ok(Vec::new());
            }
            let end = if self.segment == c.segment {
                c.offset
            } else {
                self.file.metadata()?.len()
            };
            if self.offset < end {
                return self.read_chunk(end, max_bytes);
            }
            if self.segment == c.segment {
                return Ok(Vec::new());
            }
            // This segment is complete: the next one starts at our next seq.
            let path = segment::path(&self.dir, self.next_seq);
            self.file = File::open(&path)?;
            self.segment = self.next_seq;
            self.offset = 0;
        }
    }

    fn read_chunk(&mut self, end: u64, max_bytes: usize) -> io::Result<Vec<Record>> {
        let available = (end - self.offset) as usize;
        let mut want = available.min(max_bytes.max(64 * 1024));
        loop {
            // Read into the buffer's spare capacity, not zeroed first (zeroing 4 MiB per read
            // was 7% of the acknowledgement path's instructions: BENCHMARKS.md).
            let mut buf = Vec::with_capacity(want);
            self.file.seek(SeekFrom::Start(self.offset))?;
            (&mut self.file).take(want as u64).read_to_end(&mut buf)?;
            if buf.len() < want {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the spool segment is shorter than its committed records",
                ));
            }
            let buf = Bytes::from(buf);
            let mut records = Vec::new();
            let mut pos = 0usize;
            loop {
                match segment::decode(&buf[pos..]) {
                    Frame::Complete {
                        arrival_ms,
                        data,
                        len,
                    } => {
                        records.push(Record {
                            data: buf.slice(pos + data.start..pos + data.end),
                            arrival_ms,
                            seq: self.next_seq,
                            sub: 0,
                            kinesis: None,
                        });
                        self.next_seq += 1;
                        pos += len;
                    }
                    Frame::Incomplete { need }
                        if records.is_empty() && need <= available && need > want =>
                    {
                        want = need;
                        break;
                    }
                    Frame::Incomplete { .. } => {
                        self.offset += pos as u64;
                        return Ok(records);
                    }
                    Frame::Corrupt => {
                        self.offset += pos as u64;
                        if records.is_empty() {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!(
                                    "corrupt spool frame in {} at byte {}",
                                    segment::path(&self.dir, self.segment).display(),
                                    self.offset
                                ),
                            ));
                        }
                        return Ok(records);
                    }
                }
            }
        }
    }
}
