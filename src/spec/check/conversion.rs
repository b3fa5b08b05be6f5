//! `data_format_conversion`'s rules: the schema's columns (read by `parse_columns`, which both
//! the configuration file and the API's Glue tables go through), the SerDes' options, and the
//! writers' ranges (AWS's ParquetSerDe and OrcSerDe).

use crate::encode::columnar::timestamp::Format;
use crate::encode::columnar::{Column, KeyRules, Rules, key_collision, schema};
use crate::encode::parquet::ParquetOptions;
use crate::spec::path::Path;
use crate::spec::{ConversionSpec, InputSpec, OutputSpec};

use super::{Checker, Problem};

const MIB: u64 = 1024 * 1024;

/// Columns from `(name, type)` as written: names lowercased (as Glue's) and unique, types
/// parsed. `path`: the `columns` list (each problem names its item); the problems of columns
/// that do not parse are returned beside the ones that do.
pub(crate) fn parse_columns(raw: &[(String, String)], path: &Path) -> (Vec<Column>, Vec<Problem>) {
    let mut c = Checker::default();
    let mut out: Vec<Column> = Vec::new();
    if raw.is_empty() {
        c.at(path.clone(), "the schema needs at least one column");
    }
    for (i, (name, ty)) in raw.iter().enumerate() {
        let at = path.index(i);
        let lower = name.trim().to_lowercase();
        if lower.is_empty() {
            c.at(at.key("name"), "a column needs a name");
            continue;
        }
        if out.iter().any(|c| c.name == lower) {
            c.at(
                at.key("name"),
                format!("column {lower:?} appears twice (names are case-insensitive)"),
            );
            continue;
        }
        match schema::parse(ty) {
            Ok(t) => out.push(Column { name: lower, ty: t }),
            Err(e) => c.at(at.key("type"), format!("column {lower:?}: {e}")),
        }
    }
    (out, c.problems)
}

/// A conversion at `path` (`data_format_conversion`).
pub(super) fn check(c: &mut Checker, path: &Path, conv: &ConversionSpec) {
    // The rules about columns depend on the schema (read whole, or not judged).
    let schema = [path.key("schema")];
    if conv.columns.is_empty() {
        c.at(
            path.key("schema").key("columns"),
            "the schema needs at least one column",
        );
    }
    let has = |name: &str| conv.columns.iter().any(|col| col.name == name);
    let (keys, mappings) = match &conv.input {
        InputSpec::OpenX {
            case_insensitive,
            dots_to_underscores,
            mappings,
        } => {
            let at = path
                .key("input")
                .key("openx_json")
                .key("column_to_json_key_mappings");
            for (column, key) in mappings {
                if !has(column) {
                    c.between(
                        at.key(column),
                        &schema,
                        format!("{column:?} is not a column of the schema"),
                    );
                } else if key.is_empty() {
                    c.at(at.key(column), "the JSON key must not be empty");
                }
            }
            let keys = KeyRules {
                case_insensitive: *case_insensitive,
                dots_to_underscores: *dots_to_underscores,
            };
            (keys, mappings.as_slice())
        }
        InputSpec::Hive { timestamp_formats } => {
            let at = path.key("input").key("hive_json").key("timestamp_formats");
            for (i, f) in timestamp_formats.iter().enumerate() {
                if let Err(e) = Format::parse(f) {
                    c.at(at.index(i), e.to_string());
                }
            }
            (Rules::default().keys, [].as_slice())
        }
    };
    if let Some(why) = key_collision(&conv.columns, keys, mappings) {
        c.between(path.clone(), &schema, why);
    }
    match &conv.output {
        OutputSpec::Parquet(o) => parquet(c, &path.key("output").key("parquet"), o),
        OutputSpec::Orc {
            options,
            stripe_buffer_bytes,
        } => {
            let at = path.key("output").key("orc");
            if let Some(missing) = options.bloom_filter_columns.iter().find(|b| !has(b)) {
                c.between(
                    at.key("bloom_filter_columns"),
                    &schema,
                    format!("{missing:?} is not a column of the schema"),
                );
            }
            orc(c, &at, options, *stripe_buffer_bytes);
        }
    }
}

/// AWS's ParquetSerDe ranges, and firehosed's row-group memory bound.
fn parquet(c: &mut Checker, path: &Path, o: &ParquetOptions) {
    c.range(
        path.key("block_size_bytes"),
        o.block_size_bytes,
        64 * MIB..=1024 * MIB,
    );
    c.range(
        path.key("page_size_bytes"),
        o.page_size_bytes,
        64 * 1024..=64 * MIB,
    );
    c.range(
        path.key("max_padding_bytes"),
        o.max_padding_bytes,
        0..=u64::from(u32::MAX),
    );
    c.range(
        path.key("row_group_buffer_mib"),
        o.row_group_buffer_bytes / MIB,
        1..=1024,
    );
}

/// AWS's OrcSerDe ranges, and firehosed's stripe memory bound.
fn orc(c: &mut Checker, path: &Path, o: &crate::encode::orc::OrcOptions, buffer: u64) {
    let max = u64::from(u32::MAX);
    c.range(
        path.key("stripe_size_bytes"),
        o.stripe_size_bytes,
        8 * MIB..=max,
    );
    c.range(
        path.key("block_size_bytes"),
        o.block_size_bytes,
        64 * MIB..=max,
    );
    c.range(path.key("row_index_stride"), o.row_index_stride, 1000..=max);
    c.range(path.key("stripe_buffer_mib"), buffer / MIB, 1..=1024);
    for (key, v) in [
        (
            "bloom_filter_false_positive_probability",
            o.bloom_filter_false_positive_probability,
        ),
        ("dictionary_key_threshold", o.dictionary_key_threshold),
        ("padding_tolerance", o.padding_tolerance),
    ] {
        if !(0.0..=1.0).contains(&v) {
            c.at(
                path.key(key),
                format!("must be a number from 0 to 1 (got {v})"),
            );
        }
    }
}
