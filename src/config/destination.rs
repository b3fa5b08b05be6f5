//! `delivery_streams[].destinations[]`: target, prefixes, buffering, compression, names.

use std::path::PathBuf;
use std::str::FromStr;

use chrono_tz::Tz;

use super::conversion;
use super::decode::{Ctx, MapReader, Path};
use super::model::{Buffering, Delivery, DestinationConfig, DynamicPartitioning, Target};
use super::yaml::{Mark, Node};
use crate::encode::Compression;
use crate::keys::template::Template;

/// What a destination's checks need to know of its stream and of the whole file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope {
    /// `relax_aws_limits`: AWS's buffer minimums are not enforced.
    pub(crate) relax: bool,
    /// The stream has `processing.metadata_extraction.query`.
    pub(crate) has_query: bool,
    /// The stream has `processing.transform`.
    pub(crate) has_transform: bool,
}

const NO_TARGET: &str = "exactly one of s3, directory, http_endpoint is required";

pub(crate) fn decode(
    ctx: &mut Ctx,
    node: &Node,
    path: Path,
    scope: Scope,
) -> Option<DestinationConfig> {
    let mut m = MapReader::new(ctx, node, path)?;
    let errors_before = ctx.errors.len();

    let (target_written, target) = decode_target(ctx, &mut m);
    let conversion = match m.get("data_format_conversion") {
        Some(n) => conversion::decode(ctx, n, m.path.key("data_format_conversion")),
        None => Some(None),
    };
    // A block with errors of its own is judged as enabled, so every other error shows too.
    let converting = !matches!(conversion, Some(None));
    let buffering = match m.get("buffering") {
        Some(n) => decode_buffering(ctx, n, m.path.key("buffering"), converting),
        None => Some(Buffering::default_for(converting)),
    };
    let compression = decode_compression(ctx, &mut m, converting);
    let file_extension = decode_extension(ctx, &mut m);
    let time_zone = decode_time_zone(ctx, &mut m);
    let delivery = decode_delivery(ctx, &mut m);
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
    let dp = match &dynamic {
        None => DpCheck::Unknown,
        Some(Some(_)) => DpCheck::Enabled(scope),
        Some(None) => DpCheck::Disabled,
    };
    let prefixes = decode_prefixes(ctx, &mut m, dp);
    if let (Some(b), false) = (buffering.as_ref(), scope.relax) {
        check_buffer_minimums(ctx, &m, b, dp_enabled, converting);
    }
    let mark = m.mark();
    let path = m.path.clone();
    m.finish(ctx);
    if !target_written {
        ctx.error(mark, &path, NO_TARGET);
    }
    if ctx.errors.len() > errors_before {
        return None;
    }
    let (prefix_template, error_prefix_template) = prefixes.templates?;
    let compression = compression?;
    Some(DestinationConfig {
        target: target?,
        prefix: prefixes.prefix,
        prefix_template,
        error_output_prefix: prefixes.error_prefix,
        error_prefix_template,
        buffering: buffering?,
        compression,
        file_extension: file_extension.unwrap_or_else(|| match conversion.as_ref() {
            Some(Some(c)) if c.orc.is_some() => ".orc".to_string(),
            Some(Some(_)) => ".parquet".to_string(),
            _ => compression.extension().to_string(),
        }),
        time_zone: time_zone?,
        source_record_backup_prefix: backup.as_ref()?.as_ref().map(|(raw, _)| raw.clone()),
        source_record_backup: backup?.map(|(_, t)| t),
        dynamic_partitioning: dynamic?,
        format_conversion: conversion?,
        delivery: delivery?,
    })
}

/// `delivery: at_least_once | exactly_once`.
fn decode_delivery(ctx: &mut Ctx, m: &mut MapReader) -> Option<Delivery> {
    let Some(n) = m.get("delivery") else {
        return Some(Delivery::AtLeastOnce);
    };
    let path = m.path.key("delivery");
    let delivery = match ctx.one_of(n, &path, &["at_least_once", "exactly_once"])? {
        0 => Delivery::AtLeastOnce,
        _ => Delivery::ExactlyOnce,
    };
    Some(delivery)
}

/// A destination's prefixes as written, and their templates once checked.
pub(super) struct Prefixes {
    pub(super) prefix: Option<String>,
    pub(super) error_prefix: Option<String>,
    pub(super) templates: Option<(Template, Option<Template>)>,
}

/// `prefix` and `error_output_prefix`, checked together (docs/aws-behaviour.md section 2).
pub(super) fn decode_prefixes(ctx: &mut Ctx, m: &mut MapReader, dp: DpCheck) -> Prefixes {
    let prefix = m
        .get("prefix")
        .and_then(|n| ctx.scalar(n, &m.path.key("prefix")).map(|s| (s, n.mark)));
    let error_prefix = m.get("error_output_prefix").and_then(|n| {
        ctx.scalar(n, &m.path.key("error_output_prefix"))
            .map(|s| (s, n.mark))
    });
    let templates = check_prefixes(ctx, &m.path, prefix.as_ref(), error_prefix.as_ref(), dp);
    if matches!(dp, DpCheck::Enabled(_)) && prefix.is_none() {
        ctx.error(
            m.mark(),
            &m.path.key("prefix"),
            "with dynamic_partitioning enabled the prefix must use !{partitionKeyFromQuery:...} or !{partitionKeyFromLambda:...}",
        );
    }
    Prefixes {
        prefix: prefix.map(|(p, _)| p),
        error_prefix: error_prefix.map(|(p, _)| p),
        templates,
    }
}

/// `compression` (any case); UNCOMPRESSED when the destination converts to Parquet.
pub(super) fn decode_compression(
    ctx: &mut Ctx,
    m: &mut MapReader,
    converting: bool,
) -> Option<Compression> {
    let Some(n) = m.get("compression") else {
        return Some(Compression::Uncompressed);
    };
    let path = m.path.key("compression");
    let c = ctx
        .one_of(n, &path, &Compression::NAMES)
        .map(Compression::from_index)?;
    if converting && c != Compression::Uncompressed {
        ctx.error(
            n.mark,
            &path,
            "must be UNCOMPRESSED when data_format_conversion is enabled (Parquet compresses inside the file: data_format_conversion.output.parquet.compression)",
        );
        return None;
    }
    Some(c)
}

/// `file_extension`: `.` then AWS's allowed characters, or empty; None when not given (the
/// compression's own) or invalid.
fn decode_extension(ctx: &mut Ctx, m: &mut MapReader) -> Option<String> {
    let n = m.get("file_extension")?;
    let path = m.path.key("file_extension");
    let ext = ctx.scalar(n, &path)?;
    let valid = ext.is_empty()
        || (ext.starts_with('.')
            && ext.len() <= 128
            && ext[1..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "!-_.*'()".contains(c)));
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
}

/// `custom_time_zone`: an IANA name, UTC by default.
fn decode_time_zone(ctx: &mut Ctx, m: &mut MapReader) -> Option<Tz> {
    let Some(n) = m.get("custom_time_zone") else {
        return Some(chrono_tz::UTC);
    };
    let path = m.path.key("custom_time_zone");
    let tz = ctx.string(n, &path)?;
    match Tz::from_str(&tz) {
        Ok(tz) => Some(tz),
        Err(_) => {
            ctx.error(
                n.mark,
                &path,
                format!("must be an IANA time zone such as UTC or America/New_York (got {tz:?})"),
            );
            None
        }
    }
}

/// AWS's buffer minimums with dynamic partitioning and with format conversion.
fn check_buffer_minimums(
    ctx: &mut Ctx,
    m: &MapReader,
    b: &Buffering,
    partitioning: bool,
    converting: bool,
) {
    let mark = m.mark();
    let size = m.path.key("buffering").key("size_mib");
    if partitioning {
        if b.size_mib < 64 {
            ctx.error(
                mark,
                &size,
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
    if converting && b.size_mib < 64 {
        ctx.error(
            mark,
            &size,
            "BufferingHints.SizeInMBs must be at least 64 when data format conversion is enabled. (relax_aws_limits: true allows less)",
        );
    }
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
            let bucket = decode_bucket(ctx, &mut s);
            let endpoint_url = decode_endpoint_url(ctx, &mut s);
            let kms_key_arn = s.get("encryption").and_then(|e| {
                let mut enc = MapReader::new(ctx, e, s.path.key("encryption"))?;
                let key = enc.require(ctx, "kms_key_arn").and_then(|k| {
                    let path = enc.path.key("kms_key_arn");
                    let arn = ctx.string(k, &path)?;
                    if !valid_kms_key_arn(&arn) {
                        ctx.error(
                            k.mark,
                            &path,
                            format!("must be a KMS key or alias ARN (arn:aws:kms:REGION:ACCOUNT:key/ID or alias/NAME; got {arn:?})"),
                        );
                        return None;
                    }
                    Some(arn)
                });
                enc.finish(ctx);
                key
            });
            s.finish(ctx);
            Some(Target::S3 {
                bucket: bucket?,
                endpoint_url,
                kms_key_arn,
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

fn decode_buffering(ctx: &mut Ctx, node: &Node, path: Path, converting: bool) -> Option<Buffering> {
    decode_buffering_within(ctx, node, path, Buffering::default_for(converting), 128)
}

/// `buffering: {size_mib: 1..=max_mib, interval_seconds: 0..=900}`, `default` for what is not
/// written.
pub(super) fn decode_buffering_within(
    ctx: &mut Ctx,
    node: &Node,
    path: Path,
    default: Buffering,
    max_mib: u64,
) -> Option<Buffering> {
    let mut m = MapReader::new(ctx, node, path)?;
    let size = match m.get("size_mib") {
        Some(n) => ctx.int_in(n, &m.path.key("size_mib"), 1..=max_mib),
        None => Some(default.size_mib),
    };
    let interval = match m.get("interval_seconds") {
        Some(n) => ctx.int_in(n, &m.path.key("interval_seconds"), 0..=900),
        None => Some(default.interval_seconds),
    };
    m.finish(ctx);
    Some(Buffering {
        size_mib: size?,
        interval_seconds: interval?,
    })
}

/// What the prefix rules know of dynamic partitioning.
#[derive(Clone, Copy)]
pub(super) enum DpCheck {
    Disabled,
    Enabled(Scope),
    /// Its block has errors of its own.
    Unknown,
}

/// The prefix rules of docs/aws-behaviour.md section 2 (those that hold without dynamic
/// partitioning too).
fn check_prefixes(
    ctx: &mut Ctx,
    path: &Path,
    prefix: Option<&(String, Mark)>,
    error_prefix: Option<&(String, Mark)>,
    dynamic: DpCheck,
) -> Option<(Template, Option<Template>)> {
    let e_path = path.key("error_output_prefix");
    let main = match prefix {
        Some((raw, mark)) => check_main_prefix(ctx, &path.key("prefix"), raw, *mark, dynamic),
        None => Some(Template::default()),
    };
    let error = match error_prefix {
        Some((raw, mark)) => check_error_prefix(ctx, &e_path, raw, *mark).map(Some),
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

/// `prefix`: its expressions, and the partition keys dynamic partitioning needs.
fn check_main_prefix(
    ctx: &mut Ctx,
    path: &Path,
    raw: &str,
    mark: Mark,
    dynamic: DpCheck,
) -> Option<Template> {
    let t = match Template::parse(raw) {
        Ok(t) => t,
        Err(e) => {
            ctx.error(mark, path, e);
            return None;
        }
    };
    if t.has_error_output_type() {
        ctx.error(
            mark,
            path,
            "!{firehose:error-output-type} is only allowed in error_output_prefix",
        );
    }
    let needs = match dynamic {
        DpCheck::Unknown => None,
        DpCheck::Disabled if t.has_partition_keys() => Some(
            "partitionKeyFromQuery and partitionKeyFromLambda need dynamic_partitioning enabled",
        ),
        DpCheck::Disabled => None,
        DpCheck::Enabled(_) if !t.has_partition_keys() => Some(
            "with dynamic_partitioning enabled the prefix must use !{partitionKeyFromQuery:...} or !{partitionKeyFromLambda:...}",
        ),
        DpCheck::Enabled(scope) => {
            if t.has_query_keys() && !scope.has_query {
                ctx.error(
                    mark,
                    path,
                    "!{partitionKeyFromQuery:...} needs processing.metadata_extraction.query",
                );
            }
            (t.has_lambda_keys() && !scope.has_transform)
                .then_some("!{partitionKeyFromLambda:...} needs processing.transform")
        }
    };
    if let Some(message) = needs {
        ctx.error(mark, path, message);
    }
    Some(t)
}

/// `error_output_prefix`: no partition keys; with expressions, the error-output-type.
fn check_error_prefix(ctx: &mut Ctx, path: &Path, raw: &str, mark: Mark) -> Option<Template> {
    let t = match Template::parse(raw) {
        Ok(t) => t,
        Err(e) => {
            ctx.error(mark, path, e);
            return None;
        }
    };
    if t.has_partition_keys() {
        ctx.error(
            mark,
            path,
            "partition keys are not allowed in error_output_prefix",
        );
    }
    if t.has_expressions() && !t.has_error_output_type() {
        ctx.error(
            mark,
            path,
            "an error_output_prefix with expressions must contain !{firehose:error-output-type}",
        );
    }
    Some(t)
}

/// `bucket`: required, an S3 bucket name.
pub(super) fn decode_bucket(ctx: &mut Ctx, s: &mut MapReader) -> Option<String> {
    s.require(ctx, "bucket").and_then(|b| {
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
    })
}

/// `endpoint_url`: optional, an http(s) URL.
pub(super) fn decode_endpoint_url(ctx: &mut Ctx, s: &mut MapReader) -> Option<String> {
    s.get("endpoint_url").and_then(|e| {
        let path = s.path.key("endpoint_url");
        let url = ctx.string(e, &path)?;
        check_url(ctx, e.mark, &path, &url).then_some(url)
    })
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
pub(crate) fn check_url(ctx: &mut Ctx, mark: Mark, path: &Path, url: &str) -> bool {
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

/// AWS's AWSKMSKeyARN pattern: `arn:.*:kms:[a-zA-Z0-9\-]+:\d{12}:(key|alias)/[a-zA-Z_0-9+=,.@\-_/]+`.
fn valid_kms_key_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_word, _partition, service, region, account, resource] = parts[..] else {
        return false;
    };
    let id = resource
        .strip_prefix("key/")
        .or_else(|| resource.strip_prefix("alias/"));
    arn_word == "arn"
        && service == "kms"
        && !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && id.is_some_and(|id| {
            !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_/".contains(c))
        })
}
