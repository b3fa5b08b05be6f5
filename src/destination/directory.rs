//! The `directory` destination: the same keys as S3, as files under a local folder, each
//! written atomically (staging file fsync'd, renamed into place, folder fsync'd). Exactly-once
//! objects are linked into place instead, which fails if the name exists (an exclusive create).

use std::io;
use std::path::{Component, Path, PathBuf};

use super::sink::{DeliveryError, Written};
use super::staging::Sealed;

pub(crate) struct DirectorySink {
    root: PathBuf,
}

impl DirectorySink {
    pub(crate) fn new(root: PathBuf) -> Self {
        DirectorySink { root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The file for `key`, always under the root. Keys come partly from records (partition
    /// keys), so a segment `.` or `..` is written as `%2E` / `%2E%2E`, and empty segments
    /// (a leading `/`, `//`) are left out: nothing can name a file outside the root.
    pub(crate) fn path_for(&self, key: &str) -> Option<PathBuf> {
        let mut path = self.root.clone();
        let mut any = false;
        for segment in key.split('/') {
            let segment = match segment {
                "" => continue,
                "." => "%2E",
                ".." => "%2E%2E",
                s => s,
            };
            path.push(segment);
            any = true;
        }
        let safe = path
            .strip_prefix(&self.root)
            .is_ok_and(|rel| rel.components().all(|c| matches!(c, Component::Normal(_))));
        (any && safe).then_some(path)
    }

    /// Start-up check of exactly-once delivery: the folder's file system makes hard links and
    /// refuses to replace a file with one. Ok(false): it makes none (vfat, some network mounts).
    pub(crate) fn exclusive_links(&self) -> io::Result<bool> {
        let id = uuid::Uuid::new_v4().simple();
        let (file, link) = (
            self.root.join(format!(".firehosed-probe-{id}")),
            self.root.join(format!(".firehosed-probe-{id}.link")),
        );
        std::fs::write(&file, b"probe")?;
        let first = std::fs::hard_link(&file, &link);
        let second = std::fs::hard_link(&file, &link);
        let _ = std::fs::remove_file(&link);
        std::fs::remove_file(&file)?;
        match (first, second) {
            (Ok(()), Err(e)) if e.kind() == io::ErrorKind::AlreadyExists => Ok(true),
            (Ok(()), Err(e)) => Err(e),
            (Ok(()), Ok(())) => Ok(false),
            (Err(e), _)
                if matches!(
                    e.kind(),
                    io::ErrorKind::PermissionDenied | io::ErrorKind::Unsupported
                ) =>
            {
                Ok(false)
            }
            (Err(e), _) => Err(e),
        }
    }

    pub(crate) async fn deliver(&self, object: &Sealed) -> Result<Written, DeliveryError> {
        let Some(target) = self.path_for(&object.key) else {
            return Err(DeliveryError {
                transient: false,
                message: format!("key {:?} would leave {}", object.key, self.root.display()),
            });
        };
        let source = object.path.clone();
        let exclusive = object.identity.is_some();
        tokio::task::spawn_blocking(move || match exclusive {
            true => place_exclusive(&source, &target),
            false => place(&source, &target).map(|()| Written::Put),
        })
        .await
        .map_err(|e| DeliveryError {
            transient: true,
            message: format!("delivery task failed: {e}"),
        })?
        .map_err(|e| DeliveryError {
            transient: !matches!(
                e.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
            ),
            message: e.to_string(),
        })
    }
}

/// Moves the fsync'd staging file to `target`: a rename when both are on one file system, else
/// a copy to a hidden temp file beside the target, fsync, rename. Then fsyncs the folder.
fn place(source: &Path, target: &Path) -> io::Result<()> {
    let parent = target
        .parent()
        .ok_or_else(|| io::Error::other("target has no parent folder"))?;
    std::fs::create_dir_all(parent)?;
    if !source.exists() && target.exists() {
        // A previous attempt moved it and then failed (folder fsync): finish that one.
        return std::fs::File::open(parent)?.sync_all();
    }
    if std::fs::rename(source, target).is_err() {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
        let result = (|| {
            std::fs::copy(source, &tmp)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, target)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::remove_file(source)?;
    }
    std::fs::File::open(parent)?.sync_all()
}

/// Links the fsync'd staging file to `target` unless a file of that name exists (a hard link
/// never replaces one), copying it to a temp file beside the target first when the two are on
/// different file systems. Then fsyncs the folder.
fn place_exclusive(source: &Path, target: &Path) -> io::Result<Written> {
    let parent = target
        .parent()
        .ok_or_else(|| io::Error::other("target has no parent folder"))?;
    std::fs::create_dir_all(parent)?;
    let linked = match std::fs::hard_link(source, target) {
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            let name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = parent.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
            let result = (|| {
                std::fs::copy(source, &tmp)?;
                std::fs::File::open(&tmp)?.sync_all()?;
                std::fs::hard_link(&tmp, target)
            })();
            let _ = std::fs::remove_file(&tmp);
            result
        }
        other => other,
    };
    let written = match linked {
        Ok(()) => Written::Put,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Written::AlreadyThere,
        Err(e) => return Err(e),
    };
    std::fs::File::open(parent)?.sync_all()?;
    std::fs::remove_file(source)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_leave_the_root() {
        let sink = DirectorySink::new(PathBuf::from("/data/out"));
        let at = |k: &str| sink.path_for(k).map(|p| p.display().to_string());
        assert_eq!(at("a/b/c.gz").as_deref(), Some("/data/out/a/b/c.gz"));
        // Partition values such as `..` or an absolute path are encoded, never followed.
        assert_eq!(
            at("../etc/passwd").as_deref(),
            Some("/data/out/%2E%2E/etc/passwd")
        );
        assert_eq!(
            at("a/../../x").as_deref(),
            Some("/data/out/a/%2E%2E/%2E%2E/x")
        );
        assert_eq!(at("/etc/passwd").as_deref(), Some("/data/out/etc/passwd"));
        assert_eq!(at("a/./b//c").as_deref(), Some("/data/out/a/%2E/b/c"));
        assert_eq!(at("//"), None, "no file name at all");
    }

    #[test]
    fn an_exclusive_place_never_replaces_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b, target) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("out/x.gz"),
        );
        std::fs::write(&a, "first").expect("write");
        std::fs::write(&b, "second").expect("write");
        assert_eq!(place_exclusive(&a, &target).expect("a"), Written::Put);
        assert_eq!(
            place_exclusive(&b, &target).expect("b"),
            Written::AlreadyThere
        );
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "first");
        assert!(!a.exists() && !b.exists(), "staging files are removed");
    }
}
