//! The protobuf messages of an ORC file's metadata (orc_proto.proto of the ORC specification:
//! PostScript, Footer, Type, StripeInformation, StripeFooter, Stream, ColumnEncoding,
//! ColumnStatistics), written by hand: only the fields firehosed sets, with their numbers.

use super::rle::varint;

/// A message being written.
#[derive(Default)]
pub(super) struct Message(pub(super) Vec<u8>);

impl Message {
    fn key(&mut self, field: u32, wire: u8) {
        varint(&mut self.0, (u64::from(field) << 3) | u64::from(wire));
    }

    pub(super) fn uint(&mut self, field: u32, v: u64) -> &mut Self {
        self.key(field, 0);
        varint(&mut self.0, v);
        self
    }

    pub(super) fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        self.key(field, 2);
        varint(&mut self.0, v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }

    pub(super) fn message(&mut self, field: u32, m: &Message) -> &mut Self {
        self.bytes(field, &m.0)
    }

    /// A packed repeated uint32/uint64.
    pub(super) fn packed(&mut self, field: u32, values: &[u64]) -> &mut Self {
        let mut body = Vec::new();
        for &v in values {
            varint(&mut body, v);
        }
        self.bytes(field, &body)
    }
}

/// Stream kinds (Stream.Kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StreamKind {
    Present = 0,
    Data = 1,
    Length = 2,
    Secondary = 5,
}

/// Type kinds (Type.Kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TypeKind {
    Boolean = 0,
    Byte = 1,
    Short = 2,
    Int = 3,
    Long = 4,
    Float = 5,
    Double = 6,
    String = 7,
    Binary = 8,
    Timestamp = 9,
    List = 10,
    Map = 11,
    Struct = 12,
    Decimal = 14,
    Date = 15,
    Varchar = 16,
    Char = 17,
}

/// Stream { kind = 1, column = 2, length = 3 }.
pub(super) fn stream(kind: StreamKind, column: u32, length: u64) -> Message {
    let mut m = Message::default();
    m.uint(1, kind as u64)
        .uint(2, u64::from(column))
        .uint(3, length);
    m
}

/// ColumnEncoding { kind = 1 }: DIRECT (version-1 encodings) for every column.
pub(super) fn direct_encoding() -> Message {
    let mut m = Message::default();
    m.uint(1, 0);
    m
}

/// ColumnStatistics { numberOfValues = 1, hasNull = 10 }.
pub(super) fn statistics(values: u64, has_null: bool) -> Message {
    let mut m = Message::default();
    m.uint(1, values).uint(10, u64::from(has_null));
    m
}

/// StripeInformation { offset = 1, indexLength = 2, dataLength = 3, footerLength = 4,
/// numberOfRows = 5 }.
pub(super) fn stripe_information(offset: u64, data: u64, footer: u64, rows: u64) -> Message {
    let mut m = Message::default();
    m.uint(1, offset)
        .uint(2, 0)
        .uint(3, data)
        .uint(4, footer)
        .uint(5, rows);
    m
}
