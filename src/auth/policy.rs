//! IAM-policy-shaped permissions (identity-based policies, as an operator pastes them from
//! AWS): statements that Allow or Deny actions (`firehose:PutRecord`, `firehose:Put*`,
//! `firehose:*`) on resources (delivery-stream ARNs with `*` and `?`). As IAM evaluates them
//! (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
//! an explicit Deny wins, else an Allow allows, else the request is denied.

/// One identity's policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Policy {
    pub(crate) statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement {
    pub(crate) effect: Effect,
    pub(crate) actions: Match,
    pub(crate) resources: Match,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// `Action` / `Resource` (any pattern matches) or `NotAction` / `NotResource` (none does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Match {
    Any(Vec<String>),
    NoneOf(Vec<String>),
}

/// What a policy says of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Allowed,
    /// A statement denies it.
    Denied,
    /// No statement allows it (IAM's implicit deny).
    NotAllowed,
}

impl Match {
    /// Actions match without regard to case (IAM's rule); resources (ARNs) exactly.
    fn matches(&self, value: &str, ignore_case: bool) -> bool {
        let any = |patterns: &[String]| patterns.iter().any(|p| glob(p, value, ignore_case));
        match self {
            Match::Any(p) => any(p),
            Match::NoneOf(p) => !any(p),
        }
    }
}

impl Policy {
    pub(crate) fn decide(&self, action: &str, resource: &str) -> Decision {
        let mut allowed = false;
        for s in &self.statements {
            if s.actions.matches(action, true) && s.resources.matches(resource, false) {
                match s.effect {
                    Effect::Deny => return Decision::Denied,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed {
            Decision::Allowed
        } else {
            Decision::NotAllowed
        }
    }
}

/// IAM's wildcards: `*` any run of characters (also none), `?` any one character.
pub(crate) fn glob(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let eq = |a: char, b: char| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let (mut pi, mut vi) = (0, 0);
    // Where the last `*` was, and the value position it is trying to cover up to.
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && eq(p[pi], v[vi]))) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(actions: &[&str], resources: &[&str]) -> Statement {
        Statement {
            effect: Effect::Allow,
            actions: Match::Any(actions.iter().map(|s| s.to_string()).collect()),
            resources: Match::Any(resources.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn wildcards_as_iam_has_them() {
        assert!(glob("firehose:Put*", "firehose:PutRecordBatch", true));
        assert!(glob("firehose:*", "firehose:DeleteDeliveryStream", true));
        assert!(glob("FIREHOSE:putrecord", "firehose:PutRecord", true));
        assert!(!glob(
            "firehose:Put*",
            "firehose:DeleteDeliveryStream",
            true
        ));
        assert!(glob(
            "arn:aws:firehose:*:*:deliverystream/logs-*",
            "arn:aws:firehose:us-east-1:000000000000:deliverystream/logs-web",
            false
        ));
        assert!(glob("a?c", "abc", false) && !glob("a?c", "ac", false));
        assert!(glob("*", "", false) && glob("**", "x", false));
        assert!(
            !glob("arn:*:Logs", "arn:x:logs", false),
            "resources are case-sensitive"
        );
        assert!(glob("*a*b*c", "xxaxxbxxbxxc", false));
        assert!(!glob("*a*b*c", "xxaxxbxxbxx", false));
    }

    #[test]
    fn an_explicit_deny_wins_and_nothing_allowed_is_denied() {
        let arn = "arn:aws:firehose:us-east-1:1:deliverystream/logs-web";
        let mut p = Policy {
            statements: vec![allow(&["firehose:*"], &["*"])],
        };
        assert_eq!(p.decide("firehose:PutRecord", arn), Decision::Allowed);
        p.statements.push(Statement {
            effect: Effect::Deny,
            actions: Match::Any(vec!["firehose:Delete*".into()]),
            resources: Match::Any(vec!["*".into()]),
        });
        assert_eq!(
            p.decide("firehose:DeleteDeliveryStream", arn),
            Decision::Denied
        );
        assert_eq!(p.decide("firehose:PutRecord", arn), Decision::Allowed);
        assert_eq!(
            Policy::default().decide("firehose:PutRecord", arn),
            Decision::NotAllowed
        );
        let not = Policy {
            statements: vec![Statement {
                effect: Effect::Allow,
                actions: Match::NoneOf(vec!["firehose:Delete*".into()]),
                resources: Match::NoneOf(vec!["*:deliverystream/secret".into()]),
            }],
        };
        assert_eq!(not.decide("firehose:PutRecord", arn), Decision::Allowed);
        assert_eq!(
            not.decide("firehose:DeleteDeliveryStream", arn),
            Decision::NotAllowed
        );
        assert_eq!(
            not.decide(
                "firehose:PutRecord",
                "arn:aws:firehose:r:1:deliverystream/secret"
            ),
            Decision::NotAllowed
        );
    }
}
