//! The doorbell of one async handle: how a task that found its ring empty (or full) is woken
//! by a publish (or a release) in another process, without spinning and without a syscall on
//! the other side's hot path.
//!
//! # The protocol (the `block_on` / `notify_now` pair of `ring/wait.rs`, split in two)
//!
//! A waiting task, on one of the ring's futex wake lines (`consumer_wake` for a consumer waiting
//! for an event, `producer_wake` for a producer waiting for space):
//!
//! 1. **arm** ([`Doorbell::arm`]): read the line's word `seq` (`Acquire`) into `seen`, count
//!    itself in `waiters` (`SeqCst`, once per wait), `SeqCst` fence;
//! 2. **re-check** (the caller): is the event there (the stream closed) / is there room now?
//!    If so it disarms and completes;
//! 3. **sleep** ([`Doorbell::sleep`]): hand `(seen, waker, timeout)` to the handle's helper
//!    thread and return `Pending`. The helper blocks in [`RingBackend::wait`] (a futex wait on
//!    SHM and mmap) while `seq == seen`, then wakes the task's `Waker`; the task polls again,
//!    from step 1.
//!
//! The other side rings with the unchanged `wait::notify` (publish) or the release path of
//! `Consumer::release`: `SeqCst` fence, and only if `waiters != 0` bump `seq` and wake all. The
//! two fences give the usual argument: either the ringer's `waiters` load sees the task's
//! increment (then `seq` moves past `seen` and the futex wait returns or is woken), or the task's
//! fence comes first in the `SeqCst` order and its re-check sees what the ringer published before
//! its own fence. The futex wait compares `seq` with `seen` atomically with going to sleep, so a
//! bump between the re-check and the helper's wait is never lost either. `transport/tests/loom.rs`
//! (`async_recv_wakes_after_publish`) checks this with the real code, a strict futex and loom's
//! executor; the planted bug `async_no_recheck` (the re-check skipped) is a loom deadlock.
//!
//! **No cost while nobody waits.** The publish path's `notify` loads `sleepers_registered` and
//! returns when it is 0: an async consumer counts itself there for its lifetime (as a `Block`
//! consumer does, through its entry's `sleeper` flag), so only rings with a sleeping-capable
//! consumer pay the fence, and the syscall only while one is armed. The release path does the
//! same on `producer_wake`: an [`AsyncProducer`](super::AsyncProducer) counts itself there, which
//! turns the consumers' release check from the unfenced one (a sync producer sleeps in 100 µs
//! slices, so a missed wake is a delay) into the fenced one (an async producer must not miss
//! one). Without an async producer the release path is one relaxed load more than before, of
//! the line it already reads.
//!
//! **Timeouts.** Every sleep is bounded ([`Doorbell::sleep`]'s `timeout`): a consumer re-polls
//! at its producer-check interval (50 ms by default) to notice a producer that died without
//! closing (the kernel-released owner lock), a managed producer when its liveness check is due.
//! One wake-up per interval is the whole idle cost (well under 1 % of a core).
//!
//! # Why a helper thread per handle
//!
//! A futex word in shared memory cannot be registered with epoll, and the peer process cannot
//! write to our eventfd without our fd. So something must block in `futex_wait` on the task's
//! behalf: a thread. One per async handle, spawned at its first sleep and joined when the handle
//! drops, keeps the ownership simple — the thread reads the wake line through the handle's own
//! mapping, which the handle keeps until it has joined the thread — needs no process-global
//! state (so it works on any executor, and in a process with several runtimes), and needs only
//! the plain futex every backend already offers (`futex_waitv`, which would let one thread per
//! process wait on every ring, needs Linux 5.16 and a new backend call). The cost is an idle
//! thread per handle (no CPU, a stack) and one extra hop on a wake-up: ringer → helper →
//! executor. A process with hundreds of async handles would want the multiplexed variant.
//!
//! Dropping the handle interrupts a helper that sleeps on the line by bumping `seq` and waking
//! it (other sleepers on the line see one spurious wake-up and re-check).

use crate::backend::{RingBackend, SchedPoint};
use crate::ring::layout::WakeLine;
use crate::ring::sync::local::{thread, Arc, Condvar, Mutex, MutexGuard};
use crate::ring::sync::{fence, Ordering};
use std::ptr::NonNull;
use std::task::Waker;
use std::time::Duration;

/// A pointer to a wake line in a mapping the owning handle keeps alive (see [`Doorbell::new`]).
#[derive(Clone, Copy)]
struct LinePtr(NonNull<WakeLine>);

// SAFETY: a `WakeLine` is three atomics in shared memory, meant to be used from any thread (and
// process); the pointer stays valid for as long as the helper thread runs, because the handle
// that owns the mapping joins the helper before it drops the mapping (`Doorbell::drop`).
unsafe impl Send for LinePtr {}

impl LinePtr {
    /// The line.
    fn get(&self) -> &WakeLine {
        // SAFETY: `Doorbell::new`'s contract: the mapping outlives the doorbell, and the helper
        // thread (the only other user) is joined in `Doorbell::drop`.
        unsafe { self.0.as_ref() }
    }
}

/// What the task asks of the helper thread.
struct Request {
    /// The line's word as the task read it when it armed.
    seen: u32,
    /// Wake the task after this long even if nothing happened.
    timeout: Duration,
    waker: Waker,
}

#[derive(Default)]
struct State {
    request: Option<Request>,
    /// The helper waits on the condition variable (not on the line): a new request must notify.
    idle: bool,
    shutdown: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    cv: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a few plain fields that every critical section leaves consistent, so a
        // poisoned lock (a panic elsewhere while holding it) is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Helper {
    shared: Arc<Shared>,
    thread: Option<thread::JoinHandle<()>>,
}

/// One async handle's doorbell on one wake line.
pub(crate) struct Doorbell<B: RingBackend> {
    line: LinePtr,
    backend: B,
    /// Whether this doorbell counts itself in the line's `sleepers_registered` (producers do;
    /// consumers register through their entry's `sleeper` flag instead).
    counts_sleeper: bool,
    /// Counted in the line's `waiters` (between an arm and the next disarm).
    armed: bool,
    /// A request may be pending at the helper.
    requested: bool,
    helper: Option<Helper>,
    /// Under madsim: the timeout of the current sleep, a madsim timer (no helper thread).
    #[cfg(madsim)]
    timer: Option<std::pin::Pin<Box<madsim::time::Sleep>>>,
}

impl<B: RingBackend> std::fmt::Debug for Doorbell<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doorbell")
            .field("armed", &self.armed)
            .field("helper", &self.helper.is_some())
            .finish()
    }
}

impl<B: RingBackend> Doorbell<B> {
    /// A doorbell on `line`. With `count_sleeper`, it counts itself in the line's
    /// `sleepers_registered` until dropped, so the other side rings it with the fenced protocol.
    ///
    /// # Safety
    /// `line` lies in a mapping that stays mapped until this doorbell is dropped: the handle
    /// that owns both declares the doorbell before the ring handle (fields drop in order).
    pub(crate) unsafe fn new(line: &WakeLine, backend: B, count_sleeper: bool) -> Self {
        if count_sleeper {
            line.sleepers_registered.fetch_add(1, Ordering::SeqCst);
        }
        Doorbell {
            line: LinePtr(NonNull::from(line)),
            backend,
            counts_sleeper: count_sleeper,
            armed: false,
            requested: false,
            helper: None,
            #[cfg(madsim)]
            timer: None,
        }
    }

    fn line(&self) -> &WakeLine {
        self.line.get()
    }

    /// Step 1: reads the word, counts this task in `waiters` (once per wait), fences. Returns
    /// the word's value, for [`Self::sleep`]. The caller re-checks its condition next.
    pub(crate) fn arm(&mut self) -> u32 {
        self.backend.sched_point(SchedPoint::WaitArm, 0);
        let line = self.line.get();
        let seen = line.seq.load(Ordering::Acquire);
        if !self.armed {
            line.waiters.fetch_add(1, Ordering::SeqCst);
            self.armed = true;
        }
        // Pairs with the ringer's fence (`wait::notify_now`): either it sees `waiters > 0`, or
        // the caller's re-check sees what it published before that fence.
        fence(Ordering::SeqCst);
        self.backend.sched_point(SchedPoint::WaitRecheck, 0);
        seen
    }

    /// Step 3, after a re-check that failed: the helper wakes `waker` once the word moves past
    /// `seen`, or after `timeout`.
    pub(crate) fn sleep(&mut self, seen: u32, timeout: Duration, waker: &Waker) {
        #[cfg(madsim)]
        if self.sleep_without_thread(seen, timeout, waker) {
            return;
        }
        let shared = match &self.helper {
            Some(h) => Arc::clone(&h.shared),
            None => self.spawn_helper(),
        };
        let mut st = shared.lock();
        let waker = match st.request.take() {
            Some(r) if r.waker.will_wake(waker) => r.waker,
            _ => waker.clone(),
        };
        st.request = Some(Request {
            seen,
            timeout,
            waker,
        });
        let notify = st.idle;
        drop(st);
        self.requested = true;
        if notify {
            shared.cv.notify_one();
        }
    }

    /// Under madsim (threads are not allowed, and the executor must see every wake-up): the
    /// backend wakes the task itself at the next wake of the word (the simulator's
    /// `wake_on_change`), and a madsim timer bounds the sleep. `false`: the backend cannot, or
    /// this is not inside a madsim runtime.
    #[cfg(madsim)]
    fn sleep_without_thread(&mut self, seen: u32, timeout: Duration, waker: &Waker) -> bool {
        use std::future::Future;
        if madsim::time::TimeHandle::try_current().is_none()
            || !self.backend.wake_on_change(&self.line().seq, seen, waker)
        {
            return false;
        }
        let mut timer = Box::pin(madsim::time::sleep(timeout));
        if timer
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
            .is_ready()
        {
            waker.wake_by_ref();
        }
        self.timer = Some(timer);
        true
    }

    /// Not waiting any more (the condition holds, or the waiting future was dropped): leaves
    /// `waiters` and withdraws the request.
    pub(crate) fn disarm(&mut self) {
        #[cfg(madsim)]
        {
            self.timer = None;
        }
        if self.armed {
            self.line().waiters.fetch_sub(1, Ordering::SeqCst);
            self.armed = false;
        }
        if self.requested {
            if let Some(h) = &self.helper {
                h.shared.lock().request = None;
            }
            self.requested = false;
        }
    }

    /// [`Self::disarm`] for a waiting future that is dropped, unless its process was killed
    /// (a killed process leaves its waiter count as it was, as after SIGKILL).
    pub(crate) fn disarm_on_drop(&mut self) {
        if !self.backend.process_killed() {
            self.disarm();
        }
    }

    fn spawn_helper(&mut self) -> Arc<Shared> {
        let shared = Arc::new(Shared::default());
        let (line, backend, s) = (self.line, self.backend.clone(), Arc::clone(&shared));
        let thread = spawn(move || helper(line, backend, s));
        self.helper = Some(Helper {
            shared: Arc::clone(&shared),
            thread: Some(thread),
        });
        shared
    }
}

#[cfg(not(loom))]
fn spawn(f: impl FnOnce() + Send + 'static) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name("myelon-doorbell".into())
        .spawn(f)
        .expect("spawning the myelon doorbell thread")
}

#[cfg(loom)]
fn spawn(f: impl FnOnce() + Send + 'static) -> thread::JoinHandle<()> {
    thread::spawn(f)
}

/// Leaks its value instead of dropping it while the thread unwinds. Under loom, dropping the
/// helper's `Arc` runs model operations, which panic again once loom stopped the execution (a
/// deadlock it reports from this thread), and a panic during unwinding aborts the whole test
/// binary; outside loom the helper never unwinds unless a waker panics, and then leaking one
/// `Arc` is harmless.
struct LeakOnUnwind<T>(Option<T>);

impl<T> Drop for LeakOnUnwind<T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::mem::forget(self.0.take());
        }
    }
}

/// The helper thread: waits for a request, sleeps on the line while its word is the value the
/// task saw, wakes the task, and again, until shut down.
fn helper<B: RingBackend>(line: LinePtr, backend: B, shared: Arc<Shared>) {
    let keep = LeakOnUnwind(Some(shared));
    let Some(shared) = keep.0.as_ref() else {
        return;
    };
    let line = line.get();
    let mut st = shared.lock();
    loop {
        if st.shutdown {
            return;
        }
        let Some((seen, timeout)) = st.request.as_ref().map(|r| (r.seen, r.timeout)) else {
            st.idle = true;
            st = shared.cv.wait(st).unwrap_or_else(|p| p.into_inner());
            st.idle = false;
            continue;
        };
        drop(st);
        backend.wait(&line.seq, seen, timeout);
        st = shared.lock();
        // Whatever the request is now (a newer one included): its task re-checks when woken.
        if let Some(r) = st.request.take() {
            drop(st);
            r.waker.wake();
            st = shared.lock();
        }
    }
}

impl<B: RingBackend> Drop for Doorbell<B> {
    fn drop(&mut self) {
        // A killed (simulated) process leaves the shared words as they are (as after SIGKILL);
        // its helper thread, if any, is still stopped before the mapping goes.
        let killed = self.backend.process_killed();
        if !killed {
            self.disarm();
        }
        if let Some(mut h) = self.helper.take() {
            h.shared.lock().shutdown = true;
            h.shared.cv.notify_one();
            // The helper may sleep on the line: move the word so that its wait returns (or is
            // not entered), and wake it.
            let line = self.line.get();
            line.seq.fetch_add(1, Ordering::Release);
            self.backend.wake_all(&line.seq);
            if let Some(t) = h.thread.take() {
                let _ = t.join();
            }
        }
        if self.counts_sleeper && !killed {
            self.line()
                .sleepers_registered
                .fetch_sub(1, Ordering::SeqCst);
        }
    }
}
