//! Re-executing the current binary, and the guard that makes sure a child never outlives its
//! parent's interest in it.

use crate::role::ROLE_VAR;
use std::ffi::OsStr;
use std::io;
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

/// The argument that selects a role in binaries that take `--role <role>` on the command line
/// (benchmarks, examples).
pub const ROLE_ARG: &str = "--role";

/// A command that runs the current executable again: the test binary, the benchmark or the
/// example itself, in another role.
#[derive(Debug)]
pub struct ReExec {
    cmd: Command,
}

impl ReExec {
    /// `current_exe()` with no arguments yet.
    ///
    /// # Panics
    /// If the current executable cannot be determined (a broken `/proc`); see [`ReExec::try_new`].
    pub fn new() -> ReExec {
        ReExec::try_new().expect("current executable")
    }

    /// `current_exe()` with no arguments yet, or why the current executable is unknown.
    pub fn try_new() -> io::Result<ReExec> {
        Ok(ReExec {
            cmd: Command::new(std::env::current_exe()?),
        })
    }

    /// `current_exe() --role <role>`: a binary that parses its own arguments.
    pub fn with_role_arg(role: &str) -> ReExec {
        let mut r = ReExec::new();
        r.cmd.args([ROLE_ARG, role]);
        r
    }

    /// `current_exe() <entry> --exact --nocapture --test-threads=1` with [`ROLE_VAR`] set to
    /// `role`: a libtest binary that runs exactly the test `entry`, which plays `role` (and
    /// returns at once when [`ROLE_VAR`] is absent, i.e. in the parent's own run).
    pub fn test_role(entry: &str, role: &str) -> ReExec {
        let mut r = ReExec::new();
        r.cmd
            .args([entry, "--exact", "--nocapture", "--test-threads=1"])
            .env(ROLE_VAR, role);
        r
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> ReExec {
        self.cmd.arg(arg);
        self
    }

    /// Appends arguments.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> ReExec {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable of the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> ReExec {
        self.cmd.env(key, value);
        self
    }

    /// Runs the binary through `program args.. <binary> <its args..>` (e.g. `unshare -m ...`);
    /// the environment set so far is kept.
    pub fn wrapped_in<S: AsRef<OsStr>>(self, program: &str, args: &[S]) -> ReExec {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .arg(self.cmd.get_program())
            .args(self.cmd.get_args());
        for (k, v) in self.cmd.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        ReExec { cmd }
    }

    /// The command, for what this builder does not cover (stdio, process group, ...).
    pub fn command(&mut self) -> &mut Command {
        &mut self.cmd
    }

    /// Starts the child, guarded.
    pub fn spawn(mut self) -> io::Result<ChildGuard> {
        self.cmd.spawn().map(ChildGuard::new)
    }

    /// Runs the child to completion and collects its output.
    pub fn output(mut self) -> io::Result<Output> {
        self.cmd.output()
    }
}

impl Default for ReExec {
    fn default() -> ReExec {
        ReExec::new()
    }
}

/// A child process that is killed (SIGKILL) and reaped when dropped unless it was reaped
/// before, so that no panic or early return leaves it running or a zombie.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
    status: Option<ExitStatus>,
}

impl ChildGuard {
    /// Guards a child started elsewhere.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard {
            child: Some(child),
            status: None,
        }
    }

    fn inner(&mut self) -> &mut Child {
        self.child.as_mut().expect("child already taken")
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("child already taken").id()
    }

    /// The child itself (its pipes, its id).
    pub fn child(&mut self) -> &mut Child {
        self.inner()
    }

    /// The exit status if the child has exited (reaping it), without blocking.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.inner().try_wait().ok().flatten();
        }
        self.status
    }

    /// Polls until the child exits or `deadline` passes (`None`; the child keeps running).
    pub fn wait_deadline(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Blocks until the child exits; returns its status.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self.inner().wait()?;
        self.status = Some(status);
        Ok(status)
    }

    /// SIGKILLs the child (if it is still running) and reaps it.
    pub fn kill(&mut self) -> ExitStatus {
        if let Some(status) = self.try_status() {
            return status;
        }
        let _ = self.inner().kill(); // fails only if it has exited meanwhile
        self.wait().expect("reap child")
    }

    /// Waits for the child to exit and collects the rest of its piped output.
    pub fn into_output(mut self) -> io::Result<Output> {
        let child = self.child.take().expect("child already taken");
        child.wait_with_output()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if self.status.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
