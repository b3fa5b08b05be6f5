//! `delivery_streams[].destinations[]`: target, prefixes, buffering, compression, names.

use std::path::PathBuf;
use std::str::FromStr;

use chrono_tz::Tz;

use super::conversion;
use super::decode::{Ctx, MapReader, Path};
use super::model::{Buffering, DestinationConfig, DynamicPartitioning, Target};
use super::yaml::{Mark, Node};
use crate::encode::Compression;
use crate::keys::template::Template;

/// What a destination's checks need to know of its stream and of the whole file.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    /// `relax_aws_limits`: AWS's buffer minimums are not enforced.
    pub relax: bool,
    /// The stream has `processing.metadata_extraction.query`.
    pub has_query: bool,
    /// The stream has `processing.transform`.
    pub has_transform: bool,
}

pub fn decode(ctx: &mut Ctx, node: &Node, path: Path, scope: Scope) -> Option<DestinationConfig> {
    let mut m = MapReader::new(ctx, node, path)?;
    let errors_before = ctx.errors.len();

    let (target_written, target) = decode_target(ctx, &mut m);
    let prefix = m
        .get("prefix")
        .and_then(|n| ctx.scalar(n, &m.path.key("prefix")).map(|s| (s, n.mark)));
    let error_prefix = m.get("error_output_prefix").and_then(|n| {
        ctx.scalar(n, &m.path.key("error_output_prefix"))
            .map(|s| (s, n.mark))
    });
    let conversion = match m.get("data_format_conversion") {
        Some(n) => conversion::decode(ctx, n, m.path.key("data_format_conversion")),
        None => Some(None),
    };
    // A block with errors of its own is judged as enabled, so every other error shows too.
    let converting = !matches!(conversion, Some(None));
    // AWS's default buffer size is 128 MiB with format conversion.
    let default_size = if converting {
        128
    } else {
        Buffering::DEFAULT.size_mib
    };
    let buffering = match m.get("buffering") {
        Some(n) => decode_buffering(ctx, n, m.path.key("buffering"), default_size),
        None => Some(Buffering {
            size_mib: default_size,
            ..Buffering::DEFAULT
        }),
    };
    let compression = match m.get("compression") {
        Some(n) => ctx
            .one_of(n, &m.path.key("compression"), &Compression::NAMES)
            .map(Compression::from_index)
            .and_then(|c| {
                if converting && c != Compression::Uncompressed {
                    ctx.error(
                        n.mark,
                        &m.path.key("compression"),
                        "must be UNCOMPRESSED when data_format_conversion is enabled (Parquet compresses inside the file: data_format_conversion.output.parquet.compression)",
                    );
                    return None;
                }
                Some(c)
            }),
        None => Some(Compression::Uncompressed),
    };
    let file_extension = m.get("file_extension").and_then(|n| {
        let path = m.path.key("file_extension");
        let ext = ctx.scalar(n, &path)?;
        let valid = ext.is_empty()
            || (ext.starts_with('.')
                && ext.len() <= 128
                && ext[1..].chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || "!-_.*'()".contains(c)
                }));
        if !valid {
            ctx.error(
                n.mark,
                &path,
                format!(
                    "must start with `.` followed by lowercase letters, digits or !-_.*'() (at most 128 characters; got {ext:?})"
                ),
            );
            return None;
        }
        Some(ext)
    });
    let time_zone = match m.get("custom_time_zone") {
        Some(n) => {
            let path = m.path.key("custom_time_zone");
            ctx.string(n, &path).and_then(|tz| match Tz::from_str(&tz) {
                Ok(tz) => Some(tz),
                Err(_) => {
                    ctx.error(
                        n.mark,
                        &path,
                        format!(
                            "must be an IANA time zone such as UTC or America/New_York (got {tz:?})"
                        ),
                    );
                    None
                }
            })
        }
        None => Some(chrono_tz::UTC),
    };
    let backup = match m.get("source_record_backup") {
        Some(n) => decode_backup(ctx, n, m.path.key("source_record_backup")).map(Some),
        None => Some(None),
    };
    let dynamic = match m.get("dynamic_partitioning") {
        Some(n) => decode_dynamic(ctx, n, m.path.key("dynamic_partitioning")),
        None => Some(None),
    };
    let dp_enabled = dynamic.as_ref().is_some_and(Option::is_some);
    // A dynamic_partitioning block with errors: its prefix rules cannot be judged.
    let dp_unknown = dynamic.is_none();
    let templates = check_prefixes(
        ctx,
        &m.path,
        prefix.as_ref(),
        error_prefix.as_ref(),
        if dp_unknown {
            DpCheck::Unknown
        } else if dp_enabled {
            DpCheck::Enabled(scope)
        } else {
            DpCheck::Disabled
        },
    );
    if dp_enabled && prefix.is_none() && !dp_unknown {
        ctx.error(
            m.mark(),
            &m.path.key("prefix"),
            "with dynamic_partitioning enabled the prefix must use !{partitionKeyFromQuery:...} or !{partitionKeyFromLambda:...}",
        );
    }
    if let (true, Some(b), false) = (dp_enabled, buffering.as_ref(), scope.relax) {
        let mark = m.mark();
        if b.size_mib < 64 {
            ctx.error(
                mark,
                &m.path.key("buffering").key("size_mib"),
                "BufferingHints.SizeInMBs must be at least 64 when Dynamic Partitioning is enabled. (relax_aws_limits: true allows less)",
            );
        }
        if b.interval_seconds < 60 {
            ctx.error(
                mark,
                &m.path.key("buffering").key("interval_seconds"),
                "BufferingHints.IntervalInSeconds must be at least 60 when Dynamic Partitioning is enabled. (relax_aws_limits: true allows less)",
            );
        }
    }
    if let (true, Some(b), false) = (converting, buffering.as_ref(), scope.relax)
        && b.size_mib < 64
    {
        ctx.error(
            m.mark(),
            &m.path.key("buffering").key("size_mib"),
            "BufferingHints.SizeInMBs must be at least 64 when data format conversion is enabled. (relax_aws_limits: true allows less)",
        );
    }
    let mark = m.mark();
    let path = m.path.clone();
    m.finish(ctx);
    if !target_written {
        ctx.error(mark, &path, "exactly one of s3, directory is required");
    }
    if ctx.errors.len() > errors_before {
        return None;
    }
    let (prefix_template, error_prefix_template) = templates?;
    let compression = compression?;
    Some(DestinationConfig {
        target: target?,
        prefix: prefix.map(|(p, _)| p),
        prefix_template,
        error_output_prefix: error_prefix.map(|(p, _)| p),
        error_prefix_template,
        buffering: buffering?,
        compression,
        file_extension: file_extension.unwrap_or_else(|| {
            if converting {
                ".parquet".to_string()
            } else {
                compression.extension().to_string()
            }
        }),
        time_zone: time_zone?,
        source_record_backup_prefix: backup.as_ref()?.as_ref().map(|(raw, _)| raw.clone()),
        source_record_backup: backup?.map(|(_, t)| t),
        dynamic_partitioning: dynamic?,
        format_conversion: conversion?,
    })
}

/// `dynamic_partitioning: {enabled, retry_duration_seconds, max_active_partitions}`; None when
/// not enabled.
fn decode_dynamic(ctx: &mut Ctx, node: &Node, path: Path) -> Option<Option<DynamicPartitioning>> {
    let mut m = MapReader::new(ctx, node, path)?;
    let enabled = match m.get("enabled") {
        Some(n) => ctx.bool(n, &m.path.key("enabled")),
        None => Some(false),
    };
    let retry = match m.get("retry_duration_seconds") {
        Some(n) => ctx.int_in(n, &m.path.key("retry_duration_seconds"), 0..=7200),
        None => Some(300),
    };
    let active = match m.get("max_active_partitions") {
        Some(n) => ctx.int_in(n, &m.path.key("max_active_partitions"), 1..=10_000),
        None => Some(500),
    };
    m.finish(ctx);
    let (enabled, retry, active) = (enabled?, retry?, active?);
    Some(enabled.then_some(DynamicPartitioning {
        retry_duration_seconds: retry,
        max_active_partitions: active as usize,
    }))
}

/// `source_record_backup: {prefix}`: a plain prefix or one with timestamp expressions.
fn decode_backup(ctx: &mut Ctx, node: &Node, path: Path) -> Option<(String, Template)> {
    let mut m = MapReader::new(ctx, node, path)?;
    let prefix = m.require(ctx, "prefix").and_then(|n| {
        let path = m.path.key("prefix");
        let raw = ctx.string(n, &path)?;
        match Template::parse(&raw) {
            Ok(t) if t.has_error_output_type() || t.has_partition_keys() => {
                ctx.error(
                    n.mark,
                    &path,
                    "only !{timestamp:...} and !{firehose:random-string} are allowed in the backup prefix",
                );
                None
            }
            Ok(t) => Some((raw, t)),
            Err(e) => {
                ctx.error(n.mark, &path, e);
                None
            }
        }
    });
    m.finish(ctx);
    prefix
}

/// Whether a target key is written at all, and the target when it is valid.
fn decode_target(ctx: &mut Ctx, m: &mut MapReader) -> (bool, Option<Target>) {
    let s3 = m.has("s3");
    let dir = m.has("directory");
    let written = s3.is_some() || dir.is_some();
    (written, target_of(ctx, m, s3, dir))
}

fn target_of(
    ctx: &mut Ctx,
    m: &mut MapReader,
    s3: Option<&Node>,
    dir: Option<&Node>,
) -> Option<Target> {
    match (s3, dir) {
        (Some(_), Some(d)) => {
            ctx.error(d.mark, &m.path, "exactly one of s3, directory (got both)");
            None
        }
        (Some(n), None) => {
            let mut s = MapReader::new(ctx, n, m.path.key("s3"))?;
            let bucket = s.require(ctx, "bucket").and_then(|b| {
                let path = s.path.key("bucket");
                let name = ctx.string(b, &path)?;
                if !valid_bucket(&name) {
                    ctx.error(
                        b.mark,
                        &path,
                        format!("must be an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens (got {name:?})"),
                    );
                    return None;
                }
                Some(name)
            });
            let endpoint_url = s.get("endpoint_url").and_then(|e| {
                let path = s.path.key("endpoint_url");
                let url = ctx.string(e, &path)?;
                check_url(ctx, e.mark, &path, &url).then_some(url)
            });
            s.finish(ctx);
            Some(Target::S3 {
                bucket: bucket?,
                endpoint_url,
            })
        }
        (None, Some(n)) => {
            let path = ctx.string(n, &m.path.key("directory"))?;
            if path.is_empty() {
                ctx.error(n.mark, &m.path.key("directory"), "must not be empty");
                return None;
            }
            Some(Target::Directory(PathBuf::from(path)))
        }
        (None, None) => None,
    }
}

fn decode_buffering(
    ctx: &mut Ctx,
    node: &Node,
    path: Path,
    default_size: u64,
) -> Option<Buffering> {
    let mut m = MapReader::new(ctx, node, path)?;
    let size = match m.get("size_mib") {
        Some(n) => ctx.int_in(n, &m.path.key("size_mib"), 1..=128),
        None => Some(default_size),
    };
    let interval = match m.get("interval_seconds") {
        Some(n) => ctx.int_in(n, &m.path.key("interval_seconds"), 0..=900),
        None => Some(Buffering::DEFAULT.interval_seconds),
    };
    m.finish(ctx);
    Some(Buffering {
        size_mib: size?,
        interval_seconds: interval?,
    })
}

/// What the prefix rules know of dynamic partitioning.
#[derive(Clone, Copy)]
enum DpCheck {
    Disabled,
    Enabled(Scope),
    /// Its block has errors of its own.
    Unknown,
}

/// The prefix rules of FIREHOSE.md section 2 (the ones that hold without dynamic partitioning).
fn check_prefixes(
    ctx: &mut Ctx,
    path: &Path,
    prefix: Option<&(String, Mark)>,
    error_prefix: Option<&(String, Mark)>,
    dynamic: DpCheck,
) -> Option<(Template, Option<Template>)> {
    let p_path = path.key("prefix");
    let e_path = path.key("error_output_prefix");
    let main = match prefix {
        Some((raw, mark)) => match Template::parse(raw) {
            Ok(t) => {
                if t.has_error_output_type() {
                    ctx.error(
                        *mark,
                        &p_path,
                        "!{firehose:error-output-type} is only allowed in error_output_prefix",
                    );
                }
                match dynamic {
                    DpCheck::Unknown => {}
                    DpCheck::Disabled if t.has_partition_keys() => ctx.error(
                        *mark,
                        &p_path,
                        "partitionKeyFromQuery and partitionKeyFromLambda need dynamic_partitioning enabled",
                    ),
                    DpCheck::Disabled => {}
                    DpCheck::Enabled(_) if !t.has_partition_keys() => ctx.error(
                        *mark,
                        &p_path,
                        "with dynamic_partitioning enabled the prefix must use !{partitionKeyFromQuery:...} or !{partitionKeyFromLambda:...}",
                    ),
                    DpCheck::Enabled(scope) => {
                        if t.has_query_keys() && !scope.has_query {
                            ctx.error(
                                *mark,
                                &p_path,
                                "!{partitionKeyFromQuery:...} needs processing.metadata_extraction.query",
                            );
                        }
                        if t.has_lambda_keys() && !scope.has_transform {
                            ctx.error(
                                *mark,
                                &p_path,
                                "!{partitionKeyFromLambda:...} needs processing.transform",
                            );
                        }
                    }
                }
                Some(t)
            }
            Err(e) => {
                ctx.error(*mark, &p_path, e);
                None
            }
        },
        None => Some(Template::default()),
    };
    let error = match error_prefix {
        Some((raw, mark)) => match Template::parse(raw) {
            Ok(t) => {
                if t.has_partition_keys() {
                    ctx.error(
                        *mark,
                        &e_path,
                        "partition keys are not allowed in error_output_prefix",
                    );
                }
                if t.has_expressions() && !t.has_error_output_type() {
                    ctx.error(
                        *mark,
                        &e_path,
                        "an error_output_prefix with expressions must contain !{firehose:error-output-type}",
                    );
                }
                Some(Some(t))
            }
            Err(e) => {
                ctx.error(*mark, &e_path, e);
                None
            }
        },
        None => Some(None),
    };
    if let (Some(t), Some(Some(e)), Some((_, mark))) = (&main, &error, error_prefix)
        && t.has_expressions()
        && !e.has_expressions()
    {
        ctx.error(
            *mark,
            &e_path,
            "an error_output_prefix must contain !{firehose:error-output-type} when prefix contains expressions",
        );
    }
    if let (Some(t), Some((_, mark))) = (&main, prefix)
        && t.has_expressions()
        && error_prefix.is_none()
    {
        ctx.error(
            *mark,
            &e_path,
            "error_output_prefix is required when prefix contains expressions",
        );
    }
    Some((main?, error?))
}

fn valid_bucket(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// An endpoint URL must be http(s)://host[:port][/path].
pub fn check_url(ctx: &mut Ctx, mark: Mark, path: &Path, url: &str) -> bool {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
    if !ok {
        ctx.error(
            mark,
            path,
            format!("must be an http:// or https:// URL (got {url:?})"),
        );
    }
    ok
}
