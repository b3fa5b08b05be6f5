//! `data_format_conversion.output.orc`: AWS's OrcSerDe (Firehose API reference, OrcSerDe),
//! read with its defaults; its ranges are `spec::check`'s.

use super::decode::{Ctx, MapReader, Path};
use super::destination::int_or;
use super::yaml::Node;
use crate::encode::orc::{OrcCompression, OrcOptions};
use crate::spec::OutputSpec;

const MIB: u64 = 1024 * 1024;

/// The ORC options, and the stripe memory bound (`stripe_buffer_mib`, firehosed's).
pub(super) fn decode(ctx: &mut Ctx, node: &Node, path: Path) -> Option<(OrcOptions, u64)> {
    let d = OrcOptions::DEFAULT;
    let mut m = MapReader::new(ctx, node, path)?;
    let stripe_size_bytes = int_or(ctx, &mut m, "stripe_size_bytes", d.stripe_size_bytes);
    let block_size_bytes = int_or(ctx, &mut m, "block_size_bytes", d.block_size_bytes);
    let row_index_stride = int_or(ctx, &mut m, "row_index_stride", d.row_index_stride);
    let buffer_mib = int_or(
        ctx,
        &mut m,
        "stripe_buffer_mib",
        OutputSpec::DEFAULT_STRIPE_BUFFER / MIB,
    );
    let compression = match m.get("compression") {
        Some(n) => ctx
            .one_of_enum(
                n,
                &m.path.key("compression"),
                &OrcCompression::ALL,
                OrcCompression::api_name,
            )
            .unwrap_or(d.compression),
        None => d.compression,
    };
    let mut fraction = |ctx: &mut Ctx, key: &'static str, default: f64| match m.get(key) {
        Some(n) => ctx.number(n, &m.path.key(key)).unwrap_or(default),
        None => default,
    };
    let bloom_filter_false_positive_probability = fraction(
        ctx,
        "bloom_filter_false_positive_probability",
        d.bloom_filter_false_positive_probability,
    );
    let dictionary_key_threshold =
        fraction(ctx, "dictionary_key_threshold", d.dictionary_key_threshold);
    let padding_tolerance = fraction(ctx, "padding_tolerance", d.padding_tolerance);
    let enable_padding = match m.get("enable_padding") {
        Some(n) => ctx
            .bool(n, &m.path.key("enable_padding"))
            .unwrap_or(d.enable_padding),
        None => d.enable_padding,
    };
    let format_v0_11 = match m.get("format_version") {
        Some(n) => ctx
            .one_of(n, &m.path.key("format_version"), &["V0_11", "V0_12"])
            .map_or(d.format_v0_11, |i| i == 0),
        None => d.format_v0_11,
    };
    let bloom_filter_columns = bloom_columns(ctx, &mut m)?;
    m.finish(ctx);
    let options = OrcOptions {
        compression,
        stripe_size_bytes,
        block_size_bytes,
        row_index_stride,
        bloom_filter_columns,
        bloom_filter_false_positive_probability,
        dictionary_key_threshold,
        enable_padding,
        padding_tolerance,
        format_v0_11,
    };
    Some((options, buffer_mib.saturating_mul(MIB)))
}

/// `bloom_filter_columns`: names (checked against the schema by `spec::check`).
fn bloom_columns(ctx: &mut Ctx, m: &mut MapReader) -> Option<Vec<String>> {
    let Some(n) = m.get("bloom_filter_columns") else {
        return Some(Vec::new());
    };
    let path = m.path.key("bloom_filter_columns");
    let items = ctx.list(n, &path)?;
    let names: Vec<Option<String>> = items
        .iter()
        .enumerate()
        .map(|(i, it)| ctx.string(it, &path.index(i)))
        .collect();
    names.into_iter().collect()
}
