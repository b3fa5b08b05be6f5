//! JSON -> ORC (AWS's OrcSerDe output), from the same rows as Parquet: the converter's arrow
//! arrays are laid out as ORC stripes (ORC specification v1, https://orc.apache.org/specification/ORCv1/):
//! version-1 encodings (DIRECT: byte and integer RLE v1, raw floats, strings with a LENGTH
//! stream), every Hive type including decimal, list, map and struct, NONE / ZLIB / SNAPPY
//! compression in 256 KiB chunks, and the protobuf footer. A stripe is written to the file when
//! its encoded streams reach the stripe size or the memory bound, so memory stays bounded as
//! for Parquet. No row index, bloom filters or dictionary encoding are written
//! (docs/format-conversion.md says what that means for readers).

mod columns;
mod proto;
mod rle;

use std::io::{self, Write};

use arrow_array::{Array, ArrayRef, StructArray};

use crate::encode::columnar::HiveType;
use columns::Column;
use proto::Message;

/// ORC's compression chunk (the ORC writers' default `orc.compress.size`).
const COMPRESSION_CHUNK: usize = 256 * 1024;

/// `output.orc.compression` (AWS's three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum OrcCompression {
    None,
    Zlib,
    Snappy,
}

impl OrcCompression {
    pub(crate) const ALL: [OrcCompression; 3] = [
        OrcCompression::None,
        OrcCompression::Zlib,
        OrcCompression::Snappy,
    ];

    /// AWS's spelling (OrcSerDe's Compression).
    pub(crate) fn api_name(self) -> &'static str {
        match self {
            OrcCompression::None => "NONE",
            OrcCompression::Zlib => "ZLIB",
            OrcCompression::Snappy => "SNAPPY",
        }
    }
}

/// `output.orc`: AWS's OrcSerDe. Those firehosed does not apply are kept for Describe.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OrcOptions {
    pub compression: OrcCompression,
    /// The most a stripe holds (AWS's StripeSizeBytes, default 64 MiB).
    pub stripe_size_bytes: u64,
    /// Accepted as AWS does (HDFS block size for padding); firehosed writes no padding.
    pub block_size_bytes: u64,
    pub row_index_stride: u64,
    pub bloom_filter_columns: Vec<String>,
    pub bloom_filter_false_positive_probability: f64,
    pub dictionary_key_threshold: f64,
    pub enable_padding: bool,
    pub padding_tolerance: f64,
    /// V0_12 (default) or V0_11: the version the file says it is.
    pub format_v0_11: bool,
}

impl OrcOptions {
    pub const DEFAULT: OrcOptions = OrcOptions {
        compression: OrcCompression::Snappy,
        stripe_size_bytes: 64 * 1024 * 1024,
        block_size_bytes: 256 * 1024 * 1024,
        row_index_stride: 10_000,
        bloom_filter_columns: Vec::new(),
        bloom_filter_false_positive_probability: 0.05,
        dictionary_key_threshold: 0.0,
        enable_padding: false,
        padding_tolerance: 0.05,
        format_v0_11: false,
    };
}

/// Counts what goes through to the file (stripe offsets).
struct Counted<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Counted<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

/// A finished stripe, ready to be written at any offset: its streams one after the other, and
/// its footer (compressed). Stripes are independent in what firehosed writes (no dictionaries,
/// no row index), so they can be encoded apart and written in order.
pub struct Stripe {
    /// The streams' bytes, in the order the footer lists them.
    streams: Vec<Vec<u8>>,
    footer: Vec<u8>,
    rows: u64,
    /// Per column (preorder): values, and whether a null was seen.
    statistics: Vec<(u64, bool)>,
}

impl Stripe {
    pub fn rows(&self) -> u64 {
        self.rows
    }
}

/// Encodes rows into stripes.
pub struct StripeEncoder {
    root: Column,
    compression: OrcCompression,
    /// Stripes end at this many encoded bytes.
    stripe_bytes: usize,
    rows: u64,
}

impl StripeEncoder {
    /// An encoder of `columns`; a stripe ends at the stripe size or `buffer_bytes`, whichever
    /// is smaller.
    pub fn new(columns: &[(String, HiveType)], options: &OrcOptions, buffer_bytes: u64) -> Self {
        StripeEncoder {
            root: Column::root(columns, options.compression),
            compression: options.compression,
            stripe_bytes: options.stripe_size_bytes.min(buffer_bytes) as usize,
            rows: 0,
        }
    }

    /// Adds rows; the stripe they complete, if the buffered streams reach the stripe size.
    pub fn push(&mut self, rows: &StructArray) -> io::Result<Option<Stripe>> {
        let n = rows.len();
        let all: Vec<usize> = (0..n).collect();
        let array: ArrayRef = std::sync::Arc::new(rows.clone());
        self.root.encode(&array, &all);
        self.rows += n as u64;
        match self.root.buffered() >= self.stripe_bytes {
            true => self.end(),
            false => Ok(None),
        }
    }

    /// Ends the stripe being built, if it holds rows.
    pub fn end(&mut self) -> io::Result<Option<Stripe>> {
        if self.rows == 0 {
            return Ok(None);
        }
        let mut streams = Vec::new();
        self.root.take_streams(&mut streams)?;
        let mut footer = Message::default();
        let mut data = Vec::with_capacity(streams.len());
        for (kind, column, bytes) in streams {
            footer.message(1, &proto::stream(kind, column, bytes.len() as u64));
            data.push(bytes);
        }
        let mut statistics = Vec::new();
        self.root.take_statistics(&mut statistics);
        for _ in 0..statistics.len() {
            footer.message(2, &proto::direct_encoding());
        }
        footer.bytes(3, b"UTC");
        let footer = compress(self.compression, &footer.0)?;
        Ok(Some(Stripe {
            streams: data,
            footer,
            rows: std::mem::take(&mut self.rows),
            statistics,
        }))
    }
}

/// One ORC file being written, stripe by stripe.
pub struct OrcFile<W: Write> {
    out: Counted<W>,
    compression: OrcCompression,
    /// Every column's Type (preorder), for the footer.
    types: Vec<Message>,
    rows: u64,
    stripes: Vec<Message>,
    /// Per column: values in the file, and whether a null was seen.
    statistics: Vec<(u64, bool)>,
    version: [u64; 2],
}

impl<W: Write> OrcFile<W> {
    /// A file of `columns` into `out`.
    pub fn new(
        mut out: W,
        columns: &[(String, HiveType)],
        options: &OrcOptions,
    ) -> io::Result<Self> {
        out.write_all(b"ORC")?;
        let root = Column::root(columns, options.compression);
        let mut types = Vec::new();
        root.types(&mut types);
        Ok(OrcFile {
            out: Counted {
                inner: out,
                written: 3,
            },
            compression: options.compression,
            statistics: vec![(0, false); types.len()],
            types,
            rows: 0,
            stripes: Vec::new(),
            version: if options.format_v0_11 {
                [0, 11]
            } else {
                [0, 12]
            },
        })
    }

    pub fn inner(&self) -> &W {
        &self.out.inner
    }

    pub fn inner_mut(&mut self) -> &mut W {
        &mut self.out.inner
    }

    /// Writes a stripe after those written before (its streams, then its footer).
    pub fn write_stripe(&mut self, stripe: Stripe) -> io::Result<()> {
        let offset = self.out.written;
        for stream in &stripe.streams {
            self.out.put(stream)?;
        }
        let data = self.out.written - offset;
        self.out.put(&stripe.footer)?;
        self.stripes.push(proto::stripe_information(
            offset,
            data,
            stripe.footer.len() as u64,
            stripe.rows,
        ));
        self.rows += stripe.rows;
        for (sum, (values, has_null)) in self.statistics.iter_mut().zip(stripe.statistics) {
            sum.0 += values;
            sum.1 |= has_null;
        }
        Ok(())
    }

    /// Ends the file (the footer, the postscript); returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        let mut footer = Message::default();
        footer.uint(1, 3).uint(2, self.out.written);
        for s in &self.stripes {
            footer.message(3, s);
        }
        for t in &self.types {
            footer.message(4, t);
        }
        footer.uint(6, self.rows);
        for (values, has_null) in &self.statistics {
            footer.message(7, &proto::statistics(*values, *has_null));
        }
        footer.uint(8, 0);
        let software = format!("firehosed {}", env!("CARGO_PKG_VERSION"));
        footer.bytes(12, software.as_bytes());
        let footer = compress(self.compression, &footer.0)?;
        self.out.put(&footer)?;
        let mut ps = Message::default();
        ps.uint(1, footer.len() as u64)
            .uint(2, self.compression as u64)
            .uint(3, COMPRESSION_CHUNK as u64)
            .packed(4, &self.version)
            .uint(5, 0)
            // ORC_135: timestamps are relative to UTC, as written.
            .uint(6, 6)
            .bytes(8000, b"ORC");
        let len = ps.0.len();
        self.out.put(&ps.0)?;
        self.out.put(&[len as u8])?;
        self.out.inner.flush()?;
        Ok(self.out.inner)
    }
}

/// One stream of the stripe being built, compressed a chunk at a time as it fills, so a stripe
/// holds its compressed bytes and at most one raw chunk per stream.
pub(super) struct OutStream {
    kind: OrcCompression,
    pending: Vec<u8>,
    done: Vec<u8>,
    error: Option<io::Error>,
}

impl OutStream {
    pub(super) fn new(kind: OrcCompression) -> Self {
        OutStream {
            kind,
            pending: Vec::new(),
            done: Vec::new(),
            error: None,
        }
    }

    pub(super) fn extend(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= COMPRESSION_CHUNK {
            self.spill(false);
        }
    }

    /// Compresses the whole chunks held (and, at the end, the rest).
    fn spill(&mut self, all: bool) {
        let whole = match all {
            true => self.pending.len(),
            false => self.pending.len() / COMPRESSION_CHUNK * COMPRESSION_CHUNK,
        };
        if whole == 0 {
            return;
        }
        match compress(self.kind, &self.pending[..whole]) {
            Ok(c) => self.done.extend_from_slice(&c),
            Err(e) => self.error = Some(e),
        }
        self.pending.drain(..whole);
    }

    /// The stream's bytes as they go to the file; the stream is empty again.
    pub(super) fn finish(&mut self) -> io::Result<Vec<u8>> {
        self.spill(true);
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.pending = Vec::new();
        Ok(std::mem::take(&mut self.done))
    }

    pub(super) fn len(&self) -> usize {
        self.done.len() + self.pending.len()
    }
}

/// `bytes` in ORC's compression framing: chunks of at most 256 KiB, each behind a 3-byte
/// header (length << 1, the low bit set when the chunk is stored as is because it would not
/// shrink). NONE has no framing.
fn compress(kind: OrcCompression, bytes: &[u8]) -> io::Result<Vec<u8>> {
    if kind == OrcCompression::None {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::with_capacity(bytes.len() / 2 + 16);
    for chunk in bytes.chunks(COMPRESSION_CHUNK) {
        let packed = match kind {
            OrcCompression::Zlib => {
                let mut e = flate2::write::DeflateEncoder::new(
                    Vec::with_capacity(chunk.len() / 2),
                    flate2::Compression::default(),
                );
                e.write_all(chunk)?;
                e.finish()?
            }
            _ => snap::raw::Encoder::new()
                .compress_vec(chunk)
                .map_err(io::Error::other)?,
        };
        let (header, body) = match packed.len() < chunk.len() {
            true => ((packed.len() as u32) << 1, &packed[..]),
            false => (((chunk.len() as u32) << 1) | 1, chunk),
        };
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(body);
    }
    Ok(out)
}
