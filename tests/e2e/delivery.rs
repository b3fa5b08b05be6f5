//! Delivery on the real binary: codecs checked by independent decoders, AWS's key layout,
//! flush on size / interval / SIGTERM, multipart uploads to a real S3 server, flat memory.

use std::time::{Duration, Instant};

use crate::support::*;
use chrono::Utc;

const CODECS: [(&str, &str); 5] = [
    ("UNCOMPRESSED", ""),
    ("GZIP", ".gz"),
    ("ZIP", ".zip"),
    ("Snappy", ".snappy"),
    ("HADOOP_SNAPPY", ".hsnappy"),
];

fn sample_records(n: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..n {
        body.extend_from_slice(
            format!(
                "{{\"id\":{i},\"user\":\"u{}\",\"msg\":\"hello firehose {}\"}}\n",
                i % 97,
                "x".repeat(i % 50)
            )
            .as_bytes(),
        );
    }
    body
}

fn codec_destinations(target: impl Fn(&str) -> String) -> String {
    CODECS
        .iter()
        .map(|(c, _)| {
            format!(
                "      - {}\n        prefix: '{c}/'\n        compression: {c}\n        buffering: {{size_mib: 128, interval_seconds: 900}}\n",
                target(c)
            )
        })
        .collect()
}

/// Checks each codec's object with Python's decoders and returns nothing: panics on mismatch.
fn check_codecs(keys: &[String], expected: &[u8], read: impl Fn(&str) -> Vec<u8>) {
    assert_eq!(keys.len(), CODECS.len(), "{keys:?}");
    for (codec, ext) in CODECS {
        let key = keys
            .iter()
            .find(|k| k.starts_with(&format!("{codec}/")))
            .unwrap_or_else(|| panic!("no {codec} object in {keys:?}"));
        assert!(
            key.ends_with(ext) && (!ext.is_empty() || !key.contains('.')),
            "{key} should end with {ext:?}"
        );
        let (decoded, stderr) = py_decode(codec, &read(key));
        assert!(
            decoded == expected,
            "{codec}: decoded {} bytes, expected {}",
            decoded.len(),
            expected.len()
        );
        if codec == "ZIP" {
            let base = key
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .trim_end_matches(".zip");
            assert!(
                stderr.contains(&format!("zip-entry:{base}")),
                "zip entry name: {stderr}"
            );
        }
    }
}

#[test]
fn every_codec_is_read_back_by_independent_decoders_from_a_directory() {
    let config = format!(
        "listen: 127.0.0.1:0\nstate_dir: '{{dir}}/state'\ndelivery_streams:\n  - name: c\n    source: {{direct_put: {{}}}}\n    processing: {{append_delimiter_to_record: true}}\n    destinations:\n{}",
        codec_destinations(|_| "directory: '{dir}/out'".into())
    );
    let d = Daemon::start(&config);
    let body = sample_records(30_000);
    let (status, _) = d.post("/v1/streams/c/records", &body);
    assert_eq!(status, 200);
    let keys = d.flush("c");
    check_codecs(&keys, &body, |k| {
        std::fs::read(d.dir.path().join("out").join(k)).expect("object")
    });
}

#[test]
fn every_codec_is_read_back_by_independent_decoders_from_s3() {
    let moto = Moto::start();
    moto.create_bucket("codecs");
    let config = format!(
        "listen: 127.0.0.1:0\nstate_dir: '{{dir}}/state'\naws: {{endpoint_url: '{}', force_path_style: true}}\ndelivery_streams:\n  - name: c\n    source: {{direct_put: {{}}}}\n    processing: {{append_delimiter_to_record: true}}\n    destinations:\n{}",
        moto.endpoint,
        codec_destinations(|_| "s3: {bucket: codecs}".into())
    );
    let d = Daemon::start(&config);
    let body = sample_records(5_000);
    assert_eq!(d.post("/v1/streams/c/records", &body).0, 200);
    let keys = d.flush("c");
    assert_eq!(moto.keys("codecs").len(), 5);
    check_codecs(&keys, &body, |k| moto.get("codecs", k));
}

/// The hour-level expectations for "now", tolerant of a boundary crossed during the test.
fn now_candidates(
    f: impl Fn(chrono::DateTime<Utc>) -> String,
    start: chrono::DateTime<Utc>,
) -> Vec<String> {
    vec![f(start), f(Utc::now())]
}

#[test]
fn keys_follow_the_aws_layout() {
    let config = "listen: 127.0.0.1:0
state_dir: '{dir}/state'
delivery_streams:
  - name: keys
    source: {direct_put: {}}
    destinations:
      - directory: '{dir}/out'
        prefix: 'plain'
      - directory: '{dir}/out'
        prefix: 'dt=!{timestamp:yyyy''-''MM''-''dd}/r=!{firehose:random-string}/'
        error_output_prefix: 'err/!{firehose:error-output-type}/'
      - directory: '{dir}/out'
        prefix: 'tz/'
        custom_time_zone: Asia/Kolkata
        compression: gzip
        file_extension: .json.gz
      - directory: '{dir}/out'
";
    let start = Utc::now();
    let d = Daemon::start(config);
    assert_eq!(d.post("/v1/streams/keys/records", b"r1\nr2\n").0, 200);
    let keys = d.flush("keys");
    assert_eq!(keys.len(), 4, "{keys:?}");
    let name_re = |k: &str, ext: &str| {
        let name = k.rsplit('/').next().unwrap_or_default();
        let rest = name
            .strip_prefix("keys-1-")
            .unwrap_or_else(|| panic!("{name}"));
        let rest = rest
            .strip_suffix(ext)
            .unwrap_or_else(|| panic!("{name} lacks {ext:?}"));
        assert_eq!(rest.len(), 19 + 1 + 36, "{name}");
        let (time, uuid) = rest.split_at(19);
        assert!(
            chrono::NaiveDateTime::parse_from_str(time, "%Y-%m-%d-%H-%M-%S").is_ok(),
            "{name}"
        );
        assert!(uuid::Uuid::parse_str(&uuid[1..]).is_ok(), "{name}");
        assert!(uuid[1..].chars().all(|c| !c.is_ascii_uppercase()));
        time.to_string()
    };

    let plain = &keys[0];
    assert!(
        now_candidates(|t| t.format("plain%Y/%m/%d/%H/").to_string(), start)
            .iter()
            .any(|p| plain.starts_with(p.as_str())),
        "plain prefix gets yyyy/MM/dd/HH/ concatenated: {plain}"
    );
    let t = name_re(plain, "");
    assert!(
        plain.contains(&format!("{}/keys-1-{t}", &t[..13].replace('-', "/"))),
        "name time = prefix time: {plain}"
    );

    let expr = &keys[1];
    let parts: Vec<&str> = expr.split('/').collect();
    assert!(
        now_candidates(|t| t.format("dt=%Y-%m-%d").to_string(), start)
            .contains(&parts[0].to_string()),
        "{expr}"
    );
    assert!(parts[1].starts_with("r=") && parts[1].len() == 13, "{expr}");
    assert_eq!(
        parts.len(),
        3,
        "nothing appended to a prefix with expressions: {expr}"
    );
    name_re(expr, "");

    let tz = &keys[2];
    let kolkata = chrono_tz::Asia::Kolkata;
    assert!(
        now_candidates(
            |t| t
                .with_timezone(&kolkata)
                .format("tz/%Y/%m/%d/%H/")
                .to_string(),
            start
        )
        .iter()
        .any(|p| tz.starts_with(p.as_str())),
        "custom time zone: {tz}"
    );
    name_re(tz, ".json.gz");

    let default = &keys[3];
    assert!(
        now_candidates(|t| t.format("%Y/%m/%d/%H/").to_string(), start)
            .iter()
            .any(|p| default.starts_with(p.as_str())),
        "{default}"
    );
    let obj = std::fs::read(d.dir.path().join("out").join(default)).expect("object");
    assert_eq!(
        obj, b"r1r2",
        "no delimiter unless append_delimiter_to_record"
    );
}

#[test]
fn size_flush_splits_objects_at_the_buffer_size() {
    let config = "listen: 127.0.0.1:0
state_dir: '{dir}/state'
delivery_streams:
  - name: big
    source: {direct_put: {}}
    processing: {append_delimiter_to_record: true}
    destinations:
      - directory: '{dir}/out'
        buffering: {size_mib: 1, interval_seconds: 900}
";
    let d = Daemon::start(config);
    let line = format!("{}\n", "a".repeat(100 * 1024 - 1));
    let body = line.repeat(25); // 2.5 MiB: two full objects and a remainder
    assert_eq!(d.post("/v1/streams/big/records", body.as_bytes()).0, 200);
    let out = d.dir.path().join("out");
    let deadline = Instant::now() + Duration::from_secs(30);
    while files_under(&out).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "size-based objects did not appear"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let keys = d.flush("big");
    assert_eq!(keys.len(), 3, "{keys:?}");
    let sizes: Vec<usize> = keys
        .iter()
        .map(|k| std::fs::read(out.join(k)).expect("object").len())
        .collect();
    assert_eq!(
        sizes,
        vec![10 * 100 * 1024, 10 * 100 * 1024, 5 * 100 * 1024],
        "objects never exceed 1 MiB"
    );
}

/// Under steady load objects fill their buffer: the rest of the delivery that filled one object
/// starts the next instead of being sealed on its own (which made every other object small).
#[test]
fn under_steady_load_every_object_but_the_last_fills_its_buffer() {
    let config = "listen: 127.0.0.1:0
state_dir: '{dir}/state'
relax_aws_limits: true
delivery_streams:
  - name: steady
    source: {direct_put: {}}
    processing: {append_delimiter_to_record: true}
    destinations:
      - directory: '{dir}/out'
        buffering: {size_mib: 4, interval_seconds: 900}
";
    let d = Daemon::start(config);
    let record = format!("{{\"pad\":\"{}\"}}", "x".repeat(1000));
    let data = base64(record.as_bytes());
    let batch: Vec<serde_json::Value> = (0..500)
        .map(|_| serde_json::json!({"Data": data}))
        .collect();
    let body = serde_json::json!({"DeliveryStreamName": "steady", "Records": batch}).to_string();
    let producers: Vec<_> = (0..4)
        .map(|_| {
            let (url, body) = (d.url.clone(), body.clone());
            std::thread::spawn(move || {
                for _ in 0..16 {
                    let (status, text) = http(
                        &url,
                        "POST",
                        &[("x-amz-target", "Firehose_20150804.PutRecordBatch")],
                        body.as_bytes(),
                    );
                    assert!(
                        status == 200 && text.contains("\"FailedPutCount\":0"),
                        "{text}"
                    );
                }
            })
        })
        .collect();
    for p in producers {
        p.join().expect("producer");
    }
    d.flush("steady");
    let out = d.dir.path().join("out");
    let sizes: Vec<u64> = files_under(&out)
        .iter()
        .map(|k| std::fs::metadata(out.join(k)).expect("object").len())
        .collect();
    let total: u64 = sizes.iter().sum();
    assert_eq!(
        total,
        4 * 16 * 500 * (record.len() as u64 + 1),
        "every record once"
    );
    let buffer = 4 * 1024 * 1024;
    let small: Vec<&u64> = sizes.iter().filter(|&&s| s < buffer * 9 / 10).collect();
    assert!(
        small.len() <= 1 && sizes.len() >= 7,
        "only the object the flush sealed may be under 90% of the buffer: {sizes:?}"
    );
}

#[test]
fn interval_flush_delivers_without_a_flush_call() {
    let config = "listen: 127.0.0.1:0
state_dir: '{dir}/state'
delivery_streams:
  - name: tick
    source: {direct_put: {}}
    destinations:
      - directory: '{dir}/out'
        buffering: {size_mib: 128, interval_seconds: 1}
";
    let d = Daemon::start(config);
    let sent = Instant::now();
    assert_eq!(d.post("/v1/streams/tick/records", b"x\n").0, 200);
    let out = d.dir.path().join("out");
    let deadline = Instant::now() + Duration::from_secs(30);
    while files_under(&out).is_empty() {
        assert!(Instant::now() < deadline, "the interval did not flush");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        sent.elapsed() >= Duration::from_millis(900),
        "not before the interval"
    );
}

#[test]
fn sigterm_drains_every_buffer_and_exits_0() {
    let config = "listen: 127.0.0.1:0
state_dir: '{dir}/state'
delivery_streams:
  - name: a
    source: {direct_put: {}}
    destinations:
      - directory: '{dir}/out-a'
        buffering: {size_mib: 128, interval_seconds: 900}
        compression: gzip
  - name: b
    source: {direct_put: {}}
    destinations:
      - directory: '{dir}/out-b'
        buffering: {size_mib: 128, interval_seconds: 900}
";
    let mut d = Daemon::start(config);
    assert_eq!(d.post("/v1/streams/a/records", b"a1\na2\n").0, 200);
    assert_eq!(d.post("/v1/streams/b/records", b"b1\n").0, 200);
    let status = d.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit status {status}");
    let a = files_under(&d.dir.path().join("out-a"));
    let b = files_under(&d.dir.path().join("out-b"));
    assert_eq!((a.len(), b.len()), (1, 1), "{a:?} {b:?}");
    let (decoded, _) = py_decode(
        "GZIP",
        &std::fs::read(d.dir.path().join("out-a").join(&a[0])).expect("a"),
    );
    assert_eq!(decoded, b"a1a2");
    assert_eq!(
        std::fs::read(d.dir.path().join("out-b").join(&b[0])).expect("b"),
        b"b1"
    );
    assert!(
        files_under(&d.dir.path().join("state/staging")).is_empty(),
        "staging is empty after the drain"
    );
}

#[test]
fn large_objects_go_to_s3_as_multipart_uploads() {
    let moto = Moto::start();
    moto.create_bucket("big");
    let config = format!(
        "listen: 127.0.0.1:0
state_dir: '{{dir}}/state'
aws: {{endpoint_url: '{}', force_path_style: true}}
delivery_streams:
  - name: big
    source: {{direct_put: {{}}}}
    processing: {{append_delimiter_to_record: true}}
    destinations:
      - s3: {{bucket: big}}
        buffering: {{size_mib: 32, interval_seconds: 900}}
",
        moto.endpoint
    );
    let d = Daemon::start(&config);
    let mut expected = Vec::new();
    for part in 0..3 {
        let body: Vec<u8> = (0..60)
            .flat_map(|i| format!("{part}-{i}-{}\n", "q".repeat(100_000)).into_bytes())
            .collect();
        assert_eq!(d.post("/v1/streams/big/records", &body).0, 200);
        expected.extend(body);
    }
    let keys = d.flush("big");
    assert_eq!(keys.len(), 1);
    let objects = moto.objects("big");
    assert_eq!(objects.len(), 1);
    let (key, size, etag) = &objects[0];
    assert_eq!(key, &keys[0]);
    assert_eq!(*size as usize, expected.len());
    assert!(expected.len() >= 16 * 1024 * 1024);
    assert!(
        etag.trim_matches('"').ends_with("-3"),
        "a 3-part multipart upload: {etag}"
    );
    assert!(moto.get("big", key) == expected, "content differs");
}

#[test]
fn staging_keeps_memory_flat_with_128_mib_buffers() {
    let config = "listen: 127.0.0.1:0
state_dir: '{dir}/state'
delivery_streams:
  - name: mem
    source: {direct_put: {}}
    processing: {append_delimiter_to_record: true}
    destinations:
      - directory: '{dir}/out'
        buffering: {size_mib: 128, interval_seconds: 900}
        compression: snappy
";
    let d = Daemon::start(config);
    // The binary's own pages (file-backed, larger in a debug build with every feature linked)
    // are not memory used by buffering: measure from the idle daemon.
    let idle_mib = d.rss_kib() / 1024;
    let line = format!("{{\"payload\":\"{}\"}}\n", "m".repeat(1000));
    let body = line.repeat(8 * 1024 * 1024 / line.len());
    let mut sent = 0usize;
    while sent < 120 * 1024 * 1024 {
        assert_eq!(d.post("/v1/streams/mem/records", body.as_bytes()).0, 200);
        sent += body.len();
    }
    let rss_mib = d.peak_rss_kib() / 1024 - idle_mib;
    eprintln!(
        "peak RSS with {} MiB buffered: {rss_mib} MiB above the idle {idle_mib} MiB",
        sent / (1024 * 1024)
    );
    let keys = d.flush("mem");
    assert_eq!(keys.len(), 1, "one 128 MiB buffer held it all");
    assert!(
        rss_mib < 48,
        "peak RSS growth {rss_mib} MiB should stay far below the {} MiB buffered",
        sent >> 20
    );
}

/// Java's GZIPInputStream (what Hadoop's GzipCodec, and so Spark, Hive and Athena, read GZIP
/// with), run as a single-file program: `java Gunzip.java IN OUT`.
const JAVA_GUNZIP: &str = r#"import java.io.*;
import java.util.zip.GZIPInputStream;
public class Gunzip {
    public static void main(String[] a) throws Exception {
        try (InputStream in = new GZIPInputStream(new FileInputStream(a[0]));
             OutputStream out = new FileOutputStream(a[1])) {
            in.transferTo(out);
        }
    }
}
"#;

/// A main GZIP object compressed on every core (1 MiB blocks deflated apart by libdeflate,
/// joined into one deflate stream) is one gzip member that every reader reads whole; a ZIP
/// destination's entry, deflated so too, opens in Python's zipfile and unzip.
#[test]
fn a_gzip_object_compressed_on_every_core_reads_back_in_zcat_python_and_java() {
    let d = Daemon::start(
        "listen: 127.0.0.1:0
state_dir: '{dir}/state'
delivery_streams:
  - name: big
    source: {direct_put: {}}
    destinations:
      - directory: '{dir}/out'
        compression: GZIP
        buffering: {size_mib: 64, interval_seconds: 900}
      - directory: '{dir}/zip'
        compression: ZIP
        buffering: {size_mib: 64, interval_seconds: 900}",
    );
    let body = sample_records(120_000);
    let lines: Vec<&[u8]> = body.split_inclusive(|&b| b == b'\n').collect();
    for chunk in lines.chunks(40_000) {
        let part: Vec<u8> = chunk.concat();
        // Plain ingest takes a line per record, newline removed: send them back with one.
        assert_eq!(d.post("/v1/streams/big/records", &part).0, 200);
    }
    let keys = d.flush("big");
    assert_eq!(keys.len(), 2, "{keys:?}");
    let zip_key = files_under(&d.dir.path().join("zip"));
    assert_eq!(zip_key.len(), 1, "{zip_key:?}");
    let zip = d.dir.path().join("zip").join(&zip_key[0]);
    let file = d
        .dir
        .path()
        .join("out")
        .join(&files_under(&d.dir.path().join("out"))[0]);
    let data = std::fs::read(&file).expect("object");
    let expected: Vec<u8> = lines
        .iter()
        .map(|l| l.strip_suffix(b"\n").unwrap_or(l))
        .collect::<Vec<_>>()
        .concat();
    // Blocks compressed apart, as pigz does, still make one member: a decoder that stops
    // after the first member reads it all.
    let mut first = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&data[..]), &mut first)
        .expect("the member decodes");
    assert!(first == expected, "one member holds every block");
    gzip_readers_agree(d.dir.path(), &file, &expected);
    // The ZIP destination's entry is deflated on every core the same way: Python's zipfile
    // and unzip read it.
    let zip_data = std::fs::read(&zip).expect("zip object");
    assert_eq!(py_decode("ZIP", &zip_data).0, expected, "Python's zipfile");
    let unzip = run_output(std::process::Command::new("unzip").arg("-p").arg(&zip));
    assert!(
        unzip.status.success() && unzip.stdout == expected,
        "unzip -p"
    );
}

/// zcat, Python's gzip and Java's GZIPInputStream (Hadoop's GzipCodec, so Spark and Athena)
/// each read `file` as exactly `expected`.
fn gzip_readers_agree(scratch: &std::path::Path, file: &std::path::Path, expected: &[u8]) {
    let data = std::fs::read(file).expect("object");
    let zcat = run_output(std::process::Command::new("zcat").arg(file));
    assert!(zcat.status.success() && zcat.stdout == expected, "zcat");
    assert_eq!(py_decode("GZIP", &data).0, expected, "Python's gzip");
    let java = scratch.join("Gunzip.java");
    std::fs::write(&java, JAVA_GUNZIP).expect("java source");
    let out = scratch.join("java.out");
    let run = run_output(
        std::process::Command::new("java")
            .arg(&java)
            .arg(file)
            .arg(&out),
    );
    assert!(
        run.status.success(),
        "java: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        std::fs::read(&out).expect("java output"),
        expected,
        "Java's GZIPInputStream"
    );
}

/// A partition's GZIP object is built 32 KiB at a time by a deflate state the partitions share
/// (encode/lean_gzip.rs): still one gzip member, one deflate stream, read whole by a
/// single-member decoder and by every reader of the test tools.
#[test]
fn a_partition_gzip_object_built_in_chunks_is_one_member_every_reader_reads() {
    let d = Daemon::start(
        "listen: 127.0.0.1:0
state_dir: '{dir}/state'
delivery_streams:
  - name: parts
    source: {direct_put: {}}
    processing:
      metadata_extraction: {query: '{u: (.id % 3 | tostring)}'}
    destinations:
      - directory: '{dir}/out'
        prefix: 'u=!{partitionKeyFromQuery:u}/'
        error_output_prefix: 'errors/!{firehose:error-output-type}/'
        compression: GZIP
        dynamic_partitioning: {enabled: true}
        buffering: {size_mib: 64, interval_seconds: 900}",
    );
    let body = sample_records(60_000);
    let lines: Vec<&[u8]> = body.split_inclusive(|&b| b == b'\n').collect();
    for chunk in lines.chunks(20_000) {
        assert_eq!(d.post("/v1/streams/parts/records", &chunk.concat()).0, 200);
    }
    let mut keys = d.flush("parts");
    keys.sort();
    assert_eq!(keys.len(), 3, "{keys:?}");
    for (u, key) in keys.iter().enumerate() {
        assert!(key.starts_with(&format!("u={u}/")), "{key}");
        let expected: Vec<u8> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 == u)
            .map(|(_, l)| l.strip_suffix(b"\n").unwrap_or(l))
            .collect::<Vec<_>>()
            .concat();
        assert!(expected.len() > 4 * 32 * 1024, "several chunks");
        let file = d.dir.path().join("out").join(key);
        let data = std::fs::read(&file).expect("object");
        let mut whole = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&data[..]), &mut whole)
            .expect("one member");
        assert!(whole == expected, "a single-member decoder reads it all");
        gzip_readers_agree(d.dir.path(), &file, &expected);
    }
}
