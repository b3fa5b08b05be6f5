//! `source.kinesis_stream`: the stream (by name or ARN), its endpoint, where reading starts,
//! the reader's limits and the fleet's lease table. Their ranges and formats are
//! `spec::check`'s.

use super::decode::{Ctx, MapReader, Path};
use super::destination::{int_or, optional_string};
use super::yaml::Node;
use crate::spec::{FanOutSpec, KinesisSourceSpec, KinesisStreamRef, LeaseSpec, StartingPosition};

pub(super) fn decode(ctx: &mut Ctx, node: &Node, path: Path) -> Option<KinesisSourceSpec> {
    let mut m = MapReader::new(ctx, node, path)?;
    let stream = decode_stream_ref(ctx, &mut m);
    let endpoint_url = optional_string(ctx, &mut m, "endpoint_url");
    let starting_position = decode_starting_position(ctx, &mut m);
    let discovery_interval_seconds = int_or(ctx, &mut m, "discovery_interval_seconds", 10);
    let get_records_limit = int_or(ctx, &mut m, "get_records_limit", 10_000);
    let max_buffered_mib = int_or(ctx, &mut m, "max_buffered_mib", 64);
    let leases = match m.get("leases") {
        Some(n) => Some(decode_leases(ctx, n, m.path.key("leases"))?),
        None => None,
    };
    let enhanced_fan_out = match m.get("enhanced_fan_out") {
        Some(n) => Some(decode_fan_out(ctx, n, m.path.key("enhanced_fan_out"))?),
        None => None,
    };
    m.finish(ctx);
    Some(KinesisSourceSpec {
        stream: stream?,
        endpoint_url,
        starting_position: starting_position?,
        discovery_interval_seconds,
        max_buffered_mib,
        get_records_limit,
        leases,
        enhanced_fan_out,
    })
}

/// `enhanced_fan_out`: the consumer's name (required).
fn decode_fan_out(ctx: &mut Ctx, node: &Node, path: Path) -> Option<FanOutSpec> {
    let mut m = MapReader::new(ctx, node, path)?;
    let consumer_name = match m.get("consumer_name") {
        Some(n) => ctx.string(n, &m.path.key("consumer_name")),
        None => {
            ctx.error(m.mark(), &m.path.key("consumer_name"), "required");
            None
        }
    };
    m.finish(ctx);
    Some(FanOutSpec {
        consumer_name: consumer_name?,
    })
}

/// `leases`: the table, its endpoint, this instance's id, the failover time.
fn decode_leases(ctx: &mut Ctx, node: &Node, path: Path) -> Option<LeaseSpec> {
    let mut m = MapReader::new(ctx, node, path)?;
    let table = match m.get("table") {
        Some(n) => ctx.string(n, &m.path.key("table")),
        None => {
            ctx.error(m.mark(), &m.path.key("table"), "required");
            None
        }
    };
    let endpoint_url = optional_string(ctx, &mut m, "endpoint_url");
    let create_table = match m.get("create_table") {
        Some(n) => ctx.bool(n, &m.path.key("create_table")).unwrap_or(true),
        None => true,
    };
    let worker_id = optional_string(ctx, &mut m, "worker_id");
    let failover_seconds = int_or(ctx, &mut m, "failover_seconds", 10);
    m.finish(ctx);
    Some(LeaseSpec {
        table: table?,
        endpoint_url,
        create_table,
        worker_id,
        failover_seconds,
    })
}

/// `stream_name` or `stream_arn`, exactly one.
fn decode_stream_ref(ctx: &mut Ctx, m: &mut MapReader) -> Option<KinesisStreamRef> {
    let name = m.get("stream_name");
    let arn = m.get("stream_arn");
    match (name, arn) {
        (Some(n), None) => ctx
            .string(n, &m.path.key("stream_name"))
            .map(KinesisStreamRef::Name),
        (None, Some(a)) => ctx
            .string(a, &m.path.key("stream_arn"))
            .map(KinesisStreamRef::Arn),
        (Some(_), Some(_)) => {
            ctx.error(
                m.mark(),
                &m.path,
                "exactly one of stream_name, stream_arn (got both)",
            );
            None
        }
        (None, None) => {
            ctx.error(
                m.mark(),
                &m.path,
                "exactly one of stream_name, stream_arn is required",
            );
            None
        }
    }
}

/// `starting_position` (LATEST by default) and the `starting_timestamp` AT_TIMESTAMP needs.
fn decode_starting_position(ctx: &mut Ctx, m: &mut MapReader) -> Option<StartingPosition> {
    let position = match m.get("starting_position") {
        Some(n) => ctx.one_of(
            n,
            &m.path.key("starting_position"),
            &["LATEST", "TRIM_HORIZON", "AT_TIMESTAMP"],
        ),
        None => Some(0),
    };
    let timestamp = m.get("starting_timestamp").map(|n| {
        let path = m.path.key("starting_timestamp");
        let text = ctx.string(n, &path)?;
        match chrono::DateTime::parse_from_rfc3339(text.trim()) {
            Ok(t) => Some(t.timestamp_millis()),
            Err(_) => {
                ctx.error(
                    n.mark,
                    &path,
                    format!("must be an RFC 3339 time such as 2026-01-01T00:00:00Z (got {text:?})"),
                );
                None
            }
        }
    });
    match (position, timestamp) {
        (Some(0), None) => Some(StartingPosition::Latest),
        (Some(1), None) => Some(StartingPosition::TrimHorizon),
        (Some(2), Some(Some(t))) => Some(StartingPosition::AtTimestamp(t)),
        (Some(2), None) => {
            ctx.error(
                m.mark(),
                &m.path.key("starting_timestamp"),
                "required with starting_position AT_TIMESTAMP",
            );
            None
        }
        (Some(_), Some(Some(_))) => {
            ctx.error(
                m.mark(),
                &m.path.key("starting_timestamp"),
                "only allowed with starting_position AT_TIMESTAMP",
            );
            None
        }
        _ => None,
    }
}
