//! Real-process fixtures: re-exec the test binary in a role, read the child's marker lines, and
//! clean up (kill and reap every child, unlink the segment) even when a test fails.
//!
//! A child is the test binary run as `--exact <entry> --nocapture --test-threads=1` with
//! [`ROLE_VAR`] set; the entry test returns at once when that variable is absent. A child reports
//! with `println!("{KEY} {value}")` lines (see [`report`]); libtest may print `test <entry> ... `
//! in front of the first one, so the parent matches keys anywhere in a line. Every child ends with
//! a `CHILD-OK <role>` line, so a filter that matched no test (exit 0, nothing run) cannot pass.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Environment variable naming the role of a child process.
pub const ROLE_VAR: &str = "MYELON_TEST_ROLE";
/// Environment variable carrying the ring name to a child.
pub const SEGMENT_VAR: &str = "MYELON_TEST_SEGMENT";
/// Environment variable carrying a consumer id to a child.
pub const ID_VAR: &str = "MYELON_TEST_ID";
/// The last line every successful child prints.
pub const CHILD_OK: &str = "CHILD-OK";

/// The role this process runs in, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// A required environment variable of a child.
pub fn env_str(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("child: {var} is not set"))
}

/// A required numeric environment variable of a child.
pub fn env_u64(var: &str) -> u64 {
    let v = env_str(var);
    v.parse()
        .unwrap_or_else(|_| panic!("child: {var}={v:?} is not a number"))
}

/// Child side: prints one marker line and flushes it at once (the parent may be waiting on it).
pub fn report(key: &str, value: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{key} {value}").expect("write marker");
    out.flush().expect("flush marker");
}

/// Child side: blocks until the parent writes a line (returned without its newline) or closes
/// stdin (`None`).
pub fn read_command() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) => None,
        Ok(_) => Some(line.trim_end().to_string()),
        Err(e) => panic!("child: reading stdin: {e}"),
    }
}

/// Removes a ring name on drop (ignoring "not found"), so a failed test leaves nothing behind.
pub struct SegmentGuard(pub String);

impl SegmentGuard {
    pub fn new(tag: &str) -> SegmentGuard {
        SegmentGuard(super::unique(tag))
    }

    pub fn name(&self) -> &str {
        &self.0
    }
}

impl Drop for SegmentGuard {
    fn drop(&mut self) {
        use myelon::backend::{BackendError, RingBackend};
        match myelon::backend::ShmBackend.remove(&self.0) {
            Ok(()) | Err(BackendError::NotFound { .. }) => {}
            Err(e) => eprintln!("cleanup of {:?} failed: {e}", self.0),
        }
    }
}

/// How to start one child.
pub struct Spawn {
    role: String,
    entry: &'static str,
    envs: Vec<(String, String)>,
    wrapper: Vec<String>,
}

impl Spawn {
    /// A child running `entry` (the full path of the role entry test) in `role`.
    pub fn new(entry: &'static str, role: &str) -> Spawn {
        Spawn {
            role: role.to_string(),
            entry,
            envs: Vec::new(),
            wrapper: Vec::new(),
        }
    }

    pub fn env(mut self, key: &str, value: impl ToString) -> Spawn {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs the test binary through `program args.. <test binary> <test args..>`.
    pub fn wrapped_in(mut self, program_and_args: &[&str]) -> Spawn {
        self.wrapper = program_and_args.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn spawn(self) -> ChildProc {
        let exe = std::env::current_exe().expect("current test binary");
        let test_args = [self.entry, "--exact", "--nocapture", "--test-threads=1"];
        let mut cmd = match self.wrapper.split_first() {
            None => Command::new(&exe),
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&exe);
                c
            }
        };
        cmd.args(test_args)
            .env(ROLE_VAR, &self.role)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn child {:?}: {e}", self.role));
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let tx_err = tx.clone();
        std::thread::spawn(move || forward(out, false, &tx));
        std::thread::spawn(move || forward(err, true, &tx_err));
        ChildProc {
            role: self.role,
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            status: None,
        }
    }
}

/// One line of child output; `err` for stderr.
struct Line {
    err: bool,
    text: String,
}

fn forward(stream: impl Read, err: bool, tx: &mpsc::Sender<Line>) {
    for text in BufReader::new(stream).lines() {
        let Ok(text) = text else { break };
        if tx.send(Line { err, text }).is_err() {
            break;
        }
    }
}

/// A running child. Dropping it kills and reaps the process (and, while panicking, prints its
/// transcript so a failure shows what the child said).
pub struct ChildProc {
    role: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    seen: Vec<Line>,
    status: Option<ExitStatus>,
}

impl ChildProc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the child printed so far (stderr lines prefixed), for failure messages.
    pub fn transcript(&self) -> String {
        let mut s = format!("--- child {:?} (pid {}) ---\n", self.role, self.pid());
        for l in &self.seen {
            s.push_str(if l.err { "[stderr] " } else { "" });
            s.push_str(&l.text);
            s.push('\n');
        }
        s
    }

    fn marker_value(&self, key: &str) -> Option<String> {
        let pat = format!("{key} ");
        self.seen.iter().filter(|l| !l.err).find_map(|l| {
            let at = l.text.find(&pat)?;
            Some(l.text[at + pat.len()..].trim().to_string())
        })
    }

    /// Takes in what the child printed, waiting at most until `deadline`. False once both of its
    /// output streams are closed.
    fn pump(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                self.seen.push(line);
                while let Ok(line) = self.lines.try_recv() {
                    self.seen.push(line);
                }
                true
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => false,
        }
    }

    /// Waits (at most `timeout`) for a stdout line holding `key ` and returns the rest of it.
    pub fn expect(&mut self, key: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.marker_value(key) {
                return v;
            }
            let open = self.pump(deadline);
            if !open || Instant::now() >= deadline {
                if let Some(v) = self.marker_value(key) {
                    return v;
                }
                let why = if open {
                    "timed out"
                } else {
                    "child closed its output"
                };
                panic!("waiting for {key:?}: {why}\n{}", self.transcript());
            }
        }
    }

    /// Writes one command line to the child's stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to child stdin");
        stdin.flush().expect("flush child stdin");
    }

    /// Closes the child's stdin (a child blocked in [`read_command`] gets `None`).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// SIGKILLs the child and reaps it.
    pub fn kill(&mut self) -> ExitStatus {
        self.child.kill().expect("kill child");
        let status = self.child.wait().expect("reap child");
        self.status = Some(status);
        status
    }

    /// Waits (at most `timeout`) for the child to close its output and exit; returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.close_stdin();
        let deadline = Instant::now() + timeout;
        while self.pump(deadline) {
            if Instant::now() >= deadline {
                panic!("child did not exit in time\n{}", self.transcript());
            }
        }
        // Both streams are closed: the child is exiting (nothing here daemonizes).
        let status = self.child.wait().expect("reap child");
        self.status = Some(status);
        status
    }

    /// Waits for the child to exit and asserts it exited 0 (not by a signal) after printing
    /// `CHILD-OK <role>`.
    pub fn finish(&mut self, timeout: Duration) -> ExitStatus {
        use std::os::unix::process::ExitStatusExt;
        let status = self.wait_exit(timeout);
        if let Some(sig) = status.signal() {
            panic!("child killed by signal {sig}\n{}", self.transcript());
        }
        assert!(
            status.success(),
            "child failed: {status}\n{}",
            self.transcript()
        );
        let ok = self.marker_value(CHILD_OK);
        assert_eq!(
            ok.as_deref(),
            Some(self.role.as_str()),
            "child exited 0 without its {CHILD_OK} marker (did the --exact filter match?)\n{}",
            self.transcript()
        );
        status
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            // The child is dead, so its streams close soon; take what it said before that.
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.pump(deadline) && Instant::now() < deadline {}
            eprintln!("{}", self.transcript());
        }
    }
}
