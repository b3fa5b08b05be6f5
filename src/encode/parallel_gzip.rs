//! GZIP on every core (issue 21), as pigz makes it: the input is cut into blocks of `BLOCK`
//! bytes, each block deflated on a pool thread by libdeflate (whole-buffer deflate: on
//! firehosed's events about 1.6x zlib-rs's speed at level 6, and 5% smaller), made the next
//! part of one deflate stream (`deflate_join::continue_after`: its final block made not final,
//! then an empty stored block, as a sync flush ends), and the parts written in input order
//! between one gzip header and one trailer whose CRC combines the blocks' CRCs. The object is
//! a single ordinary gzip member: every reader reads it, those that stop after the first
//! member too. libdeflate takes no dictionary, so a block cannot refer to the one before it;
//! at 1 MiB that costs 0.5% of size (BENCHMARKS.md), against the 5% it gains.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};

use flate2::Crc;

use super::deflate_join::continue_after;
use super::lean_gzip::HEADER;
use crate::sync::Lock;

/// Input bytes per block.
const BLOCK: usize = 1024 * 1024;

type Job = Box<dyn FnOnce() + Send>;

/// A block's deflated bytes and its CRC.
struct Part {
    deflated: Vec<u8>,
    crc: Crc,
}

/// The compression threads, one per core, shared by every destination.
fn pool() -> &'static Mutex<SyncSender<Job>> {
    static POOL: OnceLock<Mutex<SyncSender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (tx, rx) = mpsc::sync_channel::<Job>(threads * 2);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("gzip-{i}"))
                .spawn(move || {
                    loop {
                        let job = rx.locked().recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if spawned.is_err() {
                tracing::warn!("cannot start a compression thread; GZIP runs on fewer cores");
            }
        }
        Mutex::new(tx)
    })
}

thread_local! {
    /// The thread's libdeflate compressor and its level (its tables are about 0.5 MiB: made
    /// once per thread, not per block).
    static COMPRESSOR: RefCell<Option<(u32, libdeflater::Compressor)>> = const { RefCell::new(None) };
}

/// `block` deflated, ending the stream if `last`, else ready for the next block's bytes; with
/// its CRC.
fn part(block: &[u8], level: u32, last: bool) -> io::Result<Part> {
    let mut deflated = COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some((l, c)) if *l == level => c,
            _ => {
                let lvl = libdeflater::CompressionLvl::new(level as i32)
                    .map_err(|_| io::Error::other(format!("no deflate level {level}")))?;
                &mut slot.insert((level, libdeflater::Compressor::new(lvl))).1
            }
        };
        let mut out = vec![0; compressor.deflate_compress_bound(block.len())];
        let n = compressor
            .deflate_compress(block, &mut out)
            .map_err(|e| io::Error::other(format!("libdeflate: {e:?}")))?;
        out.truncate(n);
        Ok::<_, io::Error>(out)
    })?;
    if !last {
        continue_after(&mut deflated)?;
    }
    // It waits to be written with up to a core's worth of others: keep its size, not the
    // bound's (over 1 MiB).
    deflated.shrink_to_fit();
    let mut crc = Crc::new();
    crc.update(block);
    Ok(Part { deflated, crc })
}

/// A GZIP stream compressed block by block on the pool, written in order into `W`.
pub struct ParallelGzip<W: Write> {
    out: W,
    level: u32,
    pending: Vec<u8>,
    in_flight: VecDeque<Receiver<io::Result<Part>>>,
    /// Blocks compressing at once (beyond this the writer waits for the oldest).
    max_in_flight: usize,
    crc: Crc,
    header_written: bool,
    /// Only the deflate stream, no gzip header and trailer (a ZIP entry's data).
    raw: bool,
}

impl<W: Write> ParallelGzip<W> {
    pub fn new(out: W, level: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ParallelGzip {
            out,
            level,
            pending: Vec::new(),
            in_flight: VecDeque::new(),
            max_in_flight: cores,
            crc: Crc::new(),
            header_written: false,
            raw: false,
        }
    }

    /// The deflate stream alone, for a ZIP entry (which keeps its own CRC and sizes).
    pub fn raw(out: W, level: u32) -> Self {
        ParallelGzip {
            raw: true,
            ..ParallelGzip::new(out, level)
        }
    }

    pub fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let take = (BLOCK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == BLOCK {
                self.submit(false)?;
            }
        }
        Ok(())
    }

    /// Hands the pending block to the pool (compressing it here if the pool is gone).
    fn submit(&mut self, last: bool) -> io::Result<()> {
        // The next block's buffer at its full size, not grown by doubling from empty.
        let next = if last {
            Vec::new()
        } else {
            Vec::with_capacity(BLOCK)
        };
        let block = std::mem::replace(&mut self.pending, next);
        let (tx, rx) = mpsc::sync_channel(1);
        let level = self.level;
        let job: Job = Box::new(move || {
            let _ = tx.send(part(&block, level, last));
        });
        let sent = pool().locked().send(job);
        if let Err(mpsc::SendError(job)) = sent {
            job();
        }
        self.in_flight.push_back(rx);
        while self.in_flight.len() > self.max_in_flight {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(rx) = self.in_flight.pop_front() {
            let part = rx
                .recv()
                .map_err(|_| io::Error::other("a compression thread stopped"))??;
            if !self.header_written && !self.raw {
                self.out.write_all(&HEADER)?;
            }
            self.header_written = true;
            self.out.write_all(&part.deflated)?;
            self.crc.combine(&part.crc);
        }
        Ok(())
    }

    /// Compresses what is left as the final block, writes every part in order, then the
    /// trailer; an empty stream is an empty member (a valid gzip file).
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        if !self.raw {
            let mut trailer = [0u8; 8];
            trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
            trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
            self.out.write_all(&trailer)?;
        }
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn blocks_in_order_make_one_member_and_cost_little_ratio() {
        let data: Vec<u8> = (0..120_000)
            .flat_map(|i| {
                format!("{{\"id\":{i},\"msg\":\"hello world {}\"}}\n", i % 977).into_bytes()
            })
            .collect();
        assert!(data.len() > 4 * BLOCK);
        let mut p = ParallelGzip::new(Vec::new(), 6);
        for chunk in data.chunks(7_777) {
            p.write_all(chunk).expect("writes");
        }
        let parallel = p.finish().expect("finishes");
        // One member: a decoder that stops after the first reads it all.
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&parallel[..])
            .read_to_end(&mut back)
            .expect("decodes");
        assert!(back == data);
        let mut single = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        single.write_all(&data).expect("single stream");
        let single = single.finish().expect("single stream");
        let loss = parallel.len() as f64 / single.len() as f64 - 1.0;
        assert!(
            loss < 0.001,
            "{} vs {} bytes: {loss}",
            parallel.len(),
            single.len()
        );
        let empty = ParallelGzip::new(Vec::new(), 6).finish().expect("empty");
        let mut nothing = Vec::new();
        flate2::read::GzDecoder::new(&empty[..])
            .read_to_end(&mut nothing)
            .expect("a complete member");
        assert!(nothing.is_empty());
    }
}
