//! Configuration: YAML text -> marked tree (`yaml`) -> checked model (`model`), reporting every
//! problem at once as `FILE:LINE:COLUMN: key.path: message` (`decode`, `error`).

mod conversion;
mod decode;
mod destination;
pub(crate) mod error;
mod http_endpoint;
mod kinesis;
pub(crate) mod model;
mod network;
mod orc_output;
pub(crate) mod transform;
mod yaml;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};

use decode::{Ctx, MapReader, Path};
pub use error::{ConfigError, LoadError};
pub use model::Config;
pub(crate) use model::*;

pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:4573";
pub(crate) const DEFAULT_STATE_DIR: &str = "./var/firehosed";
pub(crate) const DEFAULT_ACCOUNT_ID: &str = "000000000000";
pub const DEFAULT_DRAIN_TIMEOUT_SECONDS: u64 = 60;

/// Reads and checks a configuration file, with `${VAR}` taken from the process environment.
pub fn load(path: &FsPath) -> Result<Config, LoadError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        file: file.clone(),
        source,
    })?;
    parse(&file, &text, &|name| std::env::var(name).ok())
}

/// A YAML (or JSON) syntax error as the one error of a load.
fn syntax_error(file: &str, e: yaml::SyntaxError) -> LoadError {
    LoadError::Invalid(vec![ConfigError {
        file: file.to_string(),
        line: e.mark.line,
        col: e.mark.col,
        path: "(yaml)".into(),
        message: e.message,
    }])
}

/// Checks one delivery stream's configuration, as YAML or JSON text (a stream created through
/// the API); `label` is the name used in error messages.
pub(crate) fn parse_stream(
    label: &str,
    text: &str,
    relax: bool,
) -> Result<StreamConfig, LoadError> {
    let root = yaml::parse(text).map_err(|e| syntax_error(label, e))?;
    let no_env = |_: &str| None;
    let mut ctx = Ctx::new(label, &no_env);
    let (_, stream) = decode_stream(&mut ctx, &root, Path::root(), relax);
    match stream {
        Some(s) if ctx.errors.is_empty() => Ok(s),
        _ => Err(LoadError::Invalid(ctx.errors)),
    }
}

/// Checks configuration text; `file` is the name used in error messages.
pub(crate) fn parse(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, LoadError> {
    let root = yaml::parse(text).map_err(|e| syntax_error(file, e))?;
    let mut ctx = Ctx::new(file, env);
    let config = decode_root(&mut ctx, &root);
    match config {
        Some(c) if ctx.errors.is_empty() => Ok(c),
        _ => {
            let mut errors = ctx.errors;
            errors.sort_by_key(|e| (e.line, e.col));
            Err(LoadError::Invalid(errors))
        }
    }
}

fn decode_root(ctx: &mut Ctx, root: &yaml::Node) -> Option<Config> {
    if root.is_null() || matches!(&root.kind, yaml::Kind::Map(entries) if entries.is_empty()) {
        // An empty (or truncated) file is never what was meant: a reload of one would remove
        // every stream.
        ctx.error(
            root.mark,
            &Path::root().key("delivery_streams"),
            "the configuration is empty: it needs at least `delivery_streams:` (`delivery_streams: []` when every stream is created through the API)",
        );
        return None;
    }
    let mut top = MapReader::new(ctx, root, Path::root())?;
    let net = decode_net(ctx, &mut top);
    let state_dir = match top.get("state_dir") {
        Some(node) => ctx
            .string(node, &top.path.key("state_dir"))
            .map(PathBuf::from),
        None => Some(PathBuf::from(DEFAULT_STATE_DIR)),
    };
    let aws = match top.get("aws") {
        Some(node) => decode_aws(ctx, node, top.path.key("aws")),
        None => Some(AwsSettings {
            account_id: DEFAULT_ACCOUNT_ID.into(),
            ..AwsSettings::default()
        }),
    };
    let spool = match top.get("spool") {
        Some(node) => decode_spool(ctx, node, top.path.key("spool")),
        None => Some(SpoolConfig::DEFAULT),
    };
    let drain_timeout_seconds = match top.get("drain_timeout_seconds") {
        Some(node) => ctx.int_in(node, &top.path.key("drain_timeout_seconds"), 0..=3600),
        None => Some(DEFAULT_DRAIN_TIMEOUT_SECONDS),
    };
    let glue_catalog_dir = match top.get("glue_catalog_dir") {
        Some(node) => ctx
            .string(node, &top.path.key("glue_catalog_dir"))
            .map(|d| Some(PathBuf::from(d))),
        None => Some(None),
    };
    let lambda_functions = match top.get("lambda_functions") {
        Some(node) => decode_functions(ctx, node, top.path.key("lambda_functions")),
        None => Some(BTreeMap::new()),
    };
    let relax = match top.get("relax_aws_limits") {
        Some(node) => ctx.bool(node, &top.path.key("relax_aws_limits")),
        None => Some(false),
    };
    // Required, so that a file cut short is an error rather than "no streams".
    let streams = top.require(ctx, "delivery_streams").map(|node| {
        decode_streams(
            ctx,
            node,
            top.path.key("delivery_streams"),
            relax.unwrap_or(false),
        )
    });
    top.finish(ctx);
    let net = net?;
    Some(Config {
        listen: net.listen,
        metrics_listen: net.metrics_listen,
        auth: net.auth,
        tls: net.tls,
        server: net.server,
        state_dir: state_dir?,
        aws: aws?,
        spool: spool?,
        drain_timeout_seconds: drain_timeout_seconds?,
        relax_aws_limits: relax?,
        glue_catalog_dir: glue_catalog_dir?,
        lambda_functions: lambda_functions?,
        streams: streams?,
    })
}

/// Who may reach the daemon and how.
struct Net {
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
    auth: AuthConfig,
    tls: Option<TlsConfig>,
    server: ServerLimits,
}

/// `listen`, `metrics_listen`, `auth`, `tls`, `server`; a listen address off loopback without
/// `auth` is an error here.
fn decode_net(ctx: &mut Ctx, top: &mut MapReader) -> Option<Net> {
    let listen = match top.get("listen") {
        Some(node) => decode_listen(ctx, node, top.path.key("listen")),
        None => DEFAULT_LISTEN.parse().ok(),
    };
    let metrics_listen = match top.get("metrics_listen") {
        Some(node) => decode_listen(ctx, node, top.path.key("metrics_listen")).map(Some),
        None => Some(None),
    };
    let auth = match top.get("auth") {
        Some(node) => network::decode_auth(ctx, node, top.path.key("auth")),
        None => Some(AuthConfig::Unset),
    };
    let tls = match top.get("tls") {
        Some(node) => network::decode_tls(ctx, node, top.path.key("tls")).map(Some),
        None => Some(None),
    };
    let server = match top.get("server") {
        Some(node) => network::decode_server(ctx, node, top.path.key("server")),
        None => Some(ServerLimits::DEFAULT),
    };
    let (listen, auth) = (listen?, auth?);
    let mark = top.get("listen").map_or(top.mark(), |n| n.mark);
    network::check_exposure(ctx, listen, &auth, mark);
    Some(Net {
        listen,
        metrics_listen: metrics_listen?,
        auth,
        tls: tls?,
        server: server?,
    })
}

/// `listen`: IP:PORT.
fn decode_listen(ctx: &mut Ctx, node: &yaml::Node, path: Path) -> Option<SocketAddr> {
    let text = ctx.string(node, &path)?;
    match text.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            ctx.error(
                node.mark,
                &path,
                format!("must be IP:PORT such as 127.0.0.1:4573 (got {text:?})"),
            );
            None
        }
    }
}

/// `delivery_streams`: each stream, names unique.
fn decode_streams(ctx: &mut Ctx, node: &yaml::Node, path: Path, relax: bool) -> Vec<StreamConfig> {
    let mut streams = Vec::new();
    let Some(items) = ctx.list(node, &path) else {
        return streams;
    };
    let mut names: Vec<(String, usize)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let (name, stream) = decode_stream(ctx, item, path.index(i), relax);
        if let Some((name, mark)) = name {
            if let Some((_, line)) = names.iter().find(|(n, _)| *n == name) {
                ctx.error(
                    mark,
                    &path.index(i).key("name"),
                    format!(
                        "duplicate delivery stream name {name:?} (first defined on line {line})"
                    ),
                );
            }
            names.push((name, mark.line));
        }
        if let Some(s) = &stream {
            check_lease_table_unshared(ctx, &streams, s, item, &path.index(i));
        }
        streams.extend(stream);
    }
    streams
}

/// A lease table's items are keyed by shard id (the KCL's single-stream shape): two delivery
/// streams sharing one table would take each other's shards.
fn check_lease_table_unshared(
    ctx: &mut Ctx,
    earlier: &[StreamConfig],
    s: &StreamConfig,
    item: &yaml::Node,
    path: &Path,
) {
    let table = |s: &StreamConfig| match &s.source {
        SourceConfig::Kinesis(k) => k.leases.as_ref().map(|l| l.table.clone()),
        SourceConfig::DirectPut => None,
    };
    let Some(t) = table(s) else { return };
    if let Some(other) = earlier
        .iter()
        .find(|e| table(e).as_deref() == Some(t.as_str()))
    {
        ctx.error(
            item.mark,
            &path.key("source").key("kinesis_stream").key("leases").key("table"),
            format!(
                "lease table {t:?} is already used by delivery stream {:?}: one table per delivery stream",
                other.name
            ),
        );
    }
}

/// `lambda_functions`: function name -> its local runtime.
fn decode_functions(
    ctx: &mut Ctx,
    node: &yaml::Node,
    path: Path,
) -> Option<BTreeMap<String, transform::LambdaFunction>> {
    let entries = ctx.entries(node, &path, "of function names")?;
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (k, v) in entries {
        let yaml::Kind::Scalar { value: name, .. } = &k.kind else {
            ctx.error(k.mark, &path, "function names must be plain strings");
            ok = false;
            continue;
        };
        let fpath = path.key(name);
        if !transform::valid_function_name(name) {
            ctx.error(
                k.mark,
                &fpath,
                "is not a Lambda function name ([a-zA-Z0-9-_]{1,64})",
            );
            ok = false;
            continue;
        }
        match transform::decode_function(ctx, v, fpath) {
            Some(f) => {
                out.insert(name.clone(), f);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn decode_spool(ctx: &mut Ctx, node: &yaml::Node, path: Path) -> Option<SpoolConfig> {
    let mut m = MapReader::new(ctx, node, path)?;
    let d = SpoolConfig::DEFAULT;
    let max = match m.get("max_size_mib") {
        Some(n) => ctx.int_in(n, &m.path.key("max_size_mib"), 1..=16 * 1024 * 1024),
        None => Some(d.max_size_mib),
    };
    let segment = match m.get("segment_size_mib") {
        Some(n) => ctx.int_in(n, &m.path.key("segment_size_mib"), 1..=1024),
        None => Some(d.segment_size_mib),
    };
    let fsync = match m.get("fsync") {
        Some(n) => ctx.bool(n, &m.path.key("fsync")),
        None => Some(d.fsync),
    };
    let reserve = match m.get("disk_reserve_mib") {
        Some(n) => ctx.int_in(n, &m.path.key("disk_reserve_mib"), 0..=1024 * 1024),
        None => Some(d.disk_reserve_mib),
    };
    m.finish(ctx);
    Some(SpoolConfig {
        max_size_mib: max?,
        segment_size_mib: segment?,
        fsync: fsync?,
        disk_reserve_mib: reserve?,
    })
}

fn decode_aws(ctx: &mut Ctx, node: &yaml::Node, path: Path) -> Option<AwsSettings> {
    let mut m = MapReader::new(ctx, node, path)?;
    let mut ok = true;
    let mut opt_string = |ctx: &mut Ctx, m: &mut MapReader, key: &'static str| match m.get(key) {
        Some(n) => {
            let v = ctx.string(n, &m.path.key(key));
            ok &= v.is_some();
            v
        }
        None => None,
    };
    let region = opt_string(ctx, &mut m, "region");
    let endpoint_url = opt_string(ctx, &mut m, "endpoint_url");
    let account_id = opt_string(ctx, &mut m, "account_id");
    let force_path_style = m
        .get("force_path_style")
        .and_then(|n| ctx.bool(n, &m.path.key("force_path_style")));
    if let Some(url) = &endpoint_url {
        destination::check_url(ctx, m.mark(), &m.path.key("endpoint_url"), url);
    }
    if let Some(id) = &account_id
        && (id.len() != 12 || !id.chars().all(|c| c.is_ascii_digit()))
    {
        ctx.error(m.mark(), &m.path.key("account_id"), "must be 12 digits");
    }
    m.finish(ctx);
    ok.then(|| AwsSettings {
        region,
        endpoint_url,
        force_path_style,
        account_id: account_id.unwrap_or_else(|| DEFAULT_ACCOUNT_ID.into()),
    })
}

/// `[a-zA-Z0-9_.-]{1,64}`, AWS's DeliveryStreamName.
/// `[a-zA-Z0-9_.-]{1,64}`, except `.` and `..`: a stream's name is a folder under state_dir.
pub(crate) fn valid_stream_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The stream's name (when valid, for the duplicate check) and the stream (when all is valid).
fn decode_stream(
    ctx: &mut Ctx,
    node: &yaml::Node,
    path: Path,
    relax: bool,
) -> (Option<(String, yaml::Mark)>, Option<StreamConfig>) {
    let Some(mut m) = MapReader::new(ctx, node, path) else {
        return (None, None);
    };
    let name = m.require(ctx, "name").and_then(|n| {
        let path = m.path.key("name");
        let name = ctx.string(n, &path)?;
        if !valid_stream_name(&name) {
            ctx.error(
                n.mark,
                &path,
                format!("must match [a-zA-Z0-9_.-]{{1,64}} (got {name:?})"),
            );
            return None;
        }
        Some((name, n.mark))
    });
    let source = m
        .require(ctx, "source")
        .and_then(|n| decode_source(ctx, n, m.path.key("source")));
    let processing = match m.get("processing") {
        Some(n) => decode_processing(ctx, n, m.path.key("processing")),
        None => Some(ProcessingConfig::default()),
    };
    let mut destinations = Vec::new();
    let mut dest_ok = true;
    if let Some(n) = m.require(ctx, "destinations") {
        let path = m.path.key("destinations");
        if let Some(items) = ctx.list(n, &path) {
            if items.is_empty() {
                ctx.error(n.mark, &path, "needs at least one destination");
            }
            for (i, item) in items.iter().enumerate() {
                // A processing block with errors of its own: its keys are judged present, so
                // a destination does not add "needs processing..." to the errors shown there.
                let scope = destination::Scope {
                    relax,
                    has_query: processing
                        .as_ref()
                        .is_none_or(|p| p.metadata_query.is_some()),
                    has_transform: processing.as_ref().is_none_or(|p| p.transform.is_some()),
                };
                let decoded = match item.has_key("http_endpoint") {
                    true => http_endpoint::decode(ctx, item, path.index(i)),
                    false => destination::decode(ctx, item, path.index(i), scope),
                };
                match decoded {
                    Some(d) => destinations.push(d),
                    None => dest_ok = false,
                }
            }
        }
    }
    m.finish(ctx);
    let stream = match (name.clone(), source, processing) {
        (Some((name, _)), Some(source), Some(processing))
            if dest_ok && !destinations.is_empty() =>
        {
            Some(StreamConfig {
                name,
                source,
                processing,
                destinations,
            })
        }
        _ => None,
    };
    (name, stream)
}

fn decode_source(ctx: &mut Ctx, node: &yaml::Node, path: Path) -> Option<SourceConfig> {
    let mut m = MapReader::new(ctx, node, path)?;
    let direct = m.has("direct_put");
    let kinesis = m.has("kinesis_stream");
    let mut result = None;
    match (direct, kinesis) {
        (Some(d), None) => {
            if let Some(dm) = MapReader::new(ctx, d, m.path.key("direct_put")) {
                dm.finish(ctx);
            }
            result = Some(SourceConfig::DirectPut);
        }
        (None, Some(k)) => {
            result =
                kinesis::decode(ctx, k, m.path.key("kinesis_stream")).map(SourceConfig::Kinesis)
        }
        (Some(_), Some(_)) => ctx.error(
            m.mark(),
            &m.path,
            "exactly one of direct_put, kinesis_stream (got both)",
        ),
        (None, None) => ctx.error(
            m.mark(),
            &m.path,
            "exactly one of direct_put, kinesis_stream is required",
        ),
    }
    m.finish(ctx);
    result
}

fn decode_processing(ctx: &mut Ctx, node: &yaml::Node, path: Path) -> Option<ProcessingConfig> {
    let mut m = MapReader::new(ctx, node, path)?;
    let append = match m.get("append_delimiter_to_record") {
        Some(n) => ctx.bool(n, &m.path.key("append_delimiter_to_record")),
        None => Some(false),
    };
    let deaggregation = match m.get("record_deaggregation") {
        Some(n) => decode_deaggregation(ctx, n, m.path.key("record_deaggregation")).map(Some),
        None => Some(None),
    };
    let metadata_query = match m.get("metadata_extraction") {
        Some(n) => decode_metadata(ctx, n, m.path.key("metadata_extraction")).map(Some),
        None => Some(None),
    };
    let transform = match m.get("transform") {
        Some(n) => transform::decode(ctx, n, m.path.key("transform")).map(Some),
        None => Some(None),
    };
    let decompression = match m.get("decompression") {
        Some(n) => ctx
            .one_of(n, &m.path.key("decompression"), &["GZIP"])
            .map(|_| true),
        None => Some(false),
    };
    let extraction = match m.get("cloudwatch_logs") {
        Some(n) => {
            let path = m.path.key("cloudwatch_logs");
            decode_cloudwatch_logs(ctx, n, path.clone()).and_then(|on| {
                // AWS's CloudWatchLogProcessing works on decompressed documents only, and an
                // extracted log event is already one record: splitting it again would number
                // its pieces twice.
                let why = if decompression == Some(false) {
                    "needs processing.decompression: GZIP (CloudWatch Logs sends GZIP documents)"
                } else if matches!(deaggregation, Some(Some(_))) {
                    "cannot be combined with record_deaggregation: each log event is already one record"
                } else {
                    return Some(on);
                };
                ctx.error(n.mark, &path, why);
                None
            })
        }
        None => Some(false),
    };
    m.finish(ctx);
    Some(ProcessingConfig {
        append_delimiter_to_record: append?,
        transform: transform?,
        metadata_query: metadata_query?,
        deaggregation: deaggregation?,
        decompression: decompression?,
        cloudwatch_logs_extraction: extraction?,
    })
}

/// `cloudwatch_logs: {data_message_extraction: true}`; AWS requires the value true (leave the
/// block out to deliver the decompressed documents whole).
fn decode_cloudwatch_logs(ctx: &mut Ctx, node: &yaml::Node, path: Path) -> Option<bool> {
    let mut m = MapReader::new(ctx, node, path)?;
    let on = m.require(ctx, "data_message_extraction").and_then(|n| {
        let path = m.path.key("data_message_extraction");
        match ctx.bool(n, &path)? {
            true => Some(true),
            false => {
                ctx.error(
                    n.mark,
                    &path,
                    "must be true (leave cloudwatch_logs out to deliver the decompressed documents whole)",
                );
                None
            }
        }
    });
    m.finish(ctx);
    on
}

/// `record_deaggregation: json` or `record_deaggregation: {delimited: "####"}`.
fn decode_deaggregation(ctx: &mut Ctx, node: &yaml::Node, path: Path) -> Option<Deaggregation> {
    if matches!(node.kind, yaml::Kind::Scalar { .. }) {
        ctx.one_of(node, &path, &["json"])?;
        return Some(Deaggregation::Json);
    }
    let mut m = MapReader::new(ctx, node, path)?;
    let delimiter = m.require(ctx, "delimited").and_then(|n| {
        let path = m.path.key("delimited");
        let d = ctx.string(n, &path)?;
        if d.is_empty() || d.len() > 64 {
            ctx.error(n.mark, &path, "must be 1 to 64 bytes");
            return None;
        }
        Some(d)
    });
    m.finish(ctx);
    delimiter.map(Deaggregation::Delimited)
}

/// `metadata_extraction: {query}`: the jq query must compile.
fn decode_metadata(ctx: &mut Ctx, node: &yaml::Node, path: Path) -> Option<String> {
    let mut m = MapReader::new(ctx, node, path)?;
    let query = m.require(ctx, "query").and_then(|n| {
        let path = m.path.key("query");
        let q = ctx.string(n, &path)?;
        match crate::jq::check(&q) {
            Ok(()) => Some(q),
            Err(e) => {
                ctx.error(n.mark, &path, e);
                None
            }
        }
    });
    m.finish(ctx);
    query
}

#[cfg(test)]
mod tests;
