//! A destination's rules: its target, buffering, names (extension, time zone), the prefix rules
//! of docs/aws-behaviour.md section 2, AWS's buffer minimums, and an HTTP endpoint's limits
//! (AWS's HttpEndpointConfiguration, RequestConfiguration, RetryOptions).

use crate::keys::template::Template;
use crate::spec::path::Path;
use crate::spec::{Buffering, Delivery, DestinationSpec, HttpEndpoint, ProcessingSpec, Target};

use super::{Checker, Scope};

/// AWS's limits on the endpoint configuration.
const MAX_URL: usize = 1000;
const MAX_NAME: usize = 256;
const MAX_ACCESS_KEY: usize = 4096;
const MAX_ATTRIBUTE_NAME: usize = 256;
const MAX_ATTRIBUTE_VALUE: usize = 1024;
pub(crate) const MAX_ATTRIBUTES: usize = 50;

/// Destination `d` at `path` of a stream processing with `p`.
pub(super) fn check(
    c: &mut Checker,
    path: &Path,
    d: &DestinationSpec,
    p: &ProcessingSpec,
    scope: Scope,
) {
    if let Target::Http(h) = &d.target {
        http(c, path, d, h);
        return;
    }
    if let Target::Iceberg(i) = &d.target {
        super::iceberg::check(c, path, d, i);
        return;
    }
    target(c, path, &d.target, "s3", "directory");
    buffering(c, &path.key("buffering"), d.buffering, 128);
    let conversion = path.key("data_format_conversion");
    if let Some(conv) = &d.format_conversion {
        if d.compression != crate::encode::Compression::Uncompressed {
            c.between(
                path.key("compression"),
                std::slice::from_ref(&conversion),
                "must be UNCOMPRESSED when data_format_conversion is enabled (Parquet compresses inside the file: data_format_conversion.output.parquet.compression)",
            );
        }
        super::conversion::check(c, &conversion, conv);
    }
    if let Some(ext) = &d.file_extension {
        extension(c, path.key("file_extension"), ext);
    }
    if d.time_zone.parse::<chrono_tz::Tz>().is_err() {
        c.at(
            path.key("custom_time_zone"),
            format!(
                "must be an IANA time zone such as UTC or America/New_York (got {:?})",
                d.time_zone
            ),
        );
    }
    if let Some(prefix) = &d.source_record_backup {
        backup_prefix(c, path.key("source_record_backup").key("prefix"), prefix);
    }
    let dp_path = path.key("dynamic_partitioning");
    if let Some(dp) = &d.dynamic_partitioning {
        c.range(
            dp_path.key("retry_duration_seconds"),
            dp.retry_duration_seconds,
            0..=7200,
        );
        c.range(
            dp_path.key("max_active_partitions"),
            dp.max_active_partitions as u64,
            1..=10_000,
        );
    }
    let processing = Path::root().key("processing");
    let partitioning = Partitioning {
        enabled: d.dynamic_partitioning.is_some(),
        at: vec![
            dp_path.key("enabled"),
            processing.key("metadata_extraction"),
            processing.key("transform"),
        ],
        query: p.metadata_query.is_some(),
        transform: p.transform.is_some(),
    };
    prefixes(c, path, d, Some(&partitioning));
    if !scope.relax {
        minimums(c, path, d);
    }
}

/// What the prefix rules know of a destination's dynamic partitioning and its stream.
struct Partitioning {
    enabled: bool,
    /// `dynamic_partitioning.enabled` and the stream's query and transform, which the rules
    /// depend on.
    at: Vec<Path>,
    /// The stream has a metadata query / a transform.
    query: bool,
    transform: bool,
}

/// `s3` (a bucket, its endpoint, its KMS key) or `directory`; `s3_key` and `directory_key`
/// name them (an HTTP endpoint's backup writes `bucket` and `directory` at its own level).
pub(super) fn target(c: &mut Checker, path: &Path, t: &Target, s3_key: &str, directory_key: &str) {
    match t {
        Target::S3 {
            bucket,
            endpoint_url,
            kms_key_arn,
        } => {
            let s3 = if s3_key.is_empty() {
                path.clone()
            } else {
                path.key(s3_key)
            };
            if !valid_bucket(bucket) {
                c.at(
                    s3.key("bucket"),
                    format!("must be an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens (got {bucket:?})"),
                );
            }
            if let Some(url) = endpoint_url {
                check_url(c, s3.key("endpoint_url"), url);
            }
            if let Some(arn) = kms_key_arn
                && !valid_kms_key_arn(arn)
            {
                c.at(
                    s3.key("encryption").key("kms_key_arn"),
                    format!("must be a KMS key or alias ARN (arn:aws:kms:REGION:ACCOUNT:key/ID or alias/NAME; got {arn:?})"),
                );
            }
        }
        Target::Directory(dir) => {
            if dir.as_os_str().is_empty() {
                c.at(path.key(directory_key), "must not be empty");
            }
        }
        Target::Http(_) | Target::Iceberg(_) => c.at(
            path.clone(),
            "a backup is a bucket or a directory, not an HTTP endpoint or an Iceberg table",
        ),
    }
}

/// `buffering: {size_mib: 1..=max_mib, interval_seconds: 0..=900}`.
pub(super) fn buffering(c: &mut Checker, path: &Path, b: Buffering, max_mib: u64) {
    c.range(path.key("size_mib"), b.size_mib, 1..=max_mib);
    c.range(path.key("interval_seconds"), b.interval_seconds, 0..=900);
}

/// `file_extension`: `.` then AWS's allowed characters, or empty.
fn extension(c: &mut Checker, path: Path, ext: &str) {
    let valid = ext.is_empty()
        || (ext.starts_with('.')
            && ext.len() <= 128
            && ext[1..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "!-_.*'()".contains(c)));
    if !valid {
        c.at(
            path,
            format!(
                "must start with `.` followed by lowercase letters, digits or !-_.*'() (at most 128 characters; got {ext:?})"
            ),
        );
    }
}

/// `source_record_backup.prefix`: a plain prefix or one with timestamp expressions.
fn backup_prefix(c: &mut Checker, path: Path, raw: &str) {
    match Template::parse(raw) {
        Ok(t) if t.has_error_output_type() || t.has_partition_keys() => c.at(
            path,
            "only !{timestamp:...} and !{firehose:random-string} are allowed in the backup prefix",
        ),
        Ok(_) => {}
        Err(e) => c.at(path, e.to_string()),
    }
}

/// The prefix rules of docs/aws-behaviour.md section 2, for the prefixes of `d` (at `path`,
/// or under `s3_backup` for an HTTP endpoint); `partitioning` None: partitioning is not for
/// this destination (an HTTP endpoint's backup).
fn prefixes(
    c: &mut Checker,
    path: &Path,
    d: &DestinationSpec,
    partitioning: Option<&Partitioning>,
) {
    let base = match d.target {
        Target::Http(_) => path.key("s3_backup"),
        _ => path.clone(),
    };
    let (p_path, e_path) = (base.key("prefix"), base.key("error_output_prefix"));
    let main = d
        .prefix
        .as_deref()
        .and_then(|raw| main_prefix(c, &p_path, raw, partitioning));
    let error = d
        .error_output_prefix
        .as_deref()
        .and_then(|raw| error_prefix(c, &e_path, raw));
    if let Some(t) = &main
        && t.has_expressions()
    {
        match (&error, &d.error_output_prefix) {
            (Some(e), _) if !e.has_expressions() => c.between(
                e_path.clone(),
                std::slice::from_ref(&p_path),
                "an error_output_prefix must contain !{firehose:error-output-type} when prefix contains expressions",
            ),
            (_, None) => c.between(
                e_path.clone(),
                std::slice::from_ref(&p_path),
                "error_output_prefix is required when prefix contains expressions",
            ),
            _ => {}
        }
    }
    if let Some(dp) = partitioning.filter(|dp| dp.enabled)
        && d.prefix.is_none()
    {
        c.between(
            p_path,
            &dp.at,
            "with dynamic_partitioning enabled the prefix must use !{partitionKeyFromQuery:...} or !{partitionKeyFromLambda:...}",
        );
    }
}

/// `prefix`: its expressions, and the partition keys dynamic partitioning needs.
fn main_prefix(
    c: &mut Checker,
    path: &Path,
    raw: &str,
    partitioning: Option<&Partitioning>,
) -> Option<Template> {
    let t = match Template::parse(raw) {
        Ok(t) => t,
        Err(e) => {
            c.at(path.clone(), e.to_string());
            return None;
        }
    };
    if t.has_error_output_type() {
        c.at(
            path.clone(),
            "!{firehose:error-output-type} is only allowed in error_output_prefix",
        );
    }
    let (enabled, also) = match partitioning {
        Some(dp) => (dp.enabled, dp.at.clone()),
        None => (false, Vec::new()),
    };
    if !enabled && t.has_partition_keys() {
        c.between(
            path.clone(),
            &also,
            "partitionKeyFromQuery and partitionKeyFromLambda need dynamic_partitioning enabled",
        );
    } else if let Some(dp) = partitioning.filter(|dp| dp.enabled) {
        if !t.has_partition_keys() {
            c.between(
                path.clone(),
                &also,
                "with dynamic_partitioning enabled the prefix must use !{partitionKeyFromQuery:...} or !{partitionKeyFromLambda:...}",
            );
        }
        if t.has_query_keys() && !dp.query {
            c.between(
                path.clone(),
                &also,
                "!{partitionKeyFromQuery:...} needs processing.metadata_extraction.query",
            );
        }
        if t.has_lambda_keys() && !dp.transform {
            c.between(
                path.clone(),
                &also,
                "!{partitionKeyFromLambda:...} needs processing.transform",
            );
        }
    }
    Some(t)
}

/// `error_output_prefix`: no partition keys; with expressions, the error-output-type.
fn error_prefix(c: &mut Checker, path: &Path, raw: &str) -> Option<Template> {
    let t = match Template::parse(raw) {
        Ok(t) => t,
        Err(e) => {
            c.at(path.clone(), e.to_string());
            return None;
        }
    };
    if t.has_partition_keys() {
        c.at(
            path.clone(),
            "partition keys are not allowed in error_output_prefix",
        );
    }
    if t.has_expressions() && !t.has_error_output_type() {
        c.at(
            path.clone(),
            "an error_output_prefix with expressions must contain !{firehose:error-output-type}",
        );
    }
    Some(t)
}

/// AWS's buffer minimums with dynamic partitioning and with format conversion.
fn minimums(c: &mut Checker, path: &Path, d: &DestinationSpec) {
    let size = path.key("buffering").key("size_mib");
    let interval = path.key("buffering").key("interval_seconds");
    let dp = path.key("dynamic_partitioning");
    if d.dynamic_partitioning.is_some() {
        if d.buffering.size_mib < 64 {
            c.between(
                size.clone(),
                std::slice::from_ref(&dp),
                "BufferingHints.SizeInMBs must be at least 64 when Dynamic Partitioning is enabled. (relax_aws_limits: true allows less)",
            );
        }
        if d.buffering.interval_seconds < 60 {
            c.between(
                interval,
                &[dp],
                "BufferingHints.IntervalInSeconds must be at least 60 when Dynamic Partitioning is enabled. (relax_aws_limits: true allows less)",
            );
        }
    }
    if d.format_conversion.is_some() && d.buffering.size_mib < 64 {
        c.between(
            size,
            &[path.key("data_format_conversion")],
            "BufferingHints.SizeInMBs must be at least 64 when data format conversion is enabled. (relax_aws_limits: true allows less)",
        );
    }
}

/// An HTTP endpoint destination: the endpoint, its buffering (AWS: 1-64 MiB, 0-900 s), its
/// backup (`s3_backup`: a bucket or directory with its prefixes and compression).
fn http(c: &mut Checker, path: &Path, d: &DestinationSpec, h: &HttpEndpoint) {
    endpoint(c, &path.key("http_endpoint"), h);
    buffering(c, &path.key("buffering"), d.buffering, 64);
    target(c, &path.key("s3_backup"), &h.backup, "", "directory");
    prefixes(c, path, d, None);
    if d.delivery == Delivery::ExactlyOnce {
        c.at(
            path.key("delivery"),
            "exactly_once needs conditional writes, which an HTTP endpoint does not have: an endpoint deduplicates by X-Amz-Firehose-Request-Id",
        );
    }
}

/// `http_endpoint: {url, name, access_key, content_encoding, common_attributes,
/// retry_duration_seconds, request_timeout_seconds}`.
fn endpoint(c: &mut Checker, path: &Path, h: &HttpEndpoint) {
    let url = path.key("url");
    if h.url.len() > MAX_URL {
        c.at(url, format!("must be at most {MAX_URL} characters"));
    } else if check_url(c, url.clone(), &h.url) && h.url.parse::<http::Uri>().is_err() {
        c.at(url, format!("is not a valid URL (got {:?})", h.url));
    }
    if let Some(name) = &h.name
        && !(1..=MAX_NAME).contains(&name.len())
    {
        c.at(path.key("name"), format!("must be 1-{MAX_NAME} bytes long"));
    }
    if let Some(key) = &h.access_key {
        if key.len() > MAX_ACCESS_KEY {
            c.at(
                path.key("access_key"),
                format!("must be 0-{MAX_ACCESS_KEY} bytes long"),
            );
        } else if http::HeaderValue::from_str(key).is_err() {
            c.at(
                path.key("access_key"),
                "must be visible ASCII: it is sent as an HTTP header",
            );
        }
    }
    let attributes = path.key("common_attributes");
    if h.common_attributes.len() > MAX_ATTRIBUTES {
        c.at(
            attributes.clone(),
            format!(
                "at most {MAX_ATTRIBUTES} attributes (got {})",
                h.common_attributes.len()
            ),
        );
    }
    for (name, value) in &h.common_attributes {
        let at = attributes.key(name);
        if !(1..=MAX_ATTRIBUTE_NAME).contains(&name.len()) || name.trim().is_empty() {
            c.at(
                at,
                format!(
                    "an attribute name must be 1-{MAX_ATTRIBUTE_NAME} bytes long, not only spaces"
                ),
            );
        } else if value.len() > MAX_ATTRIBUTE_VALUE {
            c.at(
                at,
                format!("an attribute value must be at most {MAX_ATTRIBUTE_VALUE} bytes long"),
            );
        }
    }
    c.range(
        path.key("retry_duration_seconds"),
        h.retry_duration_seconds,
        0..=7200,
    );
    c.range(
        path.key("request_timeout_seconds"),
        h.request_timeout_seconds,
        1..=180,
    );
}

/// An S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens.
pub(crate) fn valid_bucket(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// An endpoint URL must be http(s)://host[:port][/path]; false (with the problem) when not.
pub(crate) fn check_url(c: &mut Checker, path: Path, url: &str) -> bool {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
    if !ok {
        c.at(
            path,
            format!("must be an http:// or https:// URL (got {url:?})"),
        );
    }
    ok
}

/// AWS's AWSKMSKeyARN pattern: `arn:.*:kms:[a-zA-Z0-9\-]+:\d{12}:(key|alias)/[a-zA-Z_0-9+=,.@\-_/]+`.
pub(crate) fn valid_kms_key_arn(arn: &str) -> bool {
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
