//! Joining whole deflate streams into one (RFC 1951), as zlib's `gzjoin` does: a complete
//! stream ends with a block whose first bit (BFINAL) says it is the last. `continue_after`
//! finds that block, clears the bit and appends an empty stored block (what a sync flush
//! writes), so the stream ends on a byte boundary and the next stream's bytes continue it.
//!
//! It exists for libdeflate (`parallel_gzip`), which compresses a whole buffer at once, faster
//! and smaller than a streaming zlib, but has no flush: each of its outputs is a complete
//! stream. The only way to find where the final block starts is to walk every block before it,
//! so this is a deflate decoder that decodes no bytes: it reads each block's Huffman tables and
//! steps over its codes. On firehosed's events it runs at about 200 MB/s of compressed input
//! (about 850 MB/s of the input behind it), 12% of libdeflate's time at level 6.

use std::io;

/// The most bits a deflate Huffman code has.
const MAX_BITS: usize = 15;

/// Extra bits of the length codes 257..=285.
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];

/// Extra bits of the distance codes 0..=29.
const DISTANCE_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// The order in which a dynamic block lists its code-length code's lengths.
const CODE_LENGTH_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("deflate stream: {what}"),
    )
}

/// Reads bits least significant first, as deflate packs them, through a 64-bit buffer.
#[derive(Clone, Copy)]
struct Bits<'a> {
    data: &'a [u8],
    /// The next byte to load into `buf`.
    next: usize,
    buf: u64,
    /// Valid bits in `buf`.
    count: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits {
            data,
            next: 0,
            buf: 0,
            count: 0,
        }
    }

    /// Fills `buf` to at least 56 bits (zeros past the end; `check` catches a read past it).
    #[inline]
    fn refill(&mut self) {
        if self.count >= 56 {
            return;
        }
        let rest = self.data.get(self.next..).unwrap_or_default();
        let word = match rest.first_chunk::<8>() {
            Some(w) => u64::from_le_bytes(*w),
            None => {
                let mut w = [0u8; 8];
                w[..rest.len()].copy_from_slice(rest);
                u64::from_le_bytes(w)
            }
        };
        self.buf |= word << self.count;
        let bytes = (63 - self.count) >> 3;
        self.next += bytes;
        self.count += bytes * 8;
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        self.buf >>= n;
        self.count -= n;
    }

    /// The next `n` bits (up to 32).
    fn take(&mut self, n: usize) -> u64 {
        self.refill();
        let v = self.buf & ((1u64 << n) - 1);
        self.consume(n);
        v
    }

    /// Bits read so far.
    fn position(&self) -> usize {
        self.next * 8 - self.count
    }

    /// Goes on at bit `pos` (a stored block's data skipped).
    fn seek(&mut self, pos: usize) {
        self.next = pos / 8;
        self.buf = 0;
        self.count = 0;
        let skip = pos % 8;
        if skip != 0 {
            self.refill();
            self.consume(skip);
        }
    }

    fn check(&self) -> io::Result<()> {
        if self.position() > self.data.len() * 8 {
            return Err(malformed("it ends inside a block"));
        }
        Ok(())
    }
}

/// Bits of the first-level table: codes up to this long decode in one look-up into a table
/// small enough for the L1 cache (4 KiB); longer ones, rare by construction, bit by bit.
const FAST_BITS: usize = 10;

/// A canonical Huffman code. `fast` is indexed by the next `FAST_BITS` bits of the stream:
/// each entry is `symbol << 8 | bits to step over` (the code and the extra bits that follow
/// its symbol, as `extra` says), 0 where no code of up to `FAST_BITS` bits matches. Longer
/// codes are decoded as puff.c (zlib's reference inflater) does, from `count` and `sorted`.
struct Code {
    fast: Vec<u32>,
    /// Codes of each length.
    count: [u16; MAX_BITS + 1],
    /// `symbol << 8 | extra bits` of each symbol with a code, in canonical order.
    sorted: Vec<u32>,
}

impl Code {
    fn new(lengths: &[u8], extra: impl Fn(usize) -> u8) -> io::Result<Code> {
        let mut count = [0u16; MAX_BITS + 1];
        for &l in lengths {
            count[usize::from(l)] += 1;
        }
        count[0] = 0;
        let mut next = [0u32; MAX_BITS + 2];
        for len in 1..=MAX_BITS {
            next[len + 1] = (next[len] + u32::from(count[len])) << 1;
        }
        let mut fast = vec![0u32; 1 << FAST_BITS];
        let mut sorted: Vec<(u8, u32)> = Vec::with_capacity(lengths.len());
        for (symbol, &len) in lengths.iter().enumerate() {
            if len == 0 {
                continue;
            }
            let len = usize::from(len);
            let code = next[len];
            next[len] += 1;
            if code >= 1 << len {
                return Err(malformed("a Huffman code is oversubscribed"));
            }
            let extra = u32::from(extra(symbol));
            sorted.push((len as u8, (symbol as u32) << 8 | extra));
            if len <= FAST_BITS {
                // The stream holds a code's bits most significant first.
                let reversed = (code.reverse_bits() >> (32 - len)) as usize;
                let entry = (symbol as u32) << 8 | (len as u32 + extra);
                for i in (reversed..1 << FAST_BITS).step_by(1 << len) {
                    fast[i] = entry;
                }
            }
        }
        // Canonical order: by length, then by symbol (a stable sort keeps the symbols').
        sorted.sort_by_key(|&(len, _)| len);
        Ok(Code {
            fast,
            count,
            sorted: sorted.into_iter().map(|(_, e)| e).collect(),
        })
    }

    /// The symbol at the front of `buf` and the bits to step over.
    #[inline]
    fn decode(&self, buf: u64) -> io::Result<(usize, usize)> {
        let entry = self.fast[(buf & ((1 << FAST_BITS) - 1)) as usize];
        if entry != 0 {
            return Ok(((entry >> 8) as usize, (entry & 0xff) as usize));
        }
        self.decode_long(buf)
    }

    #[cold]
    fn decode_long(&self, buf: u64) -> io::Result<(usize, usize)> {
        let (mut code, mut first, mut index) = (0u32, 0u32, 0usize);
        for len in 1..=MAX_BITS {
            code |= ((buf >> (len - 1)) & 1) as u32;
            let count = u32::from(self.count[len]);
            if code < first + count {
                let entry = self.sorted[index + (code - first) as usize];
                return Ok(((entry >> 8) as usize, len + (entry & 0xff) as usize));
            }
            index += count as usize;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err(malformed("no Huffman code matches"))
    }
}

fn no_extra(_: usize) -> u8 {
    0
}

fn length_extra(symbol: usize) -> u8 {
    symbol
        .checked_sub(257)
        .and_then(|i| LENGTH_EXTRA.get(i))
        .copied()
        .unwrap_or(0)
}

fn distance_extra(symbol: usize) -> u8 {
    DISTANCE_EXTRA.get(symbol).copied().unwrap_or(0)
}

/// Where the final block of the stream at the front of `data` starts, and where it ends, in
/// bits from the start of `data`.
struct FinalBlock {
    header: usize,
    end: usize,
}

fn final_block(data: &[u8]) -> io::Result<FinalBlock> {
    let mut bits = Bits::new(data);
    loop {
        let header = bits.position();
        let last = bits.take(1) == 1;
        match bits.take(2) {
            0 => skip_stored(&mut bits)?,
            1 => {
                let (lit, dist) = fixed_codes()?;
                skip_codes(&mut bits, &lit, &dist)?;
            }
            2 => {
                let (lit, dist) = dynamic_codes(&mut bits)?;
                skip_codes(&mut bits, &lit, &dist)?;
            }
            _ => return Err(malformed("a block of the reserved type 3")),
        }
        bits.check()?;
        if last {
            return Ok(FinalBlock {
                header,
                end: bits.position(),
            });
        }
    }
}

fn skip_stored(bits: &mut Bits) -> io::Result<()> {
    bits.seek(bits.position().div_ceil(8) * 8);
    let len = bits.take(16);
    let nlen = bits.take(16);
    if len != !nlen & 0xffff {
        return Err(malformed(
            "a stored block's length and its complement differ",
        ));
    }
    bits.seek(bits.position() + len as usize * 8);
    Ok(())
}

fn fixed_codes() -> io::Result<(Code, Code)> {
    let mut lit = [8u8; 288];
    lit[144..256].fill(9);
    lit[256..280].fill(7);
    Ok((
        Code::new(&lit, length_extra)?,
        Code::new(&[5u8; 30], distance_extra)?,
    ))
}

/// Reads a dynamic block's code lengths and builds its two codes.
fn dynamic_codes(bits: &mut Bits) -> io::Result<(Code, Code)> {
    let hlit = bits.take(5) as usize + 257;
    let hdist = bits.take(5) as usize + 1;
    let hclen = bits.take(4) as usize + 4;
    let mut cl = [0u8; 19];
    for &i in &CODE_LENGTH_ORDER[..hclen] {
        cl[i] = bits.take(3) as u8;
    }
    let cl = Code::new(&cl, no_extra)?;
    let mut lengths = Vec::with_capacity(hlit + hdist);
    while lengths.len() < hlit + hdist {
        bits.refill();
        let (symbol, len) = cl.decode(bits.buf)?;
        bits.consume(len);
        let (value, repeat) = match symbol {
            0..=15 => (symbol as u8, 1),
            16 => {
                let previous = *lengths
                    .last()
                    .ok_or_else(|| malformed("a repeat with nothing before it"))?;
                (previous, 3 + bits.take(2) as usize)
            }
            17 => (0, 3 + bits.take(3) as usize),
            _ => (0, 11 + bits.take(7) as usize),
        };
        if lengths.len() + repeat > hlit + hdist {
            return Err(malformed("code lengths run past their count"));
        }
        lengths.resize(lengths.len() + repeat, value);
        bits.check()?;
    }
    if lengths[256] == 0 {
        return Err(malformed("a block with no end-of-block code"));
    }
    Ok((
        Code::new(&lengths[..hlit], length_extra)?,
        Code::new(&lengths[hlit..], distance_extra)?,
    ))
}

/// Steps over a Huffman block's codes up to and including its end-of-block code. The reader
/// is a local copy in the loop, so its state stays in registers. (The loop is bound by the
/// latency of one table look-up after another; a version that never branches on literal or
/// match, looking up a distance code after every code, ran 15% slower.)
fn skip_codes(bits: &mut Bits, lit: &Code, dist: &Code) -> io::Result<()> {
    let mut b = *bits;
    let end = b.data.len() + 8;
    let result = loop {
        // A refill covers a length code and its extra bits (15 + 5), then a distance code
        // and its extra bits (15 + 13): 48 of the 56 bits.
        b.refill();
        // Past the end, the zeros read decode as codes forever: stop there.
        if b.next > end {
            break Err(malformed("it ends inside a block"));
        }
        let (symbol, n) = match lit.decode(b.buf) {
            Ok(d) => d,
            Err(e) => break Err(e),
        };
        b.consume(n);
        if symbol < 256 {
            continue;
        }
        if symbol == 256 {
            break Ok(());
        }
        if symbol > 285 {
            break Err(malformed("a length code past 285"));
        }
        match dist.decode(b.buf) {
            Ok((d, n)) if d <= 29 => b.consume(n),
            Ok(_) => break Err(malformed("a distance code past 29")),
            Err(e) => break Err(e),
        }
    };
    *bits = b;
    result
}

/// Turns `stream`, one complete deflate stream, into the front part of a longer one: its
/// final block is no longer final, and an empty stored block brings it to a byte boundary,
/// where the next stream's bytes go on.
pub(crate) fn continue_after(stream: &mut Vec<u8>) -> io::Result<()> {
    let last = final_block(stream)?;
    stream[last.header / 8] &= !(1 << (last.header % 8));
    stream.truncate(last.end.div_ceil(8));
    if last.end % 8 != 0
        && let Some(b) = stream.last_mut()
    {
        *b &= (1 << (last.end % 8)) - 1;
    }
    // The empty stored block: its header's three zero bits, zeros to the byte, then LEN 0
    // and NLEN 0xffff.
    stream.resize((last.end + 3).div_ceil(8), 0);
    stream.extend_from_slice(&[0, 0, 0xff, 0xff]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn libdeflate(data: &[u8], level: i32) -> Vec<u8> {
        let mut c = libdeflater::Compressor::new(
            libdeflater::CompressionLvl::new(level).expect("a valid level"),
        );
        let mut out = vec![0; c.deflate_compress_bound(data.len())];
        let n = c.deflate_compress(data, &mut out).expect("compresses");
        out.truncate(n);
        out
    }

    fn inflate(stream: &[u8]) -> Vec<u8> {
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(stream)
            .read_to_end(&mut back)
            .expect("one valid deflate stream");
        back
    }

    /// Inputs that make every kind of block: empty and tiny (fixed codes), random bytes
    /// (stored), one byte repeated (long matches), JSON lines (dynamic codes with the longest
    /// Huffman codes), and a mix.
    fn inputs() -> Vec<Vec<u8>> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let random: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let json: Vec<u8> = (0..40_000)
            .flat_map(|i| {
                format!("{{\"id\":{i},\"v\":\"x{}\"}}\n", (i * 7919) % 10_007).into_bytes()
            })
            .collect();
        let mut mixed = json[..200_000].to_vec();
        mixed.extend_from_slice(&random[..100_000]);
        mixed.extend_from_slice(&[b'a'; 70_000]);
        vec![
            Vec::new(),
            b"a".to_vec(),
            b"hello, hello, hello".to_vec(),
            random,
            vec![0; 500_000],
            json,
            mixed,
        ]
    }

    #[test]
    fn streams_continued_after_their_final_block_join_into_one() {
        let inputs = inputs();
        for level in [0, 1, 6, 12] {
            for (i, first) in inputs.iter().enumerate() {
                let second = &inputs[(i + 3) % inputs.len()];
                let mut joined = libdeflate(first, level);
                continue_after(&mut joined).expect("finds the final block");
                let mut middle = libdeflate(second, level);
                continue_after(&mut middle).expect("finds the final block");
                joined.extend_from_slice(&middle);
                joined.extend_from_slice(&libdeflate(first, level));
                let expected = [first.as_slice(), second, first].concat();
                assert!(inflate(&joined) == expected, "level {level}, input {i}");
            }
        }
    }

    /// A seeded generator of adversarial parts: empty and one-byte parts, sizes around block
    /// and window edges, random bytes (stored blocks), runs (long matches), JSON with a varying
    /// alphabet (dynamic codes of many shapes), and mixes of them.
    fn part(x: &mut u64) -> Vec<u8> {
        let mut next = || {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            *x
        };
        let len = match next() % 6 {
            0 => (next() % 3) as usize,
            1 => (next() % 64) as usize,
            2 => [32_767, 32_768, 32_769, 65_535, 65_536][(next() % 5) as usize],
            _ => (next() % 70_000) as usize,
        };
        let kind = next() % 4;
        let alphabet = 2 + next() % 60;
        (0..len)
            .map(|i| match kind {
                0 => next() as u8,
                1 => b'a' + (i / 5000 % 3) as u8,
                2 => {
                    b"{\"k\":\"0123456789abcdefghijklmnopqrstuvwxyz\"}\n"
                        [(next() % alphabet) as usize % 44]
                }
                _ if i % 1000 < 500 => next() as u8,
                _ => b'z',
            })
            .collect()
    }

    /// The property the parallel GZIP writer relies on: for any parts, deflating each at any
    /// libdeflate level, continuing every stream but the last after its final block and
    /// concatenating them inflates to the parts' concatenation.
    #[test]
    fn any_parts_at_every_level_join_into_their_concatenation() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for case in 0..24 {
            let parts: Vec<Vec<u8>> = (0..2 + case % 4).map(|_| part(&mut x)).collect();
            for level in 0..=12 {
                let mut joined = Vec::new();
                for (i, p) in parts.iter().enumerate() {
                    let mut stream = libdeflate(p, level);
                    if i + 1 < parts.len() {
                        continue_after(&mut stream).expect("finds the final block");
                    }
                    joined.extend_from_slice(&stream);
                }
                assert!(
                    inflate(&joined) == parts.concat(),
                    "case {case}, level {level}, sizes {:?}",
                    parts.iter().map(Vec::len).collect::<Vec<_>>()
                );
            }
        }
    }

    /// zlib's streams end in ways libdeflate's do not: after a sync or full flush (an empty
    /// stored block, then a final block that may be empty), or as one stored final block.
    #[test]
    fn zlib_streams_ending_after_flushes_join_too() {
        use flate2::{Compress, Compression, FlushCompress};
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for case in 0..40 {
            let data = part(&mut x);
            let level = (case % 10) as u32;
            let mut c = Compress::new(Compression::new(level), false);
            let mut stream = Vec::with_capacity(data.len() * 2 + 64);
            let half = data.len() / 2;
            let flush = if case % 2 == 0 {
                FlushCompress::Sync
            } else {
                FlushCompress::Full
            };
            c.compress_vec(&data[..half], &mut stream, flush)
                .expect("compresses");
            c.compress_vec(&data[half..], &mut stream, FlushCompress::Sync)
                .expect("compresses");
            c.compress_vec(&[], &mut stream, FlushCompress::Finish)
                .expect("finishes");
            continue_after(&mut stream).expect("finds the final block");
            stream.extend_from_slice(&libdeflate(b"after", 6));
            assert!(
                inflate(&stream) == [data.as_slice(), b"after"].concat(),
                "case {case}, level {level}"
            );
        }
    }

    #[test]
    fn the_final_block_is_found_in_zlib_streams_too() {
        for data in inputs() {
            for level in [1, 6, 9] {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(level));
                std::io::Write::write_all(&mut e, &data).expect("compresses");
                let mut stream = e.finish().expect("compresses");
                let whole = stream.len();
                let last = final_block(&stream).expect("a complete stream");
                assert_eq!(last.end.div_ceil(8), whole);
                continue_after(&mut stream).expect("continues");
                stream.extend_from_slice(&libdeflate(b"tail", 6));
                assert!(inflate(&stream) == [data.as_slice(), b"tail"].concat());
            }
        }
    }

    #[test]
    fn a_cut_or_corrupt_stream_is_an_error_not_a_panic() {
        let whole = libdeflate(&inputs()[5], 6);
        for cut in (0..whole.len() - 1).step_by(97) {
            assert!(final_block(&whole[..cut]).is_err(), "cut at {cut}");
        }
        let mut x = 1u32;
        for _ in 0..2_000 {
            let mut bad = whole[..4096].to_vec();
            for _ in 0..4 {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let at = (x >> 8) as usize % bad.len();
                bad[at] ^= 1 << (x % 8);
            }
            let _ = final_block(&bad);
        }
    }
}
