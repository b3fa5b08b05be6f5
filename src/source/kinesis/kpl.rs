//! KPL de-aggregation (docs/aws-behaviour.md section 5a): magic `f3 89 9a c2`, a protobuf
//! `AggregatedRecord`, then the MD5 of the protobuf bytes. Anything that fails a check is not an
//! aggregate and is delivered as one plain record, as the KCL does.

use bytes::Bytes;

pub(crate) const MAGIC: [u8; 4] = [0xf3, 0x89, 0x9a, 0xc2];
const DIGEST: usize = 16;

/// One user record of an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserRecord {
    pub(crate) partition_key: String,
    pub(crate) explicit_hash_key: Option<String>,
    pub(crate) data: Bytes,
}

/// The user records of an aggregated Kinesis record, or None when `data` is not a valid
/// aggregate (no magic, MD5 mismatch, malformed protobuf, index out of its table).
pub(crate) fn deaggregate(data: &Bytes) -> Option<Vec<UserRecord>> {
    if data.len() < MAGIC.len() + DIGEST || data[..4] != MAGIC {
        return None;
    }
    let body = data.slice(4..data.len() - DIGEST);
    let digest = &data[data.len() - DIGEST..];
    if md5::compute(&body).0 != digest {
        return None;
    }
    let mut keys = Vec::new();
    let mut hash_keys = Vec::new();
    let mut raw_records = Vec::new();
    let mut p = Parser { buf: &body, pos: 0 };
    while !p.done() {
        let (field, wire) = p.key()?;
        match (field, wire) {
            (1, 2) => keys.push(String::from_utf8(p.bytes()?.to_vec()).ok()?),
            (2, 2) => hash_keys.push(String::from_utf8(p.bytes()?.to_vec()).ok()?),
            (3, 2) => {
                let start = p.pos;
                let len = p.bytes()?.len();
                raw_records.push(body.slice(p.pos - len..p.pos));
                debug_assert!(p.pos > start);
            }
            _ => p.skip(wire)?,
        }
    }
    let mut out = Vec::with_capacity(raw_records.len());
    for raw in raw_records {
        let mut pk = None;
        let mut ehk = None;
        let mut payload = Bytes::new();
        let mut r = Parser { buf: &raw, pos: 0 };
        while !r.done() {
            let (field, wire) = r.key()?;
            match (field, wire) {
                (1, 0) => pk = Some(r.varint()?),
                (2, 0) => ehk = Some(r.varint()?),
                (3, 2) => {
                    let len = r.bytes()?.len();
                    payload = raw.slice(r.pos - len..r.pos);
                }
                _ => r.skip(wire)?,
            }
        }
        let partition_key = keys.get(usize::try_from(pk?).ok()?)?.clone();
        let explicit_hash_key = match ehk {
            Some(i) => Some(hash_keys.get(usize::try_from(i).ok()?)?.clone()),
            None => None,
        };
        out.push(UserRecord {
            partition_key,
            explicit_hash_key,
            data: payload,
        });
    }
    Some(out)
}

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn key(&mut self) -> Option<(u64, u8)> {
        let k = self.varint()?;
        Some((k >> 3, (k & 7) as u8))
    }

    fn bytes(&mut self) -> Option<&[u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self.pos.checked_add(len)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn skip(&mut self, wire: u8) -> Option<()> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.advance(8),
            2 => self.bytes().map(|_| ()),
            5 => self.advance(4),
            _ => None,
        }
    }

    fn advance(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        (end <= self.buf.len()).then(|| self.pos = end)
    }
}

#[cfg(test)]
/// Builds an aggregated record (tests and the benchmark producer).
pub(crate) fn aggregate(records: &[(&str, &[u8])]) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn field(out: &mut Vec<u8>, n: u64, data: &[u8]) {
        varint(out, n << 3 | 2);
        varint(out, data.len() as u64);
        out.extend_from_slice(data);
    }
    let mut keys: Vec<&str> = Vec::new();
    let mut body = Vec::new();
    for (k, _) in records {
        if !keys.contains(k) {
            keys.push(k);
        }
    }
    for k in &keys {
        field(&mut body, 1, k.as_bytes());
    }
    for (k, data) in records {
        let mut rec = Vec::new();
        varint(&mut rec, 1 << 3);
        varint(
            &mut rec,
            keys.iter().position(|x| x == k).unwrap_or(0) as u64,
        );
        field(&mut rec, 3, data);
        field(&mut body, 3, &rec);
    }
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&md5::compute(&body).0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_an_aggregate_with_its_partition_keys() {
        let agg = Bytes::from(aggregate(&[("a", b"one"), ("b", b"two"), ("a", b"")]));
        let recs = deaggregate(&agg).expect("valid aggregate");
        let got: Vec<(&str, &[u8])> = recs
            .iter()
            .map(|r| (r.partition_key.as_str(), &r.data[..]))
            .collect();
        assert_eq!(got, vec![("a", &b"one"[..]), ("b", b"two"), ("a", b"")]);
    }

    #[test]
    fn anything_else_is_a_plain_record() {
        assert!(deaggregate(&Bytes::from_static(b"{\"plain\":true}")).is_none());
        let mut bad_md5 = aggregate(&[("a", b"x")]);
        let n = bad_md5.len();
        bad_md5[n - 1] ^= 1;
        assert!(deaggregate(&Bytes::from(bad_md5)).is_none());
        let mut no_magic = aggregate(&[("a", b"x")]);
        no_magic[0] = 0;
        assert!(deaggregate(&Bytes::from(no_magic)).is_none());
        // A valid digest over a protobuf whose key index points outside the table.
        let mut body = Vec::new();
        body.extend_from_slice(&[0x0a, 1, b'k', 0x1a, 4, 0x08, 5, 0x1a, 0]);
        let mut rec = MAGIC.to_vec();
        rec.extend_from_slice(&body);
        rec.extend_from_slice(&md5::compute(&body).0);
        assert!(deaggregate(&Bytes::from(rec)).is_none());
    }

    #[test]
    fn a_truncated_protobuf_is_a_plain_record_unless_cut_between_fields() {
        let records: [(&str, &[u8]); 2] = [("key", b"payload"), ("k2", b"more")];
        let full = aggregate(&records);
        let body_full = &full[4..full.len() - DIGEST];
        // Where each top-level field of the protobuf ends, and how many user records end there.
        let mut ends = vec![(0usize, 0usize)];
        let (mut pos, mut done) = (0, 0);
        while pos < body_full.len() {
            let tag = body_full[pos];
            let len = body_full[pos + 1] as usize;
            pos += 2 + len;
            done += usize::from(tag >> 3 == 3);
            ends.push((pos, done));
        }
        assert_eq!(
            ends.last(),
            Some(&(body_full.len(), 2)),
            "the layout was read"
        );
        for cut in 0..=body_full.len() {
            let body = &body_full[..cut];
            let mut rec = MAGIC.to_vec();
            rec.extend_from_slice(body);
            rec.extend_from_slice(&md5::compute(body).0);
            let got = deaggregate(&Bytes::from(rec));
            match ends.iter().find(|(end, _)| *end == cut) {
                // Cut between two fields: a valid aggregate of the records before the cut.
                Some((_, n)) => {
                    let got = got.unwrap_or_else(|| panic!("cut at {cut}: a valid aggregate"));
                    let data: Vec<&[u8]> = got.iter().map(|u| &u.data[..]).collect();
                    let expected: Vec<&[u8]> = records[..*n].iter().map(|(_, d)| *d).collect();
                    assert_eq!(data, expected, "cut at {cut}");
                }
                // Cut inside a field: malformed, so the whole record is one plain record.
                None => assert_eq!(got, None, "cut at {cut} is inside a field"),
            }
        }
    }
}
