//! Who may do what: requests signed with AWS Signature Version 4 by an access key of the
//! credentials file (`credentials`, `sigv4`), allowed by that principal's IAM-shaped policy
//! (`policy`). Below `api` (which calls it at its edge, before a handler acts) and `config`
//! (which checks the policies).

pub(crate) mod credentials;
pub(crate) mod policy;
pub(crate) mod sigv4;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use credentials::{Credentials, CredentialsError};
use policy::{Decision, Policy};

use crate::sync::ReadWrite;

/// The service name clients sign for.
pub(crate) const SERVICE: &str = "firehose";

/// Why a request is refused; each is an AWS error kind (mapped in `api::error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("Missing Authentication Token")]
    Missing,
    #[error("{0}")]
    Incomplete(String),
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    BadSignature,
    /// Outside the five-minute window.
    #[error("{0}")]
    Expired(String),
    /// A scope (service, date) or payload hash that does not fit.
    #[error("{0}")]
    WrongScope(String),
    /// AWS's message, with its reason (IAM's "access denied error messages"); an action on no
    /// resource in particular (ListDeliveryStreams) names none.
    #[error("{}", denied_message(principal, action, resource, *explicit))]
    Denied {
        principal: String,
        action: String,
        resource: String,
        /// A Deny statement matched (else no Allow did).
        explicit: bool,
    },
}

fn denied_message(principal: &str, action: &str, resource: &str, explicit: bool) -> String {
    let on = if resource == "*" {
        String::new()
    } else {
        format!(" on resource: {resource}")
    };
    let why = if explicit {
        "with an explicit deny in an identity-based policy".to_string()
    } else {
        format!("because no identity-based policy allows the {action} action")
    };
    format!("User: {principal} is not authorized to perform: {action}{on} {why}")
}

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    pub(crate) name: String,
}

/// The credentials (re-read on reload) and every principal's policy.
#[derive(Debug)]
pub(crate) struct Authenticator {
    file: PathBuf,
    credentials: RwLock<Arc<Credentials>>,
    policies: RwLock<Arc<BTreeMap<String, Policy>>>,
    account_id: String,
}

impl Authenticator {
    /// Reads the credentials file (which must not be world-readable).
    pub(crate) fn load(
        file: PathBuf,
        policies: BTreeMap<String, Policy>,
        account_id: String,
    ) -> Result<Authenticator, CredentialsError> {
        let credentials = Credentials::load(&file)?;
        let auth = Authenticator {
            file,
            credentials: RwLock::new(Arc::new(credentials)),
            policies: RwLock::new(Arc::new(policies)),
            account_id,
        };
        auth.warn_unmatched();
        Ok(auth)
    }

    /// Reads the credentials file again (key rotation) and takes the reloaded file's policies;
    /// on a failure nothing changes.
    pub(crate) fn reload(
        &self,
        policies: BTreeMap<String, Policy>,
    ) -> Result<usize, CredentialsError> {
        let fresh = Credentials::load(&self.file)?;
        let n = fresh.keys.len();
        *self.credentials.writing() = Arc::new(fresh);
        *self.policies.writing() = Arc::new(policies);
        self.warn_unmatched();
        Ok(n)
    }

    /// A principal without a policy may do nothing; a policy without a principal is unused.
    fn warn_unmatched(&self) {
        let credentials = self.credentials.reading().clone();
        let policies = self.policies.reading().clone();
        for s in credentials.keys.values() {
            if !policies.contains_key(&s.principal) {
                tracing::warn!(principal = %s.principal,
                    "this principal has no policy in auth.policies: every request it signs is denied");
            }
        }
        for name in policies.keys() {
            if !credentials.keys.values().any(|s| &s.principal == name) {
                tracing::warn!(principal = %name, "auth.policies names a principal that has no key in the credentials file");
            }
        }
    }

    /// The principal that signed `request`.
    pub(crate) fn authenticate(
        &self,
        request: &sigv4::Arrived<'_>,
    ) -> Result<Principal, AuthError> {
        let credentials = self.credentials.reading().clone();
        let name = sigv4::verify(request, &credentials, SERVICE, std::time::SystemTime::now())?;
        Ok(Principal { name })
    }

    /// Whether `principal` may perform `action` (`firehose:PutRecord`) on `resource` (an ARN).
    pub(crate) fn authorize(
        &self,
        principal: &Principal,
        action: &str,
        resource: &str,
    ) -> Result<(), AuthError> {
        let policies = self.policies.reading().clone();
        let decision = policies
            .get(&principal.name)
            .map_or(Decision::NotAllowed, |p| p.decide(action, resource));
        match decision {
            Decision::Allowed => Ok(()),
            Decision::Denied | Decision::NotAllowed => Err(AuthError::Denied {
                principal: self.principal_arn(principal),
                action: action.to_string(),
                resource: resource.to_string(),
                explicit: decision == Decision::Denied,
            }),
        }
    }

    pub(crate) fn principal_arn(&self, principal: &Principal) -> String {
        format!("arn:aws:iam::{}:user/{}", self.account_id, principal.name)
    }
}
