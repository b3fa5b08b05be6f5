//! Where a delivery stream's records come from, as one ordered log per stream that every
//! destination reads from its own cursor: the durable spool (Direct PUT) or an in-memory log fed
//! by the shard readers of a Kinesis source.

pub(crate) mod kinesis;
pub(crate) mod memlog;

use std::io;
use std::sync::Arc;

use crate::record::Record;
use crate::spool::{self, Spool};
use memlog::MemoryLog;

#[derive(Clone)]
pub(crate) enum Log {
    Spool(Arc<Spool>),
    Memory(Arc<MemoryLog>),
}

impl Log {
    /// One reader for all destinations (the stream's processor), from the lowest cursor.
    pub(crate) fn shared_reader(&self, consumers: usize) -> io::Result<LogReader> {
        Ok(match self {
            Log::Spool(s) => {
                let min = (0..consumers).map(|i| s.cursor(i)).min().unwrap_or(0);
                LogReader::Spool(s.reader_from(min)?)
            }
            Log::Memory(m) => LogReader::Memory(m.shared_reader()),
        })
    }

    /// Destination `i`'s cursor: every record below it is delivered.
    pub(crate) fn cursor(&self, i: usize) -> u64 {
        match self {
            Log::Spool(s) => s.cursor(i),
            Log::Memory(m) => m.cursor(i),
        }
    }

    /// One past the last record in the log.
    pub(crate) fn end(&self) -> u64 {
        match self {
            Log::Spool(s) => s.end(),
            Log::Memory(m) => m.end(),
        }
    }

    /// Destination `i` has delivered every record below `next_seq`. Blocking I/O.
    pub(crate) fn release(&self, i: usize, next_seq: u64) -> io::Result<()> {
        match self {
            Log::Spool(s) => s.release(i, next_seq),
            Log::Memory(m) => {
                m.release(i, next_seq);
                Ok(())
            }
        }
    }

    /// Records some destination has not delivered yet.
    pub(crate) fn backlog(&self) -> u64 {
        match self {
            Log::Spool(s) => s.backlog(),
            Log::Memory(m) => m.backlog(),
        }
    }

    pub(crate) fn disk_bytes(&self) -> u64 {
        match self {
            Log::Spool(s) => s.disk_bytes(),
            Log::Memory(_) => 0,
        }
    }

    /// No more records will come; blocking for the spool (joins its writer).
    pub(crate) fn close(&self) {
        match self {
            Log::Spool(s) => s.close(),
            Log::Memory(m) => m.close(),
        }
    }
}

pub(crate) enum LogReader {
    Spool(spool::Reader),
    Memory(memlog::Reader),
}

impl LogReader {
    pub(crate) fn next_seq(&self) -> u64 {
        match self {
            LogReader::Spool(r) => r.next_seq(),
            LogReader::Memory(r) => r.next_seq(),
        }
    }

    /// Waits until there is a record to read; false when no more will come.
    pub(crate) async fn wait(&mut self) -> bool {
        match self {
            LogReader::Spool(r) => r.wait().await,
            LogReader::Memory(r) => r.wait().await,
        }
    }

    pub(crate) async fn read(&mut self, max_bytes: usize) -> io::Result<Vec<Record>> {
        match self {
            LogReader::Spool(r) => r.read(max_bytes).await,
            LogReader::Memory(r) => Ok(r.read(max_bytes)),
        }
    }
}
