//! The disk under state_dir. Delivery is what frees spool space, and delivery needs room to
//! stage and seal the objects that drain the spool: the spool takes records only while more than
//! a reserve stays free (`Room`), staging waits for room instead of failing when the disk is
//! full anyway (another process filled it), and both log the condition once per interval.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::Counter;
use crate::retry::LogGate;
use crate::sync::Lock;

/// How often the free space is read again (between readings, what was taken since is
/// subtracted from the last reading).
const REFRESH: Duration = Duration::from_millis(100);
/// A full disk is logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// Whether an I/O error means the filesystem is out of space (or the user's quota is).
pub(crate) fn is_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// Bytes an unprivileged process may still write on the filesystem holding `path`.
pub(crate) fn available(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    // SAFETY: statvfs only writes the struct it is given; `c` is a valid C string.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}

/// Free space above a reserve, on the filesystem of a folder.
#[derive(Debug)]
pub(crate) struct Room {
    path: PathBuf,
    reserve: u64,
    state: Mutex<RoomState>,
}

#[derive(Debug)]
struct RoomState {
    /// The last reading, less what was taken since.
    free: u64,
    read_at: Option<Instant>,
    gate: LogGate,
}

impl Room {
    pub(crate) fn new(path: PathBuf, reserve: u64) -> Self {
        Room {
            path,
            reserve,
            state: Mutex::new(RoomState {
                free: 0,
                read_at: None,
                gate: LogGate::new(LOG_EVERY),
            }),
        }
    }

    /// Whether `bytes` can be written leaving more than the reserve free; if so they count as
    /// taken until the next reading. A refusal is logged once per interval.
    pub(crate) fn take(&self, bytes: u64) -> bool {
        let mut s = self.state.locked();
        let now = Instant::now();
        if s.read_at.is_none_or(|t| now.duration_since(t) >= REFRESH) {
            match available(&self.path) {
                Ok(free) => s.free = free,
                // Unknown: do not refuse on a reading that failed.
                Err(_) => s.free = u64::MAX,
            }
            s.read_at = Some(now);
        }
        if s.free >= bytes.saturating_add(self.reserve) {
            s.free -= bytes;
            return true;
        }
        if s.gate.should_log(now) {
            tracing::warn!(dir = %self.path.display(), free_mib = s.free / (1024 * 1024),
                reserve_mib = self.reserve / (1024 * 1024),
                "the disk under state_dir is nearly full: producers get \"Slow down.\" until delivery frees space");
        }
        false
    }
}

/// Space on state_dir's filesystem that staging steps have claimed and not yet written: a step
/// claims what it may write before it starts, so that the steps of several destinations at once
/// cannot together write more than is free.
#[derive(Debug)]
pub(crate) struct StagingRoom {
    path: PathBuf,
    claimed: Mutex<u64>,
}

/// Bytes claimed for one staging step, given back when it ends.
#[derive(Debug)]
pub(crate) struct Claim {
    room: std::sync::Arc<StagingRoom>,
    bytes: u64,
}

impl StagingRoom {
    pub(crate) fn new(path: PathBuf) -> std::sync::Arc<Self> {
        std::sync::Arc::new(StagingRoom {
            path,
            claimed: Mutex::new(0),
        })
    }

    /// Claims `bytes` when that much is free beyond every other claim.
    pub(crate) fn claim(self: &std::sync::Arc<Self>, bytes: u64) -> Option<Claim> {
        let free = available(&self.path).unwrap_or(u64::MAX);
        let mut claimed = self.claimed.locked();
        if free.saturating_sub(*claimed) < bytes {
            return None;
        }
        *claimed += bytes;
        Some(Claim {
            room: self.clone(),
            bytes,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claimed = self.room.claimed.locked();
        *claimed = claimed.saturating_sub(self.bytes);
    }
}

/// Waits for space on a full disk, logging the wait once per interval; `label` says whose.
#[derive(Debug, Default)]
pub(crate) struct Patience {
    label: String,
    gate: Mutex<Option<LogGate>>,
    /// Counts the waits (a destination's metric).
    waits: std::sync::Arc<Counter>,
}

impl Patience {
    pub(crate) fn new(label: String, waits: std::sync::Arc<Counter>) -> Self {
        Patience {
            label,
            gate: Mutex::new(None),
            waits,
        }
    }

    /// Counts and logs (once per interval) a wait for space.
    pub(crate) fn note(&self, why: &dyn std::fmt::Display) {
        self.waits.add(1);
        let log = self
            .gate
            .locked()
            .get_or_insert_with(|| LogGate::new(LOG_EVERY))
            .should_log(Instant::now());
        if log {
            tracing::warn!(destination = %self.label, error = %why,
                "the disk under state_dir is full: staging waits for space (sealed objects are still delivered)");
        }
    }

    /// Blocks the calling (blocking-pool) thread a while after a write found the disk full:
    /// `attempt` counts the waits for this write.
    pub(crate) fn wait(&self, e: &io::Error, attempt: u32) {
        self.note(e);
        let ms = (100u64 << attempt.min(4)).min(1000);
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// A staging file whose writes wait for space when the disk is full, instead of failing: a
/// failed write would leave the object's encoder in an unknown state, while a write that waits
/// keeps it whole, and delivery of the objects already sealed frees the room it needs.
#[derive(Debug)]
pub(crate) struct PatientFile {
    file: std::fs::File,
    patience: std::sync::Arc<Patience>,
}

impl PatientFile {
    pub(crate) fn new(file: std::fs::File, patience: std::sync::Arc<Patience>) -> Self {
        PatientFile { file, patience }
    }

    /// Creates `path` (new), waiting for space as writes do.
    pub(crate) fn create(path: &Path, patience: std::sync::Arc<Patience>) -> io::Result<Self> {
        let mut attempt = 0;
        loop {
            match std::fs::File::create(path) {
                Ok(file) => return Ok(PatientFile::new(file, patience)),
                Err(e) if is_full(&e) => patience.wait(&e, attempt),
                Err(e) => return Err(e),
            }
            attempt += 1;
        }
    }

    pub(crate) fn into_file(self) -> std::fs::File {
        self.file
    }
}

impl io::Write for PatientFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut attempt = 0;
        loop {
            match self.file.write(buf) {
                Err(e) if is_full(&e) => self.patience.wait(&e, attempt),
                other => return other,
            }
            attempt += 1;
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl io::Seek for PatientFile {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let free = available(dir.path()).expect("statvfs");
        let room = Room::new(dir.path().to_path_buf(), free / 2);
        assert!(room.take(free / 8), "well within");
        assert!(!room.take(free / 2), "it would eat into the reserve");
        let none = Room::new(dir.path().to_path_buf(), u64::MAX / 2);
        assert!(!none.take(1));
    }

    #[test]
    fn full_is_enospc_or_quota() {
        assert!(is_full(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(is_full(&io::Error::from_raw_os_error(libc::EDQUOT)));
        assert!(!is_full(&io::Error::from_raw_os_error(libc::EIO)));
    }
}
