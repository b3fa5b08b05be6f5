//! The in-memory log of a Kinesis-sourced stream: records read from the shards, in the order
//! they were read, until every destination has delivered them. Kinesis itself is the durable
//! copy; this log only orders records for the destinations and tells the checkpointer what is
//! delivered. Bounded in bytes: shard readers wait when it is full.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};

use crate::record::Record;

/// Told, in order, about the records every destination has delivered, and the new floor.
pub type OnReleased = Box<dyn Fn(&[Record], u64) + Send + Sync>;

pub struct MemoryLog {
    state: Mutex<State>,
    end: watch::Sender<(u64, bool)>,
    space: Notify,
    max_bytes: usize,
    on_released: OnReleased,
}

struct State {
    base: u64,
    records: VecDeque<Record>,
    bytes: usize,
    cursors: Vec<u64>,
}

impl MemoryLog {
    pub fn new(consumers: usize, max_bytes: usize, on_released: OnReleased) -> Arc<MemoryLog> {
        Arc::new(MemoryLog {
            state: Mutex::new(State {
                base: 0,
                records: VecDeque::new(),
                bytes: 0,
                cursors: vec![0; consumers],
            }),
            end: watch::channel((0, false)).0,
            space: Notify::new(),
            max_bytes,
            on_released,
        })
    }

    /// Appends records (their `seq` is assigned here), waiting while the log is full. A batch
    /// larger than the whole budget goes in when the log is empty.
    pub async fn append(&self, mut records: Vec<Record>) {
        let bytes: usize = records.iter().map(|r| r.data.len()).sum();
        loop {
            let notified = self.space.notified();
            {
                let Ok(mut s) = self.state.lock() else { return };
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
    pub fn end(&self) -> u64 {
        self.end.borrow().0
    }

    /// Records not yet delivered by every destination.
    pub fn backlog(&self) -> u64 {
        self.state
            .lock()
            .map(|s| s.records.len() as u64)
            .unwrap_or(0)
    }

    /// No more appends: readers that have caught up see the end.
    pub fn close(&self) {
        self.end.send_modify(|e| e.1 = true);
    }

    pub fn reader(self: &Arc<Self>, i: usize) -> Reader {
        let next = self
            .state
            .lock()
            .map(|s| s.cursors.get(i).copied().unwrap_or(s.base))
            .unwrap_or(0);
        Reader {
            log: self.clone(),
            next,
            end: self.end.subscribe(),
        }
    }

    /// Destination `i` has delivered every record below `next_seq`.
    pub fn release(&self, i: usize, next_seq: u64) {
        let released: Vec<Record>;
        let floor;
        {
            let Ok(mut s) = self.state.lock() else { return };
            if let Some(c) = s.cursors.get_mut(i) {
                *c = (*c).max(next_seq);
            }
            floor = s.cursors.iter().copied().min().unwrap_or(s.base);
            let n = (floor.saturating_sub(s.base) as usize).min(s.records.len());
            released = s.records.drain(..n).collect();
            s.bytes -= released.iter().map(|r| r.data.len()).sum::<usize>();
            s.base += released.len() as u64;
        }
        (self.on_released)(&released, floor);
        self.space.notify_waiters();
    }
}

pub struct Reader {
    log: Arc<MemoryLog>,
    next: u64,
    end: watch::Receiver<(u64, bool)>,
}

impl Reader {
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    pub fn committed_end(&self) -> u64 {
        self.end.borrow().0
    }

    /// Waits for a record; false once the log is closed and read to its end.
    pub async fn wait(&mut self) -> bool {
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

    pub fn read(&mut self, max_bytes: usize) -> Vec<Record> {
        let Ok(s) = self.log.state.lock() else {
            return Vec::new();
        };
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
            kinesis: None,
        }
    }

    #[tokio::test]
    async fn records_are_dropped_once_every_destination_delivered_them() {
        let released = Arc::new(Mutex::new(Vec::new()));
        let r2 = released.clone();
        let log = MemoryLog::new(
            2,
            1 << 20,
            Box::new(move |recs, floor| {
                r2.lock().expect("lock").push((recs.len(), floor));
            }),
        );
        log.append(vec![rec("a"), rec("b"), rec("c")]).await;
        let mut r0 = log.reader(0);
        let got: Vec<u64> = r0.read(100).iter().map(|r| r.seq).collect();
        assert_eq!(got, vec![0, 1, 2]);
        log.release(0, 3);
        assert_eq!(log.backlog(), 3, "destination 1 has not delivered");
        log.release(1, 2);
        assert_eq!(log.backlog(), 1);
        assert_eq!(*released.lock().expect("lock"), vec![(0, 0), (2, 2)]);
    }

    #[tokio::test]
    async fn a_full_log_holds_appends_back() {
        let log = MemoryLog::new(1, 2, Box::new(|_, _| {}));
        log.append(vec![rec("ab")]).await;
        let l2 = log.clone();
        let waiting = tokio::spawn(async move { l2.append(vec![rec("c")]).await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        log.release(0, 1);
        waiting.await.expect("appended once there is room");
        assert_eq!(log.end(), 2);
    }
}
