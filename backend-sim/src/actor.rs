//! Hand-off points between code running over the simulated platform and a deterministic
//! scheduler that runs that code as *actors* (one at a time, on one OS thread).
//!
//! The platform code (myelon's `SimBackend`) calls [`suspend`] at every shared-memory-visible
//! step and inside every blocking call. Outside an actor nothing happens (`None`), so plain
//! tests over the simulator behave as before. Inside one, the scheduler installed with
//! [`set_hook`] decides who runs next, and answers how a park ended.

use std::cell::Cell;
use std::time::Duration;

/// Why an actor hands control back to the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspend {
    /// A shared-memory-visible step is about to happen: `code` names it (the caller's enum as
    /// a number), `data` is a value worth tracing (a sequence, an address), or 0.
    Point {
        /// What the step is.
        code: u16,
        /// A value worth tracing, or 0.
        data: i64,
    },
    /// Futex wait: park until a [`Suspend::Wake`] on `addr`, or until `timeout` of virtual
    /// time has passed. The caller checked that the word still held its expected value.
    Park {
        /// Address of the 32-bit word.
        addr: usize,
        /// Longest virtual wait.
        timeout: Duration,
    },
    /// Futex wake of every actor parked on `addr`.
    Wake {
        /// Address of the 32-bit word.
        addr: usize,
    },
    /// Sleep for a virtual duration.
    Sleep(Duration),
    /// Give up the CPU (`sched_yield`).
    Yield,
}

/// How a suspension ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resumed {
    /// Just scheduled again.
    Go,
    /// A park ended with a wake.
    Woken,
    /// A park ended with its timeout.
    TimedOut,
}

/// The scheduler's entry point: `None` when the caller is not running inside an actor.
pub type Hook = fn(Suspend) -> Option<Resumed>;

thread_local! {
    static HOOK: Cell<Option<Hook>> = const { Cell::new(None) };
}

/// Installs (or removes) the scheduler hook for this OS thread.
pub fn set_hook(hook: Option<Hook>) {
    HOOK.with(|h| h.set(hook));
}

/// Hands control to the scheduler if the caller runs inside an actor on this thread.
#[inline]
pub fn suspend(s: Suspend) -> Option<Resumed> {
    match HOOK.with(Cell::get) {
        Some(hook) => hook(s),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(s: Suspend) -> Option<Resumed> {
        match s {
            Suspend::Park { .. } => Some(Resumed::TimedOut),
            _ => Some(Resumed::Go),
        }
    }

    #[test]
    fn no_hook_means_no_actor() {
        set_hook(None);
        assert_eq!(suspend(Suspend::Yield), None);
        set_hook(Some(answer));
        assert_eq!(suspend(Suspend::Yield), Some(Resumed::Go));
        let park = Suspend::Park {
            addr: 8,
            timeout: Duration::from_micros(1),
        };
        assert_eq!(suspend(park), Some(Resumed::TimedOut));
        set_hook(None);
        assert_eq!(suspend(park), None);
    }
}
