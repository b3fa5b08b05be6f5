//! Entry points for the fuzz targets of `fuzz/` (cargo-fuzz, nightly) and for
//! tests/e2e/fuzz_corpus.rs, which replays their committed corpus on stable. Each takes arbitrary
//! bytes, runs one parser of untrusted input the way the daemon runs it, and must return
//! without panicking, hanging or growing without bound, whatever the bytes. Not an API: hidden
//! from the docs, used by nothing else.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

/// The Firehose API's operations a fuzz input can call (the first byte picks one), with an
/// unknown one and an empty target.
const TARGETS: &[&str] = &[
    "PutRecord",
    "PutRecordBatch",
    "CreateDeliveryStream",
    "DeleteDeliveryStream",
    "DescribeDeliveryStream",
    "ListDeliveryStreams",
    "UpdateDestination",
    "TagDeliveryStream",
    "UntagDeliveryStream",
    "ListTagsForDeliveryStream",
    "StartDeliveryStreamEncryption",
    "StopDeliveryStreamEncryption",
    "NoSuchOperation",
    "",
];

/// A daemon's API in this process: the real router over real streams, state under a
/// temporary directory (tmpfs when there is one: a put is made durable there too).
struct Api {
    runtime: tokio::runtime::Runtime,
    service: hyper_util::service::TowerToHyperService<axum::Router>,
}

fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| start_api().unwrap_or_else(|e| panic!("the fuzz harness cannot start: {e}")))
}

fn start_api() -> Result<Api, Box<dyn std::error::Error>> {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("firehosed-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let text = format!(
        "listen: 127.0.0.1:0
state_dir: '{dir}/state'
spool: {{max_size_mib: 64, disk_reserve_mib: 0}}
aws: {{endpoint_url: 'http://127.0.0.1:9', region: us-east-1}}
delivery_streams:
  - name: fuzz
    source: {{direct_put: {{}}}}
    destinations:
      - directory: '{dir}/out'
        buffering: {{size_mib: 1, interval_seconds: 60}}
",
        dir = dir.display()
    );
    let config = crate::config::parse("fuzz.yaml", &text, &|_| None)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let router = runtime.block_on(async {
        crate::streams::prepare_dir(&config.state_dir)?;
        let (fatal, _) = crate::fatal::channel();
        let builder = crate::app::builder(&config, fatal).await;
        let streams = crate::streams::Streams::restore(&config, builder).await?;
        let (_stop, stopping) = tokio::sync::watch::channel(false);
        let state = Arc::new(crate::api::AppState::new(
            streams,
            stopping,
            None,
            std::time::Duration::from_secs(5),
        ));
        Ok::<_, Box<dyn std::error::Error>>(crate::api::router(state, true))
    })?;
    Ok(Api {
        runtime,
        service: hyper_util::service::TowerToHyperService::new(router),
    })
}

/// One Firehose API request: the first byte picks the X-Amz-Target, the rest is the body. The
/// answer must be an HTTP answer (never a panic, never a 500 from a panic).
pub fn api_request(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let op = TARGETS[pick as usize % TARGETS.len()];
    let api = api();
    let request = axum::http::Request::post("/")
        .header("x-amz-target", format!("Firehose_20150804.{op}"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("content-length", body.len())
        .body(axum::body::Body::from(body.to_vec()));
    let Ok(request) = request else {
        return;
    };
    let call = hyper::service::Service::call(&api.service, request);
    // Any answer is fine (a 4xx, or a 5xx the API chose); a panic is a finding (nothing here
    // catches it).
    let _answer = api.runtime.block_on(call);
}

/// The plain-ingest body splitter (NDJSON / lines).
pub fn plain_split(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    let records = crate::api::split_lines(&body);
    let total: usize = records.iter().map(Bytes::len).sum();
    assert!(total <= data.len());
}

/// SigV4: the first line is `METHOD PATH[?QUERY]`, then `name: value` header lines up to an
/// empty line, then the body; verified against one known key at a fixed time.
pub fn sigv4(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or("");
    let (method, target) = request_line.split_once(' ').unwrap_or(("POST", "/"));
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut headers = http::HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.trim().as_bytes()),
            http::HeaderValue::from_str(value.trim()),
        ) {
            headers.append(n, v);
        }
    }
    let request = crate::auth::sigv4::Arrived {
        method,
        path,
        query,
        headers: &headers,
        body: body.as_bytes(),
    };
    let mut credentials = crate::auth::credentials::Credentials::default();
    credentials.keys.insert(
        "AKIDFUZZ".into(),
        crate::auth::credentials::Secret {
            principal: "fuzz".into(),
            secret_access_key: "fuzz-secret".into(),
        },
    );
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_083_200);
    let _ = crate::auth::sigv4::verify(&request, &credentials, crate::auth::SERVICE, now);
}

/// The YAML configuration decoder (environment variables all unset).
pub fn config_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::config::parse("fuzz.yaml", text, &|_| None);
}

/// KPL de-aggregation of one Kinesis record.
pub fn kpl(data: &[u8]) {
    let data = Bytes::copy_from_slice(data);
    if let Some(records) = crate::source::kinesis::kpl::deaggregate(&data) {
        for r in records {
            assert!(r.data.len() <= data.len());
        }
    }
}

/// Record de-aggregation: JSON (concatenated or newline-separated objects), and delimited with
/// the first byte as the delimiter.
pub fn deaggregate(data: &[u8]) {
    use crate::spec::Deaggregation;
    let record = |bytes: &[u8]| crate::record::Record {
        data: Bytes::copy_from_slice(bytes),
        arrival_ms: 0,
        seq: 7,
        sub: 0,
        kinesis: None,
    };
    let json = crate::processing::deaggregate::split(&Deaggregation::Json, vec![record(data)]);
    assert!(json.iter().all(|r| r.seq == 7));
    if let Some((&d, rest)) = data.split_first() {
        let delimiter = String::from_utf8_lossy(&[d]).into_owned();
        let how = Deaggregation::Delimited(delimiter);
        let _ = crate::processing::deaggregate::split(&how, vec![record(rest)]);
    }
}

/// JSON -> Parquet: the first line is a Hive type (`struct<a:int,b:array<string>>`; its fields
/// become the columns), each further line a record appended to one Parquet file.
pub fn parquet(data: &[u8]) {
    use crate::encode::columnar::Rules;
    use crate::encode::columnar::schema::{Column, HiveType, parse};
    use crate::encode::conversion::{CatalogTable, Conversion};
    use crate::encode::parquet::ParquetOptions;
    let text = String::from_utf8_lossy(data);
    let (schema, records) = text.split_once('\n').unwrap_or((&text, ""));
    let columns: Vec<Column> = match parse(schema) {
        Ok(HiveType::Struct(fields)) => fields
            .into_iter()
            .map(|(name, ty)| Column { name, ty })
            .collect(),
        Ok(ty) => vec![Column {
            name: "value".into(),
            ty,
        }],
        Err(_) => vec![Column {
            name: "s".into(),
            ty: HiveType::String,
        }],
    };
    let conversion = Arc::new(Conversion::new(
        columns,
        Rules::default(),
        Vec::new(),
        ParquetOptions::DEFAULT,
        CatalogTable::default(),
    ));
    let Ok(mut writer) = conversion.writer(Vec::new()) else {
        return;
    };
    for line in records.lines() {
        if writer.append(line.as_bytes()).is_err() {
            return;
        }
    }
    let _ = writer.finish();
}

/// The partition-key queries people write, on hostile records.
const QUERIES: &[&str] = &[
    "{customer_id: .customer_id}",
    "{year: .ts[0:4], type: .event.type}",
    "{k: (.items[0].id | tostring)}",
    "{a: .a.b.c.d, b: .[\"weird key\"]}",
    "{n: (.n | floor | tostring)}",
];

/// The jq partition-key path: the first byte picks a query, the rest is the record.
pub fn jq(data: &[u8]) {
    let Some((&pick, record)) = data.split_first() else {
        return;
    };
    let query = QUERIES[pick as usize % QUERIES.len()];
    // `extract` turns a panic of the query engine into an error for that record; here it is a
    // finding.
    if let Err(crate::jq::ExtractError::Panicked) = crate::jq::extract(query, record) {
        panic!("the query engine panicked on this record");
    }
}

/// `encode::deflate_join`: the input's first byte picks a libdeflate level (0-12) and its
/// second where the rest is split; both parts are deflated, the first continued after its final
/// block and the second appended, and the join must inflate to the two parts in order (a
/// mismatch panics: a finding). The whole input is also read as a deflate stream whose final
/// block is looked for: any bytes, no panic.
pub fn deflate_join(data: &[u8]) {
    use std::io::Read;
    let mut raw = data.to_vec();
    let _ = crate::encode::deflate_join::continue_after(&mut raw);
    let (Some(&level), Some(&split)) = (data.first(), data.get(1)) else {
        return;
    };
    let rest = &data[2..];
    let at = rest.len() * usize::from(split) / 255;
    let (first, second) = rest.split_at(at);
    let level = i32::from(level % 13);
    let deflate = |part: &[u8]| {
        let lvl = libdeflater::CompressionLvl::new(level).unwrap_or_default();
        let mut c = libdeflater::Compressor::new(lvl);
        let mut out = vec![0; c.deflate_compress_bound(part.len())];
        let n = c.deflate_compress(part, &mut out).unwrap_or(0);
        out.truncate(n);
        out
    };
    let mut joined = deflate(first);
    if joined.is_empty() {
        return;
    }
    if let Err(e) = crate::encode::deflate_join::continue_after(&mut joined) {
        panic!("libdeflate's own stream at level {level} was not understood: {e}");
    }
    joined.extend_from_slice(&deflate(second));
    let mut back = Vec::with_capacity(rest.len());
    if let Err(e) = flate2::read::DeflateDecoder::new(joined.as_slice()).read_to_end(&mut back) {
        panic!("the joined stream does not inflate (level {level}, split {at}): {e}");
    }
    assert!(
        back == rest,
        "the joined stream inflates to other bytes (level {level}, split {at})"
    );
}
