//! One ORC column per node of the Hive type tree (preorder ids: the root struct is 0), each
//! gathering its streams for the stripe being built from the rows' arrow arrays. A child gets
//! only the values its parent holds: a struct's fields the rows where the struct is present, a
//! list's (or map's) elements those of its present rows, as ORC lays them out.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};

use super::proto::{Message, StreamKind, TypeKind};
use super::rle::{BoolRle, ByteRle, IntRle, varint_i128};
use super::{OrcCompression, OutStream};
use crate::encode::columnar::HiveType;

/// ORC's timestamps count seconds from 2015-01-01 00:00:00 (UTC: the writer's time zone).
const TIMESTAMP_BASE: i64 = 1_420_070_400;

/// A column's DATA stream.
enum Data {
    None,
    Bools(BoolRle),
    Bytes(ByteRle),
    Ints(IntRle),
    Raw(OutStream),
}

pub(super) struct Column {
    pub(super) id: u32,
    kind: TypeKind,
    /// char/varchar length, decimal precision and scale.
    max_length: Option<u32>,
    decimal: Option<(u8, u8)>,
    names: Vec<String>,
    pub(super) children: Vec<Column>,
    present: BoolRle,
    has_null: bool,
    data: Data,
    length: Option<IntRle>,
    secondary: Option<IntRle>,
    /// Values (not nulls) since the last stripe was taken, and whether a null was seen (summed
    /// into the file's statistics by the file, which sees every segment's stripes).
    values: u64,
    values_has_null: bool,
}

impl Column {
    /// The column tree of the table's columns (the root takes id 0), its streams compressed
    /// with `z`.
    pub(super) fn root(columns: &[(String, HiveType)], z: OrcCompression) -> Column {
        let mut next = 0;
        Column::structure(columns, &mut next, z)
    }

    fn structure(fields: &[(String, HiveType)], next: &mut u32, z: OrcCompression) -> Column {
        let mut c = Column::leaf(TypeKind::Struct, next, z);
        c.names = fields.iter().map(|(n, _)| n.clone()).collect();
        c.children = fields.iter().map(|(_, t)| Column::of(t, next, z)).collect();
        c
    }

    fn leaf(kind: TypeKind, next: &mut u32, z: OrcCompression) -> Column {
        let id = *next;
        *next += 1;
        let data = match kind {
            TypeKind::Boolean => Data::Bools(BoolRle::new(z)),
            TypeKind::Byte => Data::Bytes(ByteRle::new(z)),
            TypeKind::Short
            | TypeKind::Int
            | TypeKind::Long
            | TypeKind::Date
            | TypeKind::Timestamp => Data::Ints(IntRle::new(true, z)),
            TypeKind::List | TypeKind::Map | TypeKind::Struct => Data::None,
            _ => Data::Raw(OutStream::new(z)),
        };
        let length = matches!(
            kind,
            TypeKind::String
                | TypeKind::Varchar
                | TypeKind::Char
                | TypeKind::Binary
                | TypeKind::List
                | TypeKind::Map
        )
        .then(|| IntRle::new(false, z));
        let secondary = match kind {
            TypeKind::Timestamp => Some(IntRle::new(false, z)),
            TypeKind::Decimal => Some(IntRle::new(true, z)),
            _ => None,
        };
        Column {
            id,
            kind,
            max_length: None,
            decimal: None,
            names: Vec::new(),
            children: Vec::new(),
            present: BoolRle::new(z),
            has_null: false,
            data,
            length,
            secondary,
            values: 0,
            values_has_null: false,
        }
    }

    fn of(t: &HiveType, next: &mut u32, z: OrcCompression) -> Column {
        let kind = match t {
            HiveType::String => TypeKind::String,
            HiveType::Char(_) => TypeKind::Char,
            HiveType::Varchar(_) => TypeKind::Varchar,
            HiveType::Boolean => TypeKind::Boolean,
            HiveType::TinyInt => TypeKind::Byte,
            HiveType::SmallInt => TypeKind::Short,
            HiveType::Int => TypeKind::Int,
            HiveType::BigInt => TypeKind::Long,
            HiveType::Float => TypeKind::Float,
            HiveType::Double => TypeKind::Double,
            HiveType::Decimal { .. } => TypeKind::Decimal,
            HiveType::Date => TypeKind::Date,
            HiveType::Timestamp => TypeKind::Timestamp,
            HiveType::Binary => TypeKind::Binary,
            // Iceberg's types: an Iceberg table is written as Parquet, never ORC.
            HiveType::Time | HiveType::TimestampTz | HiveType::Uuid | HiveType::Fixed(_) => {
                TypeKind::Binary
            }
            HiveType::Struct(fields) => return Column::structure(fields, next, z),
            HiveType::Array(item) => {
                let mut c = Column::leaf(TypeKind::List, next, z);
                c.children = vec![Column::of(item, next, z)];
                return c;
            }
            HiveType::Map(k, v) => {
                let mut c = Column::leaf(TypeKind::Map, next, z);
                c.children = vec![Column::of(k, next, z), Column::of(v, next, z)];
                return c;
            }
        };
        let mut c = Column::leaf(kind, next, z);
        match t {
            HiveType::Char(n) | HiveType::Varchar(n) => c.max_length = Some(*n),
            HiveType::Decimal { precision, scale } => c.decimal = Some((*precision, *scale)),
            _ => {}
        }
        c
    }

    /// Every column's Type, in id order (preorder).
    pub(super) fn types(&self, out: &mut Vec<Message>) {
        let mut m = Message::default();
        m.uint(1, self.kind as u64);
        if !self.children.is_empty() {
            let ids: Vec<u64> = self.children.iter().map(|c| u64::from(c.id)).collect();
            m.packed(2, &ids);
        }
        for n in &self.names {
            m.bytes(3, n.as_bytes());
        }
        if let Some(n) = self.max_length {
            m.uint(4, u64::from(n));
        }
        if let Some((p, s)) = self.decimal {
            m.uint(5, u64::from(p)).uint(6, u64::from(s));
        }
        out.push(m);
        for c in &self.children {
            c.types(out);
        }
    }

    /// Every column's (values, whether a null was seen) since the last call, preorder.
    pub(super) fn take_statistics(&mut self, out: &mut Vec<(u64, bool)>) {
        out.push((self.values, self.values_has_null));
        self.values = 0;
        self.values_has_null = false;
        for c in &mut self.children {
            c.take_statistics(out);
        }
    }

    /// Encoded bytes held for the stripe being built.
    pub(super) fn buffered(&self) -> usize {
        let data = match &self.data {
            Data::None => 0,
            Data::Bools(b) => b.bytes(),
            Data::Bytes(b) => b.bytes(),
            Data::Ints(i) => i.bytes(),
            Data::Raw(r) => r.len(),
        };
        let own = data
            + self.present.bytes()
            + self.length.as_ref().map_or(0, IntRle::bytes)
            + self.secondary.as_ref().map_or(0, IntRle::bytes);
        own + self.children.iter().map(Column::buffered).sum::<usize>()
    }

    /// The stripe's streams of this column and its children (kind, column, bytes), leaving
    /// the column empty for the next stripe. PRESENT only where a value was null; every other
    /// stream even when empty (readers look them up).
    pub(super) fn take_streams(
        &mut self,
        out: &mut Vec<(StreamKind, u32, Vec<u8>)>,
    ) -> std::io::Result<()> {
        let present = self.present.finish()?;
        if self.has_null {
            out.push((StreamKind::Present, self.id, present));
        }
        self.has_null = false;
        let data = match &mut self.data {
            Data::None => None,
            Data::Bools(b) => Some(b.finish()?),
            Data::Bytes(b) => Some(b.finish()?),
            Data::Ints(i) => Some(i.finish()?),
            Data::Raw(r) => Some(r.finish()?),
        };
        if let Some(d) = data {
            out.push((StreamKind::Data, self.id, d));
        }
        if let Some(l) = self.length.as_mut() {
            out.push((StreamKind::Length, self.id, l.finish()?));
        }
        if let Some(s) = self.secondary.as_mut() {
            out.push((StreamKind::Secondary, self.id, s.finish()?));
        }
        for c in &mut self.children {
            c.take_streams(out)?;
        }
        Ok(())
    }

    /// Adds the values of `array` at `rows` (and of its children).
    pub(super) fn encode(&mut self, array: &ArrayRef, rows: &[usize]) {
        let mut valid = Vec::with_capacity(rows.len());
        for &r in rows {
            let ok = array.is_valid(r);
            self.present.push(ok);
            if ok {
                valid.push(r);
            } else {
                self.has_null = true;
                self.values_has_null = true;
            }
        }
        self.values += valid.len() as u64;
        match self.kind {
            TypeKind::Struct => self.encode_struct(array, &valid),
            TypeKind::List | TypeKind::Map => self.encode_nested(array, &valid),
            _ => self.encode_values(array, &valid),
        }
    }

    fn encode_struct(&mut self, array: &ArrayRef, rows: &[usize]) {
        let s = array.as_struct();
        for (i, c) in self.children.iter_mut().enumerate() {
            c.encode(s.column(i), rows);
        }
    }

    fn encode_nested(&mut self, array: &ArrayRef, rows: &[usize]) {
        let (offsets, children): (&[i32], Vec<ArrayRef>) = match array.data_type() {
            DataType::Map(..) => {
                let m = array.as_map();
                (
                    m.value_offsets(),
                    vec![m.keys().clone(), m.values().clone()],
                )
            }
            _ => {
                let l = array.as_list::<i32>();
                (l.value_offsets(), vec![l.values().clone()])
            }
        };
        let mut inner = Vec::new();
        for &r in rows {
            let (start, end) = (offsets[r] as usize, offsets[r + 1] as usize);
            if let Some(l) = self.length.as_mut() {
                l.push((end - start) as i64);
            }
            inner.extend(start..end);
        }
        for (c, child) in self.children.iter_mut().zip(children.iter()) {
            c.encode(child, &inner);
        }
    }

    fn encode_values(&mut self, array: &ArrayRef, rows: &[usize]) {
        match (&mut self.data, array.data_type()) {
            (Data::Bools(b), DataType::Boolean) => {
                let a = array.as_boolean();
                rows.iter().for_each(|&r| b.push(a.value(r)));
            }
            (Data::Bytes(b), DataType::Int8) => {
                let a = array.as_primitive::<Int8Type>();
                rows.iter().for_each(|&r| b.push(a.value(r) as u8));
            }
            (Data::Ints(i), DataType::Int16) => ints(i, rows, |r| {
                i64::from(array.as_primitive::<Int16Type>().value(r))
            }),
            (Data::Ints(i), DataType::Int32) => ints(i, rows, |r| {
                i64::from(array.as_primitive::<Int32Type>().value(r))
            }),
            (Data::Ints(i), DataType::Int64) => {
                ints(i, rows, |r| array.as_primitive::<Int64Type>().value(r))
            }
            (Data::Ints(i), DataType::Date32) => ints(i, rows, |r| {
                i64::from(array.as_primitive::<Date32Type>().value(r))
            }),
            (Data::Ints(seconds), DataType::Timestamp(unit, _)) => {
                let (per_second, values) = timestamps(array, *unit);
                if let Some(nanos) = self.secondary.as_mut() {
                    for &r in rows {
                        let (s, n) = split_timestamp(values(r), per_second);
                        seconds.push(s);
                        nanos.push(format_nanos(n));
                    }
                }
            }
            (Data::Raw(out), DataType::Float32) => {
                let a = array.as_primitive::<Float32Type>();
                rows.iter()
                    .for_each(|&r| out.extend(&a.value(r).to_le_bytes()));
            }
            (Data::Raw(out), DataType::Float64) => {
                let a = array.as_primitive::<Float64Type>();
                rows.iter()
                    .for_each(|&r| out.extend(&a.value(r).to_le_bytes()));
            }
            (Data::Raw(out), DataType::Decimal128(_, scale)) => {
                let a = array.as_primitive::<Decimal128Type>();
                let mut scratch = Vec::with_capacity(20);
                for &r in rows {
                    scratch.clear();
                    varint_i128(&mut scratch, a.value(r));
                    out.extend(&scratch);
                    if let Some(s) = self.secondary.as_mut() {
                        s.push(i64::from(*scale));
                    }
                }
            }
            (Data::Raw(out), DataType::Utf8) => {
                let a = array.as_string::<i32>();
                for &r in rows {
                    let v = a.value(r).as_bytes();
                    out.extend(v);
                    if let Some(l) = self.length.as_mut() {
                        l.push(v.len() as i64);
                    }
                }
            }
            (Data::Raw(out), DataType::Binary) => {
                let a = array.as_binary::<i32>();
                for &r in rows {
                    let v = a.value(r);
                    out.extend(v);
                    if let Some(l) = self.length.as_mut() {
                        l.push(v.len() as i64);
                    }
                }
            }
            // The column tree and the arrow schema come from the same Hive types.
            _ => {}
        }
    }
}

fn ints(out: &mut IntRle, rows: &[usize], value: impl Fn(usize) -> i64) {
    rows.iter().for_each(|&r| out.push(value(r)));
}

/// Units per second of a timestamp array, and its values.
fn timestamps(array: &ArrayRef, unit: TimeUnit) -> (i64, Box<dyn Fn(usize) -> i64 + '_>) {
    match unit {
        TimeUnit::Second => (
            1,
            Box::new(move |r| array.as_primitive::<TimestampSecondType>().value(r)),
        ),
        TimeUnit::Millisecond => (
            1_000,
            Box::new(move |r| array.as_primitive::<TimestampMillisecondType>().value(r)),
        ),
        TimeUnit::Microsecond => (
            1_000_000,
            Box::new(move |r| array.as_primitive::<TimestampMicrosecondType>().value(r)),
        ),
        TimeUnit::Nanosecond => (
            1_000_000_000,
            Box::new(move |r| array.as_primitive::<TimestampNanosecondType>().value(r)),
        ),
    }
}

/// A timestamp as ORC stores it: seconds from 2015-01-01, and nanoseconds (0-999,999,999).
/// Readers take a second off a time before 1970 whose nanoseconds exceed 999,999 (the layout
/// of ORC's Java writer, which truncates toward zero): such a time is written one second up.
fn split_timestamp(value: i64, per_second: i64) -> (i64, i64) {
    let secs = value.div_euclid(per_second);
    let nanos = value.rem_euclid(per_second) * (1_000_000_000 / per_second);
    let secs = if secs < 0 && nanos > 999_999 {
        secs + 1
    } else {
        secs
    };
    (secs - TIMESTAMP_BASE, nanos)
}

/// ORC's nanosecond encoding: trailing decimal zeros (two or more) are cut and counted in
/// the low three bits.
fn format_nanos(nanos: i64) -> i64 {
    if nanos == 0 || nanos % 100 != 0 {
        return nanos << 3;
    }
    let (mut n, mut zeros) = (nanos / 100, 1);
    while n % 10 == 0 && zeros < 7 {
        n /= 10;
        zeros += 1;
    }
    (n << 3) | zeros
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanoseconds_and_seconds_are_laid_out_as_orc_s_java_writer_does() {
        assert_eq!(format_nanos(0), 0);
        assert_eq!(format_nanos(1), 8);
        assert_eq!(format_nanos(1000), (1 << 3) | 2);
        assert_eq!(format_nanos(500_000_000), (5 << 3) | 7);
        assert_eq!(
            split_timestamp(TIMESTAMP_BASE * 1000 + 1500, 1000),
            (1, 500_000_000)
        );
        // -1.5 s: written as -1 s and 0.5 s; the reader takes the second off again.
        assert_eq!(
            split_timestamp(-1500, 1000),
            (-1 - TIMESTAMP_BASE, 500_000_000)
        );
        assert_eq!(split_timestamp(-2000, 1000), (-2 - TIMESTAMP_BASE, 0));
    }
}
