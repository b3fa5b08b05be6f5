//! Who may reach the API and how: `auth` (SigV4 credentials and IAM-shaped policies, or `none`),
//! `tls`, `server` (connection limits and timeouts) and `metrics_listen`. Secure by default: a
//! listen address that is not loopback needs `auth`, or `auth: none` said explicitly.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::decode::{Ctx, MapReader, Path};
use super::model::{AuthConfig, ServerLimits, TlsConfig};
use super::yaml::{Kind, Node};
use crate::auth::policy::{Effect, Match, Policy, Statement};

/// `auth`: `none`, or `{credentials_file, policies}`.
pub(super) fn decode_auth(ctx: &mut Ctx, node: &Node, path: Path) -> Option<AuthConfig> {
    if let Kind::Scalar { value, .. } = &node.kind {
        if value == "none" {
            return Some(AuthConfig::None);
        }
        ctx.error(
            node.mark,
            &path,
            format!(
                "must be `none` or a mapping with credentials_file and policies (got {value:?})"
            ),
        );
        return None;
    }
    let mut m = MapReader::new(ctx, node, path)?;
    let file = m.require(ctx, "credentials_file").and_then(|n| {
        ctx.string(n, &m.path.key("credentials_file"))
            .map(PathBuf::from)
    });
    let policies = m.require(ctx, "policies").and_then(|n| {
        let path = m.path.key("policies");
        let entries = ctx.entries(n, &path, "of principal names to IAM policies")?;
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (k, v) in entries {
            let Some(name) = ctx.string(k, &path) else {
                ok = false;
                continue;
            };
            match decode_policy(ctx, v, path.key(&name)) {
                Some(p) => {
                    out.insert(name, p);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    });
    m.finish(ctx);
    Some(AuthConfig::SigV4 {
        credentials_file: file?,
        policies: policies?,
    })
}

/// An identity-based IAM policy: `Version`, `Statement` (one or a list).
fn decode_policy(ctx: &mut Ctx, node: &Node, path: Path) -> Option<Policy> {
    let mut m = MapReader::new(ctx, node, path)?;
    if let Some(v) = m.get("Version") {
        let p = m.path.key("Version");
        if let Some(text) = ctx.string(v, &p)
            && text != "2012-10-17"
            && text != "2008-10-17"
        {
            ctx.error(v.mark, &p, format!("must be 2012-10-17 (got {text:?})"));
        }
    }
    let statements = m.require(ctx, "Statement").and_then(|n| {
        let path = m.path.key("Statement");
        let items: Vec<(Path, &Node)> = match &n.kind {
            Kind::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, s)| (path.index(i), s))
                .collect(),
            _ => vec![(path.clone(), n)],
        };
        let decoded: Vec<Option<Statement>> = items
            .into_iter()
            .map(|(p, s)| decode_statement(ctx, s, p))
            .collect();
        decoded.into_iter().collect::<Option<Vec<_>>>()
    });
    m.finish(ctx);
    Some(Policy {
        statements: statements?,
    })
}

fn decode_statement(ctx: &mut Ctx, node: &Node, path: Path) -> Option<Statement> {
    let mut m = MapReader::new(ctx, node, path)?;
    let _ = m.get("Sid");
    let effect = m.require(ctx, "Effect").and_then(|n| {
        match ctx.one_of(n, &m.path.key("Effect"), &["Allow", "Deny"])? {
            0 => Some(Effect::Allow),
            _ => Some(Effect::Deny),
        }
    });
    let actions = either(ctx, &mut m, "Action", "NotAction", true);
    let resources = either(ctx, &mut m, "Resource", "NotResource", false);
    for refused in ["Condition", "Principal", "NotPrincipal"] {
        if let Some(n) = m.has(refused) {
            ctx.error(
                n.mark,
                &m.path.key(refused),
                "is not supported by firehosed (identity policies of Effect, Action/NotAction and Resource/NotResource)",
            );
        }
    }
    m.finish(ctx);
    Some(Statement {
        effect: effect?,
        actions: actions?,
        resources: resources?,
    })
}

/// Exactly one of `key` and `not_key`, a string or a list of strings.
fn either(
    ctx: &mut Ctx,
    m: &mut MapReader,
    key: &'static str,
    not_key: &'static str,
    actions: bool,
) -> Option<Match> {
    let (plain, not) = (m.get(key), m.get(not_key));
    let (node, name, negated) = match (plain, not) {
        (Some(n), None) => (n, key, false),
        (None, Some(n)) => (n, not_key, true),
        _ => {
            ctx.error(
                m.mark(),
                &m.path,
                format!("exactly one of {key}, {not_key} is required"),
            );
            return None;
        }
    };
    let path = m.path.key(name);
    let values: Vec<String> = match &node.kind {
        Kind::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, n)| ctx.string(n, &path.index(i)))
            .collect::<Option<Vec<_>>>()?,
        _ => vec![ctx.string(node, &path)?],
    };
    if actions {
        for a in &values {
            let lower = a.to_ascii_lowercase();
            if lower != "*" && !lower.starts_with("firehose:") {
                ctx.error(
                    node.mark,
                    &path,
                    format!("{a:?} is not a firehose action (firehose:PutRecord, firehose:Put*, firehose:*, *)"),
                );
                return None;
            }
        }
    }
    Some(if negated {
        Match::NoneOf(values)
    } else {
        Match::Any(values)
    })
}

/// `tls: {cert_file, key_file}` (PEM files).
pub(super) fn decode_tls(ctx: &mut Ctx, node: &Node, path: Path) -> Option<TlsConfig> {
    let mut m = MapReader::new(ctx, node, path)?;
    let cert = m
        .require(ctx, "cert_file")
        .and_then(|n| ctx.string(n, &m.path.key("cert_file")).map(PathBuf::from));
    let key = m
        .require(ctx, "key_file")
        .and_then(|n| ctx.string(n, &m.path.key("key_file")).map(PathBuf::from));
    m.finish(ctx);
    Some(TlsConfig {
        cert_file: cert?,
        key_file: key?,
    })
}

/// `server`: connection limits and timeouts, each with a default.
pub(super) fn decode_server(ctx: &mut Ctx, node: &Node, path: Path) -> Option<ServerLimits> {
    let mut m = MapReader::new(ctx, node, path)?;
    let d = ServerLimits::DEFAULT;
    let mut int = |ctx: &mut Ctx, key: &'static str, range, default| match m.get(key) {
        Some(n) => ctx.int_in(n, &m.path.key(key), range),
        None => Some(default),
    };
    let max_connections = int(ctx, "max_connections", 1..=1_000_000, d.max_connections);
    let header = int(
        ctx,
        "header_timeout_seconds",
        1..=3600,
        d.header_timeout_seconds,
    );
    let idle = int(
        ctx,
        "idle_timeout_seconds",
        1..=3600,
        d.idle_timeout_seconds,
    );
    let body = int(
        ctx,
        "body_timeout_seconds",
        1..=3600,
        d.body_timeout_seconds,
    );
    m.finish(ctx);
    Some(ServerLimits {
        max_connections: max_connections?,
        header_timeout_seconds: header?,
        idle_timeout_seconds: idle?,
        body_timeout_seconds: body?,
    })
}

/// A non-loopback listen address needs `auth` (or `auth: none` said explicitly).
pub(super) fn check_exposure(
    ctx: &mut Ctx,
    listen: SocketAddr,
    auth: &AuthConfig,
    mark: super::yaml::Mark,
) {
    if matches!(auth, AuthConfig::Unset) && !listen.ip().is_loopback() {
        ctx.error(
            mark,
            &Path::root().key("listen"),
            format!(
                "{listen} is not a loopback address: other hosts may reach firehosed only with auth (auth.credentials_file and auth.policies, see docs/security.md), or with `auth: none` written out"
            ),
        );
    }
}
