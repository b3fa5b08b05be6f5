//! Record format conversion into ORC (`output.orc`) on the real binary: the rows read back
//! exactly by pyarrow's ORC reader, pyorc (both on Apache ORC's C++ library) and orc-rust (an
//! implementation of its own), in each of AWS's three compressions, over many stripes (encoded
//! beside the staging thread and written in order), every row surviving. The shared helpers are
//! format_conversion.rs's.

use std::path::{Path, PathBuf};

use crate::format_conversion::{all_types_config_with, error_lines, post, run_reader};
use crate::support::transform::decode_raw;
use crate::support::*;
use serde_json::{Value, json};

/// What tests/py/orc_read.py saw in a set of ORC files: pyarrow's and pyorc's rows, and
/// orc-rust's (read here, handed over as Arrow IPC files).
pub(crate) fn read_orc(files: &[PathBuf]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = files.to_vec();
    args.push(PathBuf::from("--ipc"));
    for (i, f) in files.iter().enumerate() {
        let file = std::fs::File::open(f).expect("the ORC file opens");
        let builder =
            orc_rust::ArrowReaderBuilder::try_new(file).expect("orc-rust reads the footer");
        let schema = builder.schema();
        let out = dir.path().join(format!("{i}.arrow"));
        let ipc = std::fs::File::create(&out).expect("IPC file");
        let mut w = arrow59::ipc::writer::FileWriter::try_new(ipc, &schema).expect("IPC writer");
        for batch in builder.build() {
            w.write(&batch.expect("orc-rust decodes the stripe"))
                .expect("IPC write");
        }
        w.finish().expect("IPC finish");
        args.push(out);
    }
    run_reader("orc_read.py", &args)
}

fn orc_objects(out: &Path) -> Vec<PathBuf> {
    files_under(out)
        .into_iter()
        .filter(|k| !k.starts_with("errors/"))
        .map(|k| out.join(k))
        .collect()
}

#[test]
fn every_hive_type_reads_back_exactly_from_orc_in_pyarrow_pyorc_and_orc_rust() {
    for (compression, kind) in [
        ("NONE", "UNCOMPRESSED"),
        ("ZLIB", "ZLIB"),
        ("SNAPPY", "SNAPPY"),
    ] {
        let d = Daemon::start(&all_types_config_with(&format!(
            "{{orc: {{compression: {compression}}}}}"
        )));
        let full = r#"{"s":"héllo \"world\"","vc":"truncated","ch":"éxyz","flag":true,"ti":-128,"si":32767,"i":2147483647,"bi":-9223372036854775808,"f":1.5,"d":-2.25e-3,"price":"123456789.0125","day":"2024-02-29","ts":"2024-05-01T13:07:42.123456789Z","bin":"AAEC/w==","tags":["a",null,"c"],"counts":{"x":1,"y":null},"USERINFO":{"Name":"Ann","age":41,"emails":[]}}"#;
        let old = r#"{"ts":"1969-12-31T23:59:58.5","day":"1960-01-01","price":"-5.5","bi":0}"#;
        let bad = r#"{"ti":128}"#;
        post(&d, "pq", &[full, old, r#"{}"#, bad]);
        let keys = d.flush("pq");
        assert_eq!(
            keys.len(),
            2,
            "one ORC object and one error object: {keys:?}"
        );
        let out = d.dir.path().join("out");
        let files = orc_objects(&out);
        assert_eq!(files.len(), 1);
        assert!(
            files[0].display().to_string().ends_with(".orc"),
            "{files:?}"
        );
        let read = read_orc(&files);
        assert_eq!(read["compression"], json!([kind]), "{compression}");
        assert_eq!(read["format"], json!(["0.12"]));
        assert_eq!(
            read["pyorc"]["schema"],
            "struct<s:string,vc:varchar(4),ch:char(2),flag:boolean,ti:tinyint,si:smallint,i:int,bi:bigint,f:float,d:double,price:decimal(12,3),day:date,ts:timestamp,bin:binary,tags:array<string>,counts:map<string,bigint>,userinfo:struct<name:string,age:int,emails:array<string>>>"
        );
        assert_eq!(read["pyarrow"]["types"]["ts"], "timestamp[ns]");
        assert_eq!(read["pyarrow"]["types"]["price"], "decimal128(12, 3)");
        let nulls = |overrides: Value| {
            let mut row = json!({
                "s": null, "vc": null, "ch": null, "flag": null, "ti": null, "si": null, "i": null,
                "bi": null, "f": null, "d": null, "price": null, "day": null, "ts": null,
                "bin": null, "tags": null, "counts": null, "userinfo": null
            });
            for (k, v) in overrides.as_object().expect("object") {
                row[k] = v.clone();
            }
            row
        };
        let first = nulls(json!({
            "s": "héllo \"world\"", "vc": "trun", "ch": "éx", "flag": true, "ti": -128, "si": 32767,
            "i": 2147483647, "bi": -9223372036854775808i64, "f": 1.5, "d": -0.00225,
            "price": "123456789.013", "day": "2024-02-29", "ts": "2024-05-01T13:07:42.123456789",
            "bin": "AAEC/w==", "tags": ["a", null, "c"], "counts": {"x": 1, "y": null},
            "userinfo": {"name": "Ann", "age": 41, "emails": []}
        }));
        let second = nulls(json!({
            "ts": "1969-12-31T23:59:58.500000", "day": "1960-01-01", "price": "-5.500", "bi": 0
        }));
        let want = vec![first.clone(), second, nulls(json!({}))];
        assert_eq!(read["pyarrow"]["rows"], json!(want), "{compression}");
        assert_eq!(
            read["orc_rust"]["rows"],
            json!(want),
            "orc-rust, {compression}"
        );
        // pyorc's datetimes stop at the microsecond.
        let mut micro = want;
        micro[0]["ts"] = json!("2024-05-01T13:07:42.123456");
        assert_eq!(read["pyorc"]["rows"], json!(micro), "{compression}");
        let errors = error_lines(&out);
        assert_eq!(errors.len(), 1);
        assert_eq!(decode_raw(&errors[0]), bad);
        let (status, v) = d.api("DescribeDeliveryStream", r#"{"DeliveryStreamName":"pq"}"#);
        assert_eq!(status, 200, "{v}");
        let ext =
            &v["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"];
        let orc = &ext["DataFormatConversionConfiguration"]["OutputFormatConfiguration"]["Serializer"]
            ["OrcSerDe"];
        assert_eq!(orc["Compression"], compression);
        assert_eq!(orc["StripeSizeBytes"], 67108864);
        assert_eq!(ext["FileExtension"], ".orc");
    }
}

#[test]
fn orc_stripes_stay_within_the_memory_bound_and_every_row_survives() {
    let d = Daemon::start(&all_types_config_with(
        "{orc: {compression: NONE, stripe_buffer_mib: 1}}",
    ));
    let records: Vec<String> = (0..40_000)
        .map(|i| {
            let tags: Vec<String> = (0..i % 4).map(|j| format!("\"t{j}\"")).collect();
            let bi = if i % 7 == 0 { "null".to_string() } else { (i * 1000).to_string() };
            format!(
                r#"{{"s":"row {}","i":{i},"bi":{bi},"ti":{},"flag":{},"d":{},"price":"{i}.5","ts":{},"tags":[{}],"counts":{{"k":{i}}},"userinfo":{{"name":"n{i}","age":{}}}}}"#,
                i % 50, i % 100, i % 3 == 0, f64::from(i) / 8.0, 1_714_568_862 + i, tags.join(","), i % 90
            )
        })
        .collect();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    for chunk in refs.chunks(5000) {
        post(&d, "pq", chunk);
    }
    d.flush("pq");
    let out = d.dir.path().join("out");
    let read = read_orc(&orc_objects(&out));
    let stripes: u64 = read["stripes"]
        .as_array()
        .expect("stripes")
        .iter()
        .filter_map(Value::as_u64)
        .sum();
    assert!(
        stripes > 1,
        "a 1 MiB stripe bound cuts several stripes: {stripes}"
    );
    for reader in ["pyarrow", "pyorc", "orc_rust"] {
        let mut rows: Vec<&Value> = read[reader]["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .collect();
        rows.sort_by_key(|r| r["i"].as_i64());
        assert_eq!(rows.len(), 40_000, "{reader}");
        for (i, r) in rows.iter().enumerate() {
            let i = i as i64;
            assert_eq!(r["i"], i, "{reader}");
            assert_eq!(
                r["bi"],
                if i % 7 == 0 {
                    json!(null)
                } else {
                    json!(i * 1000)
                },
                "{reader}"
            );
            assert_eq!(
                r["tags"].as_array().map(Vec::len),
                Some((i % 4) as usize),
                "{reader}"
            );
            assert_eq!(r["counts"], json!({"k": i}), "{reader}");
            assert_eq!(r["userinfo"]["name"], format!("n{i}"), "{reader}");
            assert_eq!(r["price"], format!("{i}.500"), "{reader}");
        }
    }
}
