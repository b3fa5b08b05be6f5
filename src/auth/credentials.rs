//! The credentials file: the AWS credentials-file format (what `aws configure` writes), one
//! `[principal]` section per identity with its `aws_access_key_id` and `aws_secret_access_key`.
//! It holds secrets, so it must not be readable by every user of the machine, and it lives
//! outside the YAML configuration (which is often committed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why the credentials file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CredentialsError {
    #[error("cannot read the credentials file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the credentials file {} is readable by every user (mode {mode:o}): chmod 600 it, owned by the service user",
        path.display()
    )]
    WorldReadable { path: PathBuf, mode: u32 },
    #[error("the credentials file {}, line {line}: {what}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        what: &'static str,
    },
    #[error("the credentials file {}: [{principal}] needs aws_access_key_id and aws_secret_access_key", path.display())]
    Incomplete { path: PathBuf, principal: String },
    #[error("the credentials file {}: access key id {key_id} is given to two principals", path.display())]
    SharedKey { path: PathBuf, key_id: String },
    #[error("the credentials file {} names no principal", path.display())]
    Empty { path: PathBuf },
}

/// One identity's access key.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret {
    pub(crate) principal: String,
    pub(crate) secret_access_key: String,
}

// Never print a secret, even in a debug dump.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret {{ principal: {:?}, .. }}", self.principal)
    }
}

/// Access key id -> its principal and secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) keys: BTreeMap<String, Secret>,
}

impl Credentials {
    /// Reads `path`, which must not be world-readable.
    pub(crate) fn load(path: &Path) -> Result<Credentials, CredentialsError> {
        use std::os::unix::fs::PermissionsExt;
        let read = |source| CredentialsError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mode = std::fs::metadata(path).map_err(read)?.permissions().mode();
        if mode & 0o004 != 0 {
            return Err(CredentialsError::WorldReadable {
                path: path.to_path_buf(),
                mode: mode & 0o777,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        parse(path, &text)
    }

    /// The principal and secret of an access key id.
    pub(crate) fn get(&self, key_id: &str) -> Option<&Secret> {
        self.keys.get(key_id)
    }
}

/// The sections of the file (principal -> its key id and secret).
fn parse(path: &Path, text: &str) -> Result<Credentials, CredentialsError> {
    let syntax = |line: usize, what| CredentialsError::Syntax {
        path: path.to_path_buf(),
        line,
        what,
    };
    let mut sections: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| syntax(i + 1, "a section header needs its closing ]"))?
                .trim();
            if name.is_empty() {
                return Err(syntax(i + 1, "a section needs a principal name"));
            }
            sections.push((name.to_string(), None, None));
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| syntax(i + 1, "expected key = value"))?;
        let Some(section) = sections.last_mut() else {
            return Err(syntax(i + 1, "a key before the first [principal] section"));
        };
        let value = value.trim().to_string();
        match key.trim() {
            "aws_access_key_id" => section.1 = Some(value),
            "aws_secret_access_key" => section.2 = Some(value),
            // Other keys of the format (region, output, ...) mean nothing here.
            _ => {}
        }
    }
    let mut keys = BTreeMap::new();
    for (principal, id, secret) in sections {
        let (Some(id), Some(secret)) = (id, secret) else {
            return Err(CredentialsError::Incomplete {
                path: path.to_path_buf(),
                principal,
            });
        };
        if id.is_empty() || secret.is_empty() {
            return Err(CredentialsError::Incomplete {
                path: path.to_path_buf(),
                principal,
            });
        }
        let secret = Secret {
            principal,
            secret_access_key: secret,
        };
        if keys.insert(id.clone(), secret).is_some() {
            return Err(CredentialsError::SharedKey {
                path: path.to_path_buf(),
                key_id: id,
            });
        }
    }
    if keys.is_empty() {
        return Err(CredentialsError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(Credentials { keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(mode: u32, text: &str) -> (tempfile::TempDir, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("credentials");
        std::fs::write(&path, text).expect("written");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        (dir, path)
    }

    #[test]
    fn sections_become_principals() {
        let (_dir, path) = write(
            0o600,
            "# who may send\n[producer]\naws_access_key_id = AKIDPRODUCER\naws_secret_access_key = s3cr3t/+=\nregion = eu-west-1\n\n[ops]\naws_access_key_id=AKIDOPS\naws_secret_access_key=other\n",
        );
        let c = Credentials::load(&path).expect("loads");
        assert_eq!(c.keys.len(), 2);
        let p = c.get("AKIDPRODUCER").expect("producer");
        assert_eq!(
            (p.principal.as_str(), p.secret_access_key.as_str()),
            ("producer", "s3cr3t/+=")
        );
        assert_eq!(c.get("AKIDOPS").expect("ops").principal, "ops");
        assert!(
            !format!("{p:?}").contains("s3cr3t"),
            "no secret in a debug dump"
        );
    }

    /// Rotation with an overlap: the new key in a second section of the same principal, both
    /// valid until the old section is removed.
    #[test]
    fn a_principal_may_hold_two_keys() {
        let (_dir, path) = write(
            0o600,
            "[producer]\naws_access_key_id = OLD\naws_secret_access_key = a\n[producer]\naws_access_key_id = NEW\naws_secret_access_key = b\n",
        );
        let c = Credentials::load(&path).expect("loads");
        assert_eq!(c.get("OLD").expect("old").principal, "producer");
        assert_eq!(c.get("NEW").expect("new").principal, "producer");
    }

    #[test]
    fn a_world_readable_or_broken_file_is_refused() {
        let ok = "[p]\naws_access_key_id = A\naws_secret_access_key = S\n";
        let (_d, path) = write(0o644, ok);
        assert!(matches!(
            Credentials::load(&path),
            Err(CredentialsError::WorldReadable { mode: 0o644, .. })
        ));
        for (text, want) in [
            ("[p\naws_access_key_id = A\n", "closing"),
            ("aws_access_key_id = A\n", "before the first"),
            ("[p]\naws_access_key_id = A\n", "needs aws_access_key_id"),
            (
                "[a]\naws_access_key_id = A\naws_secret_access_key = S\n[b]\naws_access_key_id = A\naws_secret_access_key = T\n",
                "two principals",
            ),
            ("# nothing\n", "no principal"),
            ("[p]\njust text\n", "key = value"),
        ] {
            let (_d, path) = write(0o600, text);
            let e = Credentials::load(&path).expect_err(text).to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
