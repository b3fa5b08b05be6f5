//! The fault-injecting proxy (examples/chaos_proxy.rs) as a process of a test: started in front
//! of a server, its address read from its first line, stopped on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use super::{example_binary, http};

pub struct ChaosProxy {
    pub endpoint: String,
    child: Child,
}

impl ChaosProxy {
    /// A proxy to `upstream` with the seed, base fault rate and kinds (comma-separated) given;
    /// delayed requests wait 200 ms.
    pub fn start(upstream: &str, seed: u64, rate: f64, kinds: &str) -> ChaosProxy {
        let bin = example_binary("chaos_proxy");
        let mut child = Command::new(bin)
            .args(["--upstream", upstream, "--seed", &seed.to_string()])
            .args([
                "--rate",
                &rate.to_string(),
                "--kinds",
                kinds,
                "--delay-ms",
                "200",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("chaos_proxy starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("its address line");
        let endpoint = line
            .strip_prefix("chaos-proxy listening on ")
            .and_then(|l| l.split(' ').next())
            .unwrap_or_else(|| panic!("{line:?}"))
            .to_string();
        ChaosProxy { child, endpoint }
    }

    /// Requests and faults by kind.
    pub fn stats(&self) -> serde_json::Value {
        let (_, body) = http(&format!("{}/__chaos/stats", self.endpoint), "GET", &[], b"");
        serde_json::from_str(&body).expect("JSON")
    }
}

impl ChaosProxy {
    /// The fault rate from now on (a burst, or calm again).
    pub fn set_rate(&self, rate: f64) {
        set_rate(&self.endpoint, rate);
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fault rate of the proxy at `endpoint` from now on.
pub fn set_rate(endpoint: &str, rate: f64) {
    let (status, body) = http(
        &format!("{endpoint}/__chaos/rate?value={rate}"),
        "POST",
        &[],
        b"",
    );
    assert_eq!(status, 200, "{body}");
}
