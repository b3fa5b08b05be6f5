//! Configuration: YAML text -> marked tree (`yaml`) -> checked model (`model`), reporting every
//! problem at once as `FILE:LINE:COLUMN: key.path: message` (`decode`, `error`).

mod conversion;
mod decode;
pub(crate) use conversion::read_glue_file;
#[cfg(test)]
pub(crate) use destination::stand_in_with as stand_in_destination;
mod destination;
pub(crate) mod error;
mod http_endpoint;
mod iceberg;
mod kinesis;
pub(crate) mod model;
mod network;
mod orc_output;
pub(crate) mod transform;
mod yaml;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};

use crate::spec::{Deaggregation, ProcessingSpec, SourceSpec, StreamSpec};
use decode::{Ctx, MapReader, Path};
pub use error::{ConfigError, LoadError};
pub(crate) use model::*;
pub use model::{Config, Overrides};

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

/// `load`, with the command line's settings over the file's.
pub fn load_with(path: &FsPath, overrides: &Overrides) -> Result<Config, LoadError> {
    let mut config = load(path)?;
    overrides.apply(&mut config);
    Ok(config)
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
#[cfg(test)]
pub(crate) fn parse_stream(label: &str, text: &str, relax: bool) -> Result<StreamSpec, LoadError> {
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
    let api = decode_api_locals(ctx, &mut top);
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
        glue_catalog_dir: api.glue_catalog_dir?,
        lambda_functions: api.lambda_functions?,
        api_iceberg_catalog: api.api_iceberg_catalog?,
        api_s3_directory: api.api_s3_directory?,
        streams: streams?,
    })
}

/// What names in API requests resolve to on this machine: Glue tables, Lambda functions, the
/// Iceberg catalog, the folder that stands for S3 buckets. Each None when its key is invalid.
struct ApiLocals {
    glue_catalog_dir: Option<Option<PathBuf>>,
    lambda_functions: Option<BTreeMap<String, transform::LambdaFunction>>,
    api_iceberg_catalog: Option<Option<crate::spec::CatalogSpec>>,
    api_s3_directory: Option<Option<PathBuf>>,
}

fn decode_api_locals(ctx: &mut Ctx, top: &mut MapReader<'_>) -> ApiLocals {
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
    let api_iceberg_catalog = match top.get("api_iceberg_catalog") {
        Some(node) => {
            iceberg::decode_catalog(ctx, node, top.path.key("api_iceberg_catalog")).map(Some)
        }
        None => Some(None),
    };
    let api_s3_directory = match top.get("api_s3_directory") {
        Some(node) => ctx
            .string(node, &top.path.key("api_s3_directory"))
            .map(|d| Some(PathBuf::from(d))),
        None => Some(None),
    };
    ApiLocals {
        glue_catalog_dir,
        lambda_functions,
        api_iceberg_catalog,
        api_s3_directory,
    }
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
fn decode_streams(ctx: &mut Ctx, node: &yaml::Node, path: Path, relax: bool) -> Vec<StreamSpec> {
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
    earlier: &[StreamSpec],
    s: &StreamSpec,
    item: &yaml::Node,
    path: &Path,
) {
    let table = |s: &StreamSpec| match &s.source {
        SourceSpec::Kinesis(k) => k.leases.as_ref().map(|l| l.table.clone()),
        SourceSpec::DirectPut => None,
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
        if !crate::spec::check::valid_function_name(name) {
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
        let mut c = crate::spec::check::Checker::default();
        crate::spec::check::check_url(&mut c, Path::root().key("endpoint_url"), url);
        let base = m.path.clone();
        ctx.report(&base, c.problems);
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

/// `[a-zA-Z0-9_.-]{1,64}`, except `.` and `..`: a stream's name is a folder under state_dir.
pub(crate) use crate::spec::check::valid_stream_name;

/// The stream's name (when readable, for the duplicate check) and the stream when it can be
/// read and its specification passes `spec::check` (whose problems are reported here).
fn decode_stream(
    ctx: &mut Ctx,
    node: &yaml::Node,
    path: Path,
    relax: bool,
) -> (Option<(String, yaml::Mark)>, Option<StreamSpec>) {
    let Some(mut m) = MapReader::new(ctx, node, path.clone()) else {
        return (None, None);
    };
    let name = m.require(ctx, "name").and_then(|n| {
        let name = ctx.string(n, &m.path.key("name"))?;
        Some((name, n.mark))
    });
    // What cannot be read stands in as its default, marked broken: every other problem of
    // the stream is still judged and reported in the same run.
    let source = match m.require(ctx, "source") {
        Some(n) => decode_source(ctx, n, m.path.key("source")),
        None => None,
    };
    let source = source.unwrap_or_else(|| {
        ctx.broken(&m.path.key("source"));
        SourceSpec::DirectPut
    });
    let processing = match m.get("processing") {
        Some(n) => decode_processing(ctx, n, m.path.key("processing")).unwrap_or_else(|| {
            ctx.broken(&m.path.key("processing"));
            ProcessingSpec::default()
        }),
        None => ProcessingSpec::default(),
    };
    let mut destinations = Vec::new();
    let items = m
        .require(ctx, "destinations")
        .and_then(|n| ctx.list(n, &m.path.key("destinations")));
    for (i, item) in items.into_iter().flatten().enumerate() {
        let at = m.path.key("destinations").index(i);
        let decoded = if item.has_key("http_endpoint") {
            http_endpoint::decode(ctx, item, at.clone())
        } else if item.has_key("iceberg") {
            iceberg::decode(ctx, item, at.clone())
        } else {
            destination::decode(ctx, item, at.clone())
        };
        // A stand-in keeps the later destinations at their indexes.
        destinations.push(decoded.unwrap_or_else(|| {
            ctx.broken(&at);
            destination::stand_in()
        }));
    }
    if items.is_none() {
        ctx.broken(&m.path.key("destinations"));
    }
    m.finish(ctx);
    let stream = StreamSpec {
        name: name.as_ref().map_or_else(String::new, |(n, _)| n.clone()),
        source,
        processing,
        destinations,
    };
    let problems = crate::spec::check::check(&stream, crate::spec::check::Scope { relax });
    ctx.report(&path, problems);
    // A name that passes is kept for the duplicate check.
    let name = name.filter(|(n, _)| valid_stream_name(n));
    (name, Some(stream))
}

fn decode_source(ctx: &mut Ctx, node: &yaml::Node, path: Path) -> Option<SourceSpec> {
    let mut m = MapReader::new(ctx, node, path)?;
    let direct = m.has("direct_put");
    let kinesis = m.has("kinesis_stream");
    let mut result = None;
    match (direct, kinesis) {
        (Some(d), None) => {
            if let Some(dm) = MapReader::new(ctx, d, m.path.key("direct_put")) {
                dm.finish(ctx);
            }
            result = Some(SourceSpec::DirectPut);
        }
        (None, Some(k)) => {
            result = kinesis::decode(ctx, k, m.path.key("kinesis_stream")).map(SourceSpec::Kinesis)
        }
        (Some(_), Some(_)) => {
            ctx.error(
                m.mark(),
                &m.path,
                "exactly one of direct_put, kinesis_stream (got both)",
            );
            // Both are read, for their own problems; neither is the source.
            if let Some(k) = kinesis {
                kinesis::decode(ctx, k, m.path.key("kinesis_stream"));
            }
        }
        (None, None) => ctx.error(
            m.mark(),
            &m.path,
            "exactly one of direct_put, kinesis_stream is required",
        ),
    }
    m.finish(ctx);
    result
}

fn decode_processing(ctx: &mut Ctx, node: &yaml::Node, path: Path) -> Option<ProcessingSpec> {
    let mut m = MapReader::new(ctx, node, path)?;
    let flag = |ctx: &mut Ctx, m: &mut MapReader, key: &'static str| match m.get(key) {
        Some(n) => ctx.bool(n, &m.path.key(key)).unwrap_or(false),
        None => false,
    };
    let append_delimiter_to_record = flag(ctx, &mut m, "append_delimiter_to_record");
    // A block that cannot be read stands in as absent, marked broken.
    let deaggregation = m.get("record_deaggregation").and_then(|n| {
        let path = m.path.key("record_deaggregation");
        let d = decode_deaggregation(ctx, n, path.clone());
        if d.is_none() {
            ctx.broken(&path);
        }
        d
    });
    let metadata_query = m.get("metadata_extraction").and_then(|n| {
        let path = m.path.key("metadata_extraction");
        let q = decode_metadata(ctx, n, path.clone());
        if q.is_none() {
            ctx.broken(&path);
        }
        q
    });
    let transform = m.get("transform").and_then(|n| {
        let path = m.path.key("transform");
        let t = transform::decode(ctx, n, path.clone());
        if t.is_none() {
            ctx.broken(&path);
        }
        t
    });
    // Unreadable, it is judged on: it is broken, so no rule depending on it shows.
    let decompression = m.get("decompression").is_some_and(|n| {
        ctx.one_of(n, &m.path.key("decompression"), &["GZIP"]);
        true
    });
    let cloudwatch_logs_extraction = match m.get("cloudwatch_logs") {
        Some(n) => decode_cloudwatch_logs(ctx, n, m.path.key("cloudwatch_logs")),
        None => false,
    };
    m.finish(ctx);
    Some(ProcessingSpec {
        append_delimiter_to_record,
        transform,
        metadata_query,
        deaggregation,
        decompression,
        cloudwatch_logs_extraction,
    })
}

/// `cloudwatch_logs: {data_message_extraction: true}`; AWS requires the value true (leave the
/// block out to deliver the decompressed documents whole).
fn decode_cloudwatch_logs(ctx: &mut Ctx, node: &yaml::Node, path: Path) -> bool {
    let Some(mut m) = MapReader::new(ctx, node, path) else {
        return true;
    };
    if let Some(n) = m.require(ctx, "data_message_extraction") {
        let path = m.path.key("data_message_extraction");
        if ctx.bool(n, &path) == Some(false) {
            ctx.error(
                n.mark,
                &path,
                "must be true (leave cloudwatch_logs out to deliver the decompressed documents whole)",
            );
        }
    }
    m.finish(ctx);
    true
}

/// `record_deaggregation: json` or `record_deaggregation: {delimited: "####"}`.
fn decode_deaggregation(ctx: &mut Ctx, node: &yaml::Node, path: Path) -> Option<Deaggregation> {
    if matches!(node.kind, yaml::Kind::Scalar { .. }) {
        ctx.one_of(node, &path, &["json"])?;
        return Some(Deaggregation::Json);
    }
    let mut m = MapReader::new(ctx, node, path)?;
    let delimiter = m
        .require(ctx, "delimited")
        .and_then(|n| ctx.string(n, &m.path.key("delimited")));
    m.finish(ctx);
    delimiter.map(Deaggregation::Delimited)
}

/// `metadata_extraction: {query}` (the jq query must compile: `spec::check`).
fn decode_metadata(ctx: &mut Ctx, node: &yaml::Node, path: Path) -> Option<String> {
    let mut m = MapReader::new(ctx, node, path)?;
    let query = m
        .require(ctx, "query")
        .and_then(|n| ctx.string(n, &m.path.key("query")));
    m.finish(ctx);
    query
}

#[cfg(test)]
mod tests;
