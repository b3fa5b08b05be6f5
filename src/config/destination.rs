//! `delivery_streams[].destinations[]`: target, prefixes, buffering, compression, names. What
//! the values must be (ranges, the prefix rules, AWS's minimums) is `spec::check`'s.

use std::path::PathBuf;

use super::conversion;
use super::decode::{Ctx, MapReader, Path};
use super::yaml::Node;
use crate::encode::Compression;
use crate::spec::{Buffering, Delivery, DestinationSpec, DynamicPartitioning, Target};

const NO_TARGET: &str = "exactly one of s3, directory, http_endpoint, iceberg is required";

/// What stands in for a destination that cannot be read (its problems are not judged).
pub(crate) fn stand_in() -> DestinationSpec {
    stand_in_with(Target::Directory(PathBuf::new()))
}

/// A destination to `target` with every default (what a stand-in is; tests build on it).
pub(crate) fn stand_in_with(target: Target) -> DestinationSpec {
    DestinationSpec {
        target,
        prefix: None,
        error_output_prefix: None,
        buffering: Buffering::DEFAULT,
        compression: Compression::Uncompressed,
        file_extension: None,
        time_zone: "UTC".into(),
        source_record_backup: None,
        dynamic_partitioning: None,
        format_conversion: None,
        delivery: Delivery::AtLeastOnce,
    }
}

/// An S3 or directory destination; None when it is not a mapping.
pub(crate) fn decode(ctx: &mut Ctx, node: &Node, path: Path) -> Option<DestinationSpec> {
    let mut m = MapReader::new(ctx, node, path)?;
    let target = decode_target(ctx, &mut m);
    let conversion = match m.get("data_format_conversion") {
        Some(n) => {
            conversion::decode(ctx, n, m.path.key("data_format_conversion")).unwrap_or_else(|| {
                ctx.broken(&m.path.key("data_format_conversion"));
                None
            })
        }
        None => None,
    };
    let converting = conversion.is_some();
    let buffering = match m.get("buffering") {
        Some(n) => decode_buffering(
            ctx,
            n,
            m.path.key("buffering"),
            Buffering::default_for(converting),
        ),
        None => Buffering::default_for(converting),
    };
    let compression = decode_compression(ctx, &mut m);
    let file_extension = optional_scalar(ctx, &mut m, "file_extension");
    let time_zone = match m.get("custom_time_zone") {
        Some(n) => ctx
            .string(n, &m.path.key("custom_time_zone"))
            .map(|tz| {
                // The zone's own name (an alias keeps its spelling).
                tz.parse::<chrono_tz::Tz>()
                    .map_or(tz, |zone| zone.name().to_string())
            })
            .unwrap_or_else(|| "UTC".into()),
        None => "UTC".into(),
    };
    let delivery = decode_delivery(ctx, &mut m);
    let source_record_backup = m.get("source_record_backup").and_then(|n| {
        let mut b = MapReader::new(ctx, n, m.path.key("source_record_backup"))?;
        let prefix = b
            .require(ctx, "prefix")
            .and_then(|p| ctx.string(p, &b.path.key("prefix")));
        b.finish(ctx);
        prefix
    });
    let dynamic_partitioning = match m.get("dynamic_partitioning") {
        Some(n) => decode_dynamic(ctx, n, m.path.key("dynamic_partitioning")),
        None => None,
    };
    let (prefix, error_output_prefix) = (
        optional_scalar(ctx, &mut m, "prefix"),
        optional_scalar(ctx, &mut m, "error_output_prefix"),
    );
    m.finish(ctx);
    Some(DestinationSpec {
        target,
        prefix,
        error_output_prefix,
        buffering,
        compression,
        file_extension,
        time_zone,
        source_record_backup,
        dynamic_partitioning,
        format_conversion: conversion,
        delivery,
    })
}

/// A scalar key read as text (`prefix`, `file_extension`), None when absent or broken.
pub(super) fn optional_scalar(
    ctx: &mut Ctx,
    m: &mut MapReader,
    key: &'static str,
) -> Option<String> {
    let n = m.get(key)?;
    ctx.scalar(n, &m.path.key(key))
}

/// `delivery: at_least_once | exactly_once`.
pub(super) fn decode_delivery(ctx: &mut Ctx, m: &mut MapReader) -> Delivery {
    let Some(n) = m.get("delivery") else {
        return Delivery::AtLeastOnce;
    };
    match ctx.one_of(
        n,
        &m.path.key("delivery"),
        &["at_least_once", "exactly_once"],
    ) {
        Some(1) => Delivery::ExactlyOnce,
        _ => Delivery::AtLeastOnce,
    }
}

/// `compression` (any case).
pub(super) fn decode_compression(ctx: &mut Ctx, m: &mut MapReader) -> Compression {
    let Some(n) = m.get("compression") else {
        return Compression::Uncompressed;
    };
    ctx.one_of_enum(
        n,
        &m.path.key("compression"),
        &Compression::ALL,
        Compression::api_name,
    )
    .unwrap_or(Compression::Uncompressed)
}

/// `dynamic_partitioning: {enabled, retry_duration_seconds, max_active_partitions}`; None when
/// not enabled.
fn decode_dynamic(ctx: &mut Ctx, node: &Node, path: Path) -> Option<DynamicPartitioning> {
    let mut m = MapReader::new(ctx, node, path)?;
    let d = DynamicPartitioning::DEFAULT;
    // Unreadable, `enabled` is judged true (it is broken: no rule depending on it shows).
    let enabled = match m.get("enabled") {
        Some(n) => ctx.bool(n, &m.path.key("enabled")).unwrap_or(true),
        None => false,
    };
    let retry = int_or(
        ctx,
        &mut m,
        "retry_duration_seconds",
        d.retry_duration_seconds,
    );
    let active = int_or(
        ctx,
        &mut m,
        "max_active_partitions",
        d.max_active_partitions as u64,
    );
    m.finish(ctx);
    enabled.then_some(DynamicPartitioning {
        retry_duration_seconds: retry,
        max_active_partitions: usize::try_from(active).unwrap_or(usize::MAX),
    })
}

/// A whole number under `key`, `default` when absent (or unreadable: it is broken then).
pub(super) fn int_or(ctx: &mut Ctx, m: &mut MapReader, key: &'static str, default: u64) -> u64 {
    match m.get(key) {
        Some(n) => ctx.int(n, &m.path.key(key)).unwrap_or(default),
        None => default,
    }
}

/// `s3` or `directory`; what stands in when it cannot be read (with the keys marked broken).
fn decode_target(ctx: &mut Ctx, m: &mut MapReader) -> Target {
    let stand_in = |ctx: &mut Ctx, m: &MapReader| {
        for key in ["s3", "directory"] {
            ctx.broken(&m.path.key(key));
        }
        Target::Directory(PathBuf::new())
    };
    match (m.has("s3"), m.has("directory")) {
        (Some(_), Some(d)) => {
            ctx.note(d.mark, &m.path, "exactly one of s3, directory (got both)");
            stand_in(ctx, m)
        }
        (None, None) => {
            ctx.note(m.mark(), &m.path, NO_TARGET);
            stand_in(ctx, m)
        }
        (Some(n), None) => {
            let Some(mut s) = MapReader::new(ctx, n, m.path.key("s3")) else {
                return stand_in(ctx, m);
            };
            let bucket = s
                .require(ctx, "bucket")
                .and_then(|b| ctx.string(b, &s.path.key("bucket")));
            let endpoint_url = optional_string(ctx, &mut s, "endpoint_url");
            let kms_key_arn = s.get("encryption").and_then(|e| {
                let mut enc = MapReader::new(ctx, e, s.path.key("encryption"))?;
                let key = enc
                    .require(ctx, "kms_key_arn")
                    .and_then(|k| ctx.string(k, &enc.path.key("kms_key_arn")));
                enc.finish(ctx);
                key
            });
            s.finish(ctx);
            Target::S3 {
                bucket: bucket.unwrap_or_default(),
                endpoint_url,
                kms_key_arn,
            }
        }
        (None, Some(n)) => match ctx.string(n, &m.path.key("directory")) {
            Some(d) => Target::Directory(PathBuf::from(d)),
            None => stand_in(ctx, m),
        },
    }
}

/// A string under `key`, None when absent (or unreadable: it is broken then).
pub(super) fn optional_string(
    ctx: &mut Ctx,
    m: &mut MapReader,
    key: &'static str,
) -> Option<String> {
    let n = m.get(key)?;
    ctx.string(n, &m.path.key(key))
}

/// `buffering: {size_mib, interval_seconds}`, `default` for what is not written.
pub(super) fn decode_buffering(
    ctx: &mut Ctx,
    node: &Node,
    path: Path,
    default: Buffering,
) -> Buffering {
    let Some(mut m) = MapReader::new(ctx, node, path) else {
        return default;
    };
    let size_mib = int_or(ctx, &mut m, "size_mib", default.size_mib);
    let interval_seconds = int_or(ctx, &mut m, "interval_seconds", default.interval_seconds);
    m.finish(ctx);
    Buffering {
        size_mib,
        interval_seconds,
    }
}
