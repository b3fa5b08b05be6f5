//! Compression codecs for delivered objects: one compressed stream per object, written
//! incrementally so a 128 MiB buffer never sits in memory.

pub mod columnar;
pub mod conversion;
pub(crate) mod deflate_join;
mod hadoop_snappy;
mod lean_gzip;
pub mod orc;
pub mod parallel_gzip;
pub mod parquet;
mod zip;

use std::io::{self, Seek, Write};

use flate2::write::GzEncoder;

pub use hadoop_snappy::HadoopSnappyWriter;
pub use zip::ZipEntryWriter;

/// The S3 compression of a destination (AWS's CompressionFormat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Compression {
    Uncompressed,
    Gzip,
    Zip,
    Snappy,
    HadoopSnappy,
}

impl Compression {
    pub(crate) const ALL: [Compression; 5] = [
        Compression::Uncompressed,
        Compression::Gzip,
        Compression::Zip,
        Compression::Snappy,
        Compression::HadoopSnappy,
    ];

    /// The name AWS uses (DescribeDeliveryStream's CompressionFormat).
    pub fn api_name(self) -> &'static str {
        match self {
            Compression::Uncompressed => "UNCOMPRESSED",
            Compression::Gzip => "GZIP",
            Compression::Zip => "ZIP",
            Compression::Snappy => "Snappy",
            Compression::HadoopSnappy => "HADOOP_SNAPPY",
        }
    }

    /// AWS's object name extension.
    pub(crate) fn extension(self) -> &'static str {
        match self {
            Compression::Uncompressed => "",
            Compression::Gzip => ".gz",
            Compression::Zip => ".zip",
            Compression::Snappy => ".snappy",
            Compression::HadoopSnappy => ".hsnappy",
        }
    }
}

/// The stream identifier chunk of the snappy framing format.
const SNAPPY_STREAM_IDENTIFIER: &[u8] = b"\xff\x06\x00\x00sNaPpY";

/// The gzip level used for GZIP objects (zlib's default, as `gzip` itself).
pub const GZIP_LEVEL: u32 = 6;

/// Compresses a stream of bytes into `W`.
pub enum Encoder<W: Write + Seek> {
    Plain(W),
    Gzip(Box<GzEncoder<W>>),
    /// GZIP compressed a block at a time on every core (members in order).
    ParallelGzip(Box<parallel_gzip::ParallelGzip<W>>),
    /// GZIP with no deflate state kept between writes (`lean_gzip`): objects kept by the hundred.
    LeanGzip(Box<lean_gzip::LeanGzip<W>>),
    Zip(Box<ZipEntryWriter<W>>),
    /// With where the stream started: a stream with no data still gets its identifier.
    Snappy(Box<snap::write::FrameEncoder<W>>, u64),
    HadoopSnappy(Box<HadoopSnappyWriter<W>>),
}

impl<W: Write + Seek> Encoder<W> {
    /// `entry_name_len` is the length of the ZIP entry name that `finish` will get.
    pub fn new(compression: Compression, mut out: W, entry_name_len: usize) -> io::Result<Self> {
        Ok(match compression {
            Compression::Uncompressed => Encoder::Plain(out),
            Compression::Gzip => Encoder::Gzip(Box::new(GzEncoder::new(
                out,
                flate2::Compression::new(GZIP_LEVEL),
            ))),
            Compression::Zip => Encoder::Zip(Box::new(ZipEntryWriter::new(out, entry_name_len)?)),
            Compression::Snappy => {
                let start = out.stream_position()?;
                Encoder::Snappy(Box::new(snap::write::FrameEncoder::new(out)), start)
            }
            Compression::HadoopSnappy => {
                Encoder::HadoopSnappy(Box::new(HadoopSnappyWriter::new(out)))
            }
        })
    }

    /// As `new`, with GZIP and ZIP compressed on every core (`parallel_gzip`): for objects that
    /// may hold many blocks (a destination's main object), not for small ones kept by the hundred.
    pub fn new_parallel(
        compression: Compression,
        out: W,
        entry_name_len: usize,
    ) -> io::Result<Self> {
        match compression {
            Compression::Gzip => Ok(Encoder::ParallelGzip(Box::new(
                parallel_gzip::ParallelGzip::new(out, GZIP_LEVEL),
            ))),
            Compression::Zip => Ok(Encoder::Zip(Box::new(ZipEntryWriter::new_parallel(
                out,
                entry_name_len,
            )?))),
            _ => Encoder::new(compression, out, entry_name_len),
        }
    }

    /// As `new`, with GZIP that keeps no deflate state between writes (`lean_gzip`): for objects
    /// kept open by the hundred (dynamic partitions).
    pub fn new_lean(compression: Compression, out: W, entry_name_len: usize) -> io::Result<Self> {
        match compression {
            Compression::Gzip => Ok(Encoder::LeanGzip(Box::new(lean_gzip::LeanGzip::new(
                out, GZIP_LEVEL,
            )?))),
            _ => Encoder::new(compression, out, entry_name_len),
        }
    }

    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Encoder::LeanGzip(w) => w.write_all(data),
            Encoder::Plain(w) => w.write_all(data),
            Encoder::Gzip(w) => w.write_all(data),
            Encoder::ParallelGzip(w) => w.write_all(data),
            Encoder::Zip(w) => w.write_all(data),
            Encoder::Snappy(w, _) => w.write_all(data),
            Encoder::HadoopSnappy(w) => w.write_all(data),
        }
    }

    /// Ends the compressed stream; `entry_name` names the ZIP entry (ignored otherwise).
    pub fn finish(self, entry_name: &str) -> io::Result<W> {
        let mut out = match self {
            Encoder::Plain(w) => w,
            Encoder::Gzip(w) => w.finish()?,
            Encoder::ParallelGzip(w) => w.finish()?,
            Encoder::LeanGzip(w) => w.finish()?,
            Encoder::Zip(w) => w.finish(entry_name)?,
            Encoder::Snappy(w, start) => {
                let mut out = w.into_inner().map_err(|e| e.into_error())?;
                // The framing format's stream starts with its identifier even when empty (snap
                // writes it with the first data only).
                if out.stream_position()? == start {
                    out.write_all(SNAPPY_STREAM_IDENTIFIER)?;
                }
                out
            }
            Encoder::HadoopSnappy(w) => w.finish()?,
        };
        out.flush()?;
        Ok(out)
    }
}

#[cfg(test)]
/// Compresses `data` in one go (benchmarks, tests).
pub(crate) fn compress_to_vec(
    compression: Compression,
    data: &[u8],
    entry_name: &str,
) -> io::Result<Vec<u8>> {
    let mut enc = Encoder::new(compression, io::Cursor::new(Vec::new()), entry_name.len())?;
    enc.write_all(data)?;
    Ok(enc.finish(entry_name)?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> Vec<u8> {
        (0..20_000)
            .flat_map(|i| format!("{{\"id\":{i},\"msg\":\"hello world\"}}\n").into_bytes())
            .collect()
    }

    #[test]
    fn gzip_round_trip() {
        let data = sample();
        let out = compress_to_vec(Compression::Gzip, &data, "x").expect("compresses");
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .expect("decodes");
        assert_eq!(back, data);
    }

    #[test]
    fn snappy_is_the_framing_format() {
        let data = sample();
        let out = compress_to_vec(Compression::Snappy, &data, "x").expect("compresses");
        assert_eq!(&out[..10], b"\xff\x06\x00\x00sNaPpY");
        let mut back = Vec::new();
        snap::read::FrameDecoder::new(&out[..])
            .read_to_end(&mut back)
            .expect("decodes");
        assert_eq!(back, data);
    }

    #[test]
    fn empty_input_is_a_valid_stream_that_decodes_to_nothing() {
        let gzip = compress_to_vec(Compression::Gzip, b"", "e").expect("encodes");
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gzip[..])
            .read_to_end(&mut back)
            .expect("a complete gzip stream");
        assert!(back.is_empty() && gzip.len() >= 20, "{gzip:?}");

        let snappy = compress_to_vec(Compression::Snappy, b"", "e").expect("encodes");
        assert_eq!(&snappy[..10], b"\xff\x06\x00\x00sNaPpY");
        snap::read::FrameDecoder::new(&snappy[..])
            .read_to_end(&mut back)
            .expect("a complete snappy stream");
        assert!(back.is_empty());

        let hadoop = compress_to_vec(Compression::HadoopSnappy, b"", "e").expect("encodes");
        assert!(hadoop_snappy::tests::decode(&hadoop).is_empty());

        let zip = compress_to_vec(Compression::Zip, b"", "e").expect("encodes");
        // One entry named `e`, empty, in a complete archive (local header .. end of directory).
        assert_eq!(&zip[..4], b"PK\x03\x04");
        assert_eq!(&zip[zip.len() - 22..zip.len() - 18], b"PK\x05\x06");
        let entries = u16::from_le_bytes([zip[zip.len() - 12], zip[zip.len() - 11]]);
        assert_eq!(entries, 1);
        assert_eq!(&zip[30..31], b"e", "the entry's name");
    }
}
