//! The in-memory log of a Kinesis-sourced stream: records read from the shards, in the order
//! they were read. Kinesis itself is the durable copy; this log orders records for the
//! destinations and tells the checkpointer what is delivered. A record's data is dropped as soon
//! as every destination has read it (staging has it on disk); its small metadata stays until
//! every destination has delivered it. The data is bounded in bytes: shard readers wait when it
//! is full. (Holding data until delivery would deadlock a buffer larger than the bound until its
//! interval.)

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};

use crate::record::Record;
use crate::source::kinesis::ledger::ShardProgress;
use crate::sync::Lock;

pub(crate) struct MemoryLog {
    state: Mutex<State>,
    end: watch::Sender<(u64, bool)>,
    space: Notify,
    max_bytes: usize,
    /// Told, in order, about the records every destination has delivered, and the new floor.
    progress: Arc<dyn ShardProgress>,
    /// Held from taking the released records to telling `progress`, so two destinations
    /// releasing at once cannot tell it out of order (an older floor after a newer one would
    /// move a checkpoint back).
    release_order: Mutex<()>,
}

struct State {
    base: u64,
    records: VecDeque<Record>,
    /// Bytes of data still held (records some destination has not read).
    bytes: usize,
    /// Per destination: one past the last record delivered.
    cursors: Vec<u64>,
    /// Per destination: one past the last record read.
    read: Vec<u64>,
    /// Records below this position have had their data dropped.
    dropped_to: u64,
}

impl MemoryLog {
    pub(crate) fn new(
        consumers: usize,
        max_bytes: usize,
        progress: Arc<dyn ShardProgress>,
    ) -> Arc<MemoryLog> {
        Arc::new(MemoryLog {
            state: Mutex::new(State {
                base: 0,
                records: VecDeque::new(),
                bytes: 0,
                cursors: vec![0; consumers],
                read: vec![0; consumers],
                dropped_to: 0,
            }),
            end: watch::channel((0, false)).0,
            space: Notify::new(),
            max_bytes,
            progress,
            release_order: Mutex::new(()),
        })
    }

    /// Appends records (their `seq` is assigned here), waiting while the log is full. A batch
    /// larger than the whole budget goes in when the log is empty.
    pub(crate) async fn append(&self, mut records: Vec<Record>) {
        let bytes: usize = records.iter().map(|r| r.data.len()).sum();
        loop {
            // Registered before the check, so a wake-up between check and wait is not lost.
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.state.locked();
                if s.bytes == 0 || s.bytes + bytes <= self.max_bytes {
                    let mut seq = s.base + s.records.len() as u64;
                    for r in &mut records {
                        r.seq = seq;
                        seq += 1;
                    }
                    s.records.extend(records);
                    s.bytes += bytes;
                    self.end.send_replace((seq, false));
                    return;
                }
            }
            notified.await;
        }
    }

    /// One past the last record appended.
    pub(crate) fn end(&self) -> u64 {
        self.end.borrow().0
    }

    /// Records not yet delivered by every destination.
    pub(crate) fn backlog(&self) -> u64 {
        self.state.locked().records.len() as u64
    }

    /// No more appends: readers that have caught up see the end.
    pub(crate) fn close(&self) {
        self.end.send_modify(|e| e.1 = true);
    }

    #[cfg(test)]
    pub(crate) fn reader(self: &Arc<Self>, i: usize) -> Reader {
        let next = {
            let s = self.state.locked();
            s.cursors.get(i).copied().unwrap_or(s.base)
        };
        Reader {
            log: self.clone(),
            index: Some(i),
            next,
            end: self.end.subscribe(),
        }
    }

    /// One reader for every consumer (the stream's processor), from the lowest cursor.
    pub(crate) fn shared_reader(self: &Arc<Self>) -> Reader {
        let next = {
            let s = self.state.locked();
            s.cursors.iter().copied().min().unwrap_or(s.base)
        };
        Reader {
            log: self.clone(),
            index: None,
            next,
            end: self.end.subscribe(),
        }
    }

    /// Consumer `i`'s cursor.
    pub(crate) fn cursor(&self, i: usize) -> u64 {
        let s = self.state.locked();
        s.cursors.get(i).copied().unwrap_or(s.base)
    }

    /// Destination `i` has delivered every record below `next_seq`.
    pub(crate) fn release(&self, i: usize, next_seq: u64) {
        let _order = self.release_order.locked();
        let released: Vec<Record>;
        let floor;
        {
            let mut s = self.state.locked();
            if let Some(c) = s.cursors.get_mut(i) {
                *c = (*c).max(next_seq);
            }
            floor = s.cursors.iter().copied().min().unwrap_or(s.base);
            let n = (floor.saturating_sub(s.base) as usize).min(s.records.len());
            released = s.records.drain(..n).collect();
            s.bytes -= released.iter().map(|r| r.data.len()).sum::<usize>();
            s.base += released.len() as u64;
            s.dropped_to = s.dropped_to.max(s.base);
        }
        self.progress.released(&released, floor);
        self.space.notify_waiters();
    }
}

pub(crate) struct Reader {
    log: Arc<MemoryLog>,
    /// The consumer it reads for; None: all of them.
    index: Option<usize>,
    next: u64,
    end: watch::Receiver<(u64, bool)>,
}

impl Reader {
    pub(crate) fn next_seq(&self) -> u64 {
        self.next
    }

    /// Waits for a record; false once the log is closed and read to its end.
    pub(crate) async fn wait(&mut self) -> bool {
        let next = self.next;
        match self
            .end
            .wait_for(|(end, closed)| *end > next || *closed)
            .await
        {
            Ok(e) => e.0 > next,
            Err(_) => false,
        }
    }

    pub(crate) fn read(&mut self, max_bytes: usize) -> Vec<Record> {
        let out = self.take(max_bytes);
        if !out.is_empty() {
            self.log.space.notify_waiters();
        }
        out
    }

    fn take(&mut self, max_bytes: usize) -> Vec<Record> {
        let mut s = self.log.state.locked();
        let start = self.next.saturating_sub(s.base) as usize;
        let mut out = Vec::new();
        let mut bytes = 0;
        for r in s.records.iter().skip(start) {
            if !out.is_empty() && bytes + r.data.len() > max_bytes {
                break;
            }
            bytes += r.data.len();
            out.push(r.clone());
        }
        self.next += out.len() as u64;
        match self.index {
            Some(i) => {
                if let Some(r) = s.read.get_mut(i) {
                    *r = self.next;
                }
            }
            None => {
                for r in s.read.iter_mut() {
                    *r = (*r).max(self.next);
                }
            }
        }
        // Every destination has read these: their data lives on in staging files.
        let all_read = s.read.iter().copied().min().unwrap_or(0);
        let (base, from) = (s.base, s.dropped_to.max(s.base));
        let mut freed = 0;
        for pos in from..all_read {
            if let Some(r) = s.records.get_mut((pos - base) as usize) {
                freed += r.data.len();
                r.data = bytes::Bytes::new();
            }
        }
        s.bytes -= freed;
        s.dropped_to = s.dropped_to.max(all_read);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn rec(s: &str) -> Record {
        Record {
            data: Bytes::from(s.to_string()),
            arrival_ms: 0,
            seq: 0,
            sub: 0,
            kinesis: None,
        }
    }

    /// What the log told: (records, floor) per release.
    #[derive(Default)]
    struct Told(Mutex<Vec<(usize, u64)>>);

    impl ShardProgress for Told {
        fn released(&self, records: &[Record], floor: u64) {
            self.0.locked().push((records.len(), floor));
        }

        fn shard_ended(&self, _: Arc<str>, _: u64) {}
    }

    #[tokio::test]
    async fn records_are_dropped_once_every_destination_delivered_them() {
        let released = Arc::new(Told::default());
        let log = MemoryLog::new(2, 1 << 20, released.clone());
        log.append(vec![rec("a"), rec("b"), rec("c")]).await;
        let mut r0 = log.reader(0);
        let got: Vec<u64> = r0.read(100).iter().map(|r| r.seq).collect();
        assert_eq!(got, vec![0, 1, 2]);
        log.release(0, 3);
        assert_eq!(log.backlog(), 3, "destination 1 has not delivered");
        log.release(1, 2);
        assert_eq!(log.backlog(), 1);
        assert_eq!(*released.0.locked(), vec![(0, 0), (2, 2)]);
    }

    #[tokio::test]
    async fn a_full_log_holds_appends_back_until_every_destination_read_them() {
        let log = MemoryLog::new(2, 2, Arc::new(Told::default()));
        log.append(vec![rec("ab")]).await;
        let l2 = log.clone();
        let waiting = tokio::spawn(async move { l2.append(vec![rec("c")]).await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        let mut r0 = log.reader(0);
        assert_eq!(r0.read(10).len(), 1);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "destination 1 has not read it yet");
        let mut r1 = log.reader(1);
        assert_eq!(r1.read(10).len(), 1);
        waiting
            .await
            .expect("appended once every destination read the data");
        assert_eq!(log.end(), 2);
        assert_eq!(log.backlog(), 2, "metadata stays until delivery");
    }
}
