//! The busy-spin every waiting side of every measurement uses.
//!
//! No `pause` by default: under KVM a tight `pause` loop can trigger pause-loop exiting (a VM
//! exit that yields the vCPU), and on recent Intel cores one `pause` costs ~140 cycles of
//! reaction time. `--pause` turns it on for all measurements alike.

use crate::proc::BenchResult;
use std::sync::atomic::{AtomicBool, Ordering};

/// Polls between two calls of the liveness check.
const POLLS_PER_CHECK: u32 = 1 << 16;

static PAUSE: AtomicBool = AtomicBool::new(false);

/// Makes every spin loop issue a `pause` per poll.
pub fn set_pause(on: bool) {
    PAUSE.store(on, Ordering::Relaxed);
}

/// Whether spin loops issue `pause`.
pub fn pause() -> bool {
    PAUSE.load(Ordering::Relaxed)
}

/// Polls `ready` until it yields a value; every [`POLLS_PER_CHECK`] empty polls runs `check`
/// (is the peer still there?) and gives up with its error.
#[inline(always)]
pub fn spin_until<T>(
    mut ready: impl FnMut() -> BenchResult<Option<T>>,
    mut check: impl FnMut() -> BenchResult<()>,
) -> BenchResult<T> {
    let pause = pause();
    let mut polls = 0u32;
    loop {
        if let Some(v) = ready()? {
            return Ok(v);
        }
        if pause {
            std::hint::spin_loop();
        }
        polls = polls.wrapping_add(1);
        if polls % POLLS_PER_CHECK == 0 {
            check()?;
        }
    }
}
