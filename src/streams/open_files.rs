//! The open-file budget. A partitioning destination keeps up to `ACTIVE_ENCODERS` staging files
//! open (idle partitions are suspended; ZIP partitions never are): the soft open-file limit is
//! raised to the hard one, and a set of streams whose files could not all be open at once is
//! refused, at start-up, on CreateDeliveryStream / UpdateDestination and on reload.

use std::sync::OnceLock;

use crate::destination::stagers::ACTIVE_ENCODERS;
use crate::encode::Compression;
use crate::spec::StreamSpec;

/// Room for the spool, sockets, the transforms' pipes and the other staging files.
const HEADROOM: u64 = 256;

/// Staging files the partitioning destinations of `streams` may keep open at once.
pub(crate) fn staging_files<'a>(streams: impl IntoIterator<Item = &'a StreamSpec>) -> u64 {
    streams
        .into_iter()
        .flat_map(|s| &s.destinations)
        .filter_map(|d| d.dynamic_partitioning.map(|dp| (dp, d.compression)))
        .map(|(dp, compression)| {
            let open = if compression == Compression::Zip {
                dp.max_active_partitions
            } else {
                dp.max_active_partitions.min(ACTIVE_ENCODERS)
            };
            open as u64
        })
        .sum()
}

/// A set of streams whose staging files could not all be open at once, and what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the dynamic partitioning destinations may keep {files} staging files open at once, but the \
     open-file limit is {limit}: raise the limit (LimitNOFILE= in the systemd unit, ulimit -n) or \
     lower max_active_partitions"
)]
pub(crate) struct TooManyOpenFiles {
    files: u64,
    limit: u64,
}

/// Err when `streams` together could need more files than the limit.
pub(crate) fn check<'a>(
    streams: impl IntoIterator<Item = &'a StreamSpec>,
) -> Result<(), TooManyOpenFiles> {
    check_within(streams, limit())
}

/// Err when `streams` together could need more files than `limit`.
pub(crate) fn check_within<'a>(
    streams: impl IntoIterator<Item = &'a StreamSpec>,
    limit: u64,
) -> Result<(), TooManyOpenFiles> {
    let files = staging_files(streams);
    if files == 0 {
        return Ok(());
    }
    if files + HEADROOM > limit {
        return Err(TooManyOpenFiles { files, limit });
    }
    Ok(())
}

/// The open-file limit in force, raised once to the hard limit.
pub(crate) fn limit() -> u64 {
    static LIMIT: OnceLock<u64> = OnceLock::new();
    *LIMIT.get_or_init(raise)
}

fn raise() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    lim.rlim_cur
}
