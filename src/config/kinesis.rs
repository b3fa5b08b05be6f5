//! `source.kinesis_stream`: the stream (by name or ARN), its endpoint, where reading starts,
//! and the reader's limits.

use super::decode::{Ctx, MapReader, Path};
use super::destination;
use super::model::{KinesisSourceConfig, KinesisStreamRef, LeaseConfig, StartingPosition};
use super::yaml::Node;

pub(super) fn decode(ctx: &mut Ctx, node: &Node, path: Path) -> Option<KinesisSourceConfig> {
    let mut m = MapReader::new(ctx, node, path)?;
    let stream = decode_stream_ref(ctx, &mut m);
    let endpoint_url = m.get("endpoint_url").and_then(|n| {
        let path = m.path.key("endpoint_url");
        let url = ctx.string(n, &path)?;
        destination::check_url(ctx, n.mark, &path, &url).then_some(url)
    });
    let starting_position = decode_starting_position(ctx, &mut m);
    let discovery = match m.get("discovery_interval_seconds") {
        Some(n) => ctx.int_in(n, &m.path.key("discovery_interval_seconds"), 1..=3600),
        None => Some(10),
    };
    let limit = match m.get("get_records_limit") {
        Some(n) => ctx.int_in(n, &m.path.key("get_records_limit"), 1..=10_000),
        None => Some(10_000),
    };
    let buffered = match m.get("max_buffered_mib") {
        Some(n) => ctx.int_in(n, &m.path.key("max_buffered_mib"), 1..=4096),
        None => Some(64),
    };
    let leases = m
        .get("leases")
        .map(|n| decode_leases(ctx, n, m.path.key("leases")));
    m.finish(ctx);
    Some(KinesisSourceConfig {
        stream: stream?,
        endpoint_url,
        starting_position: starting_position?,
        discovery_interval_seconds: discovery?,
        max_buffered_mib: buffered?,
        get_records_limit: limit?,
        leases: match leases {
            Some(l) => Some(l?),
            None => None,
        },
    })
}

/// `leases`: the table (DynamoDB's naming rules), its endpoint, this instance's id, the
/// failover time.
fn decode_leases(ctx: &mut Ctx, node: &Node, path: Path) -> Option<LeaseConfig> {
    let mut m = MapReader::new(ctx, node, path)?;
    let table = match m.get("table") {
        Some(n) => ctx.string(n, &m.path.key("table")).and_then(|v| {
            // DynamoDB: 3-255 characters of [a-zA-Z0-9_.-].
            let ok = (3..=255).contains(&v.len())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                ctx.error(
                    n.mark,
                    &m.path.key("table"),
                    format!("must match [a-zA-Z0-9_.-]{{3,255}} (got {v:?})"),
                );
            }
            ok.then_some(v)
        }),
        None => {
            ctx.error(m.mark(), &m.path.key("table"), "required");
            None
        }
    };
    let endpoint_url = m.get("endpoint_url").and_then(|n| {
        let path = m.path.key("endpoint_url");
        let url = ctx.string(n, &path)?;
        destination::check_url(ctx, n.mark, &path, &url).then_some(url)
    });
    let create_table = match m.get("create_table") {
        Some(n) => ctx.bool(n, &m.path.key("create_table")),
        None => Some(true),
    };
    let worker_id = m.get("worker_id").and_then(|n| {
        let path = m.path.key("worker_id");
        let v = ctx.string(n, &path)?;
        let ok = (1..=256).contains(&v.len()) && !v.chars().any(char::is_control);
        if !ok {
            ctx.error(
                n.mark,
                &path,
                format!("must be 1-256 characters, no control characters (got {v:?})"),
            );
        }
        ok.then_some(v)
    });
    let failover = match m.get("failover_seconds") {
        Some(n) => ctx.int_in(n, &m.path.key("failover_seconds"), 1..=600),
        None => Some(10),
    };
    m.finish(ctx);
    Some(LeaseConfig {
        table: table?,
        endpoint_url,
        create_table: create_table?,
        worker_id,
        failover_seconds: failover?,
    })
}

/// `stream_name` or `stream_arn`, exactly one.
fn decode_stream_ref(ctx: &mut Ctx, m: &mut MapReader) -> Option<KinesisStreamRef> {
    let name = m.get("stream_name");
    let arn = m.get("stream_arn");
    match (name, arn) {
        (Some(n), None) => ctx.string(n, &m.path.key("stream_name")).and_then(|v| {
            let ok = (1..=128).contains(&v.len())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                ctx.error(
                    n.mark,
                    &m.path.key("stream_name"),
                    format!("must match [a-zA-Z0-9_.-]{{1,128}} (got {v:?})"),
                );
            }
            ok.then_some(KinesisStreamRef::Name(v))
        }),
        (None, Some(a)) => ctx.string(a, &m.path.key("stream_arn")).and_then(|v| {
            let ok = v.starts_with("arn:") && v.contains(":kinesis:") && v.contains(":stream/");
            if !ok {
                ctx.error(
                    a.mark,
                    &m.path.key("stream_arn"),
                    format!("must be arn:aws:kinesis:REGION:ACCOUNT:stream/NAME (got {v:?})"),
                );
            }
            ok.then_some(KinesisStreamRef::Arn(v))
        }),
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
