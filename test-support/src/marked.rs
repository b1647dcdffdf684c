//! A re-executed test child spoken to in marker lines: the parent starts it ([`Spawn`]), writes
//! commands to its stdin, waits (with a deadline) for its `KEY value` lines, and on failure
//! prints everything it said.
//!
//! A child is the test binary run as `<entry> --exact --nocapture --test-threads=1` with
//! [`ROLE_VAR`](crate::ROLE_VAR) set ([`ReExec::test_role`]); libtest may print
//! `test <entry> ... ` in front of its first line, so markers are matched anywhere in a line.

use crate::child::{ChildGuard, ReExec};
use crate::role::CHILD_OK;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{ChildStdin, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How to start one child.
#[derive(Debug)]
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

    /// Sets an environment variable of the child.
    pub fn env(mut self, key: &str, value: impl ToString) -> Spawn {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs the test binary through `program args.. <test binary> <test args..>`.
    pub fn wrapped_in(mut self, program_and_args: &[&str]) -> Spawn {
        self.wrapper = program_and_args.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Starts the child with piped stdin, stdout and stderr; two threads forward its output.
    pub fn spawn(self) -> ChildProc {
        let mut exec = ReExec::test_role(self.entry, &self.role);
        for (k, v) in &self.envs {
            exec = exec.env(k, v);
        }
        if let Some((program, args)) = self.wrapper.split_first() {
            exec = exec.wrapped_in(program, args);
        }
        exec.command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut guard = exec
            .spawn()
            .unwrap_or_else(|e| panic!("spawn child {:?}: {e}", self.role));
        let child = guard.child();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let stdin = child.stdin.take();
        let tx_err = tx.clone();
        std::thread::spawn(move || forward(out, false, &tx));
        std::thread::spawn(move || forward(err, true, &tx_err));
        ChildProc {
            role: self.role,
            stdin,
            child: guard,
            lines,
            seen: Vec::new(),
        }
    }
}

/// One line of child output; `err` for stderr.
#[derive(Debug)]
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

/// Why [`ChildProc::try_expect`] came back without its marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMarker {
    /// The deadline passed while the child was still running (a hang).
    TimedOut,
    /// The child closed its output (it exited) without printing it.
    Closed,
}

impl std::fmt::Display for NoMarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NoMarker::TimedOut => "timed out",
            NoMarker::Closed => "child closed its output",
        })
    }
}

/// A running child. Dropping it kills and reaps the process (and, while panicking, prints its
/// transcript so a failure shows what the child said).
#[derive(Debug)]
pub struct ChildProc {
    role: String,
    child: ChildGuard,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    seen: Vec<Line>,
}

impl ChildProc {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
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

    /// The value of the first stdout line holding `key ` that the child printed so far (what
    /// [`ChildProc::expect`] waits for), without waiting.
    pub fn marker(&self, key: &str) -> Option<String> {
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

    /// Waits (at most `timeout`) for a stdout line holding `key ` and returns the rest of it;
    /// panics with the child's transcript if none comes.
    pub fn expect(&mut self, key: &str, timeout: Duration) -> String {
        match self.try_expect(key, timeout) {
            Ok(v) => v,
            Err(why) => panic!("waiting for {key:?}: {why}\n{}", self.transcript()),
        }
    }

    /// Like [`ChildProc::expect`], but says why no such line came instead of panicking (for a
    /// test that counts hangs before it fails).
    pub fn try_expect(&mut self, key: &str, timeout: Duration) -> Result<String, NoMarker> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.marker(key) {
                return Ok(v);
            }
            let open = self.pump(deadline);
            if !open || Instant::now() >= deadline {
                return match self.marker(key) {
                    Some(v) => Ok(v),
                    None if open => Err(NoMarker::TimedOut),
                    None => Err(NoMarker::Closed),
                };
            }
        }
    }

    /// Waits (at most `timeout`) until both output streams of the child are closed, i.e. every
    /// process holding them (the child, and whatever it runs under a wrapper such as `unshare`)
    /// has exited; false if they are still open at the deadline. Everything printed is kept.
    pub fn wait_output_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.pump(deadline) {
            if Instant::now() >= deadline {
                return false;
            }
        }
        true
    }

    /// Writes one command line to the child's stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("write to child stdin");
        stdin.flush().expect("flush child stdin");
    }

    /// Closes the child's stdin (a child blocked in [`read_command`](crate::read_command) gets `None`).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// SIGKILLs the child and reaps it.
    pub fn kill(&mut self) -> ExitStatus {
        self.child.kill()
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
        self.child.wait().expect("reap child")
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
        let ok = self.marker(CHILD_OK);
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
        if std::thread::panicking() {
            self.child.kill();
            // The child is dead, so its streams close soon; take what it said before that.
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.pump(deadline) && Instant::now() < deadline {}
            eprintln!("{}", self.transcript());
        }
    }
}
