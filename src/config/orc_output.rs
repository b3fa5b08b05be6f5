//! `data_format_conversion.output.orc`: AWS's OrcSerDe, with its ranges and defaults
//! (Firehose API reference, OrcSerDe).

use super::decode::{Ctx, MapReader, Path};
use super::yaml::Node;
use crate::encode::orc::{OrcCompression, OrcOptions};

const MIB: u64 = 1024 * 1024;

/// The ORC options, and the stripe memory bound (`stripe_buffer_mib`, firehosed's).
pub(super) fn decode(ctx: &mut Ctx, node: &Node, path: Path) -> Option<(OrcOptions, u64)> {
    let d = OrcOptions::DEFAULT;
    let mut m = MapReader::new(ctx, node, path)?;
    let max = u64::from(u32::MAX);
    let stripe = int(
        ctx,
        &mut m,
        "stripe_size_bytes",
        8 * MIB..=max,
        d.stripe_size_bytes,
    );
    let block = int(
        ctx,
        &mut m,
        "block_size_bytes",
        64 * MIB..=max,
        d.block_size_bytes,
    );
    let stride = int(
        ctx,
        &mut m,
        "row_index_stride",
        1000..=max,
        d.row_index_stride,
    );
    let buffer = int(ctx, &mut m, "stripe_buffer_mib", 1..=1024, 16);
    let compression = match m.get("compression") {
        Some(n) => ctx
            .one_of(n, &m.path.key("compression"), &OrcCompression::NAMES)
            .map(OrcCompression::from_index),
        None => Some(d.compression),
    };
    let fpp = fraction(
        ctx,
        &mut m,
        "bloom_filter_false_positive_probability",
        d.bloom_filter_false_positive_probability,
    );
    let threshold = fraction(
        ctx,
        &mut m,
        "dictionary_key_threshold",
        d.dictionary_key_threshold,
    );
    let tolerance = fraction(ctx, &mut m, "padding_tolerance", d.padding_tolerance);
    let padding = match m.get("enable_padding") {
        Some(n) => ctx.bool(n, &m.path.key("enable_padding")),
        None => Some(d.enable_padding),
    };
    let version = match m.get("format_version") {
        Some(n) => ctx
            .one_of(n, &m.path.key("format_version"), &["V0_11", "V0_12"])
            .map(|i| i == 0),
        None => Some(d.format_v0_11),
    };
    let bloom = bloom_columns(ctx, &mut m);
    m.finish(ctx);
    let options = OrcOptions {
        compression: compression?,
        stripe_size_bytes: stripe?,
        block_size_bytes: block?,
        row_index_stride: stride?,
        bloom_filter_columns: bloom?,
        bloom_filter_false_positive_probability: fpp?,
        dictionary_key_threshold: threshold?,
        enable_padding: padding?,
        padding_tolerance: tolerance?,
        format_v0_11: version?,
    };
    Some((options, buffer? * MIB))
}

fn int(
    ctx: &mut Ctx,
    m: &mut MapReader,
    key: &'static str,
    range: std::ops::RangeInclusive<u64>,
    default: u64,
) -> Option<u64> {
    match m.get(key) {
        Some(n) => ctx.int_in(n, &m.path.key(key), range),
        None => Some(default),
    }
}

/// A number from 0 to 1.
fn fraction(ctx: &mut Ctx, m: &mut MapReader, key: &'static str, default: f64) -> Option<f64> {
    let Some(n) = m.get(key) else {
        return Some(default);
    };
    let path = m.path.key(key);
    let text = ctx.scalar(n, &path)?;
    match text.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Some(v),
        _ => {
            ctx.error(
                n.mark,
                &path,
                format!("must be a number from 0 to 1 (got {text:?})"),
            );
            None
        }
    }
}

/// `bloom_filter_columns`: names (checked against the schema by the caller).
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
