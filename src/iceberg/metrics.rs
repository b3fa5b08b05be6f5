//! A Parquet data file's Iceberg metrics, read from its footer (Iceberg table specification,
//! "Manifests": column sizes, value and null counts, lower and upper bounds; Java's
//! `ParquetMetrics`): engines prune files with them. Bounds are given for columns outside
//! lists and maps, as Java does, in Appendix D's form, strings and binary cut to 16 characters
//! or bytes (the default `truncate(16)` metrics mode) with the upper bound rounded up.

use std::collections::BTreeMap;

use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;

use super::literal::Literal;
use super::manifest::{DataFile, FileContent};
use super::types::{Schema, Type};

/// Characters (strings) or bytes (binary) a bound keeps.
const TRUNCATE: usize = 16;

/// The data file entry of a Parquet file of `size` bytes at `path`, from its footer.
pub(crate) fn data_file(
    path: &str,
    size: u64,
    footer: &ParquetMetaData,
    schema: &Schema,
    partition: Vec<Option<Literal>>,
) -> DataFile {
    let mut sizes: BTreeMap<i32, i64> = BTreeMap::new();
    let mut values: BTreeMap<i32, i64> = BTreeMap::new();
    let mut nulls: BTreeMap<i32, i64> = BTreeMap::new();
    let mut lower: BTreeMap<i32, Literal> = BTreeMap::new();
    let mut upper: BTreeMap<i32, Literal> = BTreeMap::new();
    let mut no_bounds: Vec<i32> = Vec::new();
    let mut no_nulls: Vec<i32> = Vec::new();
    let mut split_offsets = Vec::new();
    for rg in footer.row_groups() {
        if let Some(first) = rg.columns().first() {
            split_offsets.push(
                first
                    .dictionary_page_offset()
                    .unwrap_or(first.data_page_offset()),
            );
        }
        for chunk in rg.columns() {
            let info = chunk.column_descr().self_type().get_basic_info();
            if !info.has_id() {
                continue;
            }
            let id = info.id();
            *sizes.entry(id).or_default() += chunk.compressed_size();
            // Fields inside lists and maps are not found here: no counts or bounds, as Java.
            let Some(field) = schema.field_by_id(id) else {
                continue;
            };
            *values.entry(id).or_default() += chunk.num_values();
            let stats = chunk.statistics();
            match stats.and_then(Statistics::null_count_opt) {
                Some(n) => *nulls.entry(id).or_default() += n as i64,
                None => no_nulls.push(id),
            }
            match stats.and_then(|s| bounds(s, &field.ty)) {
                Some((lo, hi)) => {
                    keep(&mut lower, id, lo, std::cmp::Ordering::Less);
                    keep(&mut upper, id, hi, std::cmp::Ordering::Greater);
                }
                // A row group without a bound (all null, or no statistics) leaves the file's
                // bound unknown only if it had values.
                None if stats.and_then(Statistics::null_count_opt)
                    != Some(chunk.num_values() as u64) =>
                {
                    no_bounds.push(id);
                }
                None => {}
            }
        }
    }
    for id in &no_bounds {
        lower.remove(id);
        upper.remove(id);
    }
    for id in &no_nulls {
        nulls.remove(id);
    }
    let truncated = |m: BTreeMap<i32, Literal>, up: bool| -> Vec<(i32, Vec<u8>)> {
        m.into_iter()
            .filter_map(|(id, v)| truncate(v, up).map(|b| (id, b)))
            .collect()
    };
    DataFile {
        content: FileContent::Data,
        file_path: path.to_string(),
        partition,
        record_count: footer.file_metadata().num_rows(),
        file_size_in_bytes: size as i64,
        column_sizes: sizes.into_iter().collect(),
        value_counts: values.into_iter().collect(),
        null_value_counts: nulls.into_iter().collect(),
        nan_value_counts: Vec::new(),
        lower_bounds: truncated(lower, false),
        upper_bounds: truncated(upper, true),
        split_offsets,
        equality_ids: None,
    }
}

fn keep(m: &mut BTreeMap<i32, Literal>, id: i32, v: Literal, want: std::cmp::Ordering) {
    match m.get(&id) {
        Some(old) if v.compare(old) != Some(want) => {}
        _ => {
            m.insert(id, v);
        }
    }
}

/// A row group's lowest and highest value of a column of type `ty`.
fn bounds(stats: &Statistics, ty: &Type) -> Option<(Literal, Literal)> {
    fn pair<T, F: Fn(&T) -> Option<Literal>>(
        min: Option<&T>,
        max: Option<&T>,
        f: F,
    ) -> Option<(Literal, Literal)> {
        Some((f(min?)?, f(max?)?))
    }
    match stats {
        Statistics::Boolean(s) => pair(s.min_opt(), s.max_opt(), |b| Some(Literal::Boolean(*b))),
        Statistics::Int32(s) => pair(s.min_opt(), s.max_opt(), |v| match ty {
            Type::Decimal { .. } => Some(Literal::Decimal(i128::from(*v))),
            _ => Some(Literal::Int(*v)),
        }),
        Statistics::Int64(s) => pair(s.min_opt(), s.max_opt(), |v| match ty {
            Type::Decimal { .. } => Some(Literal::Decimal(i128::from(*v))),
            _ => Some(Literal::Long(*v)),
        }),
        Statistics::Float(s) => pair(s.min_opt(), s.max_opt(), |v| {
            (!v.is_nan()).then_some(Literal::Float(*v))
        }),
        Statistics::Double(s) => pair(s.min_opt(), s.max_opt(), |v| {
            (!v.is_nan()).then_some(Literal::Double(*v))
        }),
        Statistics::ByteArray(s) => pair(s.min_opt(), s.max_opt(), |v| match ty {
            Type::String => std::str::from_utf8(v.data())
                .ok()
                .map(|s| Literal::String(s.to_string())),
            _ => Some(Literal::Binary(v.data().to_vec())),
        }),
        Statistics::FixedLenByteArray(s) => pair(s.min_opt(), s.max_opt(), |v| match ty {
            Type::Decimal { .. } => decimal_of_be(v.data()).map(Literal::Decimal),
            _ => Some(Literal::Fixed(v.data().to_vec())),
        }),
        Statistics::Int96(_) => None,
    }
}

/// A big-endian two's complement integer of up to 16 bytes.
fn decimal_of_be(b: &[u8]) -> Option<i128> {
    if b.is_empty() || b.len() > 16 {
        return None;
    }
    let fill = if b[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut full = [fill; 16];
    full[16 - b.len()..].copy_from_slice(b);
    Some(i128::from_be_bytes(full))
}

/// A bound in Appendix D's form; strings and binary cut to `TRUNCATE`, an upper bound rounded
/// up so it stays above every value (None: no such bound exists).
fn truncate(v: Literal, upper: bool) -> Option<Vec<u8>> {
    match v {
        Literal::String(s) if s.chars().count() > TRUNCATE => {
            let mut chars: Vec<char> = s.chars().take(TRUNCATE).collect();
            if !upper {
                return Some(chars.into_iter().collect::<String>().into_bytes());
            }
            while let Some(last) = chars.pop() {
                if let Some(next) = next_char(last) {
                    chars.push(next);
                    return Some(chars.into_iter().collect::<String>().into_bytes());
                }
            }
            None
        }
        Literal::Binary(b) if b.len() > TRUNCATE => {
            let mut b = b[..TRUNCATE].to_vec();
            if !upper {
                return Some(b);
            }
            while let Some(last) = b.pop() {
                if last < 0xff {
                    b.push(last + 1);
                    return Some(b);
                }
            }
            None
        }
        v => Some(v.to_bytes()),
    }
}

/// The next Unicode scalar value (the surrogates skipped).
fn next_char(c: char) -> Option<char> {
    match c as u32 {
        0xD7FF => Some('\u{E000}'),
        n => char::from_u32(n + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_and_binaries_are_cut_and_upper_bounds_rounded_up() {
        let s = "abcdefghijklmnopqrstuvwxyz".to_string();
        assert_eq!(
            truncate(Literal::String(s.clone()), false).unwrap(),
            b"abcdefghijklmnop"
        );
        assert_eq!(
            truncate(Literal::String(s), true).unwrap(),
            b"abcdefghijklmnoq"
        );
        let max = "\u{10FFFF}".repeat(20);
        assert_eq!(truncate(Literal::String(max), true), None);
        let surrogate_edge = format!("{}{}", "a".repeat(15), "\u{D7FF}xyz");
        assert_eq!(
            String::from_utf8(truncate(Literal::String(surrogate_edge), true).unwrap()).unwrap(),
            format!("{}\u{E000}", "a".repeat(15))
        );
        let mut bin = vec![1u8; 15];
        bin.extend([0xff, 0xff, 3]);
        assert_eq!(truncate(Literal::Binary(bin), true).unwrap(), {
            let mut w = vec![1u8; 14];
            w.push(2);
            w
        });
        assert_eq!(
            truncate(Literal::String("short".into()), true).unwrap(),
            b"short"
        );
    }

    #[test]
    fn decimals_from_fixed_bytes_keep_their_sign() {
        assert_eq!(decimal_of_be(&[0xff, 0xfe]), Some(-2));
        assert_eq!(decimal_of_be(&[0x00, 0x80]), Some(128));
        assert_eq!(decimal_of_be(&[]), None);
    }
}
