//! systemd's service notification protocol (sd_notify(3)), without libsystemd: datagrams to
//! the socket named by `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).
//! `READY=1` once listeners are bound and pipelines started, `STOPPING=1` when the drain starts,
//! `WATCHDOG=1` every half `$WATCHDOG_USEC` while the runtime is alive. Without
//! `$NOTIFY_SOCKET` (not under systemd, or Type=simple) every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Where notifications go, if anywhere.
#[derive(Debug, Clone)]
pub(crate) struct Notifier {
    target: Option<String>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`.
    pub(crate) fn from_env() -> Self {
        Notifier {
            target: std::env::var("NOTIFY_SOCKET")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }

    /// Sends one notification (`KEY=VALUE` lines); failures are logged, never fatal.
    pub(crate) fn send(&self, message: &str) {
        let Some(target) = &self.target else {
            return;
        };
        if let Err(e) = send_to(target, message) {
            tracing::warn!(socket = %target, error = %e, "cannot notify systemd");
        }
    }

    pub(crate) fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    pub(crate) fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=draining: delivering buffered records");
    }

    /// The keep-alive period systemd asked for (`$WATCHDOG_USEC`, for this process when
    /// `$WATCHDOG_PID` is set): half of it, as sd_watchdog_enabled(3) advises.
    pub(crate) fn watchdog_interval(&self) -> Option<Duration> {
        self.target.as_ref()?;
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        if let Ok(pid) = std::env::var("WATCHDOG_PID")
            && pid.parse::<u32>().ok() != Some(std::process::id())
        {
            return None;
        }
        (usec > 0).then(|| Duration::from_micros(usec / 2))
    }

    /// Sends `WATCHDOG=1` every interval until the runtime stops (a hung runtime stops it).
    pub(crate) fn spawn_watchdog(&self) {
        let Some(every) = self.watchdog_interval() else {
            return;
        };
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                me.send("WATCHDOG=1");
            }
        });
    }
}

fn send_to(target: &str, message: &str) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    match target.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            socket.send_to_addr(message.as_bytes(), &addr)?;
        }
        None => {
            socket.send_to(message.as_bytes(), target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_a_path_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).expect("bind");
        let n = Notifier {
            target: Some(path.display().to_string()),
        };
        n.ready("serving 2 delivery streams");
        let mut buf = [0u8; 256];
        let len = server.recv(&mut buf).expect("a datagram");
        assert_eq!(
            std::str::from_utf8(&buf[..len]).expect("text"),
            "READY=1\nSTATUS=serving 2 delivery streams"
        );
        Notifier { target: None }.ready("nowhere"); // does nothing
    }
}
