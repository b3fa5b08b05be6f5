//! The processes of a chaos run and the faults applied to them: S3 (s3s-fs), Kinesis
//! (kinesalite) and DynamoDB (moto) each behind a seeded fault proxy; the edge daemon (Direct
//! PUT: an exactly-once GZIP stream partitioned by jq, an at-least-once stream through a Lambda
//! handler with an error prefix, an exactly-once Parquet stream, a stream created through the
//! API, an HTTP endpoint with an S3 backup) with its state_dir on a small
//! tmpfs; and two fleet instances reading the Kinesis stream through leases into an exactly-once
//! bucket and an at-least-once directory each. A daemon that exits by itself is started again,
//! as systemd would, and counted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::schedule::{FAILOVER_SECONDS, Fault, Node, Upstream};
use crate::support::http_receiver::{Expect, Receiver};
use crate::support::tmpfs::Tmpfs;
use crate::support::*;

pub(super) const STREAM: &str = "chaos";
pub(super) const LEASES: &str = "chaos-leases";
pub(super) const EO_BUCKET: &str = "chaos-eo";
pub(super) const ALO_BUCKET: &str = "chaos-alo";
pub(super) const API_BUCKET: &str = "chaos-api";
pub(super) const KS_BUCKET: &str = "chaos-ks";
pub(super) const PQ_BUCKET: &str = "chaos-pq";
pub(super) const WEB_BUCKET: &str = "chaos-web";
/// The fault proxies' rate between bursts.
pub(super) const BASE_RATE: f64 = 0.02;
const KINDS: &str = "error,slowdown,reset-before,reset-after,delay,truncate";
/// The edge's disk, and what its spool must leave free on it.
const DISK_MIB: u64 = 192;
const RESERVE_MIB: u64 = 32;

/// A firehosed process of the run and what it needs to start again.
pub(super) struct Member {
    pub(super) name: String,
    d: Option<Daemon>,
    /// The configuration it runs on now (written again before a reload or a start).
    config: String,
    /// Where its state and directory output live: apart from the daemon's own temp dir, so a
    /// start that fails loses nothing.
    pub(super) root: tempfile::TempDir,
    /// Its API's address, for the producers (a new port after every start).
    pub(super) url: Arc<RwLock<String>>,
    /// Its state_dir, for the resource samples.
    pub(super) state: PathBuf,
    /// Panics found in its logs (of every process it was), and exits by itself.
    pub(super) troubles: Vec<String>,
    frozen: bool,
    env: Vec<(String, String)>,
}

impl Member {
    fn start(name: &str, config: String, root: tempfile::TempDir, state: PathBuf) -> Member {
        let mut m = Member {
            name: name.to_string(),
            d: None,
            config,
            root,
            state,
            troubles: Vec::new(),
            url: Arc::new(RwLock::new(String::new())),
            frozen: false,
            env: Vec::new(),
        };
        m.launch(None);
        m
    }

    fn launch(&mut self, dir: Option<tempfile::TempDir>) {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut dir = dir;
        loop {
            // The daemon waits out faults at its start-up checks for up to two minutes.
            let mut l = Daemon::launch(&self.config).ready_within(Duration::from_secs(150));
            if let Some(dir) = dir.take() {
                l = l.in_dir(dir);
            }
            for (k, v) in &self.env {
                l = l.env(k, v);
            }
            match l.try_start() {
                Ok(d) => {
                    *self.url.write().expect("lock") = d.url.clone();
                    self.d = Some(d);
                    self.frozen = false;
                    return;
                }
                Err(log) => {
                    assert!(
                        Instant::now() < deadline,
                        "{} did not start for 5 minutes:\n{log}",
                        self.name
                    );
                    println!("{} refused to start, again in 1 s: {log}", self.name);
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    pub(super) fn daemon(&self) -> &Daemon {
        self.d.as_ref().expect("a running daemon")
    }

    pub(super) fn pid(&self) -> u32 {
        self.d.as_ref().map(Daemon::pid).unwrap_or(0)
    }

    /// kill -9 and a start on the same state.
    fn kill_and_restart(&mut self) {
        if let Some(mut d) = self.d.take() {
            self.look_for_panics(&mut d);
            let (dir, _) = d.stop_for_restart();
            self.launch(Some(dir));
        }
    }

    /// A panic in the daemon's log is a defect, whatever else happened.
    fn look_for_panics(&mut self, d: &mut Daemon) {
        let log = d.logs();
        if let Some(line) = log.lines().find(|l| l.contains("panicked at")) {
            self.troubles
                .push(format!("{} (pid {}) panicked: {line}", self.name, d.pid()));
        }
    }

    /// Looks at the running daemon's log for panics (at the end of a run).
    pub(super) fn check_log(&mut self) {
        if let Some(mut d) = self.d.take() {
            self.look_for_panics(&mut d);
            self.d = Some(d);
        }
    }

    fn signal(&mut self, signal: &str) {
        let pid = self.pid();
        if pid != 0 {
            let _ = Command::new("kill")
                .args([&format!("-{signal}"), &pid.to_string()])
                .status();
        }
        self.frozen = signal == "STOP";
    }

    /// Started again if it exited by itself; true then.
    fn revive(&mut self) -> bool {
        let Some(d) = self.d.as_mut() else {
            return false;
        };
        let Some(status) = d.exited() else {
            return false;
        };
        let log = d.logs();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        // Nothing in a run should stop a daemon by itself: the disk is filled only to below
        // the reserve, and no other fault is local.
        let trouble = format!(
            "{} exited by itself ({status}); its last lines: {tail:?}",
            self.name
        );
        println!("{trouble}, started again");
        self.troubles.push(trouble);
        self.kill_and_restart();
        true
    }

    pub(super) fn logs(&mut self) -> String {
        self.d.as_mut().map(Daemon::logs).unwrap_or_default()
    }
}

pub(super) struct World {
    /// The HTTP endpoint (behind the proxy "http endpoint").
    pub(super) receiver: Receiver,
    _receiver_dir: tempfile::TempDir,
    pub s3: S3sFs,
    pub(super) kinesis: Kinesalite,
    /// The lease table's server (kept running for the run).
    _db: Moto,
    pub(super) proxies: BTreeMap<&'static str, ChaosProxy>,
    pub(super) disk: Option<Tmpfs>,
    pub(super) edge: Member,
    pub(super) fleet: Vec<Member>,
    /// Faults applied, by kind.
    pub(super) applied: BTreeMap<&'static str, u64>,
    /// Daemons that exited by themselves and were started again.
    pub(super) exits: u64,
    reloads: u64,
    updates: u64,
    /// The children of the last split, merged back by the next reshard.
    split: Option<(String, String)>,
    filler: Option<PathBuf>,
}

pub(super) fn upstream_name(u: Upstream) -> &'static str {
    match u {
        Upstream::S3 => "s3",
        Upstream::Kinesis => "kinesis",
        Upstream::DynamoDb => "dynamodb",
        Upstream::HttpEndpoint => "http endpoint",
    }
}

impl World {
    pub(super) fn start(seed: u64) -> World {
        let s3 = S3sFs::start();
        for b in [
            EO_BUCKET, ALO_BUCKET, API_BUCKET, KS_BUCKET, PQ_BUCKET, WEB_BUCKET,
        ] {
            s3.create_bucket(b);
        }
        let kinesis = Kinesalite::start();
        kinesis.tool(&["create", STREAM, "4"]);
        let db = Moto::start();
        let receiver_dir = tempfile::tempdir().expect("tempdir");
        let receiver = Receiver::start(
            receiver_dir.path(),
            "web",
            &Expect {
                stream: "web",
                path: "/in",
                access_key: None,
                attributes: None,
                gzip: false,
                tls: None,
            },
            json!({"default": "ok"}),
        );
        let receiver_url = receiver.url("http", "");
        let mut proxies = BTreeMap::new();
        // Each proxy its own stream of draws from the run's seed.
        for (i, (name, upstream)) in [
            ("s3", &s3.endpoint),
            ("kinesis", &kinesis.endpoint),
            ("dynamodb", &db.endpoint),
            ("http endpoint", &receiver_url),
        ]
        .into_iter()
        .enumerate()
        {
            let p = ChaosProxy::start(upstream, seed * 10 + i as u64, BASE_RATE, KINDS);
            proxies.insert(name, p);
        }
        let disk = Tmpfs::mount(DISK_MIB);
        let edge_root = tempfile::tempdir().expect("tempdir");
        let state = match &disk {
            Some(t) => t.path().join("state"),
            None => edge_root.path().join("state"),
        };
        let edge = Member::start(
            "edge",
            edge_config(&state.display().to_string(), &proxies, 2),
            edge_root,
            state,
        );
        let mut w = World {
            receiver,
            _receiver_dir: receiver_dir,
            s3,
            kinesis,
            _db: db,
            proxies,
            disk,
            edge,
            fleet: Vec::new(),
            applied: BTreeMap::new(),
            exits: 0,
            reloads: 0,
            updates: 0,
            split: None,
            filler: None,
        };
        w.create_api_stream();
        for i in 0..2 {
            let root = tempfile::tempdir().expect("tempdir");
            let config = w.fleet_config(i, &root.path().display().to_string());
            let state = root.path().join("state");
            w.fleet
                .push(Member::start(&format!("fleet{i}"), config, root, state));
        }
        w
    }

    fn fleet_config(&self, i: usize, root: &str) -> String {
        format!(
            "listen: 127.0.0.1:0
state_dir: '{root}/state'
relax_aws_limits: true
delivery_streams:
  - name: ks
    source:
      kinesis_stream:
        stream_name: {STREAM}
        endpoint_url: '{kinesis}'
        starting_position: TRIM_HORIZON
        discovery_interval_seconds: 1
        leases: {{table: {LEASES}, endpoint_url: '{db}', worker_id: w{i}, failover_seconds: {FAILOVER_SECONDS}}}
    processing: {{append_delimiter_to_record: true}}
    destinations:
      - s3: {{bucket: {KS_BUCKET}, endpoint_url: '{s3}'}}
        delivery: exactly_once
        compression: GZIP
        buffering: {{size_mib: 1, interval_seconds: 1}}
      - directory: '{root}/out'
        buffering: {{size_mib: 1, interval_seconds: 1}}
aws: {{force_path_style: true}}
",
            kinesis = self.proxies["kinesis"].endpoint,
            db = self.proxies["dynamodb"].endpoint,
            s3 = self.proxies["s3"].endpoint,
        )
    }

    /// The stream the code under test would create against AWS: S3, at least once, its prefix
    /// changed by UpdateDestination during the run.
    fn create_api_stream(&mut self) {
        let (status, v) = self.edge.daemon().api(
            "CreateDeliveryStream",
            &json!({
                "DeliveryStreamName": "api",
                "ExtendedS3DestinationConfiguration": {
                    "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                    "BucketARN": format!("arn:aws:s3:::{API_BUCKET}"),
                    "Prefix": "api-0/",
                    "ErrorOutputPrefix": "errors-api/",
                    "CompressionFormat": "GZIP",
                    "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 2}
                }
            })
            .to_string(),
        );
        assert_eq!(status, 200, "{v}");
        self.edge.daemon().wait_active("api");
    }

    /// Each proxy's address by its name (the fault bursts are switched from their own thread:
    /// a daemon's start, which can wait out a burst, must not hold the burst's end).
    pub(super) fn proxy_endpoints(&self) -> BTreeMap<&'static str, String> {
        self.proxies
            .iter()
            .map(|(k, p)| (*k, p.endpoint.clone()))
            .collect()
    }

    /// Applies one fault of the schedule.
    pub(super) fn apply(&mut self, fault: &Fault) {
        *self.applied.entry(fault.kind()).or_default() += 1;
        match fault {
            Fault::Kill(n) => self.member(*n).kill_and_restart(),
            Fault::Freeze(n) => self.member(*n).signal("STOP"),
            Fault::Thaw(n) => self.member(*n).signal("CONT"),
            Fault::FillDisk => self.fill_disk(),
            Fault::FreeDisk => self.free_disk(),
            Fault::Reload => self.reload(),
            Fault::UpdateDestination => self.update_destination(),
            Fault::Reshard => self.reshard(),
            Fault::Burst(u, rate) => self.proxies[upstream_name(*u)].set_rate(*rate),
            Fault::Calm(u) => self.proxies[upstream_name(*u)].set_rate(BASE_RATE),
        }
    }

    fn member(&mut self, n: Node) -> &mut Member {
        match n {
            Node::Edge => &mut self.edge,
            Node::Fleet(i) => &mut self.fleet[i],
        }
    }

    pub(super) fn members(&mut self) -> impl Iterator<Item = &mut Member> {
        std::iter::once(&mut self.edge).chain(self.fleet.iter_mut())
    }

    /// Starts again every daemon that exited by itself.
    pub(super) fn revive(&mut self) {
        let mut exits = 0;
        for m in self.members() {
            if m.revive() {
                exits += 1;
            }
        }
        self.exits += exits;
    }

    /// Fills the edge's disk until less than its reserve is free: producers are slowed down
    /// while what was acknowledged still drains.
    fn fill_disk(&mut self) {
        let Some(disk) = &self.disk else { return };
        let free = disk.free();
        let keep = (RESERVE_MIB / 2) << 20;
        let path = disk.path().join("filler");
        if free > keep {
            let size = free - keep;
            let _ = std::fs::File::create(&path).and_then(|f| {
                use std::io::Write;
                let mut f = std::io::BufWriter::new(f);
                let block = vec![0x55u8; 1 << 20];
                let mut left = size;
                while left > 0 {
                    let n = left.min(block.len() as u64) as usize;
                    f.write_all(&block[..n])?;
                    left -= n as u64;
                }
                f.flush()
            });
        }
        self.filler = Some(path);
    }

    fn free_disk(&mut self) {
        if let Some(path) = self.filler.take() {
            let _ = std::fs::remove_file(path);
        }
    }

    /// A changed buffering interval of the at-least-once stream, and SIGHUP.
    fn reload(&mut self) {
        self.reloads += 1;
        let interval = 2 + self.reloads % 2;
        let state = self.edge.state.clone();
        self.edge.config = edge_config(&state.display().to_string(), &self.proxies, interval);
        let Some(d) = self.edge.d.as_ref() else {
            return;
        };
        let path = d.dir.path().join("firehosed.yaml");
        std::fs::write(
            &path,
            self.edge
                .config
                .replace("{dir}", &d.dir.path().display().to_string()),
        )
        .expect("config written");
        self.edge.signal("HUP");
    }

    /// UpdateDestination of the API stream: a new prefix (`api-N/`). Refused updates (the
    /// daemon restarting, a concurrent change) are counted by the report as applied anyway:
    /// the fault is the attempt.
    fn update_destination(&mut self) {
        self.updates += 1;
        let url = self.edge.url.read().expect("lock").clone();
        let call = |op: &str, body: String| -> Option<Value> {
            let (status, text) = try_http(
                &url,
                "POST",
                &[
                    ("x-amz-target", &format!("Firehose_20150804.{op}")),
                    ("content-type", "application/x-amz-json-1.1"),
                ],
                body.as_bytes(),
            )
            .ok()?;
            let v: Value = serde_json::from_str(&text).ok()?;
            (status == 200).then_some(v).or_else(|| {
                println!("{op} refused: {status} {text}");
                None
            })
        };
        let Some(v) = call(
            "DescribeDeliveryStream",
            json!({"DeliveryStreamName": "api"}).to_string(),
        ) else {
            return;
        };
        let desc = &v["DeliveryStreamDescription"];
        call(
            "UpdateDestination",
            json!({
                "DeliveryStreamName": "api",
                "CurrentDeliveryStreamVersionId": desc["VersionId"],
                "DestinationId": desc["Destinations"][0]["DestinationId"],
                "ExtendedS3DestinationUpdate": {"Prefix": format!("api-{}/", self.updates)}
            })
            .to_string(),
        );
    }

    /// Splits an open shard, or merges the children of the last split.
    fn reshard(&mut self) {
        let open = |k: &Kinesalite| -> Vec<String> {
            serde_json::from_slice(&k.tool(&["shards", STREAM])).expect("json")
        };
        match self.split.take() {
            Some((a, b)) => {
                self.kinesis.tool(&["merge", STREAM, &a, &b]);
            }
            None => {
                let before = open(&self.kinesis);
                self.kinesis.tool(&["split", STREAM, &before[0]]);
                let children: Vec<String> = open(&self.kinesis)
                    .into_iter()
                    .filter(|s| !before.contains(s))
                    .collect();
                if let [a, b] = children.as_slice() {
                    self.split = Some((a.clone(), b.clone()));
                }
            }
        }
    }

    /// After the schedule: every proxy calm (no faults), every daemon thawed, the disk free.
    pub(super) fn end_faults(&mut self) {
        for p in self.proxies.values() {
            p.set_rate(0.0);
        }
        for m in self.members() {
            if m.frozen {
                m.signal("CONT");
            }
        }
        self.free_disk();
    }

    /// Flushes every stream of every daemon (ignoring one that is restarting).
    pub(super) fn flush_all(&mut self) {
        let edge = self.edge.url.read().expect("lock").clone();
        for s in ["eo", "alo", "api", "pq", "web"] {
            let _ = try_http(&format!("{edge}/v1/streams/{s}/flush"), "POST", &[], b"");
        }
        for m in &self.fleet {
            let url = m.url.read().expect("lock").clone();
            let _ = try_http(&format!("{url}/v1/streams/ks/flush"), "POST", &[], b"");
        }
    }

    /// Every daemon's log, for a failure's message.
    pub(super) fn logs(&mut self) -> String {
        let mut out = String::new();
        for m in self.members() {
            let log = m.logs();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            out.push_str(&format!("--- {} (last lines) ---\n", m.name));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

/// The edge daemon's configuration; `interval` is the at-least-once stream's buffering
/// interval (what a reload changes).
fn edge_config(state: &str, proxies: &BTreeMap<&str, ChaosProxy>, interval: u64) -> String {
    let s3 = &proxies["s3"].endpoint;
    let web = &proxies["http endpoint"].endpoint;
    format!(
        "listen: 127.0.0.1:0
state_dir: '{state}'
relax_aws_limits: true
spool: {{max_size_mib: 64, segment_size_mib: 4, disk_reserve_mib: {RESERVE_MIB}}}
delivery_streams:
  - name: eo
    source: {{direct_put: {{}}}}
    processing:
      metadata_extraction: {{query: '{{p: .p}}'}}
    destinations:
      - s3: {{bucket: {EO_BUCKET}}}
        delivery: exactly_once
        compression: GZIP
        prefix: 'p=!{{partitionKeyFromQuery:p}}/'
        error_output_prefix: 'errors/!{{firehose:error-output-type}}/'
        dynamic_partitioning: {{enabled: true}}
        buffering: {{size_mib: 1, interval_seconds: 1}}
  - name: alo
    source: {{direct_put: {{}}}}
    processing:
      transform:
        subprocess: {transform}
    destinations:
      - s3: {{bucket: {ALO_BUCKET}}}
        compression: GZIP
        prefix: 'data/'
        error_output_prefix: 'errors/!{{firehose:error-output-type}}/'
        buffering: {{size_mib: 1, interval_seconds: {interval}}}
  - name: pq
    source: {{direct_put: {{}}}}
    destinations:
      - s3: {{bucket: {PQ_BUCKET}}}
        delivery: exactly_once
        prefix: 'pq/'
        error_output_prefix: 'errors/!{{firehose:error-output-type}}/'
        buffering: {{size_mib: 1, interval_seconds: 2}}
        data_format_conversion:
          schema:
            columns: [{{name: id, type: string}}, {{name: p, type: string}}, {{name: action, type: string}}, {{name: pad, type: string}}]
          output: {{parquet: {{}}}}
  - name: web
    source: {{direct_put: {{}}}}
    destinations:
      - http_endpoint: {{url: '{web}/in', request_timeout_seconds: 5, retry_duration_seconds: 60}}
        s3_backup: {{bucket: {WEB_BUCKET}, error_output_prefix: 'errors/', compression: GZIP}}
        buffering: {{size_mib: 1, interval_seconds: 1}}
aws: {{endpoint_url: '{s3}', force_path_style: true}}
",
        transform = transform::python_runner("blueprint.lambda_handler"),
    )
}
