//! `destinations[]` with `http_endpoint`: AWS's HttpEndpointDestinationConfiguration. The
//! endpoint and its request settings, the buffering of its requests (AWS's HTTP endpoint limits:
//! 1-64 MiB, 0-900 s), and `s3_backup`, which holds what an S3 destination's keys would: the
//! bucket or directory, prefixes and compression of the objects the backup writes.

use std::path::PathBuf;

use super::decode::{Ctx, MapReader, Path};
use super::destination::{
    DpCheck, check_url, decode_bucket, decode_buffering_within, decode_compression,
    decode_endpoint_url, decode_prefixes,
};
use super::model::{BackupMode, Buffering, Delivery, DestinationConfig, HttpEndpoint, Target};
use super::yaml::Node;

/// AWS's limits on the endpoint configuration (HttpEndpointConfiguration, RetryOptions).
const MAX_URL: usize = 1000;
const MAX_NAME: usize = 256;
const MAX_ACCESS_KEY: usize = 4096;
const MAX_ATTRIBUTE_NAME: usize = 256;
const MAX_ATTRIBUTE_VALUE: usize = 1024;
const MAX_ATTRIBUTES: usize = 50;
pub(crate) const DEFAULT_RETRY_SECONDS: u64 = 300;
/// AWS gives an endpoint 3 minutes to answer.
pub(crate) const DEFAULT_TIMEOUT_SECONDS: u64 = 180;

/// Keys of an S3 destination that an HTTP endpoint destination takes under `s3_backup` or not
/// at all (AWS: dynamic partitioning, format conversion and source backups are S3's).
const S3_ONLY: [&str; 9] = [
    "s3",
    "directory",
    "prefix",
    "error_output_prefix",
    "compression",
    "file_extension",
    "dynamic_partitioning",
    "data_format_conversion",
    "source_record_backup",
];

pub(crate) fn decode(ctx: &mut Ctx, node: &Node, path: Path) -> Option<DestinationConfig> {
    let mut m = MapReader::new(ctx, node, path)?;
    let errors_before = ctx.errors.len();
    let endpoint = m
        .require(ctx, "http_endpoint")
        .and_then(|n| decode_endpoint(ctx, n, m.path.key("http_endpoint")));
    let buffering = match m.get("buffering") {
        // AWS's HttpEndpointBufferingHints: 1-64 MiB, 0-900 s (defaults 5 MiB, 300 s).
        Some(n) => decode_buffering_within(ctx, n, m.path.key("buffering"), Buffering::DEFAULT, 64),
        None => Some(Buffering::DEFAULT),
    };
    let backup = m
        .require(ctx, "s3_backup")
        .and_then(|n| decode_backup(ctx, n, m.path.key("s3_backup")));
    for key in S3_ONLY {
        if let Some(n) = m.has(key) {
            ctx.error(
                n.mark,
                &m.path.key(key),
                "is not for an http_endpoint destination (the backup's bucket or directory, prefix, error_output_prefix and compression go under s3_backup; dynamic partitioning, format conversion and source record backups are S3's)",
            );
        }
    }
    if let Some(n) = m.get("delivery") {
        let path = m.path.key("delivery");
        if ctx.one_of(n, &path, &["at_least_once", "exactly_once"]) == Some(1) {
            ctx.error(
                n.mark,
                &path,
                "exactly_once needs conditional writes, which an HTTP endpoint does not have: an endpoint deduplicates by X-Amz-Firehose-Request-Id",
            );
        }
    }
    m.finish(ctx);
    if ctx.errors.len() > errors_before {
        return None;
    }
    let (mut endpoint, backup) = (endpoint?, backup?);
    let compression = backup.compression;
    endpoint.backup_mode = backup.mode;
    endpoint.backup = backup.target;
    let (prefix_template, error_prefix_template) = backup.prefixes.templates?;
    Some(DestinationConfig {
        target: Target::Http(Box::new(endpoint)),
        prefix: backup.prefixes.prefix,
        prefix_template,
        error_output_prefix: backup.prefixes.error_prefix,
        error_prefix_template,
        buffering: buffering?,
        compression,
        file_extension: compression.extension().to_string(),
        time_zone: chrono_tz::UTC,
        source_record_backup: None,
        source_record_backup_prefix: None,
        dynamic_partitioning: None,
        format_conversion: None,
        delivery: Delivery::AtLeastOnce,
    })
}

/// `http_endpoint: {url, name, access_key, content_encoding, common_attributes,
/// retry_duration_seconds, request_timeout_seconds}`; the backup is filled in by the caller.
fn decode_endpoint(ctx: &mut Ctx, node: &Node, path: Path) -> Option<HttpEndpoint> {
    let mut m = MapReader::new(ctx, node, path)?;
    let url = m.require(ctx, "url").and_then(|n| {
        let path = m.path.key("url");
        let url = ctx.string(n, &path)?;
        if url.len() > MAX_URL {
            ctx.error(
                n.mark,
                &path,
                format!("must be at most {MAX_URL} characters"),
            );
            return None;
        }
        if !check_url(ctx, n.mark, &path, &url) {
            return None;
        }
        if url.parse::<http::Uri>().is_err() {
            ctx.error(n.mark, &path, format!("is not a valid URL (got {url:?})"));
            return None;
        }
        Some(url)
    });
    let name = bounded(ctx, &mut m, "name", 1, MAX_NAME);
    let access_key = bounded(ctx, &mut m, "access_key", 0, MAX_ACCESS_KEY).and_then(|k| {
        match k.as_deref().map(http::HeaderValue::from_str) {
            Some(Err(_)) => {
                let at = m.path.key("access_key");
                ctx.error(
                    m.mark(),
                    &at,
                    "must be visible ASCII: it is sent as an HTTP header",
                );
                None
            }
            _ => Some(k),
        }
    });
    let gzip = match m.get("content_encoding") {
        Some(n) => ctx
            .one_of(n, &m.path.key("content_encoding"), &["NONE", "GZIP"])
            .map(|i| i == 1),
        None => Some(false),
    };
    let common_attributes = match m.get("common_attributes") {
        Some(n) => attributes(ctx, n, &m.path.key("common_attributes")),
        None => Some(Vec::new()),
    };
    let retry = match m.get("retry_duration_seconds") {
        Some(n) => ctx.int_in(n, &m.path.key("retry_duration_seconds"), 0..=7200),
        None => Some(DEFAULT_RETRY_SECONDS),
    };
    let timeout = match m.get("request_timeout_seconds") {
        Some(n) => ctx.int_in(n, &m.path.key("request_timeout_seconds"), 1..=180),
        None => Some(DEFAULT_TIMEOUT_SECONDS),
    };
    m.finish(ctx);
    Some(HttpEndpoint {
        url: url?,
        name: name?,
        access_key: access_key?,
        gzip: gzip?,
        common_attributes: common_attributes?,
        retry_duration_seconds: retry?,
        request_timeout_seconds: timeout?,
        backup_mode: BackupMode::FailedDataOnly,
        backup: Target::Directory(PathBuf::new()),
    })
}

/// An optional string of `min..=max` bytes; Some(None) when absent.
fn bounded(
    ctx: &mut Ctx,
    m: &mut MapReader,
    key: &'static str,
    min: usize,
    max: usize,
) -> Option<Option<String>> {
    let Some(n) = m.get(key) else {
        return Some(None);
    };
    let path = m.path.key(key);
    let value = ctx.string(n, &path)?;
    if !(min..=max).contains(&value.len()) {
        ctx.error(n.mark, &path, format!("must be {min}-{max} bytes long"));
        return None;
    }
    Some(Some(value))
}

/// `common_attributes: {name: value, ...}`, in the order written.
fn attributes(ctx: &mut Ctx, node: &Node, path: &Path) -> Option<Vec<(String, String)>> {
    let entries = ctx.entries(node, path, "of attribute names to values")?;
    if entries.len() > MAX_ATTRIBUTES {
        ctx.error(
            node.mark,
            path,
            format!(
                "at most {MAX_ATTRIBUTES} attributes (got {})",
                entries.len()
            ),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (k, v) in entries {
        let (Some(name), Some(value)) = (ctx.string(k, path), ctx.scalar(v, &path.key("value")))
        else {
            ok = false;
            continue;
        };
        let at = path.key(&name);
        if !(1..=MAX_ATTRIBUTE_NAME).contains(&name.len()) || name.trim().is_empty() {
            ctx.error(
                k.mark,
                &at,
                format!(
                    "an attribute name must be 1-{MAX_ATTRIBUTE_NAME} bytes long, not only spaces"
                ),
            );
            ok = false;
        } else if value.len() > MAX_ATTRIBUTE_VALUE {
            ctx.error(
                v.mark,
                &at,
                format!("an attribute value must be at most {MAX_ATTRIBUTE_VALUE} bytes long"),
            );
            ok = false;
        } else {
            out.push((name, value));
        }
    }
    ok.then_some(out)
}

/// `s3_backup`, decoded.
struct Backup {
    mode: BackupMode,
    target: Target,
    prefixes: super::destination::Prefixes,
    compression: crate::encode::Compression,
}

/// `s3_backup: {mode, bucket | directory, endpoint_url, prefix, error_output_prefix,
/// compression}`.
fn decode_backup(ctx: &mut Ctx, node: &Node, path: Path) -> Option<Backup> {
    let mut m = MapReader::new(ctx, node, path)?;
    let errors_before = ctx.errors.len();
    let mode = match m.get("mode") {
        Some(n) => ctx
            .one_of(n, &m.path.key("mode"), &["FailedDataOnly", "AllData"])
            .map(|i| match i {
                0 => BackupMode::FailedDataOnly,
                _ => BackupMode::AllData,
            }),
        None => Some(BackupMode::FailedDataOnly),
    };
    let target = match (m.has("bucket").is_some(), m.has("directory")) {
        (true, Some(d)) => {
            ctx.error(
                d.mark,
                &m.path,
                "exactly one of bucket, directory (got both)",
            );
            None
        }
        (true, None) => {
            let bucket = decode_bucket(ctx, &mut m);
            let endpoint_url = decode_endpoint_url(ctx, &mut m);
            bucket.map(|bucket| Target::S3 {
                bucket,
                endpoint_url,
                kms_key_arn: None,
            })
        }
        (false, Some(n)) => {
            let dir = ctx.string(n, &m.path.key("directory"))?;
            if dir.is_empty() {
                ctx.error(n.mark, &m.path.key("directory"), "must not be empty");
                return None;
            }
            Some(Target::Directory(PathBuf::from(dir)))
        }
        (false, None) => {
            ctx.error(
                m.mark(),
                &m.path,
                "exactly one of bucket, directory is required",
            );
            None
        }
    };
    let prefixes = decode_prefixes(ctx, &mut m, DpCheck::Disabled);
    let compression = decode_compression(ctx, &mut m, false);
    m.finish(ctx);
    if ctx.errors.len() > errors_before {
        return None;
    }
    Some(Backup {
        mode: mode?,
        target: target?,
        prefixes,
        compression: compression?,
    })
}
