//! Column builders for one batch of rows. Unlike Arrow's builders they can be cut back to an
//! earlier row count (`truncate`), so a record that fails half-way leaves nothing behind.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, Time64MicrosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType,
};
use arrow_array::{
    ArrayRef, ArrowPrimitiveType, BinaryArray, BooleanArray, FixedSizeBinaryArray, ListArray,
    MapArray, PrimitiveArray, StringArray, StructArray,
};
use arrow_buffer::{BooleanBufferBuilder, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, FieldRef, Fields, TimeUnit};

use super::schema::HiveType;

/// Validity bits of a column.
#[derive(Debug)]
pub(crate) struct Validity(BooleanBufferBuilder);

impl Validity {
    fn new() -> Self {
        Validity(BooleanBufferBuilder::new(1024))
    }

    pub(crate) fn push(&mut self, valid: bool) {
        self.0.append(valid);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    fn truncate(&mut self, n: usize) {
        self.0.truncate(n);
    }

    fn finish(&mut self) -> Option<NullBuffer> {
        let nulls = NullBuffer::new(self.0.finish());
        (nulls.null_count() > 0).then_some(nulls)
    }
}

#[derive(Debug)]
pub(crate) struct Prim<T> {
    pub(crate) values: Vec<T>,
    pub(crate) valid: Validity,
}

impl<T: Default + Copy + arrow_buffer::ArrowNativeType> Prim<T> {
    fn new() -> Self {
        Prim {
            values: Vec::new(),
            valid: Validity::new(),
        }
    }

    pub(crate) fn push(&mut self, v: T) {
        self.values.push(v);
        self.valid.push(true);
    }

    fn push_null(&mut self) {
        self.values.push(T::default());
        self.valid.push(false);
    }

    fn truncate(&mut self, n: usize) {
        self.values.truncate(n);
        self.valid.truncate(n);
    }

    fn finish<A: ArrowPrimitiveType<Native = T>>(&mut self) -> PrimitiveArray<A> {
        // The next batch is likely as large: start it with the room this one needed.
        let next = Vec::with_capacity(self.values.len());
        let values = ScalarBuffer::from(std::mem::replace(&mut self.values, next));
        PrimitiveArray::<A>::new(values, self.valid.finish())
    }
}

/// Strings or binary values: offsets into one byte buffer.
#[derive(Debug)]
pub(crate) struct Bytes {
    offsets: Vec<i32>,
    data: Vec<u8>,
    pub(crate) valid: Validity,
}

impl Bytes {
    fn new() -> Self {
        Bytes {
            offsets: vec![0],
            data: Vec::new(),
            valid: Validity::new(),
        }
    }

    /// Appends a value; fails if the batch's bytes would pass 2 GiB (i32 offsets).
    pub(crate) fn push(&mut self, v: &[u8]) -> Result<(), super::values::ValueError> {
        let end = i32::try_from(self.data.len() + v.len())
            .map_err(|_| super::values::ValueError::BatchFull)?;
        self.data.extend_from_slice(v);
        self.offsets.push(end);
        self.valid.push(true);
        Ok(())
    }

    fn push_null(&mut self) {
        self.offsets.push(self.data.len() as i32);
        self.valid.push(false);
    }

    /// A null that takes `n` zero bytes (a fixed-size column's slot).
    fn push_null_filled(&mut self, n: usize) {
        self.data.resize(self.data.len() + n, 0);
        self.offsets.push(self.data.len() as i32);
        self.valid.push(false);
    }

    fn truncate(&mut self, n: usize) {
        self.data.truncate(self.offsets[n] as usize);
        self.offsets.truncate(n + 1);
        self.valid.truncate(n);
    }

    fn take(&mut self) -> (OffsetBuffer<i32>, Buffer, Option<NullBuffer>) {
        let mut next_offsets = Vec::with_capacity(self.offsets.len());
        next_offsets.push(0);
        let offsets = std::mem::replace(&mut self.offsets, next_offsets);
        let next_data = Vec::with_capacity(self.data.len());
        let data = std::mem::replace(&mut self.data, next_data);
        (
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(data),
            self.valid.finish(),
        )
    }
}

/// FNV-1a: keys are short field names; SipHash would cost more than the lookup.
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf29ce484222325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The fields of a struct (or of the table) by the JSON key that fills them.
#[derive(Debug, Default)]
pub(crate) struct Lookup {
    by_key: HashMap<String, usize, BuildHasherDefault<Fnv>>,
    /// The key of each field, by field index.
    keys: Vec<String>,
}

impl Lookup {
    fn new(keys: Vec<String>) -> Self {
        let by_key = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        Lookup { by_key, keys }
    }

    /// Field `field` is filled from `key` instead of its own name.
    pub(crate) fn rename(&mut self, field: usize, key: String) {
        if let Some(old) = self.keys.get_mut(field) {
            self.by_key.remove(old.as_str());
            self.by_key.insert(key.clone(), field);
            *old = key;
        }
    }

    /// The field `key` fills. `hint` is the field expected next (keys mostly come in the same
    /// order in every record): when it matches, no hashing is needed.
    #[inline]
    pub(crate) fn get(&self, key: &str, hint: usize) -> Option<usize> {
        if self.keys.get(hint).is_some_and(|k| k == key) {
            return Some(hint);
        }
        self.by_key.get(key).copied()
    }
}

/// One column (or nested child) being built, with what its conversion needs to know.
#[derive(Debug)]
pub(crate) enum Builder {
    Bool {
        values: BooleanBufferBuilder,
        valid: Validity,
    },
    I8(Prim<i8>),
    I16(Prim<i16>),
    I32(Prim<i32>),
    I64(Prim<i64>),
    F32(Prim<f32>),
    F64(Prim<f64>),
    Decimal {
        values: Prim<i128>,
        precision: u8,
        scale: u8,
    },
    Date(Prim<i32>),
    Timestamp(Prim<i64>, TimeUnit),
    /// A timestamp in UTC (Iceberg's timestamptz).
    TimestampTz(Prim<i64>, TimeUnit),
    /// Microseconds since midnight (Iceberg's time).
    Time(Prim<i64>),
    /// Values of exactly `size` bytes (Iceberg's uuid and fixed); a null takes `size` zeros.
    Fixed {
        values: Bytes,
        size: u32,
        uuid: bool,
    },
    /// `max_chars`: char(n) / varchar(n) cut longer values.
    Utf8 {
        values: Bytes,
        max_chars: Option<u32>,
    },
    Binary(Bytes),
    List {
        offsets: Vec<i32>,
        valid: Validity,
        child: Box<Builder>,
        field: FieldRef,
    },
    Map {
        offsets: Vec<i32>,
        valid: Validity,
        keys: Box<Builder>,
        values: Box<Builder>,
        entries: FieldRef,
    },
    Struct {
        valid: Validity,
        children: Vec<Builder>,
        names: Vec<String>,
        lookup: Lookup,
        fields: Fields,
    },
}

impl Builder {
    /// A builder for `ty`; struct keys are looked up as `key_of` turns field names into keys.
    pub(crate) fn new(ty: &HiveType, unit: TimeUnit, key_of: &dyn Fn(&str) -> String) -> Builder {
        match ty {
            HiveType::String => Builder::Utf8 {
                values: Bytes::new(),
                max_chars: None,
            },
            HiveType::Char(n) | HiveType::Varchar(n) => Builder::Utf8 {
                values: Bytes::new(),
                max_chars: Some(*n),
            },
            HiveType::Boolean => Builder::Bool {
                values: BooleanBufferBuilder::new(1024),
                valid: Validity::new(),
            },
            HiveType::TinyInt => Builder::I8(Prim::new()),
            HiveType::SmallInt => Builder::I16(Prim::new()),
            HiveType::Int => Builder::I32(Prim::new()),
            HiveType::BigInt => Builder::I64(Prim::new()),
            HiveType::Float => Builder::F32(Prim::new()),
            HiveType::Double => Builder::F64(Prim::new()),
            HiveType::Decimal { precision, scale } => Builder::Decimal {
                values: Prim::new(),
                precision: *precision,
                scale: *scale,
            },
            HiveType::Date => Builder::Date(Prim::new()),
            HiveType::Timestamp => Builder::Timestamp(Prim::new(), unit),
            HiveType::Binary => Builder::Binary(Bytes::new()),
            HiveType::TimestampTz => Builder::TimestampTz(Prim::new(), unit),
            HiveType::Time => Builder::Time(Prim::new()),
            HiveType::Uuid => Builder::Fixed {
                values: Bytes::new(),
                size: 16,
                uuid: true,
            },
            HiveType::Fixed(n) => Builder::Fixed {
                values: Bytes::new(),
                size: *n,
                uuid: false,
            },
            HiveType::Array(t) => {
                let DataType::List(field) = ty.arrow(unit) else {
                    unreachable!("an array is a list");
                };
                Builder::List {
                    offsets: vec![0],
                    valid: Validity::new(),
                    child: Box::new(Builder::new(t, unit, key_of)),
                    field,
                }
            }
            HiveType::Map(k, v) => {
                let DataType::Map(entries, _) = ty.arrow(unit) else {
                    unreachable!("a map is a map");
                };
                Builder::Map {
                    offsets: vec![0],
                    valid: Validity::new(),
                    keys: Box::new(Builder::new(k, unit, key_of)),
                    values: Box::new(Builder::new(v, unit, key_of)),
                    entries,
                }
            }
            HiveType::Struct(fields) => {
                let DataType::Struct(arrow_fields) = ty.arrow(unit) else {
                    unreachable!("a struct is a struct");
                };
                Builder::structure(fields, arrow_fields, unit, key_of)
            }
        }
    }

    /// The builder of a struct (or of a whole row: the table's columns).
    pub(crate) fn structure(
        fields: &[(String, HiveType)],
        arrow_fields: Fields,
        unit: TimeUnit,
        key_of: &dyn Fn(&str) -> String,
    ) -> Builder {
        let lookup = Lookup::new(fields.iter().map(|(name, _)| key_of(name)).collect());
        Builder::Struct {
            valid: Validity::new(),
            children: fields
                .iter()
                .map(|(_, t)| Builder::new(t, unit, key_of))
                .collect(),
            names: fields.iter().map(|(n, _)| n.clone()).collect(),
            lookup,
            fields: arrow_fields,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Builder::Bool { valid, .. }
            | Builder::List { valid, .. }
            | Builder::Map { valid, .. }
            | Builder::Struct { valid, .. } => valid.len(),
            Builder::I8(p) => p.valid.len(),
            Builder::I16(p) => p.valid.len(),
            Builder::I32(p) | Builder::Date(p) => p.valid.len(),
            Builder::I64(p)
            | Builder::Timestamp(p, _)
            | Builder::TimestampTz(p, _)
            | Builder::Time(p) => p.valid.len(),
            Builder::F32(p) => p.valid.len(),
            Builder::F64(p) => p.valid.len(),
            Builder::Decimal { values, .. } => values.valid.len(),
            Builder::Utf8 { values, .. }
            | Builder::Binary(values)
            | Builder::Fixed { values, .. } => values.valid.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the last value is a null (None: no value yet).
    pub(crate) fn last_is_null(&self) -> Option<bool> {
        let valid = match self {
            Builder::Bool { valid, .. }
            | Builder::List { valid, .. }
            | Builder::Map { valid, .. }
            | Builder::Struct { valid, .. } => valid,
            Builder::I8(p) => &p.valid,
            Builder::I16(p) => &p.valid,
            Builder::I32(p) | Builder::Date(p) => &p.valid,
            Builder::I64(p)
            | Builder::Timestamp(p, _)
            | Builder::TimestampTz(p, _)
            | Builder::Time(p) => &p.valid,
            Builder::F32(p) => &p.valid,
            Builder::F64(p) => &p.valid,
            Builder::Decimal { values, .. } => &values.valid,
            Builder::Utf8 { values, .. }
            | Builder::Binary(values)
            | Builder::Fixed { values, .. } => &values.valid,
        };
        let n = valid.len().checked_sub(1)?;
        Some(!valid.0.get_bit(n))
    }

    /// The children of a struct builder (the table's columns), else none.
    pub(crate) fn children(&self) -> &[Builder] {
        match self {
            Builder::Struct { children, .. } => children,
            _ => &[],
        }
    }

    /// The last value of a primitive builder as bytes: map keys are compared by their
    /// converted value (`"1"` and `"01"` are the same int key).
    pub(crate) fn last_value_bytes(&self) -> Option<Vec<u8>> {
        fn last<T: Copy>(p: &Prim<T>, f: impl Fn(T) -> Vec<u8>) -> Option<Vec<u8>> {
            p.values.last().map(|v| f(*v))
        }
        match self {
            Builder::Bool { values, .. } => {
                let n = values.len().checked_sub(1)?;
                Some(vec![u8::from(values.get_bit(n))])
            }
            Builder::I8(p) => last(p, |v| v.to_le_bytes().to_vec()),
            Builder::I16(p) => last(p, |v| v.to_le_bytes().to_vec()),
            Builder::I32(p) | Builder::Date(p) => last(p, |v| v.to_le_bytes().to_vec()),
            Builder::I64(p)
            | Builder::Timestamp(p, _)
            | Builder::TimestampTz(p, _)
            | Builder::Time(p) => last(p, |v| v.to_le_bytes().to_vec()),
            Builder::F32(p) => last(p, |v| v.to_bits().to_le_bytes().to_vec()),
            Builder::F64(p) => last(p, |v| v.to_bits().to_le_bytes().to_vec()),
            Builder::Decimal { values, .. } => last(values, |v| v.to_le_bytes().to_vec()),
            Builder::Utf8 { values, .. }
            | Builder::Binary(values)
            | Builder::Fixed { values, .. } => {
                let n = values.offsets.len();
                let (start, end) = (
                    *values.offsets.get(n.checked_sub(2)?)?,
                    values.offsets[n - 1],
                );
                values
                    .data
                    .get(start as usize..end as usize)
                    .map(<[u8]>::to_vec)
            }
            _ => None,
        }
    }

    pub(crate) fn push_null(&mut self) {
        match self {
            Builder::Bool { values, valid } => {
                values.append(false);
                valid.push(false);
            }
            Builder::I8(p) => p.push_null(),
            Builder::I16(p) => p.push_null(),
            Builder::I32(p) | Builder::Date(p) => p.push_null(),
            Builder::I64(p)
            | Builder::Timestamp(p, _)
            | Builder::TimestampTz(p, _)
            | Builder::Time(p) => p.push_null(),
            Builder::F32(p) => p.push_null(),
            Builder::F64(p) => p.push_null(),
            Builder::Decimal { values, .. } => values.push_null(),
            Builder::Utf8 { values, .. } | Builder::Binary(values) => values.push_null(),
            Builder::Fixed { values, size, .. } => values.push_null_filled(*size as usize),
            Builder::List { offsets, valid, .. } | Builder::Map { offsets, valid, .. } => {
                let last = offsets.last().copied().unwrap_or(0);
                offsets.push(last);
                valid.push(false);
            }
            Builder::Struct {
                valid, children, ..
            } => {
                for c in children {
                    c.push_null();
                }
                valid.push(false);
            }
        }
    }

    /// Cuts the builder back to `n` values (n <= len).
    pub(crate) fn truncate(&mut self, n: usize) {
        match self {
            Builder::Bool { values, valid } => {
                values.truncate(n);
                valid.truncate(n);
            }
            Builder::I8(p) => p.truncate(n),
            Builder::I16(p) => p.truncate(n),
            Builder::I32(p) | Builder::Date(p) => p.truncate(n),
            Builder::I64(p)
            | Builder::Timestamp(p, _)
            | Builder::TimestampTz(p, _)
            | Builder::Time(p) => p.truncate(n),
            Builder::F32(p) => p.truncate(n),
            Builder::F64(p) => p.truncate(n),
            Builder::Decimal { values, .. } => values.truncate(n),
            Builder::Utf8 { values, .. }
            | Builder::Binary(values)
            | Builder::Fixed { values, .. } => values.truncate(n),
            Builder::List {
                offsets,
                valid,
                child,
                ..
            } => {
                child.truncate(offsets[n] as usize);
                offsets.truncate(n + 1);
                valid.truncate(n);
            }
            Builder::Map {
                offsets,
                valid,
                keys,
                values,
                ..
            } => {
                let end = offsets[n] as usize;
                keys.truncate(end);
                values.truncate(end);
                offsets.truncate(n + 1);
                valid.truncate(n);
            }
            Builder::Struct {
                valid, children, ..
            } => {
                for c in children {
                    c.truncate(n);
                }
                valid.truncate(n);
            }
        }
    }

    /// The values so far as an Arrow array; the builder starts over empty.
    pub(crate) fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Builder::Bool { values, valid } => {
                Arc::new(BooleanArray::new(values.finish(), valid.finish()))
            }
            Builder::I8(p) => Arc::new(p.finish::<Int8Type>()),
            Builder::I16(p) => Arc::new(p.finish::<Int16Type>()),
            Builder::I32(p) => Arc::new(p.finish::<Int32Type>()),
            Builder::I64(p) => Arc::new(p.finish::<Int64Type>()),
            Builder::F32(p) => Arc::new(p.finish::<Float32Type>()),
            Builder::F64(p) => Arc::new(p.finish::<Float64Type>()),
            Builder::Date(p) => Arc::new(p.finish::<Date32Type>()),
            Builder::Decimal {
                values,
                precision,
                scale,
            } => Arc::new(
                values
                    .finish::<Decimal128Type>()
                    .with_precision_and_scale(*precision, *scale as i8)?,
            ),
            Builder::Timestamp(p, unit) => match unit {
                TimeUnit::Millisecond => Arc::new(p.finish::<TimestampMillisecondType>()),
                TimeUnit::Nanosecond => Arc::new(p.finish::<TimestampNanosecondType>()),
                _ => Arc::new(p.finish::<TimestampMicrosecondType>()),
            },
            Builder::Utf8 { values, .. } => {
                let (offsets, data, nulls) = values.take();
                Arc::new(StringArray::try_new(offsets, data, nulls)?)
            }
            Builder::Binary(values) => {
                let (offsets, data, nulls) = values.take();
                Arc::new(BinaryArray::try_new(offsets, data, nulls)?)
            }
            Builder::TimestampTz(p, unit) => match unit {
                TimeUnit::Millisecond => {
                    Arc::new(p.finish::<TimestampMillisecondType>().with_timezone("UTC"))
                }
                TimeUnit::Nanosecond => {
                    Arc::new(p.finish::<TimestampNanosecondType>().with_timezone("UTC"))
                }
                _ => Arc::new(p.finish::<TimestampMicrosecondType>().with_timezone("UTC")),
            },
            Builder::Time(p) => Arc::new(p.finish::<Time64MicrosecondType>()),
            Builder::Fixed { values, size, .. } => {
                let (_, data, nulls) = values.take();
                Arc::new(FixedSizeBinaryArray::try_new(*size as i32, data, nulls)?)
            }
            Builder::List { .. } | Builder::Map { .. } | Builder::Struct { .. } => {
                self.finish_nested()?
            }
        })
    }

    /// `finish` of the nested builders: lists, maps and structs finish their children first.
    fn finish_nested(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Builder::List {
                offsets,
                valid,
                child,
                field,
            } => {
                let offsets = std::mem::replace(offsets, vec![0]);
                Arc::new(ListArray::try_new(
                    field.clone(),
                    OffsetBuffer::new(ScalarBuffer::from(offsets)),
                    child.finish()?,
                    valid.finish(),
                )?)
            }
            Builder::Map {
                offsets,
                valid,
                keys,
                values,
                entries,
            } => {
                let offsets = std::mem::replace(offsets, vec![0]);
                let DataType::Struct(kv) = entries.data_type() else {
                    return Err(ArrowError::SchemaError("map entries are a struct".into()));
                };
                let entry_values =
                    StructArray::try_new(kv.clone(), vec![keys.finish()?, values.finish()?], None)?;
                Arc::new(MapArray::try_new(
                    entries.clone(),
                    OffsetBuffer::new(ScalarBuffer::from(offsets)),
                    entry_values,
                    valid.finish(),
                    false,
                )?)
            }
            Builder::Struct {
                valid,
                children,
                fields,
                ..
            } => {
                let arrays = children
                    .iter_mut()
                    .map(Builder::finish)
                    .collect::<Result<Vec<_>, _>>()?;
                Arc::new(StructArray::try_new(
                    fields.clone(),
                    arrays,
                    valid.finish(),
                )?)
            }
            _ => return Err(ArrowError::SchemaError("not a nested builder".into())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::columnar::schema::parse;
    use arrow_array::Array;

    #[test]
    fn truncate_removes_a_half_written_row_everywhere() {
        let ty = parse("struct<a:array<string>,m:map<string,int>>").expect("type");
        let mut b = Builder::new(&ty, TimeUnit::Microsecond, &|n| n.to_string());
        let Builder::Struct {
            children, valid, ..
        } = &mut b
        else {
            panic!("struct");
        };
        // Row 0: a = ["x"], m = {"k": 1}.
        if let Builder::List {
            offsets,
            valid,
            child,
            ..
        } = &mut children[0]
        {
            if let Builder::Utf8 { values, .. } = child.as_mut() {
                values.push(b"x").expect("push");
            }
            offsets.push(1);
            valid.push(true);
        }
        if let Builder::Map {
            offsets,
            valid,
            keys,
            values,
            ..
        } = &mut children[1]
        {
            if let (Builder::Utf8 { values: k, .. }, Builder::I32(v)) =
                (keys.as_mut(), values.as_mut())
            {
                k.push(b"k").expect("push");
                v.push(1);
            }
            offsets.push(1);
            valid.push(true);
        }
        valid.push(true);
        // Row 1, half written: a child value without its row.
        if let Builder::List { child, .. } = &mut children[0]
            && let Builder::Utf8 { values, .. } = child.as_mut()
        {
            values.push(b"half").expect("push");
        }
        b.truncate(1);
        b.push_null();
        let array = b.finish().expect("valid arrays");
        assert_eq!(array.len(), 2);
        assert!(array.is_null(1));
        let s = array
            .as_any()
            .downcast_ref::<StructArray>()
            .expect("struct");
        let list = s
            .column(0)
            .as_any()
            .downcast_ref::<ListArray>()
            .expect("list");
        assert_eq!(list.values().len(), 1, "the half-written element is gone");
        assert_eq!(b.len(), 0, "finish starts over");
    }
}
