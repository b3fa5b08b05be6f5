//! Spool segment files: `<first seq, 20 digits>.seg`, a sequence of frames
//! `[len u32 LE][crc32 u32 LE][arrival_ms i64 LE][data]`, the CRC over arrival and data.
//! A frame's sequence number is its segment's first seq plus its index.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub(crate) const HEADER: usize = 16;
/// Largest record a frame may hold (Kinesis records are at most 10 MiB).
pub(crate) const MAX_DATA: usize = 16 * 1024 * 1024;

/// One append's records, framed as a segment holds them and written by the spool as they are.
/// The producer's task makes them (the copy and the CRC run on the request handlers' threads,
/// not on the spool's one writer thread), and a request's records can be decoded straight into
/// their frames (`push_with`): a record is copied once between the request and the disk.
#[derive(Debug)]
pub(crate) struct Frames {
    buf: Vec<u8>,
    arrival_ms: i64,
    count: usize,
}

impl Frames {
    /// No frames yet, of records that arrived at `arrival_ms`, with room for `capacity` bytes
    /// of records.
    pub(crate) fn new(arrival_ms: i64, capacity: usize) -> Frames {
        Frames {
            buf: Vec::with_capacity(capacity),
            arrival_ms,
            count: 0,
        }
    }

    /// `records` framed.
    pub(crate) fn of(records: &[bytes::Bytes], arrival_ms: i64) -> Frames {
        let size = records.iter().map(|r| frame_len(r.len())).sum();
        let mut frames = Frames::new(arrival_ms, size);
        for r in records {
            frames.push(r);
        }
        frames
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        let start = self.begin();
        self.buf.extend_from_slice(data);
        self.end(start);
    }

    /// Appends the record `write` appends to the buffer it is given (and nothing else); when
    /// it fails the buffer is as it was. The record's length, or `write`'s error.
    pub(crate) fn push_with<E>(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<usize, E> {
        let start = self.begin();
        match write(&mut self.buf) {
            Ok(()) => Ok(self.end(start)),
            Err(e) => {
                self.buf.truncate(start);
                Err(e)
            }
        }
    }

    /// A frame's header (filled in by `end`); where it starts.
    fn begin(&mut self) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; HEADER]);
        start
    }

    /// Fills in the header of the frame at `start` for the data after it; the data's length.
    fn end(&mut self, start: usize) -> usize {
        let arrival = self.arrival_ms.to_le_bytes();
        let (header, data) = self.buf[start..].split_at_mut(HEADER);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&arrival);
        crc.update(data);
        header[..4].copy_from_slice(&(data.len() as u32).to_le_bytes());
        header[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
        header[8..].copy_from_slice(&arrival);
        self.count += 1;
        data.len()
    }

    /// Records framed.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Bytes of the records alone.
    pub(crate) fn data_bytes(&self) -> usize {
        self.buf.len() - self.count * HEADER
    }

    /// The frames' bytes, as a segment holds them.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The records, read back from their frames.
    #[cfg(test)]
    pub(crate) fn records(&self) -> Vec<&[u8]> {
        let mut records = Vec::new();
        let mut at = 0;
        while let Frame::Complete { data, len, .. } = decode(&self.buf[at..]) {
            records.push(&self.buf[at + data.start..at + data.end]);
            at += len;
        }
        assert_eq!(at, self.buf.len(), "every frame complete");
        records
    }
}

pub(crate) fn frame_len(data_len: usize) -> usize {
    HEADER + data_len
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A valid frame: arrival time, data range within the buffer, total frame length.
    Complete {
        arrival_ms: i64,
        data: std::ops::Range<usize>,
        len: usize,
    },
    /// The buffer ends inside the frame; `need` bytes make it whole.
    Incomplete {
        need: usize,
    },
    Corrupt,
}

/// Decodes the frame at the start of `buf`.
pub(crate) fn decode(buf: &[u8]) -> Frame {
    if buf.len() < HEADER {
        return Frame::Incomplete { need: HEADER };
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_DATA {
        return Frame::Corrupt;
    }
    let total = HEADER + len;
    if buf.len() < total {
        return Frame::Incomplete { need: total };
    }
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let mut arrival = [0u8; 8];
    arrival.copy_from_slice(&buf[8..16]);
    let mut h = crc32fast::Hasher::new();
    h.update(&arrival);
    h.update(&buf[HEADER..total]);
    if h.finalize() != crc {
        return Frame::Corrupt;
    }
    Frame::Complete {
        arrival_ms: i64::from_le_bytes(arrival),
        data: HEADER..total,
        len: total,
    }
}

pub(crate) fn name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

pub(crate) fn path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(name(first_seq))
}

/// Segments in `dir`, sorted by first seq: (first seq, size in bytes).
pub(crate) fn list(dir: &Path) -> io::Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
            continue;
        };
        if let Ok(first) = stem.parse::<u64>() {
            out.push((first, entry.metadata()?.len()));
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Walks the frames of a segment: how many are valid and where the valid part ends. Stops at
/// the first torn or corrupt frame (after a crash, an unacknowledged tail).
pub(crate) fn scan(path: &Path) -> io::Result<(u64, u64)> {
    let mut file = File::open(path)?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    let mut offset = 0usize;
    let mut count = 0u64;
    while let Frame::Complete { len, .. } = decode(&buf[offset..]) {
        offset += len;
        count += 1;
    }
    Ok((count, offset as u64))
}

/// The byte offset of frame number `n` of a segment (for a reader that starts mid-segment).
pub(crate) fn offset_of(path: &Path, n: u64) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let mut header = [0u8; HEADER];
    let mut offset = 0u64;
    for _ in 0..n {
        file.read_exact(&mut header)?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as u64;
        offset += HEADER as u64 + len;
        std::io::Seek::seek(&mut file, io::SeekFrom::Start(offset))?;
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One record framed, as a segment holds it.
    fn encode(out: &mut Vec<u8>, arrival_ms: i64, data: &[u8]) {
        let mut frames = Frames::new(arrival_ms, 0);
        frames.push(data);
        out.extend_from_slice(frames.bytes());
    }

    #[test]
    fn frames_pushed_or_decoded_in_place_read_back_and_a_failed_one_leaves_nothing() {
        let mut frames = Frames::new(77, 0);
        frames.push(b"one");
        let len = frames.push_with(|buf| {
            buf.extend_from_slice(b"two, written in place");
            Ok::<(), ()>(())
        });
        assert_eq!(len, Ok(21));
        let before = frames.bytes().to_vec();
        let failed = frames.push_with(|buf| {
            buf.extend_from_slice(b"half");
            Err("not base64")
        });
        assert_eq!(failed, Err("not base64"));
        assert_eq!(frames.bytes(), &before[..], "nothing of the failed record");
        frames.push(b"");
        assert_eq!((frames.len(), frames.data_bytes()), (3, 24));
        assert_eq!(
            frames.records(),
            vec![&b"one"[..], b"two, written in place", b""]
        );
        let Frame::Complete { arrival_ms, .. } = decode(frames.bytes()) else {
            panic!("a frame")
        };
        assert_eq!(arrival_ms, 77);
    }

    #[test]
    fn round_trip_and_damage() {
        let mut buf = Vec::new();
        encode(&mut buf, 42, b"hello");
        encode(&mut buf, 43, b"");
        let Frame::Complete {
            arrival_ms,
            data,
            len,
        } = decode(&buf)
        else {
            panic!("first frame")
        };
        assert_eq!((arrival_ms, &buf[data], len), (42, &b"hello"[..], 21));
        assert!(matches!(
            decode(&buf[21..]),
            Frame::Complete {
                arrival_ms: 43,
                len: 16,
                ..
            }
        ));
        assert_eq!(decode(&buf[..20]), Frame::Incomplete { need: 21 });
        assert_eq!(decode(&buf[..3]), Frame::Incomplete { need: HEADER });
        let mut bad = buf.clone();
        bad[18] ^= 1;
        assert_eq!(decode(&bad), Frame::Corrupt);
    }

    #[test]
    fn scan_stops_at_a_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = path(dir.path(), 7);
        let mut buf = Vec::new();
        for i in 0..3 {
            encode(&mut buf, i, b"abc");
        }
        let whole = buf.len() as u64;
        encode(&mut buf, 9, b"torn record");
        buf.truncate(buf.len() - 4);
        std::fs::write(&p, &buf).expect("write");
        assert_eq!(scan(&p).expect("scan"), (3, whole));
        assert_eq!(offset_of(&p, 2).expect("offset"), 2 * 19);
        assert_eq!(list(dir.path()).expect("list"), vec![(7, buf.len() as u64)]);
    }
}
