use super::*;
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::encode::columnar::timestamp::TimestampRules;
use crate::encode::columnar::{KeyRules, schema};
use crate::encode::parquet::ParquetOptions;

fn conversion(
    columns: &[(&str, &str)],
    keys: KeyRules,
    mappings: &[(&str, &str)],
) -> Arc<Conversion> {
    let columns = columns
        .iter()
        .map(|(n, t)| Column {
            name: n.to_string(),
            ty: schema::parse(t).expect("type"),
        })
        .collect();
    Arc::new(Conversion::new(
        columns,
        Rules {
            keys,
            timestamps: TimestampRules::default(),
            iceberg: false,
        },
        mappings
            .iter()
            .map(|(c, k)| (c.to_string(), k.to_string()))
            .collect(),
        ParquetOptions::DEFAULT,
        CatalogTable::default(),
    ))
}

const OPENX: KeyRules = KeyRules {
    case_insensitive: true,
    dots_to_underscores: false,
};

/// Converts `records`; returns the rows read back and the errors of the records that failed.
fn convert(conv: &Arc<Conversion>, records: &[&str]) -> (RecordBatch, Vec<String>) {
    let mut w = conv.writer(Vec::new()).expect("writer");
    let mut errors = Vec::new();
    for r in records {
        if let Err(e) = w.append(r.as_bytes()).expect("no I/O error") {
            errors.push(e.to_string());
        }
    }
    let file = w.finish().expect("finishes");
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file))
        .expect("a parquet file")
        .build()
        .expect("reader");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    let batch = arrow_select_concat(&batches, conv);
    (batch, errors)
}

fn arrow_select_concat(batches: &[RecordBatch], conv: &Arc<Conversion>) -> RecordBatch {
    match batches {
        [] => RecordBatch::new_empty(Arc::new(conv.schema().clone())),
        [one] => one.clone(),
        _ => panic!("tests keep to one batch"),
    }
}

#[test]
fn every_type_round_trips() {
    let conv = conversion(
        &[
            ("s", "string"),
            ("vc", "varchar(3)"),
            ("b", "boolean"),
            ("ti", "tinyint"),
            ("si", "smallint"),
            ("i", "int"),
            ("bi", "bigint"),
            ("f", "float"),
            ("d", "double"),
            ("dec", "decimal(10,2)"),
            ("dt", "date"),
            ("ts", "timestamp"),
            ("bin", "binary"),
            ("arr", "array<int>"),
            ("m", "map<string,bigint>"),
            ("st", "struct<x:int,y:array<string>>"),
        ],
        OPENX,
        &[],
    );
    let (batch, errors) = convert(
        &conv,
        &[
            r#"{"s":"héllo","vc":"abcdef","b":true,"ti":-128,"si":32767,"i":"42","bi":9223372036854775807,
                "f":1.5,"d":-2.25e3,"dec":"12.345","dt":"2024-05-01","ts":"2024-05-01T13:07:42.123456789Z",
                "bin":"AAEC/w==","arr":[1,null,3],"m":{"a":1,"b":null},"st":{"X":7,"y":["p","q"]},"extra":{"ignored":[1]}}"#,
            r#"{"s":null}"#,
        ],
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(batch.num_rows(), 2);
    let c = |name: &str| batch.column_by_name(name).expect(name).clone();
    assert_eq!(c("s").as_string::<i32>().value(0), "héllo");
    assert_eq!(
        c("vc").as_string::<i32>().value(0),
        "abc",
        "varchar(3) cuts"
    );
    assert!(c("b").as_boolean().value(0));
    assert_eq!(c("ti").as_primitive::<Int8Type>().value(0), -128);
    assert_eq!(c("si").as_primitive::<Int16Type>().value(0), 32767);
    assert_eq!(c("i").as_primitive::<Int32Type>().value(0), 42);
    assert_eq!(c("bi").as_primitive::<Int64Type>().value(0), i64::MAX);
    assert_eq!(c("f").as_primitive::<Float32Type>().value(0), 1.5);
    assert_eq!(c("d").as_primitive::<Float64Type>().value(0), -2250.0);
    assert_eq!(c("dec").as_primitive::<Decimal128Type>().value(0), 1235);
    assert_eq!(c("dt").as_primitive::<Date32Type>().value(0), 19844);
    assert_eq!(
        c("ts").as_primitive::<TimestampMicrosecondType>().value(0),
        1_714_568_862_123_456
    );
    assert_eq!(c("bin").as_binary::<i32>().value(0), &[0, 1, 2, 255]);
    let arr = c("arr");
    let arr = arr.as_list::<i32>().value(0);
    let arr = arr.as_primitive::<Int32Type>();
    assert_eq!(
        (arr.len(), arr.value(0), arr.is_null(1), arr.value(2)),
        (3, 1, true, 3)
    );
    let m = c("m");
    let m = m.as_map();
    assert_eq!(m.value_length(0), 2);
    assert_eq!(m.keys().as_string::<i32>().value(1), "b");
    assert!(m.values().is_null(1));
    let st = c("st");
    let st = st.as_struct();
    assert_eq!(
        st.column(0).as_primitive::<Int32Type>().value(0),
        7,
        "nested keys ignore case"
    );
    // The second row: everything null but the explicit null string.
    for col in batch.columns() {
        assert!(col.is_null(1));
    }
}

#[test]
fn a_record_that_does_not_fit_leaves_nothing_and_the_rest_is_written() {
    let conv = conversion(
        &[("id", "int"), ("tags", "array<struct<k:string,n:tinyint>>")],
        OPENX,
        &[],
    );
    let (batch, errors) = convert(
        &conv,
        &[
            r#"{"id":1,"tags":[{"k":"a","n":1}]}"#,
            // Fails deep inside, after values of its own were gathered.
            r#"{"id":2,"tags":[{"k":"b","n":1},{"k":"c","n":300}]}"#,
            r#"{"id":3} {"id":4}"#,
            r#"{"id":5} {"id":"x"}"#,
            r#"[{"id":6}]"#,
            "   ",
            r#"{"id":7"#,
            "{\"id\":8,\"ID\":9}",
            "\u{ff}",
        ],
    );
    let ids = batch.column(0).as_primitive::<Int32Type>();
    assert_eq!(ids.values().to_vec(), vec![1, 3, 4]);
    let tags = batch.column(1).as_list::<i32>();
    assert_eq!(
        tags.values().len(),
        1,
        "the failed record's elements are gone"
    );
    assert_eq!(errors.len(), 7, "{errors:?}");
    assert!(
        errors[0].contains("column tags[1].n:") && errors[0].contains("out of range for tinyint"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("column id:") && errors[1].contains("not a whole number"),
        "{}",
        errors[1]
    );
    assert!(errors[2].contains("top-level JSON array"), "{}", errors[2]);
    assert_eq!(
        errors[3],
        "The record was empty or contained only whitespace."
    );
    assert!(errors[4].contains("invalid JSON"), "{}", errors[4]);
    assert!(errors[5].contains("duplicate key"), "{}", errors[5]);
    assert!(errors[6].contains("unexpected character"), "{}", errors[6]);
    let mut w = conv.writer(Vec::new()).expect("writer");
    let why = w
        .append(b"{\"id\":\"\xff\"}")
        .expect("io")
        .expect_err("not UTF-8");
    assert!(why.to_string().contains("not valid UTF-8"), "{why}");
}

#[test]
fn key_rules_of_the_openx_serde() {
    let dots = KeyRules {
        case_insensitive: true,
        dots_to_underscores: true,
    };
    let conv = conversion(
        &[("a_b", "int"), ("ts", "string")],
        dots,
        &[("ts", "timestamp")],
    );
    let (batch, errors) = convert(&conv, &[r#"{"A.B":1,"timestamp":"t","ts":"not me"}"#]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(batch.column(0).as_primitive::<Int32Type>().value(0), 1);
    assert_eq!(
        batch.column(1).as_string::<i32>().value(0),
        "t",
        "the mapped key fills ts"
    );

    let strict = KeyRules {
        case_insensitive: false,
        dots_to_underscores: false,
    };
    let conv = conversion(&[("id", "int")], strict, &[]);
    let (batch, _) = convert(&conv, &[r#"{"ID":1}"#, r#"{"id":2}"#]);
    let ids = batch.column(0).as_primitive::<Int32Type>();
    assert!(ids.is_null(0), "case_insensitive: false does not match ID");
    assert_eq!(ids.value(1), 2);
}

#[test]
fn map_keys_are_compared_as_converted() {
    let conv = conversion(
        &[("m", "map<int,string>"), ("c", "map<char(1),int>")],
        OPENX,
        &[],
    );
    let (batch, errors) = convert(
        &conv,
        &[
            r#"{"m":{"1":"a","01":"b"}}"#,
            r#"{"c":{"ab":1,"ac":2}}"#,
            r#"{"m":{"1":"a","2":"b"}}"#,
        ],
    );
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().all(|e| e.contains("duplicate map key")),
        "{errors:?}"
    );
}

#[test]
fn nested_json_in_a_string_column_is_kept_as_text() {
    let conv = conversion(&[("payload", "string"), ("n", "string")], OPENX, &[]);
    let (batch, errors) = convert(&conv, &[r#"{"payload":{"a":[1,2]},"n":12.50}"#]);
    assert!(errors.is_empty());
    assert_eq!(
        batch.column(0).as_string::<i32>().value(0),
        r#"{"a":[1,2]}"#
    );
    assert_eq!(batch.column(1).as_string::<i32>().value(0), "12.50");
}

#[test]
fn suspending_writes_row_groups_and_the_file_stays_valid() {
    for mode in [Mode::Inline, Mode::Beside] {
        suspending_writes_row_groups(mode);
    }
}

fn suspending_writes_row_groups(mode: Mode) {
    let conv = conversion(&[("id", "bigint")], OPENX, &[]);
    let mut w = conv.writer_in(Vec::new(), mode).expect("writer");
    for i in 0..10 {
        w.append(format!("{{\"id\":{i}}}").as_bytes())
            .expect("io")
            .expect("fits");
        if i % 3 == 2 {
            w.suspend().expect("suspends");
        }
    }
    let file = w.finish().expect("finishes");
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file)).expect("parquet");
    assert_eq!(builder.metadata().num_row_groups(), 4);
    let rows: usize = builder
        .build()
        .expect("reader")
        .map(|b| b.expect("batch").num_rows())
        .sum();
    assert_eq!(rows, 10);
}

/// A conversion of `columns` whose row groups (stripes) hold at most `bytes` in memory.
fn bounded(columns: &[(&str, &str)], bytes: u64) -> Conversion {
    let base = conversion(columns, OPENX, &[]);
    let options = ParquetOptions {
        row_group_buffer_bytes: bytes,
        ..ParquetOptions::DEFAULT
    };
    Conversion::new(
        base.columns.clone(),
        base.rules.clone(),
        Vec::new(),
        options,
        CatalogTable::default(),
    )
}

/// A file's row groups encoded beside the staging thread (`segments`) have the same bytes as
/// when encoded on it, the rows read back in the order written, over many segments and row
/// groups (some cut by size inside a segment, some by a segment's end).
#[test]
fn row_groups_encoded_beside_make_the_same_file_as_inline() {
    let conv = Arc::new(bounded(
        &[("id", "bigint"), ("noise", "string")],
        128 * 1024,
    ));
    // Noise that does not compress, so that a row group fills inside a segment too.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let records: Vec<String> = (0..200_000)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            format!(r#"{{"id":{i},"noise":"{state:016x}"}}"#)
        })
        .collect();
    let write = |mode: Mode| {
        let mut w = conv.writer_in(Vec::new(), mode).expect("writer");
        for (i, r) in records.iter().enumerate() {
            w.append(r.as_bytes()).expect("io").expect("fits");
            if i == 101_000 {
                w.suspend().expect("suspends");
            }
        }
        w.finish().expect("finishes")
    };
    let beside = write(Mode::Beside);
    assert!(beside == write(Mode::Inline), "the same bytes either way");
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(beside)).expect("parquet");
    let groups = builder.metadata().num_row_groups();
    assert!(groups >= 20, "{groups} row groups");
    // Each keeps to the bound, give or take the estimate's error (a batch is split as
    // parquet's ArrowWriter splits one), unless one batch alone is larger (8192 rows here).
    for g in builder.metadata().row_groups() {
        assert!(
            g.compressed_size() <= 128 * 1024 * 5 / 4 || g.num_rows() <= 8192,
            "a row group of {} bytes, {} rows",
            g.compressed_size(),
            g.num_rows()
        );
    }
    let ids: Vec<i64> = builder
        .build()
        .expect("reader")
        .flat_map(|b| {
            let b = b.expect("batch");
            let ids = b.column(0).as_primitive::<Int64Type>().clone();
            ids.values().to_vec()
        })
        .collect();
    assert_eq!(ids, (0..200_000).collect::<Vec<i64>>());
}

/// Mutated records (bytes flipped, inserted, cut) never panic, never leave half a record in the
/// builders, and are accepted only when serde_json also reads them as a run of objects.
#[test]
fn mutated_records_fail_cleanly_and_agree_with_serde_json() {
    let conv = conversion(
        &[
            ("a", "int"),
            ("s", "string"),
            ("l", "array<struct<x:double,t:timestamp>>"),
            ("m", "map<string,decimal(5,2)>"),
        ],
        OPENX,
        &[],
    );
    let seeds = [
        r#"{"a":1,"s":"x\u00e9","l":[{"x":1.5,"t":"2024-05-01T00:00:00Z"}],"m":{"k":"1.25"}}"#,
        r#"{"a":-7,"s":null,"l":[],"m":{}} {"a":2}"#,
        r#"{"zzz":[1,{"y":[true,false,null]}],"s":"plain"}"#,
    ];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut w = conv.writer(Vec::new()).expect("writer");
    let mut accepted = 0;
    let mut total_rows = 0;
    for round in 0..20_000 {
        let mut bytes = seeds[round % seeds.len()].as_bytes().to_vec();
        for _ in 0..1 + next() % 3 {
            let at = (next() as usize) % (bytes.len() + 1);
            match next() % 3 {
                0 if at < bytes.len() => bytes[at] = b"{}[]\",:0-.e\\ntfu1"[(next() % 17) as usize],
                1 => bytes.insert(at, b"{}[]\",:0-.e\\ntfu1"[(next() % 17) as usize]),
                _ => bytes.truncate(at),
            }
        }
        let before = w.root.len();
        match w.append(&bytes).expect("no I/O") {
            Ok(rows) => {
                accepted += 1;
                total_rows += rows;
                // (a full batch goes to the row group and the builders start over)
                assert!(w.root.len() == before + rows || w.root.is_empty());
                let text = std::str::from_utf8(&bytes).expect("accepted means UTF-8");
                let values: Result<Vec<serde_json::Value>, _> =
                    serde_json::Deserializer::from_str(text)
                        .into_iter()
                        .collect();
                let values = values.unwrap_or_else(|e| panic!("serde_json rejects {text:?}: {e}"));
                assert_eq!(values.len(), rows, "{text}");
                assert!(values.iter().all(serde_json::Value::is_object), "{text}");
            }
            Err(_) => assert_eq!(w.root.len(), before, "a failed record left rows behind"),
        }
    }
    assert!(
        accepted > 100,
        "the mutations keep some records valid ({accepted})"
    );
    let file = w.finish().expect("the file still finishes");
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file))
        .expect("and reads back")
        .build()
        .expect("reader");
    let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
    assert_eq!(rows, total_rows, "exactly the accepted rows");
}

/// The same for ORC: stripes encoded beside the staging thread make the same file as inline;
/// orc-rust reads every row back in order, over many stripes, and the file's statistics count
/// every value (summed over the segments' stripes).
#[test]
fn stripes_encoded_beside_make_the_same_file_as_inline() {
    use crate::encode::orc::OrcOptions;
    let conv = Arc::new(
        bounded(&[("id", "bigint"), ("tag", "string")], 128 * 1024).with_orc(OrcOptions::DEFAULT),
    );
    let records: Vec<String> = (0..150_000)
        .map(|i| match i % 5 {
            0 => format!(r#"{{"id":{i}}}"#),
            _ => format!(r#"{{"id":{i},"tag":"t{:x}"}}"#, i * 7919),
        })
        .collect();
    let write = |mode: Mode| {
        let mut w = conv.writer_in(Vec::new(), mode).expect("writer");
        for (i, r) in records.iter().enumerate() {
            w.append(r.as_bytes()).expect("io").expect("fits");
            if i == 77_000 {
                w.suspend().expect("suspends");
            }
        }
        w.finish().expect("finishes")
    };
    let beside = write(Mode::Beside);
    assert!(beside == write(Mode::Inline), "the same bytes either way");
    let builder = orc_rust::ArrowReaderBuilder::try_new(Bytes::from(beside)).expect("an ORC file");
    let meta = builder.file_metadata();
    assert!(
        meta.stripe_metadatas().len() >= 10,
        "{} stripes",
        meta.stripe_metadatas().len()
    );
    assert_eq!(meta.number_of_rows(), 150_000);
    let stats = meta.column_file_statistics();
    assert_eq!(stats[1].number_of_values(), 150_000);
    assert_eq!(stats[2].number_of_values(), 120_000);
    let mut ids = Vec::new();
    for batch in builder.build() {
        let batch = batch.expect("orc-rust decodes the stripe");
        let column = batch.column(0);
        let values = column
            .as_any()
            .downcast_ref::<arrow59::array::Int64Array>()
            .expect("bigint");
        ids.extend(values.values().iter().copied());
    }
    assert_eq!(ids, (0..150_000).collect::<Vec<i64>>());
}

/// A row group keeps to its bound when batches smaller than the bound add up past it: the
/// batch that would cross it is split by the average row so far (as parquet's ArrowWriter
/// splits one), not taken whole.
#[test]
fn a_row_group_keeps_to_its_bound_when_batches_add_up_past_it() {
    let conv = Arc::new(bounded(&[("id", "bigint"), ("n", "string")], 256 * 1024));
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let mut w = conv.writer_in(Vec::new(), Mode::Beside).expect("writer");
    for i in 0..100_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let record = format!(r#"{{"id":{i},"n":"{:08x}"}}"#, state as u32);
        w.append(record.as_bytes()).expect("io").expect("fits");
    }
    let file = w.finish().expect("finishes");
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file)).expect("parquet");
    let sizes: Vec<(i64, i64)> = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| (g.compressed_size(), g.num_rows()))
        .collect();
    assert!(sizes.len() >= 4, "{sizes:?}");
    assert!(
        sizes.iter().all(|(bytes, _)| *bytes <= 256 * 1024),
        "{sizes:?}"
    );
}
