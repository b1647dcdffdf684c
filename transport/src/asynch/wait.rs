//! The one async wait loop: try, arm, re-check, sleep. Every async receive and publish of every
//! layer is this loop with its own `attempt` and `recheck`.

use super::doorbell::Doorbell;
use crate::backend::RingBackend;
use std::task::{Context, Poll};
use std::time::Duration;

/// Polls `attempt` on `state`; when it has nothing yet, arms `bell`, runs `recheck` (has the
/// condition become true since `attempt` looked?), and either tries again or asks the doorbell
/// to wake the task once the wake word moves (or after `timeout`). Completing (a value or an
/// error) disarms the doorbell; a `Pending` leaves it armed until the next poll or until the
/// caller's future is dropped (which disarms it).
///
/// Nothing is consumed or published unless `attempt` returns a value, so dropping the future
/// between two polls loses nothing (cancellation safety).
pub(crate) fn poll_wait<S, T, Err, B: RingBackend>(
    bell: &mut Doorbell<B>,
    state: &mut S,
    cx: &mut Context<'_>,
    timeout: impl Fn(&S) -> Duration,
    mut attempt: impl FnMut(&mut S) -> Result<Option<T>, Err>,
    mut recheck: impl FnMut(&mut S) -> bool,
) -> Poll<Result<T, Err>> {
    loop {
        match attempt(state) {
            Ok(Some(v)) => {
                bell.disarm();
                return Poll::Ready(Ok(v));
            }
            Err(e) => {
                bell.disarm();
                return Poll::Ready(Err(e));
            }
            Ok(None) => {}
        }
        let seen = bell.arm();
        // Mutant: the doorbell is armed but the condition is not re-checked, so an event
        // published between `attempt` and the arm is left for a wake-up that never comes
        // (loom: `async_recv_wakes_after_publish`).
        #[cfg(myelon_mutant = "async_no_recheck")]
        let again = {
            let _ = &mut recheck;
            false
        };
        #[cfg(not(myelon_mutant = "async_no_recheck"))]
        let again = recheck(state);
        if again {
            continue;
        }
        bell.sleep(seen, timeout(state), cx.waker());
        return Poll::Pending;
    }
}
