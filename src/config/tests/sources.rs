//! The configuration of sources: Kinesis leases, enhanced fan-out, delivery guarantees per
//! source.

use super::*;

#[test]
fn kinesis_leases_are_checked_and_one_table_serves_one_stream() {
    let stream = |name: &str, leases: &str| {
        format!(
            "
  - name: {name}
    source:
      kinesis_stream:
        stream_name: s
        leases: {leases}
    destinations:
      - directory: out
"
        )
    };
    let good = ok(&format!(
        "delivery_streams:{}",
        stream("a", "{table: fleet-a, worker_id: w1, failover_seconds: 6}")
    ));
    let SourceSpec::Kinesis(k) = &good.streams[0].source else {
        panic!("a Kinesis source")
    };
    let l = k.leases.as_ref().expect("leases");
    assert_eq!(
        (
            l.table.as_str(),
            l.create_table,
            l.worker_id.as_deref(),
            l.failover_seconds
        ),
        ("fleet-a", true, Some("w1"), 6)
    );
    let errs = errors_joined(&errors(&format!(
        "delivery_streams:{}{}{}",
        stream("a", "{table: t!, failover_seconds: 0, create_table: maybe}"),
        stream("b", "{table: shared}"),
        stream("c", "{table: shared, tabel: x}"),
    )));
    for needle in [
        "leases.table: must match [a-zA-Z0-9_.-]{3,255}",
        "leases.failover_seconds: must be 1..=600 (got 0)",
        "leases.create_table: must be true or false",
        "lease table \"shared\" is already used by delivery stream \"b\"",
        "tabel",
    ] {
        assert!(errs.contains(needle), "missing {needle:?} in:\n{errs}");
    }
}

#[test]
fn enhanced_fan_out_names_its_consumer_by_kinesis_rules() {
    let stream = |efo: &str| {
        format!(
            "delivery_streams:
  - name: a
    source:
      kinesis_stream:
        stream_name: s
        enhanced_fan_out: {efo}
    destinations:
      - directory: out
"
        )
    };
    let good = ok(&stream("{consumer_name: fleet.v1_a-b}"));
    let SourceSpec::Kinesis(k) = &good.streams[0].source else {
        panic!("a Kinesis source")
    };
    let f = k.enhanced_fan_out.as_ref().expect("fan-out");
    assert_eq!(f.consumer_name, "fleet.v1_a-b");
    for (bad, needle) in [
        (
            "{consumer_name: 'a b'}",
            "enhanced_fan_out.consumer_name: must match [a-zA-Z0-9_.-]{1,128}",
        ),
        (
            "{consumer_name: ''}",
            "enhanced_fan_out.consumer_name: must match",
        ),
        ("{}", "enhanced_fan_out.consumer_name: required"),
        ("{consumer_name: c, consumer_arn: x}", "consumer_arn"),
    ] {
        let errs = errors_joined(&errors(&stream(bad)));
        assert!(
            errs.contains(needle),
            "{bad}: missing {needle:?} in:\n{errs}"
        );
    }
    let long = format!("{{consumer_name: {}}}", "c".repeat(129));
    assert!(errors_joined(&errors(&stream(&long))).contains("must match"));
}

#[test]
fn delivery_is_at_least_once_by_default_and_exactly_once_for_every_source() {
    let dest = |delivery: &str| {
        format!(
            "delivery_streams:
  - name: a
    source: {{direct_put: {{}}}}
    destinations:
      - directory: out
        {delivery}
"
        )
    };
    let default = ok(&dest(""));
    assert_eq!(
        default.streams[0].destinations[0].delivery,
        Delivery::AtLeastOnce
    );
    let eo = ok(&dest("delivery: exactly_once"));
    assert_eq!(
        eo.streams[0].destinations[0].delivery,
        Delivery::ExactlyOnce
    );
    let errs = errors_joined(&errors(&dest("delivery: twice")));
    assert!(
        errs.contains("delivery: must be one of at_least_once | exactly_once (got \"twice\")"),
        "{errs}"
    );
    let kinesis = |leases: &str| {
        format!(
            "delivery_streams:
  - name: k
    source: {{kinesis_stream: {{stream_name: s{leases}}}}}
    destinations:
      - directory: out
        delivery: exactly_once
"
        )
    };
    let files = ok(&kinesis(""));
    assert_eq!(
        files.streams[0].destinations[0].delivery,
        Delivery::ExactlyOnce,
        "per-shard objects, checkpoints in files"
    );
    let fleet = ok(&kinesis(", leases: {table: ks_leases}"));
    assert_eq!(
        fleet.streams[0].destinations[0].delivery,
        Delivery::ExactlyOnce,
        "journals in the lease items"
    );
}
