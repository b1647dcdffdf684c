//! `bridge-bench`: throughput and latency of ring → zenoh → ring over loopback TCP, next to
//! plain zenoh pub/sub between two processes, on this machine.
//!
//! ```text
//! cargo run --manifest-path bridge/Cargo.toml --release --bin bridge-bench -- \
//!     --runs 3 --messages 200000 --latency-messages 2000 --gap-us 1000 --size 256
//! ```
//! Each run has two phases with the same sender and receiver processes: a burst of
//! `--messages` published flat out (throughput: first to last message at the receiver), then,
//! once the receiver has the whole burst, `--latency-messages` published one every `--gap-us`
//! (latency: the publisher's wall clock in the message, against the receiver's at arrival; both
//! processes on this machine). Lossless
//! mode throughout. Prints one line per run and a Markdown table of medians.
//!
//! Roles (run by the bench itself): `ring-producer`, `ring-consumer`, `zenoh-pub`, `zenoh-sub`.

use myelon::transport::{FixedFrame, FramedTransportConsumer, FramedTransportProducer};
use myelon::{attach_shared_consumer, build_shared_single_producer};
use myelon_bridge::{BridgeConfig, Direction};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type Frame = FixedFrame<{ 1024 - 12 }>;
const CAP: usize = 1024;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[derive(Debug, Clone)]
struct Params {
    messages: u64,
    latency_messages: u64,
    size: usize,
    gap: Duration,
}

impl Params {
    fn from_env() -> Params {
        let get = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Params {
            messages: get("B_MESSAGES"),
            latency_messages: get("B_LAT"),
            size: get("B_SIZE") as usize,
            gap: Duration::from_micros(get("B_GAP_US")),
        }
    }
    fn env(&self, c: &mut Command) {
        c.env("B_MESSAGES", self.messages.to_string())
            .env("B_LAT", self.latency_messages.to_string())
            .env("B_SIZE", self.size.to_string())
            .env("B_GAP_US", self.gap.as_micros().to_string());
    }
    fn total(&self) -> u64 {
        self.messages + self.latency_messages
    }
}

/// Message `i`: index, send time, padding to `size`.
fn fill(buf: &mut Vec<u8>, i: u64, size: usize) {
    buf.clear();
    buf.extend_from_slice(&i.to_le_bytes());
    buf.extend_from_slice(&now_ns().to_le_bytes());
    buf.resize(size.max(16), 0xA5);
}

/// Publishes both phases through `publish`; between them waits for `LAT` on stdin (sent once
/// the receiver has the whole burst, so no backlog of the burst inflates the latencies).
fn send_all(p: &Params, stdin: &mut impl BufRead, mut publish: impl FnMut(&[u8])) {
    let mut buf = Vec::new();
    for i in 0..p.messages {
        fill(&mut buf, i, p.size);
        publish(&buf);
    }
    wait_line(stdin, "LAT");
    for i in p.messages..p.total() {
        // Paced: a sleep here is the load's shape, not a wait for a condition.
        std::thread::sleep(p.gap);
        fill(&mut buf, i, p.size);
        publish(&buf);
    }
}

/// The receiver's books: throughput of the burst, latencies of the paced phase.
struct Tally {
    p: Params,
    first_ns: u64,
    burst_end_ns: u64,
    lat_ns: Vec<u64>,
    next: u64,
}

impl Tally {
    fn new(p: Params) -> Tally {
        Tally {
            p,
            first_ns: 0,
            burst_end_ns: 0,
            lat_ns: Vec::new(),
            next: 0,
        }
    }
    /// Takes one message; true when all arrived.
    fn take(&mut self, m: &[u8]) -> bool {
        let t = now_ns();
        let i = u64::from_le_bytes(m[..8].try_into().expect("8 bytes"));
        let sent = u64::from_le_bytes(m[8..16].try_into().expect("8 bytes"));
        assert_eq!(i, self.next, "message out of order");
        self.next += 1;
        if i == 0 {
            self.first_ns = t;
        }
        if i + 1 == self.p.messages {
            self.burst_end_ns = t;
            println!("BURST");
        }
        if i >= self.p.messages {
            self.lat_ns.push(t.saturating_sub(sent));
        }
        self.next == self.p.total()
    }
    fn report(mut self) {
        self.lat_ns.sort_unstable();
        let pct = |q: f64| {
            let idx = ((self.lat_ns.len() as f64 - 1.0) * q).round() as usize;
            self.lat_ns.get(idx).copied().unwrap_or(0) as f64 / 1000.0
        };
        let secs = (self.burst_end_ns - self.first_ns) as f64 / 1e9;
        let rate = (self.p.messages - 1) as f64 / secs;
        println!(
            "RESULT msgs_per_s={:.0} mib_per_s={:.1} p50_us={:.1} p99_us={:.1}",
            rate,
            rate * self.p.size as f64 / (1 << 20) as f64,
            pct(0.50),
            pct(0.99)
        );
    }
}

fn wait_line(stdin: &mut impl BufRead, want: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        if stdin.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("stdin closed before {want}");
        }
        if line.trim() == want {
            return;
        }
    }
}

fn role_ring_producer(ring: &str) {
    let p = Params::from_env();
    let b = build_shared_single_producer::<Frame>(ring, CAP).with_consumer_id("bridge-out");
    let mut prod = FramedTransportProducer::<Frame>::from_builder(b).expect("create ring");
    println!("CREATED");
    let mut stdin = std::io::stdin().lock();
    wait_line(&mut stdin, "GO");
    send_all(&p, &mut stdin, |m| {
        prod.publish(m).expect("publish");
    });
    println!("PUBLISHED");
    wait_line(&mut stdin, "CLOSE");
}

fn role_ring_consumer(ring: &str) {
    let p = Params::from_env();
    let b = attach_shared_consumer::<Frame>(ring, CAP)
        .with_consumer_id("final")
        .with_attach_timeout(Duration::from_secs(60));
    let mut c = FramedTransportConsumer::<Frame>::from_builder(b).expect("attach");
    println!("ATTACHED");
    let mut t = Tally::new(p);
    loop {
        let m = c.recv_timeout(Duration::from_secs(60)).expect("recv");
        if t.take(&m) {
            break;
        }
    }
    t.report();
}

fn zenoh_config(listen: &str, connect: Option<&str>) -> zenoh::Config {
    let mut c = BridgeConfig::new(Direction::RingToZenoh, "unused", "unused");
    c.listen = vec![listen.to_string()];
    c.connect = connect.into_iter().map(str::to_string).collect();
    c.zenoh_config().expect("zenoh config")
}

fn role_zenoh_pub(key: &str, listen: &str) {
    let p = Params::from_env();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let s = zenoh::open(zenoh_config(listen, None)).await.expect("open");
        let publ = s
            .declare_publisher(key.to_string())
            .congestion_control(zenoh::qos::CongestionControl::Block)
            .await
            .expect("publisher");
        let l = publ.matching_listener().await.expect("listener");
        if !publ.matching_status().await.expect("status").matching() {
            while !l.recv_async().await.expect("matching").matching() {}
        }
        println!("READY");
        let mut stdin = std::io::stdin().lock();
        wait_line(&mut stdin, "GO");
        send_all(&p, &mut stdin, |m| {
            zenoh::Wait::wait(publ.put(m.to_vec())).expect("put");
        });
        println!("PUBLISHED");
        wait_line(&mut stdin, "CLOSE");
    });
}

fn role_zenoh_sub(key: &str, listen: &str, connect: &str) {
    let p = Params::from_env();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let s = zenoh::open(zenoh_config(listen, Some(connect)))
            .await
            .expect("open");
        let sub = s
            .declare_subscriber(key.to_string())
            .await
            .expect("subscriber");
        println!("ATTACHED");
        let mut t = Tally::new(p);
        loop {
            let sample = sub.recv_async().await.expect("recv");
            if t.take(&sample.payload().to_bytes()) {
                break;
            }
        }
        t.report();
    });
}

struct Proc {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Proc { child, lines }
    }
    fn expect(&mut self, prefix: &str) -> String {
        loop {
            let l = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|e| panic!("waiting for {prefix}: {e}"));
            if let Some(rest) = l.strip_prefix(prefix) {
                return rest.trim().to_string();
            }
        }
    }
    fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write");
        stdin.flush().expect("flush");
    }
    fn term(&mut self) {
        // Ends a bridge the way an operator would: it prints its counters and exits.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes the rings' shared-memory names on the way out, even after a panic (Linux: POSIX
/// shared memory lives in /dev/shm).
struct Unlink(Vec<String>);

impl Drop for Unlink {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = std::fs::remove_file(format!("/dev/shm/{}", name.trim_start_matches('/')));
        }
    }
}

fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn me(role: &str, args: &[&str], p: &Params) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("current exe"));
    c.arg("--role").arg(role).args(args);
    p.env(&mut c);
    c
}

fn bridge(args: &[String]) -> Command {
    let exe = std::env::current_exe().expect("current exe");
    let mut c = Command::new(exe.with_file_name("myelon-bridge"));
    c.args(args).env("RUST_LOG", "warn");
    c
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// One run through the bridges; returns the consumer's RESULT line.
fn run_bridged(p: &Params, run: usize) -> String {
    let tag = format!("myelon-bench-{}-{run}", std::process::id());
    let (ring_a, ring_b, key) = (
        format!("{tag}-a"),
        format!("{tag}-b"),
        format!("bench/{tag}"),
    );
    let (ps, pr) = (port(), port());
    let mut prod = Proc::spawn(me("ring-producer", &[&ring_a], p));
    prod.expect("CREATED");
    let cap = CAP.to_string();
    let common = |dir: &str, ring: &str, listen: u16| {
        strings(&[
            "--direction",
            dir,
            "--ring",
            ring,
            "--capacity",
            &cap,
            "--slot-bytes",
            "1024",
            "--key",
            &key,
            "--listen",
            &format!("tcp/127.0.0.1:{listen}"),
        ])
    };
    let _unlink = Unlink(vec![ring_a.clone(), ring_b.clone()]);
    let mut args = common("ring-to-zenoh", &ring_a, ps);
    args.extend(strings(&["--consumer-id", "bridge-out"]));
    let mut sender = Proc::spawn(bridge(&args));
    let mut args = common("zenoh-to-ring", &ring_b, pr);
    args.extend(strings(&[
        "--connect",
        &format!("tcp/127.0.0.1:{ps}"),
        "--reserve",
        "final",
    ]));
    let mut receiver = Proc::spawn(bridge(&args));
    receiver.expect("READY");
    sender.expect("READY");
    let mut cons = Proc::spawn(me("ring-consumer", &[&ring_b], p));
    cons.expect("ATTACHED");
    prod.send("GO");
    cons.expect("BURST");
    prod.send("LAT");
    let result = cons.expect("RESULT");
    prod.expect("PUBLISHED");
    prod.send("CLOSE");
    let _ = prod.child.wait();
    sender.expect("COUNTERS");
    receiver.term();
    result
}

/// One run of plain zenoh pub/sub between two processes.
fn run_plain(p: &Params, run: usize) -> String {
    let key = format!("bench/plain-{}-{run}", std::process::id());
    let (ps, pr) = (port(), port());
    let (ls, lr, cs) = (
        format!("tcp/127.0.0.1:{ps}"),
        format!("tcp/127.0.0.1:{pr}"),
        format!("tcp/127.0.0.1:{ps}"),
    );
    let mut publ = Proc::spawn(me("zenoh-pub", &[&key, &ls], p));
    let mut sub = Proc::spawn(me("zenoh-sub", &[&key, &lr, &cs], p));
    sub.expect("ATTACHED");
    publ.expect("READY");
    publ.send("GO");
    sub.expect("BURST");
    publ.send("LAT");
    let result = sub.expect("RESULT");
    publ.expect("PUBLISHED");
    publ.send("CLOSE");
    let _ = publ.child.wait();
    result
}

fn field(result: &str, key: &str) -> f64 {
    result
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--role") {
        let a: Vec<&str> = args.iter().skip(2).map(String::as_str).collect();
        match args[1].as_str() {
            "ring-producer" => role_ring_producer(a[0]),
            "ring-consumer" => role_ring_consumer(a[0]),
            "zenoh-pub" => role_zenoh_pub(a[0], a[1]),
            "zenoh-sub" => role_zenoh_sub(a[0], a[1], a[2]),
            r => panic!("unknown role {r}"),
        }
        return;
    }
    let p = Params {
        messages: arg(&args, "--messages", 200_000),
        latency_messages: arg(&args, "--latency-messages", 2_000),
        size: arg(&args, "--size", 256) as usize,
        gap: Duration::from_micros(arg(&args, "--gap-us", 1000)),
    };
    assert!(
        p.size >= 16 && p.size <= 1012,
        "--size must be 16..=1012 (one 1 KiB slot)"
    );
    let runs = arg(&args, "--runs", 3) as usize;
    let mut table: Vec<(&str, Vec<String>)> = vec![
        ("ring → zenoh → ring (2 bridges)", vec![]),
        ("plain zenoh pub/sub", vec![]),
    ];
    for run in 0..runs {
        let b = run_bridged(&p, run);
        println!("run {run} bridged: {b}");
        table[0].1.push(b);
        let z = run_plain(&p, run);
        println!("run {run} plain:   {z}");
        table[1].1.push(z);
    }
    println!(
        "\n{} messages of {} B flat out, then {} paced one per {} µs; medians of {runs} runs\n",
        p.messages,
        p.size,
        p.latency_messages,
        p.gap.as_micros()
    );
    println!("| path | msgs/s | MiB/s | latency p50 (µs) | latency p99 (µs) |");
    println!("|---|---:|---:|---:|---:|");
    for (name, results) in &table {
        let m = |k: &str| median(results.iter().map(|r| field(r, k)).collect());
        println!(
            "| {name} | {:.0} | {:.1} | {:.1} | {:.1} |",
            m("msgs_per_s"),
            m("mib_per_s"),
            m("p50_us"),
            m("p99_us")
        );
    }
}
