//! A ZIP archive with exactly one deflated entry, written as a stream: the local header is
//! reserved up front and filled in at `finish`, when CRC and sizes are known (so no data
//! descriptor is needed and every reader, Python's zipfile and `unzip` included, opens it).

use std::io::{self, Seek, SeekFrom, Write};

use chrono::{Datelike, Timelike, Utc};
use flate2::write::DeflateEncoder;

use super::parallel_gzip::ParallelGzip;

const LOCAL_HEADER_LEN: u64 = 30;

pub struct ZipEntryWriter<W: Write + Seek> {
    deflate: Deflate<Counting<W>>,
    crc: crc32fast::Hasher,
    uncompressed: u64,
    start: u64,
    name_len: usize,
}

/// The entry's data: one deflate stream on this thread, or blocks on every core
/// (`parallel_gzip`, raw: the same stream as pigz would cut it).
enum Deflate<W: Write> {
    One(DeflateEncoder<W>),
    Parallel(Box<ParallelGzip<W>>),
}

impl<W: Write> Deflate<W> {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Deflate::One(d) => d.write_all(data),
            Deflate::Parallel(d) => d.write_all(data),
        }
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Deflate::One(d) => d.finish(),
            Deflate::Parallel(d) => d.finish(),
        }
    }
}

struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write + Seek> ZipEntryWriter<W> {
    /// Reserves a local header for an entry name of `name_len` bytes.
    pub(crate) fn new(out: W, name_len: usize) -> io::Result<Self> {
        Self::start(out, name_len, false)
    }

    /// As `new`, with the entry deflated on every core (a destination's main object).
    pub(crate) fn new_parallel(out: W, name_len: usize) -> io::Result<Self> {
        Self::start(out, name_len, true)
    }

    fn start(mut out: W, name_len: usize, parallel: bool) -> io::Result<Self> {
        let start = out.stream_position()?;
        out.write_all(&vec![0u8; LOCAL_HEADER_LEN as usize + name_len])?;
        let counting = Counting {
            inner: out,
            written: 0,
        };
        let level = super::GZIP_LEVEL;
        Ok(ZipEntryWriter {
            deflate: if parallel {
                Deflate::Parallel(Box::new(ParallelGzip::raw(counting, level)))
            } else {
                Deflate::One(DeflateEncoder::new(
                    counting,
                    flate2::Compression::new(level),
                ))
            },
            crc: crc32fast::Hasher::new(),
            uncompressed: 0,
            start,
            name_len,
        })
    }

    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.crc.update(data);
        self.uncompressed += data.len() as u64;
        self.deflate.write_all(data)
    }

    pub(crate) fn finish(self, name: &str) -> io::Result<W> {
        if name.len() != self.name_len {
            return Err(io::Error::other(format!(
                "zip entry name {name:?} is not the reserved {} bytes",
                self.name_len
            )));
        }
        let counting = self.deflate.finish()?;
        let compressed = counting.written;
        let mut out = counting.inner;
        let crc = self.crc.finalize();
        let too_big =
            |v: u64| u32::try_from(v).map_err(|_| io::Error::other("zip entry larger than 4 GiB"));
        let (csize, usize_) = (too_big(compressed)?, too_big(self.uncompressed)?);
        let (time, date) = dos_now();
        let name_len = u16::try_from(name.len()).map_err(|_| io::Error::other("name too long"))?;

        let mut local = Vec::with_capacity(LOCAL_HEADER_LEN as usize + name.len());
        local.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        local.extend_from_slice(&20u16.to_le_bytes()); // version needed: 2.0 (deflate)
        local.extend_from_slice(&0u16.to_le_bytes()); // flags
        local.extend_from_slice(&8u16.to_le_bytes()); // method: deflate
        local.extend_from_slice(&time.to_le_bytes());
        local.extend_from_slice(&date.to_le_bytes());
        local.extend_from_slice(&crc.to_le_bytes());
        local.extend_from_slice(&csize.to_le_bytes());
        local.extend_from_slice(&usize_.to_le_bytes());
        local.extend_from_slice(&name_len.to_le_bytes());
        local.extend_from_slice(&0u16.to_le_bytes()); // extra length
        local.extend_from_slice(name.as_bytes());
        out.seek(SeekFrom::Start(self.start))?;
        out.write_all(&local)?;
        let cd_offset = too_big(LOCAL_HEADER_LEN + name.len() as u64 + compressed)?;
        out.seek(SeekFrom::Start(self.start + u64::from(cd_offset)))?;

        let mut central = Vec::with_capacity(46 + name.len() + 22);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&0x0314u16.to_le_bytes()); // made by: unix, 2.0
        central.extend_from_slice(&local[4..30]); // needed .. extra length, as in the local header
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk number
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&(0o100644u32 << 16).to_le_bytes()); // -rw-r--r--
        central.extend_from_slice(&0u32.to_le_bytes()); // local header offset
        central.extend_from_slice(name.as_bytes());
        let cd_len = central.len() as u32;
        central.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&1u16.to_le_bytes());
        central.extend_from_slice(&1u16.to_le_bytes());
        central.extend_from_slice(&cd_len.to_le_bytes());
        central.extend_from_slice(&cd_offset.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        out.write_all(&central)?;
        Ok(out)
    }
}

fn dos_now() -> (u16, u16) {
    let now = Utc::now();
    let time = ((now.hour() << 11) | (now.minute() << 5) | (now.second() / 2)) as u16;
    let year = now.year().clamp(1980, 2107) as u32 - 1980;
    let date = ((year << 9) | (now.month() << 5) | now.day()) as u16;
    (time, date)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Read};

    #[test]
    fn one_entry_readable_by_offsets() {
        let data = b"hello zip world\n".repeat(1000);
        entry_reads_back(ZipEntryWriter::new(Cursor::new(Vec::new()), 5), &data);
        // On every core: 1 MiB blocks, one deflate stream, the same archive.
        let big: Vec<u8> = (0..300_000)
            .flat_map(|i| format!("{{\"id\":{i},\"m\":\"{}\"}}\n", i % 977).into_bytes())
            .collect();
        assert!(big.len() > 4 * 1024 * 1024);
        entry_reads_back(
            ZipEntryWriter::new_parallel(Cursor::new(Vec::new()), 5),
            &big,
        );
        entry_reads_back(
            ZipEntryWriter::new_parallel(Cursor::new(Vec::new()), 5),
            b"",
        );
    }

    fn entry_reads_back(w: io::Result<ZipEntryWriter<Cursor<Vec<u8>>>>, data: &[u8]) {
        let mut w = w.expect("opens");
        for part in data.chunks(100_000) {
            w.write_all(part).expect("writes");
        }
        let out = w.finish("entry").expect("finishes").into_inner();
        assert_eq!(&out[..4], b"PK\x03\x04");
        let csize = u32::from_le_bytes([out[18], out[19], out[20], out[21]]) as usize;
        assert_eq!(&out[30..35], b"entry");
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(&out[35..35 + csize])
            .read_to_end(&mut back)
            .expect("inflates");
        assert!(back == data);
        let crc = u32::from_le_bytes([out[14], out[15], out[16], out[17]]);
        assert_eq!(crc, crc32fast::hash(data));
        let eocd = &out[out.len() - 22..];
        assert_eq!(&eocd[..4], b"PK\x05\x06");
    }

    #[test]
    fn wrong_name_length_is_refused() {
        let w = ZipEntryWriter::new(Cursor::new(Vec::new()), 5).expect("opens");
        assert!(w.finish("toolong").is_err());
    }
}
