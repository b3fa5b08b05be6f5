//! `destinations[].data_format_conversion`: the schema (inline columns or a Glue-style JSON
//! file), the deserializer (OpenX or Hive JSON) and the Parquet options, checked into a ready
//! `Conversion`. Bad schemas are errors that name the column.

use std::sync::Arc;

use arrow_schema::TimeUnit;

use super::decode::{Ctx, MapReader, Path};
use super::yaml::{Mark, Node};
use crate::encode::parquet::schema::{self, Column};
use crate::encode::parquet::timestamp::{Format, TimestampRules};
use crate::encode::parquet::{
    CatalogTable, Conversion, Deserializer, KeyRules, ParquetCompression, ParquetOptions, Rules,
};

const MIB: u64 = 1024 * 1024;

/// None on errors; Some(None) when written but not enabled.
pub(crate) fn decode(ctx: &mut Ctx, node: &Node, path: Path) -> Option<Option<Arc<Conversion>>> {
    let mut m = MapReader::new(ctx, node, path)?;
    let enabled = match m.get("enabled") {
        Some(n) => ctx.bool(n, &m.path.key("enabled")),
        None => Some(true),
    };
    let schema = match m.require(ctx, "schema") {
        Some(n) => decode_schema(ctx, n, m.path.key("schema")),
        None => None,
    };
    let input = match m.get("input") {
        Some(n) => decode_input(ctx, n, m.path.key("input")),
        None => Some(Input::default()),
    };
    let output = match m.get("output") {
        Some(n) => decode_output(ctx, n, m.path.key("output")),
        None => Some((ParquetOptions::DEFAULT, None)),
    };
    let path = m.path.clone();
    let mark = m.mark();
    m.finish(ctx);
    let (enabled, (columns, table), input, (options, orc)) = (enabled?, schema?, input?, output?);
    for (column, _, mark) in &input.mappings {
        if !columns.iter().any(|c| c.name == *column) {
            ctx.error(
                *mark,
                &path
                    .key("input")
                    .key("openx_json")
                    .key("column_to_json_key_mappings")
                    .key(column),
                format!("{column:?} is not a column of the schema"),
            );
            return None;
        }
    }
    if !enabled {
        return Some(None);
    }
    let mappings = input.mappings.into_iter().map(|(c, k, _)| (c, k)).collect();
    if let Some(missing) = orc.as_ref().and_then(|o| {
        o.bloom_filter_columns
            .iter()
            .find(|b| !columns.iter().any(|c| c.name == **b))
    }) {
        let at = path.key("output").key("orc").key("bloom_filter_columns");
        ctx.error(
            mark,
            &at,
            format!("{missing:?} is not a column of the schema"),
        );
        return None;
    }
    let mut conversion = Conversion::new(columns, input.rules, mappings, options, table);
    if let Some(orc) = orc {
        conversion = conversion.with_orc(orc);
    }
    conversion.deserializer = input.deserializer;
    if let Some(why) = conversion.key_collision() {
        ctx.error(mark, &path, why);
        return None;
    }
    Some(Some(Arc::new(conversion)))
}

fn decode_schema(ctx: &mut Ctx, node: &Node, path: Path) -> Option<(Vec<Column>, CatalogTable)> {
    let mut m = MapReader::new(ctx, node, path)?;
    let columns = m.get("columns");
    let file = m.get("file");
    let mut opt = |ctx: &mut Ctx, key: &'static str| {
        m.get(key)
            .and_then(|n| ctx.string(n, &m.path.key(key)))
            .map(Some)
            .unwrap_or(None)
    };
    let table = CatalogTable {
        catalog_id: opt(ctx, "catalog_id"),
        database: opt(ctx, "database_name"),
        table: opt(ctx, "table_name"),
        region: opt(ctx, "region"),
    };
    let cols = match (columns, file) {
        (Some(n), None) => decode_columns(ctx, n, m.path.key("columns")),
        (None, Some(n)) => {
            let path = m.path.key("file");
            ctx.string(n, &path)
                .and_then(|f| glue_file(ctx, n.mark, &path, &f))
        }
        _ => {
            ctx.error(
                m.mark(),
                &m.path,
                "exactly one of columns, file is required",
            );
            None
        }
    };
    m.finish(ctx);
    Some((cols?, table))
}

/// `columns: [{name, type}, ...]`.
fn decode_columns(ctx: &mut Ctx, node: &Node, path: Path) -> Option<Vec<Column>> {
    let items = ctx.list(node, &path)?;
    let mut raw = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let Some(mut c) = MapReader::new(ctx, item, path.index(i)) else {
            ok = false;
            continue;
        };
        let name = c
            .require(ctx, "name")
            .and_then(|n| ctx.string(n, &c.path.key("name")));
        let ty = c.require(ctx, "type").and_then(|n| {
            let text = ctx.string(n, &c.path.key("type"))?;
            Some((text, n.mark))
        });
        let mark = c.mark();
        let cpath = c.path.clone();
        c.finish(ctx);
        match (name, ty) {
            (Some(name), Some((ty, tmark))) => raw.push((name, ty, mark, tmark, cpath)),
            _ => ok = false,
        }
    }
    if items.is_empty() {
        ctx.error(node.mark, &path, "the schema needs at least one column");
        return None;
    }
    let columns = check_columns(ctx, raw);
    if ok { columns } else { None }
}

type RawColumn = (String, String, Mark, Mark, Path);

/// Types parsed, names lowercased and unique, at least one column.
fn check_columns(ctx: &mut Ctx, raw: Vec<RawColumn>) -> Option<Vec<Column>> {
    let mut out: Vec<Column> = Vec::new();
    let mut ok = true;
    if raw.is_empty() {
        return None;
    }
    for (name, ty, mark, tmark, path) in raw {
        let lower = name.trim().to_lowercase();
        if lower.is_empty() {
            ctx.error(mark, &path.key("name"), "a column needs a name");
            ok = false;
            continue;
        }
        if out.iter().any(|c| c.name == lower) {
            ctx.error(
                mark,
                &path.key("name"),
                format!("column {lower:?} appears twice (names are case-insensitive)"),
            );
            ok = false;
            continue;
        }
        match schema::parse(&ty) {
            Ok(t) => out.push(Column { name: lower, ty: t }),
            Err(e) => {
                ctx.error(tmark, &path.key("type"), format!("column {lower:?}: {e}"));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// A JSON file with Glue's column layout: `{"Columns":[{"Name","Type"}]}`, or a whole
/// `aws glue get-table` answer (`Table.StorageDescriptor.Columns`).
fn glue_file(ctx: &mut Ctx, mark: Mark, path: &Path, file: &str) -> Option<Vec<Column>> {
    let fail = |ctx: &mut Ctx, msg: String| {
        ctx.error(mark, path, format!("{file}: {msg}"));
        None
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return fail(ctx, format!("cannot read the schema file: {e}")),
    };
    let doc: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return fail(ctx, format!("not JSON: {e}")),
    };
    let columns = [
        &doc["Columns"],
        &doc["StorageDescriptor"]["Columns"],
        &doc["Table"]["StorageDescriptor"]["Columns"],
    ]
    .into_iter()
    .find_map(|v| v.as_array());
    let Some(columns) = columns else {
        return fail(
            ctx,
            "expected {\"Columns\":[{\"Name\":...,\"Type\":...}]} (or Glue's Table.StorageDescriptor.Columns)".into(),
        );
    };
    if columns.is_empty() {
        return fail(ctx, "the schema has no columns".into());
    }
    let mut raw = Vec::new();
    for (i, c) in columns.iter().enumerate() {
        let (Some(name), Some(ty)) = (c["Name"].as_str(), c["Type"].as_str()) else {
            return fail(
                ctx,
                format!("Columns[{i}] needs \"Name\" and \"Type\" strings"),
            );
        };
        raw.push((name.to_string(), ty.to_string(), mark, mark, path.clone()));
    }
    let before = ctx.errors.len();
    let out = check_columns(ctx, raw);
    for e in &mut ctx.errors[before..] {
        e.message = format!("{file}: {}", e.message);
        e.path = path.to_string();
    }
    out
}

#[derive(Debug)]
struct Input {
    rules: Rules,
    mappings: Vec<(String, String, Mark)>,
    deserializer: Deserializer,
}

impl Default for Input {
    fn default() -> Self {
        Input {
            rules: Rules::default(),
            mappings: Vec::new(),
            deserializer: Deserializer::OpenX,
        }
    }
}

/// `input: {openx_json: {...}}` or `input: {hive_json: {timestamp_formats: [...]}}`.
fn decode_input(ctx: &mut Ctx, node: &Node, path: Path) -> Option<Input> {
    let mut m = MapReader::new(ctx, node, path)?;
    let openx = m.has("openx_json");
    let hive = m.has("hive_json");
    let out = match (openx, hive) {
        (Some(n), None) => decode_openx(ctx, n, m.path.key("openx_json")),
        (None, Some(n)) => decode_hive(ctx, n, m.path.key("hive_json")),
        _ => {
            ctx.error(
                m.mark(),
                &m.path,
                "exactly one of openx_json, hive_json is required",
            );
            None
        }
    };
    m.finish(ctx);
    out
}

fn decode_openx(ctx: &mut Ctx, node: &Node, path: Path) -> Option<Input> {
    let mut m = MapReader::new(ctx, node, path)?;
    let mut flag = |ctx: &mut Ctx, key: &'static str, default: bool| match m.get(key) {
        Some(n) => ctx.bool(n, &m.path.key(key)),
        None => Some(default),
    };
    let case_insensitive = flag(ctx, "case_insensitive", true);
    let dots = flag(ctx, "convert_dots_in_json_keys_to_underscores", false);
    let mappings = match m.get("column_to_json_key_mappings") {
        Some(n) => decode_mappings(ctx, n, m.path.key("column_to_json_key_mappings")),
        None => Some(Vec::new()),
    };
    m.finish(ctx);
    let mut input = Input::default();
    input.rules.keys = KeyRules {
        case_insensitive: case_insensitive?,
        dots_to_underscores: dots?,
    };
    input.mappings = mappings?;
    Some(input)
}

/// `{column: json_key, ...}`.
fn decode_mappings(ctx: &mut Ctx, node: &Node, path: Path) -> Option<Vec<(String, String, Mark)>> {
    let entries = ctx.entries(node, &path, "of column: json_key")?;
    let mut out = Vec::new();
    for (k, v) in entries {
        let column = ctx.string(k, &path)?.to_lowercase();
        let key = ctx.string(v, &path.key(&column))?;
        if key.is_empty() {
            ctx.error(v.mark, &path.key(&column), "the JSON key must not be empty");
            return None;
        }
        out.push((column, key, k.mark));
    }
    Some(out)
}

fn decode_hive(ctx: &mut Ctx, node: &Node, path: Path) -> Option<Input> {
    let mut m = MapReader::new(ctx, node, path)?;
    let formats = match m.get("timestamp_formats") {
        Some(n) => {
            let path = m.path.key("timestamp_formats");
            let items = ctx.list(n, &path)?;
            let mut formats = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let text = ctx.string(item, &path.index(i))?;
                match Format::parse(&text) {
                    Ok(f) => formats.push((f, text)),
                    Err(e) => {
                        ctx.error(item.mark, &path.index(i), e);
                        return None;
                    }
                }
            }
            Some(formats)
        }
        None => Some(Vec::new()),
    };
    m.finish(ctx);
    let (formats, texts): (Vec<Format>, Vec<String>) = formats?.into_iter().unzip();
    let mut input = Input::default();
    input.rules.timestamps = TimestampRules { formats };
    input.deserializer = Deserializer::Hive(texts);
    Some(input)
}

/// `output: {parquet: {...}}` or `output: {orc: {...}}` (ORC's rows are read with the
/// Parquet options' defaults, nanosecond timestamps and its own stripe memory bound).
fn decode_output(
    ctx: &mut Ctx,
    node: &Node,
    path: Path,
) -> Option<(ParquetOptions, Option<crate::encode::orc::OrcOptions>)> {
    let mut m = MapReader::new(ctx, node, path)?;
    let out = match (m.has("parquet"), m.has("orc")) {
        (Some(_), Some(o)) => {
            ctx.error(o.mark, &m.path, "exactly one of parquet, orc (got both)");
            None
        }
        (Some(n), None) => decode_parquet(ctx, n, m.path.key("parquet")).map(|p| (p, None)),
        (None, Some(n)) => {
            super::orc_output::decode(ctx, n, m.path.key("orc")).map(|(o, buffer)| {
                let rows = ParquetOptions {
                    row_group_buffer_bytes: buffer,
                    timestamp_unit: TimeUnit::Nanosecond,
                    ..ParquetOptions::DEFAULT
                };
                (rows, Some(o))
            })
        }
        (None, None) => {
            ctx.error(
                m.mark(),
                &m.path,
                "exactly one of parquet, orc is required (the output format)",
            );
            None
        }
    };
    m.finish(ctx);
    out
}

fn decode_parquet(ctx: &mut Ctx, node: &Node, path: Path) -> Option<ParquetOptions> {
    let d = ParquetOptions::DEFAULT;
    let mut m = MapReader::new(ctx, node, path)?;
    let mut int = |ctx: &mut Ctx,
                   key: &'static str,
                   range: std::ops::RangeInclusive<u64>,
                   default: u64| match m.get(key) {
        Some(n) => ctx.int_in(n, &m.path.key(key), range),
        None => Some(default),
    };
    let block = int(
        ctx,
        "block_size_bytes",
        64 * MIB..=1024 * MIB,
        d.block_size_bytes,
    );
    let page = int(
        ctx,
        "page_size_bytes",
        64 * 1024..=64 * MIB,
        d.page_size_bytes,
    );
    let padding = int(
        ctx,
        "max_padding_bytes",
        0..=u64::from(u32::MAX),
        d.max_padding_bytes,
    );
    let buffer = int(
        ctx,
        "row_group_buffer_mib",
        1..=1024,
        d.row_group_buffer_bytes / MIB,
    );
    let compression = match m.get("compression") {
        Some(n) => ctx
            .one_of(n, &m.path.key("compression"), &ParquetCompression::NAMES)
            .map(ParquetCompression::from_index),
        None => Some(d.compression),
    };
    let dictionary = match m.get("enable_dictionary_compression") {
        Some(n) => ctx.bool(n, &m.path.key("enable_dictionary_compression")),
        None => Some(d.dictionary),
    };
    let v2 = match m.get("writer_version") {
        Some(n) => ctx
            .one_of(n, &m.path.key("writer_version"), &["V1", "V2"])
            .map(|i| i == 1),
        None => Some(d.v2),
    };
    let unit = match m.get("timestamp_unit") {
        Some(n) => ctx
            .one_of(
                n,
                &m.path.key("timestamp_unit"),
                &["MILLIS", "MICROS", "NANOS"],
            )
            .map(|i| {
                [
                    TimeUnit::Millisecond,
                    TimeUnit::Microsecond,
                    TimeUnit::Nanosecond,
                ][i]
            }),
        None => Some(d.timestamp_unit),
    };
    m.finish(ctx);
    Some(ParquetOptions {
        compression: compression?,
        block_size_bytes: block?,
        page_size_bytes: page?,
        dictionary: dictionary?,
        max_padding_bytes: padding?,
        v2: v2?,
        row_group_buffer_bytes: buffer? * MIB,
        timestamp_unit: unit?,
    })
}
