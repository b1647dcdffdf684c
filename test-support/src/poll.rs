//! Waiting for a condition: poll it until a deadline, never sleep a guessed duration.

use std::time::{Duration, Instant};

/// A generous bound for anything a test waits for; reached only when something is broken.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `cond` until it holds (`true`) or `timeout` has passed (`false`). Yields between
/// polls, then backs off to 1 ms sleeps so a long wait does not burn a core.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut polls = 0u32;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        polls = polls.saturating_add(1);
        if polls < 1000 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Polls `cond` until it holds; panics naming `what` after `timeout`.
pub fn poll_until(timeout: Duration, what: &str, cond: impl FnMut() -> bool) {
    assert!(
        wait_for(timeout, cond),
        "timed out after {timeout:?} waiting for {what}"
    );
}

/// Reads `stream` (a child's stdout) on a helper thread until a line ending in `wanted` arrives
/// (libtest may have printed `test name ... ` before it on the same line); panics after
/// `timeout` or at the end of the stream.
pub fn wait_for_line(stream: impl std::io::Read + Send + 'static, wanted: &str, timeout: Duration) {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let wanted_owned = wanted.to_owned();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if line.trim_end().ends_with(&wanted_owned) {
                let _ = tx.send(());
                break;
            }
        }
    });
    rx.recv_timeout(timeout)
        .unwrap_or_else(|e| panic!("child never printed {wanted:?}: {e}"));
}
