//! Hadoop's snappy stream (BlockCompressorStream framing, the `.hsnappy` objects of
//! HADOOP_SNAPPY): per block a 4-byte big-endian uncompressed length, then one chunk of a
//! 4-byte big-endian compressed length and a raw snappy block.

use std::io::{self, Write};

/// Uncompressed bytes per block: below Hadoop's 256 KiB buffer minus its snappy overhead
/// (256 KiB / 6 + 32), so Hadoop's own decompressor accepts every block.
pub(crate) const BLOCK: usize = 128 * 1024;

pub struct HadoopSnappyWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    encoder: snap::raw::Encoder,
    scratch: Vec<u8>,
}

impl<W: Write> HadoopSnappyWriter<W> {
    pub(crate) fn new(out: W) -> Self {
        HadoopSnappyWriter {
            out,
            buf: Vec::with_capacity(BLOCK),
            encoder: snap::raw::Encoder::new(),
            scratch: vec![0; snap::raw::max_compress_len(BLOCK)],
        }
    }

    pub(crate) fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let take = (BLOCK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == BLOCK {
                self.emit()?;
            }
        }
        Ok(())
    }

    fn emit(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let n = self
            .encoder
            .compress(&self.buf, &mut self.scratch)
            .map_err(io::Error::other)?;
        self.out.write_all(&(self.buf.len() as u32).to_be_bytes())?;
        self.out.write_all(&(n as u32).to_be_bytes())?;
        self.out.write_all(&self.scratch[..n])?;
        self.buf.clear();
        Ok(())
    }

    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.emit()?;
        Ok(self.out)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Decodes the framing the way Hadoop's BlockDecompressorStream does.
    pub(crate) fn decode(mut input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        while !input.is_empty() {
            let raw_len = be(input);
            input = &input[4..];
            let mut got = 0;
            while got < raw_len {
                let clen = be(input);
                let block = snap::raw::Decoder::new()
                    .decompress_vec(&input[4..4 + clen])
                    .expect("valid snappy block");
                got += block.len();
                out.extend_from_slice(&block);
                input = &input[4 + clen..];
            }
        }
        out
    }

    #[test]
    fn blocks_round_trip() {
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut w = HadoopSnappyWriter::new(Vec::new());
        w.write_all(&data[..1000]).expect("writes");
        w.write_all(&data[1000..]).expect("writes");
        let out = w.finish().expect("finishes");
        assert_eq!(
            u32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize,
            BLOCK
        );
        assert_eq!(decode(&out), data);
    }
}
