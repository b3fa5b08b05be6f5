//! `destinations[].data_format_conversion`: the schema (inline columns or a Glue-style JSON
//! file, read here), the deserializer (OpenX or Hive JSON) and the Parquet or ORC options,
//! read into a `ConversionSpec`. The columns go through `spec::check::parse_columns`, as the
//! API's Glue tables do; the options' ranges are `spec::check`'s.

use super::decode::{Ctx, MapReader, Path};
use super::destination::int_or;
use super::yaml::Node;
use crate::encode::columnar::{Column, TimestampUnit};
use crate::encode::conversion::CatalogTable;
use crate::encode::parquet::{ParquetCompression, ParquetOptions};
use crate::spec::check::parse_columns;
use crate::spec::{ConversionSpec, InputSpec, OutputSpec};

const MIB: u64 = 1024 * 1024;

/// None when it is not a mapping; Some(None) when written but not enabled. A part that cannot
/// be read stands in as its default (its keys marked broken), so the rest is still judged.
pub(crate) fn decode(ctx: &mut Ctx, node: &Node, path: Path) -> Option<Option<ConversionSpec>> {
    let mut m = MapReader::new(ctx, node, path)?;
    let enabled = match m.get("enabled") {
        Some(n) => ctx.bool(n, &m.path.key("enabled")).unwrap_or(true),
        None => true,
    };
    let schema = match m.require(ctx, "schema") {
        Some(n) => decode_schema(ctx, n, m.path.key("schema")),
        None => None,
    };
    let (columns, table) = schema.unwrap_or_else(|| {
        ctx.broken(&m.path.key("schema"));
        (Vec::new(), CatalogTable::default())
    });
    let input = match m.get("input") {
        Some(n) => decode_input(ctx, n, m.path.key("input")).unwrap_or_else(|| {
            ctx.broken(&m.path.key("input"));
            InputSpec::DEFAULT
        }),
        None => InputSpec::DEFAULT,
    };
    let output = match m.get("output") {
        Some(n) => decode_output(ctx, n, m.path.key("output")).unwrap_or_else(|| {
            ctx.broken(&m.path.key("output"));
            OutputSpec::Parquet(ParquetOptions::DEFAULT)
        }),
        None => OutputSpec::Parquet(ParquetOptions::DEFAULT),
    };
    m.finish(ctx);
    let spec = ConversionSpec {
        columns,
        table,
        input,
        output,
    };
    Some(enabled.then_some(spec))
}

/// The columns and the table's names; None (the caller marks `schema` broken) when the
/// columns cannot all be read.
fn decode_schema(ctx: &mut Ctx, node: &Node, path: Path) -> Option<(Vec<Column>, CatalogTable)> {
    let mut m = MapReader::new(ctx, node, path)?;
    let columns = m.get("columns");
    let file = m.get("file");
    let mut opt =
        |ctx: &mut Ctx, key: &'static str| m.get(key).and_then(|n| ctx.string(n, &m.path.key(key)));
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
                .and_then(|f| glue_file(ctx, n, &path, &f))
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
        let ty = c
            .require(ctx, "type")
            .and_then(|n| ctx.string(n, &c.path.key("type")));
        c.finish(ctx);
        match (name, ty) {
            (Some(name), Some(ty)) => raw.push((name, ty)),
            _ => ok = false,
        }
    }
    if !ok {
        return None;
    }
    let (columns, problems) = parse_columns(&raw, &Path::root());
    let failed = !problems.is_empty();
    ctx.report(&path, problems);
    (!failed).then_some(columns)
}

/// A JSON file with Glue's column layout, its columns parsed.
fn glue_file(ctx: &mut Ctx, node: &Node, path: &Path, file: &str) -> Option<Vec<Column>> {
    let parsed = read_glue_file(std::path::Path::new(file))
        .map_err(|e| e.to_string())
        .and_then(|raw| {
            let (out, problems) = parse_columns(&raw, &Path::root());
            match problems.first() {
                Some(p) => Err(p.message.clone()),
                None => Ok(out),
            }
        });
    match parsed {
        Ok(columns) => Some(columns),
        // The file's problems are the file key's, named by the file.
        Err(message) => {
            ctx.error(node.mark, path, format!("{file}: {message}"));
            None
        }
    }
}

/// Why a Glue-style schema file cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GlueFileError {
    #[error("cannot read the schema file: {0}")]
    Read(#[from] std::io::Error),
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "expected {{\"Columns\":[{{\"Name\":...,\"Type\":...}}]}} (or Glue's Table.StorageDescriptor.Columns)"
    )]
    Layout,
    #[error("the schema has no columns")]
    Empty,
    #[error("Columns[{0}] needs \"Name\" and \"Type\" strings")]
    Column(usize),
}

/// The `(name, type)` of every column in a JSON file with Glue's column layout:
/// `{"Columns":[{"Name","Type"}]}`, or a whole `aws glue get-table` answer
/// (`Table.StorageDescriptor.Columns`).
pub(crate) fn read_glue_file(
    file: &std::path::Path,
) -> Result<Vec<(String, String)>, GlueFileError> {
    let text = std::fs::read_to_string(file)?;
    let doc: serde_json::Value = serde_json::from_str(&text)?;
    let columns = [
        &doc["Columns"],
        &doc["StorageDescriptor"]["Columns"],
        &doc["Table"]["StorageDescriptor"]["Columns"],
    ]
    .into_iter()
    .find_map(|v| v.as_array())
    .ok_or(GlueFileError::Layout)?;
    if columns.is_empty() {
        return Err(GlueFileError::Empty);
    }
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| match (c["Name"].as_str(), c["Type"].as_str()) {
            (Some(name), Some(ty)) => Ok((name.to_string(), ty.to_string())),
            _ => Err(GlueFileError::Column(i)),
        })
        .collect()
}

/// `input: {openx_json: {...}}` or `input: {hive_json: {timestamp_formats: [...]}}`.
fn decode_input(ctx: &mut Ctx, node: &Node, path: Path) -> Option<InputSpec> {
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

fn decode_openx(ctx: &mut Ctx, node: &Node, path: Path) -> Option<InputSpec> {
    let mut m = MapReader::new(ctx, node, path)?;
    let mut flag = |ctx: &mut Ctx, key: &'static str, default: bool| match m.get(key) {
        Some(n) => ctx.bool(n, &m.path.key(key)).unwrap_or(default),
        None => default,
    };
    let case_insensitive = flag(ctx, "case_insensitive", true);
    let dots_to_underscores = flag(ctx, "convert_dots_in_json_keys_to_underscores", false);
    let mappings = match m.get("column_to_json_key_mappings") {
        Some(n) => decode_mappings(ctx, n, m.path.key("column_to_json_key_mappings"))?,
        None => Vec::new(),
    };
    m.finish(ctx);
    Some(InputSpec::OpenX {
        case_insensitive,
        dots_to_underscores,
        mappings,
    })
}

/// `{column: json_key, ...}`, columns lowercased (as the schema's are).
fn decode_mappings(ctx: &mut Ctx, node: &Node, path: Path) -> Option<Vec<(String, String)>> {
    let entries = ctx.entries(node, &path, "of column: json_key")?;
    let mut out = Vec::new();
    for (k, v) in entries {
        let column = ctx.string(k, &path)?.to_lowercase();
        ctx.mark(&path.key(&column), k.mark);
        let key = ctx.string(v, &path.key(&column))?;
        out.push((column, key));
    }
    Some(out)
}

fn decode_hive(ctx: &mut Ctx, node: &Node, path: Path) -> Option<InputSpec> {
    let mut m = MapReader::new(ctx, node, path)?;
    let formats = match m.get("timestamp_formats") {
        Some(n) => {
            let path = m.path.key("timestamp_formats");
            let items = ctx.list(n, &path)?;
            let mut formats = Vec::new();
            for (i, item) in items.iter().enumerate() {
                formats.push(ctx.string(item, &path.index(i))?);
            }
            formats
        }
        None => Vec::new(),
    };
    m.finish(ctx);
    Some(InputSpec::Hive {
        timestamp_formats: formats,
    })
}

/// `output: {parquet: {...}}` or `output: {orc: {...}}`.
fn decode_output(ctx: &mut Ctx, node: &Node, path: Path) -> Option<OutputSpec> {
    let mut m = MapReader::new(ctx, node, path)?;
    let out = match (m.has("parquet"), m.has("orc")) {
        (Some(_), Some(o)) => {
            ctx.error(o.mark, &m.path, "exactly one of parquet, orc (got both)");
            None
        }
        (Some(n), None) => decode_parquet(ctx, n, m.path.key("parquet")).map(OutputSpec::Parquet),
        (None, Some(n)) => super::orc_output::decode(ctx, n, m.path.key("orc")).map(
            |(options, stripe_buffer_bytes)| OutputSpec::Orc {
                options,
                stripe_buffer_bytes,
            },
        ),
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
    let block_size_bytes = int_or(ctx, &mut m, "block_size_bytes", d.block_size_bytes);
    let page_size_bytes = int_or(ctx, &mut m, "page_size_bytes", d.page_size_bytes);
    let max_padding_bytes = int_or(ctx, &mut m, "max_padding_bytes", d.max_padding_bytes);
    let buffer_mib = int_or(
        ctx,
        &mut m,
        "row_group_buffer_mib",
        d.row_group_buffer_bytes / MIB,
    );
    let compression = match m.get("compression") {
        Some(n) => ctx
            .one_of_enum(
                n,
                &m.path.key("compression"),
                &ParquetCompression::ALL,
                ParquetCompression::api_name,
            )
            .unwrap_or(d.compression),
        None => d.compression,
    };
    let dictionary = match m.get("enable_dictionary_compression") {
        Some(n) => ctx
            .bool(n, &m.path.key("enable_dictionary_compression"))
            .unwrap_or(d.dictionary),
        None => d.dictionary,
    };
    let v2 = match m.get("writer_version") {
        Some(n) => ctx
            .one_of(n, &m.path.key("writer_version"), &["V1", "V2"])
            .map_or(d.v2, |i| i == 1),
        None => d.v2,
    };
    let timestamp_unit = match m.get("timestamp_unit") {
        Some(n) => ctx
            .one_of(
                n,
                &m.path.key("timestamp_unit"),
                &["MILLIS", "MICROS", "NANOS"],
            )
            .map_or(d.timestamp_unit, |i| {
                [
                    TimestampUnit::Millis,
                    TimestampUnit::Micros,
                    TimestampUnit::Nanos,
                ][i]
            }),
        None => d.timestamp_unit,
    };
    m.finish(ctx);
    Some(ParquetOptions {
        compression,
        block_size_bytes,
        page_size_bytes,
        dictionary,
        max_padding_bytes,
        v2,
        row_group_buffer_bytes: buffer_mib.saturating_mul(MIB),
        timestamp_unit,
    })
}
