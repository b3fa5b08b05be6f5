//! `destinations[]` with `http_endpoint`: AWS's HttpEndpointDestinationConfiguration. The
//! endpoint and its request settings, the buffering of its requests, and `s3_backup`, which
//! holds what an S3 destination's keys would: the bucket or directory, prefixes and
//! compression of the objects the backup writes. AWS's limits are `spec::check`'s.

use std::path::PathBuf;

use super::decode::{Ctx, MapReader, Path};
use super::destination::{
    decode_buffering, decode_compression, decode_delivery, int_or, optional_scalar, optional_string,
};
use super::yaml::Node;
use crate::spec::{BackupMode, Buffering, DestinationSpec, HttpEndpoint, Target};

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

pub(crate) fn decode(ctx: &mut Ctx, node: &Node, path: Path) -> Option<DestinationSpec> {
    let mut m = MapReader::new(ctx, node, path)?;
    let endpoint = m
        .require(ctx, "http_endpoint")
        .and_then(|n| decode_endpoint(ctx, n, m.path.key("http_endpoint")));
    let buffering = match m.get("buffering") {
        // AWS's HttpEndpointBufferingHints: defaults 5 MiB, 300 s.
        Some(n) => decode_buffering(ctx, n, m.path.key("buffering"), Buffering::DEFAULT),
        None => Buffering::DEFAULT,
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
    let delivery = decode_delivery(ctx, &mut m);
    let path = m.path.clone();
    m.finish(ctx);
    // What cannot be read stands in, marked broken, so the rest is still judged.
    let mut endpoint = endpoint.unwrap_or_else(|| {
        ctx.broken(&path.key("http_endpoint"));
        HttpEndpoint {
            url: String::new(),
            name: None,
            access_key: None,
            gzip: false,
            common_attributes: Vec::new(),
            retry_duration_seconds: HttpEndpoint::DEFAULT_RETRY_SECONDS,
            request_timeout_seconds: HttpEndpoint::DEFAULT_TIMEOUT_SECONDS,
            backup_mode: BackupMode::FailedDataOnly,
            backup: Target::Directory(PathBuf::new()),
        }
    });
    let backup = backup.unwrap_or_else(|| {
        ctx.broken(&path.key("s3_backup"));
        Backup {
            mode: BackupMode::FailedDataOnly,
            target: Target::Directory(PathBuf::new()),
            prefix: None,
            error_prefix: None,
            compression: crate::encode::Compression::Uncompressed,
        }
    });
    endpoint.backup_mode = backup.mode;
    endpoint.backup = backup.target;
    Some(DestinationSpec {
        target: Target::Http(Box::new(endpoint)),
        prefix: backup.prefix,
        error_output_prefix: backup.error_prefix,
        buffering,
        compression: backup.compression,
        file_extension: None,
        time_zone: "UTC".to_string(),
        source_record_backup: None,
        dynamic_partitioning: None,
        format_conversion: None,
        delivery,
    })
}

/// `http_endpoint: {url, name, access_key, content_encoding, common_attributes,
/// retry_duration_seconds, request_timeout_seconds}`; the backup is filled in by the caller.
fn decode_endpoint(ctx: &mut Ctx, node: &Node, path: Path) -> Option<HttpEndpoint> {
    let mut m = MapReader::new(ctx, node, path)?;
    let url = m
        .require(ctx, "url")
        .and_then(|n| ctx.string(n, &m.path.key("url")));
    let name = optional_string(ctx, &mut m, "name");
    let access_key = optional_string(ctx, &mut m, "access_key");
    let gzip = match m.get("content_encoding") {
        Some(n) => ctx
            .one_of(n, &m.path.key("content_encoding"), &["NONE", "GZIP"])
            .is_some_and(|i| i == 1),
        None => false,
    };
    let common_attributes = match m.get("common_attributes") {
        Some(n) => attributes(ctx, n, &m.path.key("common_attributes")),
        None => Vec::new(),
    };
    let retry_duration_seconds = int_or(
        ctx,
        &mut m,
        "retry_duration_seconds",
        HttpEndpoint::DEFAULT_RETRY_SECONDS,
    );
    let request_timeout_seconds = int_or(
        ctx,
        &mut m,
        "request_timeout_seconds",
        HttpEndpoint::DEFAULT_TIMEOUT_SECONDS,
    );
    m.finish(ctx);
    Some(HttpEndpoint {
        url: url?,
        name,
        access_key,
        gzip,
        common_attributes,
        retry_duration_seconds,
        request_timeout_seconds,
        backup_mode: BackupMode::FailedDataOnly,
        backup: Target::Directory(PathBuf::new()),
    })
}

/// `common_attributes: {name: value, ...}`, in the order written.
fn attributes(ctx: &mut Ctx, node: &Node, path: &Path) -> Vec<(String, String)> {
    let Some(entries) = ctx.entries(node, path, "of attribute names to values") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        let (Some(name), Some(value)) = (ctx.string(k, path), ctx.scalar(v, &path.key("value")))
        else {
            continue;
        };
        ctx.mark(&path.key(&name), k.mark);
        out.push((name, value));
    }
    out
}

/// `s3_backup`, decoded.
pub(super) struct Backup {
    pub(super) mode: BackupMode,
    pub(super) target: Target,
    pub(super) prefix: Option<String>,
    pub(super) error_prefix: Option<String>,
    pub(super) compression: crate::encode::Compression,
}

/// `s3_backup: {mode, bucket | directory, endpoint_url, prefix, error_output_prefix,
/// compression}`.
pub(super) fn decode_backup(ctx: &mut Ctx, node: &Node, path: Path) -> Option<Backup> {
    let mut m = MapReader::new(ctx, node, path)?;
    let mode = match m.get("mode") {
        Some(n) => match ctx.one_of(n, &m.path.key("mode"), &["FailedDataOnly", "AllData"]) {
            Some(1) => BackupMode::AllData,
            _ => BackupMode::FailedDataOnly,
        },
        None => BackupMode::FailedDataOnly,
    };
    let target = match (m.has("bucket"), m.has("directory")) {
        (Some(_), Some(d)) => {
            ctx.note(
                d.mark,
                &m.path,
                "exactly one of bucket, directory (got both)",
            );
            None
        }
        (Some(b), None) => {
            let bucket = ctx.string(b, &m.path.key("bucket"));
            let endpoint_url = optional_string(ctx, &mut m, "endpoint_url");
            bucket.map(|bucket| Target::S3 {
                bucket,
                endpoint_url,
                kms_key_arn: None,
            })
        }
        (None, Some(n)) => ctx
            .string(n, &m.path.key("directory"))
            .map(|d| Target::Directory(PathBuf::from(d))),
        (None, None) => {
            ctx.note(
                m.mark(),
                &m.path,
                "exactly one of bucket, directory is required",
            );
            None
        }
    };
    let target = target.unwrap_or_else(|| {
        for key in ["bucket", "directory"] {
            ctx.broken(&m.path.key(key));
        }
        Target::Directory(PathBuf::new())
    });
    let prefix = optional_scalar(ctx, &mut m, "prefix");
    let error_prefix = optional_scalar(ctx, &mut m, "error_output_prefix");
    let compression = decode_compression(ctx, &mut m);
    m.finish(ctx);
    Some(Backup {
        mode,
        target,
        prefix,
        error_prefix,
        compression,
    })
}
