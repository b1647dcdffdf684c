//! Shared by the bridge's process tests: seeded messages, free loopback ports, bridge processes.

#![allow(dead_code)] // each test binary uses part of it

use myelon_test_support::ChildGuard;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// The ring's frame type (1 KiB slots): `--slot-bytes 1024` for the bridges.
pub type Frame = myelon::transport::FixedFrame<{ 1024 - 12 }>;

/// Bound on one step (a marker, an attach): turns a hang into a failure, never a speed check.
pub const LONG: Duration = Duration::from_secs(120);

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Message `i` of the stream seeded `seed`: 8 to `max` bytes, the first 8 are `i`.
pub fn message(seed: u64, i: u64, max: usize) -> Vec<u8> {
    let mut s = seed ^ i.wrapping_mul(0xA24B_AED4_963E_E407);
    let len = 8 + (splitmix(&mut s) as usize) % (max - 7);
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&i.to_le_bytes());
    while out.len() < len {
        let w = splitmix(&mut s).to_le_bytes();
        let n = (len - out.len()).min(8);
        out.extend_from_slice(&w[..n]);
    }
    out
}

/// The index a message carries (its first 8 bytes).
pub fn index_of(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// A loopback port nothing listens on now (bound to 127.0.0.1:0, then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// `tcp/127.0.0.1:<port>`: the only kind of endpoint the tests use.
pub fn endpoint(port: u16) -> String {
    format!("tcp/127.0.0.1:{port}")
}

/// A `myelon-bridge` process: killed and reaped when dropped; its output kept for failures.
pub struct BridgeProc {
    name: String,
    child: ChildGuard,
    lines: Receiver<(bool, String)>,
    seen: Vec<(bool, String)>,
}

impl BridgeProc {
    /// Starts the bridge binary with `args` (multicast scouting stays off: it is the default).
    pub fn spawn(name: &str, args: &[String]) -> BridgeProc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_myelon-bridge"))
            .args(args)
            .env("RUST_LOG", "info,zenoh=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn myelon-bridge");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let tx2 = tx.clone();
        std::thread::spawn(move || forward(out, false, &tx));
        std::thread::spawn(move || forward(err, true, &tx2));
        BridgeProc {
            name: name.to_string(),
            child: ChildGuard::new(child),
            lines,
            seen: Vec::new(),
        }
    }

    fn transcript(&self) -> String {
        let mut s = format!("--- bridge {} (pid {}) ---\n", self.name, self.child.pid());
        for (err, l) in &self.seen {
            s.push_str(if *err { "[stderr] " } else { "" });
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    /// Waits (bounded) for a stdout line starting with `prefix`; returns the rest of it.
    pub fn expect(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self
                .seen
                .iter()
                .find(|(err, l)| !err && l.starts_with(prefix))
                .map(|(_, l)| l[prefix.len()..].trim().to_string())
            {
                return v;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(e) => panic!(
                    "bridge {}: no {prefix:?} ({e:?})\n{}",
                    self.name,
                    self.transcript()
                ),
            }
        }
    }

    /// SIGTERMs the bridge and returns the counters it printed on the way out.
    pub fn terminate(&mut self) -> HashMap<String, u64> {
        // SAFETY: kill(2) on the pid of a child this guard has not reaped yet; it only sends a
        // signal.
        unsafe { libc::kill(self.child.pid() as i32, libc::SIGTERM) };
        self.counters()
    }

    /// The counters the bridge prints when it stops (waits for that, bounded).
    pub fn counters(&mut self) -> HashMap<String, u64> {
        let line = self.expect("COUNTERS ", LONG);
        let status = self.child.wait_deadline(Instant::now() + LONG);
        assert!(
            status.is_some(),
            "bridge {} did not exit\n{}",
            self.name,
            self.transcript()
        );
        parse_counters(&line)
    }

    /// SIGKILLs the bridge and reaps it.
    pub fn kill(&mut self) {
        self.child.kill();
    }
}

impl Drop for BridgeProc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.child.kill();
            while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
                self.seen.push(l);
            }
            eprintln!("{}", self.transcript());
        }
    }
}

fn forward(stream: impl std::io::Read, err: bool, tx: &mpsc::Sender<(bool, String)>) {
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if tx.send((err, line)).is_err() {
            break;
        }
    }
}

/// `key=value ...` into a map.
pub fn parse_counters(line: &str) -> HashMap<String, u64> {
    line.split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// Arguments of a ring → zenoh bridge.
pub fn sender_args(
    ring: &str,
    cap: usize,
    key: &str,
    listen: u16,
    reliability: &str,
) -> Vec<String> {
    [
        "--direction",
        "ring-to-zenoh",
        "--ring",
        ring,
        "--capacity",
        &cap.to_string(),
        "--slot-bytes",
        "1024",
        "--key",
        key,
        "--listen",
        &endpoint(listen),
        "--reliability",
        reliability,
        "--consumer-id",
        "bridge-out",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Arguments of a zenoh → ring bridge that connects to the sender.
pub fn receiver_args(ring: &str, cap: usize, key: &str, listen: u16, connect: u16) -> Vec<String> {
    [
        "--direction",
        "zenoh-to-ring",
        "--ring",
        ring,
        "--capacity",
        &cap.to_string(),
        "--slot-bytes",
        "1024",
        "--key",
        key,
        "--listen",
        &endpoint(listen),
        "--connect",
        &endpoint(connect),
        "--reserve",
        "final",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
