//! ORC's version-1 run-length encodings (ORC specification, "Run Length Encoding"): byte RLE
//! (PRESENT and boolean streams, tinyint data), integer RLE v1 (lengths, ints, dates, seconds),
//! and the base-128 varints they and decimals are made of. Each writes into its `OutStream`.

use std::io;

use super::{OrcCompression, OutStream};

/// Values gathered before they are encoded (runs are looked for within them).
const PENDING: usize = 512;
/// RLE v1: a run holds 3-130 values, literals 1-128.
const MIN_RUN: usize = 3;
const MAX_RUN: usize = 130;
const MAX_LITERALS: usize = 128;

pub(super) fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// A decimal's unscaled value: zigzag, then base-128 of any length.
pub(super) fn varint_i128(out: &mut Vec<u8>, v: i128) {
    let mut z = ((v << 1) ^ (v >> 127)) as u128;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Byte RLE: runs of 3-130 equal bytes (header 0-127 = length - 3, then the byte), literals
/// of 1-128 bytes (header -1..-128).
pub(super) struct ByteRle {
    out: Vec<u8>,
    stream: OutStream,
    pending: Vec<u8>,
}

impl ByteRle {
    pub(super) fn new(kind: OrcCompression) -> Self {
        ByteRle {
            out: Vec::new(),
            stream: OutStream::new(kind),
            pending: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, b: u8) {
        self.pending.push(b);
        if self.pending.len() >= PENDING {
            self.drain();
        }
    }

    fn drain(&mut self) {
        let p = std::mem::take(&mut self.pending);
        let mut i = 0;
        let mut literal_start = 0;
        while i < p.len() {
            let mut run = 1;
            while i + run < p.len() && p[i + run] == p[i] && run < MAX_RUN {
                run += 1;
            }
            if run >= MIN_RUN {
                self.literals(&p[literal_start..i]);
                self.out.push((run - MIN_RUN) as u8);
                self.out.push(p[i]);
                i += run;
                literal_start = i;
            } else {
                i += run;
            }
        }
        self.literals(&p[literal_start..]);
        self.pending = p;
        self.pending.clear();
        self.stream.extend(&self.out);
        self.out.clear();
    }

    fn literals(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = bytes.len().min(MAX_LITERALS);
            self.out.push((-(n as i16)) as u8);
            self.out.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
    }

    pub(super) fn finish(&mut self) -> io::Result<Vec<u8>> {
        self.drain();
        self.stream.finish()
    }

    pub(super) fn bytes(&self) -> usize {
        self.stream.len() + self.pending.len()
    }
}

/// Booleans, eight to a byte (most significant bit first), then byte RLE.
pub(super) struct BoolRle {
    bytes: ByteRle,
    current: u8,
    bits: u8,
}

impl BoolRle {
    pub(super) fn new(kind: OrcCompression) -> Self {
        BoolRle {
            bytes: ByteRle::new(kind),
            current: 0,
            bits: 0,
        }
    }

    pub(super) fn push(&mut self, v: bool) {
        self.current |= u8::from(v) << (7 - self.bits);
        self.bits += 1;
        if self.bits == 8 {
            self.bytes.push(self.current);
            (self.current, self.bits) = (0, 0);
        }
    }

    pub(super) fn finish(&mut self) -> io::Result<Vec<u8>> {
        if self.bits > 0 {
            self.bytes.push(self.current);
            (self.current, self.bits) = (0, 0);
        }
        self.bytes.finish()
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes.bytes() + 1
    }
}

/// Integer RLE v1: runs of 3-130 values with a fixed delta in -128..=127 (header 0-127 =
/// length - 3, the delta byte, the first value), literals of 1-128 values (header -1..-128).
/// Values are varints, zigzag-encoded when `signed`.
pub(super) struct IntRle {
    signed: bool,
    out: Vec<u8>,
    stream: OutStream,
    pending: Vec<i64>,
}

impl IntRle {
    pub(super) fn new(signed: bool, kind: OrcCompression) -> Self {
        IntRle {
            signed,
            out: Vec::new(),
            stream: OutStream::new(kind),
            pending: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, v: i64) {
        self.pending.push(v);
        if self.pending.len() >= PENDING {
            self.drain();
        }
    }

    fn value(&mut self, v: i64) {
        let u = if self.signed { zigzag(v) } else { v as u64 };
        varint(&mut self.out, u);
    }

    /// How many values from `i` form a run (1 or 2 when none does), and its delta.
    fn run_at(p: &[i64], i: usize) -> (usize, i64) {
        if i + 1 >= p.len() {
            return (1, 0);
        }
        let delta = p[i + 1].wrapping_sub(p[i]);
        if !(-128..=127).contains(&delta) {
            return (1, 0);
        }
        let mut n = 2;
        while i + n < p.len() && n < MAX_RUN && p[i + n].wrapping_sub(p[i + n - 1]) == delta {
            n += 1;
        }
        (n, delta)
    }

    fn drain(&mut self) {
        let p = std::mem::take(&mut self.pending);
        let (mut i, mut literal_start) = (0, 0);
        while i < p.len() {
            let (run, delta) = Self::run_at(&p, i);
            if run >= MIN_RUN {
                self.literals(&p[literal_start..i]);
                self.out.push((run - MIN_RUN) as u8);
                self.out.push(delta as i8 as u8);
                self.value(p[i]);
                i += run;
                literal_start = i;
            } else {
                i += 1;
            }
        }
        self.literals(&p[literal_start..]);
        self.pending = p;
        self.pending.clear();
        self.stream.extend(&self.out);
        self.out.clear();
    }

    fn literals(&mut self, mut values: &[i64]) {
        while !values.is_empty() {
            let n = values.len().min(MAX_LITERALS);
            self.out.push((-(n as i16)) as u8);
            for &v in &values[..n] {
                self.value(v);
            }
            values = &values[n..];
        }
    }

    pub(super) fn finish(&mut self) -> io::Result<Vec<u8>> {
        self.drain();
        self.stream.finish()
    }

    pub(super) fn bytes(&self) -> usize {
        self.stream.len() + self.pending.len() * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: OrcCompression = OrcCompression::None;

    #[test]
    fn the_specification_s_examples_encode_as_written() {
        // Byte RLE: [0x61] x 100 -> 0x61 0x00 0x61; [0x44, 0x45] -> 0xfe 0x44 0x45.
        let mut b = ByteRle::new(NONE);
        (0..100).for_each(|_| b.push(0x00));
        assert_eq!(b.finish().expect("encodes"), vec![0x61, 0x00]);
        let mut b = ByteRle::new(NONE);
        b.push(0x44);
        b.push(0x45);
        assert_eq!(b.finish().expect("encodes"), vec![0xfe, 0x44, 0x45]);
        // Integer RLE v1: [7] x 100 -> 0x61 0x00 0x07; 100..=1 by -1 -> 0x61 0xff 0x64;
        // [2, 3, 6, 7, 11] -> 0xfb 0x02 0x03 0x06 0x07 0x0b.
        let mut i = IntRle::new(false, NONE);
        (0..100).for_each(|_| i.push(7));
        assert_eq!(i.finish().expect("encodes"), vec![0x61, 0x00, 0x07]);
        let mut i = IntRle::new(false, NONE);
        (1..=100).rev().for_each(|v| i.push(v));
        assert_eq!(i.finish().expect("encodes"), vec![0x61, 0xff, 0x64]);
        let mut i = IntRle::new(false, NONE);
        [2, 3, 6, 7, 11].into_iter().for_each(|v| i.push(v));
        assert_eq!(
            i.finish().expect("encodes"),
            vec![0xfb, 0x02, 0x03, 0x06, 0x07, 0x0b]
        );
        // Booleans: the most significant bit first, padded.
        let mut bits = BoolRle::new(NONE);
        [true, false, true].into_iter().for_each(|v| bits.push(v));
        assert_eq!(bits.finish().expect("encodes"), vec![0xff, 0b1010_0000]);
        let mut z = Vec::new();
        varint_i128(&mut z, -1);
        assert_eq!(z, vec![0x01]);
        assert_eq!(zigzag(-2), 3);
    }
}
