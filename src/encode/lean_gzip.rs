//! GZIP for objects kept open by the hundred (dynamic partitions): one gzip member whose
//! deflate stream is built a chunk at a time, as pigz builds its blocks, so no deflate state
//! lives between writes. Each writer keeps only the bytes not yet compressed (up to `CHUNK`)
//! and the last 32 KiB before them; a full chunk is compressed by the thread's one deflate
//! state, primed with those 32 KiB as its dictionary (deflate never looks further back), and
//! ended with a sync flush, which byte-aligns it without ending the stream. The chunks
//! concatenate into one ordinary deflate stream: the dictionary is exactly the history the
//! decoder holds at that point. What is lost against one live stream is a block boundary per
//! chunk (a few bytes and the Huffman tables), not the history.
//!
//! A writer makes one member; a suspended partition (its file closed while idle) gets a new
//! writer, and so a new member, when it is written again (RFC 1952 allows a file of members).
//!
//! Memory per writer: the buffer (32 KiB + `CHUNK`, allocated at the first write and freed at
//! `finish`), against about 0.4 MiB for a live deflate state and its buffers.

use std::cell::RefCell;
use std::io::{self, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Bytes compressed at a time. On bench/parquet/make_events.py's events spread over 500
/// partitions, 32 KiB chunks with a 32 KiB dictionary compress to 0.26% more than one stream
/// per partition (64 KiB: 0.08%; a 16 KiB dictionary: 0.87%; 8 KiB: 1.9%).
const CHUNK: usize = 32 * 1024;
/// Deflate's window: the most a match can reach back.
pub(super) const DICT: usize = 32 * 1024;

/// The gzip header of firehosed's objects: no name, no time, OS unknown (as flate2 writes it).
pub(super) const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

pub struct LeanGzip<W: Write> {
    out: W,
    level: u32,
    /// The dictionary (the last `dict` bytes already compressed), then the bytes not yet.
    buf: Vec<u8>,
    dict: usize,
    crc: Crc,
}

thread_local! {
    /// The thread's deflate state and output buffer, reset for every chunk.
    static DEFLATE: RefCell<Option<(u32, Compress, Vec<u8>)>> = const { RefCell::new(None) };
}

impl<W: Write> LeanGzip<W> {
    pub fn new(mut out: W, level: u32) -> io::Result<Self> {
        out.write_all(&HEADER)?;
        Ok(LeanGzip {
            out,
            level,
            buf: Vec::new(),
            dict: 0,
            crc: Crc::new(),
        })
    }

    pub fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        if self.buf.capacity() == 0 && !data.is_empty() {
            // Exactly what it will hold: growing by doubling would round it up to 128 KiB.
            self.buf.reserve_exact(DICT + CHUNK);
        }
        while !data.is_empty() {
            let room = self.dict + CHUNK - self.buf.len();
            let (now, rest) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(now);
            data = rest;
            if self.buf.len() - self.dict >= CHUNK {
                self.compress(FlushCompress::Sync)?;
            }
        }
        Ok(())
    }

    /// Ends the member (the last chunk, the CRC and length) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.compress(FlushCompress::Finish)?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.out.write_all(&trailer)?;
        Ok(self.out)
    }

    /// Compresses the pending bytes into `out`, then keeps the last 32 KiB as the dictionary.
    fn compress(&mut self, flush: FlushCompress) -> io::Result<()> {
        let (dict, input) = self.buf.split_at(self.dict);
        self.crc.update(input);
        let out = &mut self.out;
        with_chunk_deflated(self.level, dict, input, flush, |c| out.write_all(c))?;
        let keep = self.buf.len().min(DICT);
        if matches!(flush, FlushCompress::Finish) {
            self.buf = Vec::new();
            self.dict = 0;
        } else {
            self.buf.drain(..self.buf.len() - keep);
            self.dict = keep;
        }
        Ok(())
    }
}

/// Deflates `input` as the next part of a raw deflate stream whose last 32 KiB so far are
/// `dict` (empty at the start), ended by a sync flush (more parts follow) or the final block
/// (`Finish`), with the calling thread's deflate state; `use_it` gets the compressed bytes.
/// Parts made this way, in order, are one deflate stream (pigz builds its blocks so).
pub(super) fn with_chunk_deflated<R>(
    level: u32,
    dict: &[u8],
    input: &[u8],
    flush: FlushCompress,
    use_it: impl FnOnce(&[u8]) -> io::Result<R>,
) -> io::Result<R> {
    DEFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_some_and(|s| s.0 != level) {
            *slot = None;
        }
        let (_, deflate, compressed) = slot.get_or_insert_with(|| {
            (
                level,
                Compress::new(Compression::new(level), false),
                Vec::with_capacity(CHUNK + CHUNK / 8),
            )
        });
        deflate.reset();
        if !dict.is_empty() {
            deflate.set_dictionary(dict).map_err(io::Error::other)?;
        }
        deflate_all(deflate, input, compressed, flush)?;
        let result = use_it(compressed);
        // A large part (a parallel block) leaves a large buffer: keep at most a chunk's worth.
        if compressed.capacity() > 4 * CHUNK {
            *compressed = Vec::with_capacity(CHUNK + CHUNK / 8);
        }
        result
    })
}

/// Deflates all of `input` into `out` (cleared first) and flushes as `flush` says.
fn deflate_all(
    deflate: &mut Compress,
    input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> io::Result<()> {
    out.clear();
    let start = deflate.total_in();
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(CHUNK / 4);
        }
        let consumed = (deflate.total_in() - start) as usize;
        let status = deflate
            .compress_vec(&input[consumed..], out, flush)
            .map_err(io::Error::other)?;
        let all_in = (deflate.total_in() - start) as usize == input.len();
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            // A sync flush is complete once it returns with output room to spare.
            _ => all_in && out.len() < out.capacity(),
        };
        if done {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn events(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            out.extend_from_slice(
                format!(
                    "{{\"id\":{i},\"user\":\"u{}\",\"action\":\"{}\",\"page\":\"/p/{}\",\"pad\":\"{}\"}}\n",
                    i * 7919 % 10007,
                    ["view", "click", "buy"][i % 3],
                    i * 31 % 977,
                    "x".repeat(i % 200)
                )
                .as_bytes(),
            );
        }
        out
    }

    fn lean(data: &[u8], pieces: usize) -> Vec<u8> {
        let mut g = LeanGzip::new(Vec::new(), 6).expect("header");
        for part in data.chunks(pieces) {
            g.write_all(part).expect("write");
            // What an open partition holds, whatever the writes.
            assert!(g.buf.capacity() <= DICT + CHUNK, "{}", g.buf.capacity());
        }
        g.finish().expect("finish")
    }

    #[test]
    fn chunks_make_one_member_that_reads_back_whole() {
        let data = events(20_000);
        for pieces in [1, 100, 4096, CHUNK, 3 * CHUNK + 5] {
            let gz = lean(&data, pieces);
            // One member: a single-member decoder reads it all.
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut back)
                .expect("gunzip");
            assert!(back == data, "pieces of {pieces}");
        }
        let empty = LeanGzip::new(Vec::new(), 6)
            .expect("header")
            .finish()
            .expect("finish");
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&empty[..])
            .read_to_end(&mut back)
            .expect("an empty member");
        assert!(back.is_empty());
    }

    #[test]
    fn the_ratio_stays_within_two_percent_of_one_stream() {
        // These lines compress 12:1, so a chunk's block boundary weighs more than on real
        // events (1.5% here, 0.26% on bench/parquet/make_events.py's).
        let data = events(40_000);
        let mut one = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        one.write_all(&data).expect("write");
        let one = one.finish().expect("finish").len() as f64;
        let lean = lean(&data, 1000).len() as f64;
        assert!(lean / one < 1.02, "lean {lean} vs one stream {one}");
    }
}
