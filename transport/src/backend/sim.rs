//! `RingBackend` over the simulated machine of `myelon-backend-sim`.
//!
//! A `SimBackend` is one simulated process's view of a [`SimWorld`]: regions are heap memory
//! shared through the world, time is the world's virtual clock, and liveness is the world's
//! process table. The ring code above it is exactly the code that runs over SHM and mmap.

use super::SchedPoint;
use super::{BackendError, ProcessState, Region, RemovalGuard, RingBackend, WaitOutcome};
use crate::ring::sync::{AtomicU32, Ordering};
use myelon_backend_sim::actor::{self, Resumed, Suspend};
use myelon_backend_sim::{SimError, SimProcessState, SimRegion, SimWorld};
use std::sync::Arc;
use std::time::Duration;

/// Longest stretch of virtual time one blocking wait lets pass when threads drive the simulator
/// directly (the DST scheduler never blocks; it moves the clock itself).
const SIM_WAIT_QUANTUM: Duration = Duration::from_micros(10);

/// One simulated process's handle on a simulated machine.
#[derive(Debug, Clone)]
pub struct SimBackend {
    world: Arc<SimWorld>,
    pid: u32,
    /// Loom models only: futex waits park until woken (see [`SimBackend::with_strict_futex`]).
    #[cfg(loom)]
    strict_futex: bool,
}

/// A region of the simulated machine as mapped by one simulated process.
#[derive(Debug)]
pub struct SimRegionHandle {
    world: Arc<SimWorld>,
    region: Arc<SimRegion>,
    name: String,
    owner_pid: u32,
    is_owner: bool,
    /// The process that mapped it, and this mapping's handle id (lock slots are per handle).
    pid: u32,
    handle: u64,
    /// Owner only: `Region::keep_name_on_drop` was called (process-local handle state).
    #[allow(clippy::disallowed_types)]
    keep_name: std::sync::atomic::AtomicBool,
}

impl SimBackend {
    /// Spawns a new simulated process in `world` and returns its backend.
    pub fn spawn(world: &Arc<SimWorld>) -> SimBackend {
        SimBackend {
            world: Arc::clone(world),
            pid: world.spawn_process(),
            #[cfg(loom)]
            strict_futex: false,
        }
    }

    /// Loom models only: this process's futex waits park until a wake on their word and ignore
    /// their timeout (otherwise a wait lets virtual time pass and returns, so a lost wake-up
    /// is only a delay). A wake-up the protocol loses then leaves the waiter parked for ever,
    /// which loom reports as a deadlock. For waits whose protocol promises a wake (the
    /// consumer wake line, `wait::block_on` / `notify_now`), not for the producer's
    /// deliberately unfenced wait for space.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn with_strict_futex(mut self) -> Self {
        self.strict_futex = true;
        self
    }

    /// A fresh world with one process in it.
    pub fn new_world() -> SimBackend {
        Self::spawn(&Arc::new(SimWorld::new()))
    }

    /// Another simulated process in the same world.
    pub fn sibling(&self) -> SimBackend {
        Self::spawn(&self.world)
    }

    /// The world this process lives in.
    pub fn world(&self) -> &Arc<SimWorld> {
        &self.world
    }

    /// This simulated process's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Marks this simulated process dead, as after `SIGKILL`. (Loom models: called on the
    /// killed process's own thread, see `loom_deaths`.)
    pub fn kill(&self) {
        #[cfg(loom)]
        loom_deaths::record();
        self.world.kill_process(self.pid)
    }
}

fn map_sim_error(e: SimError) -> BackendError {
    match e {
        SimError::AlreadyExists { name } => BackendError::AlreadyExists { name },
        SimError::NotFound { name } => BackendError::NotFound { name },
        SimError::NoSpace { name, requested } => BackendError::NoSpace { name, requested },
        SimError::Foreign { name } => BackendError::ForeignObject { name },
        SimError::InvalidName { name } => BackendError::InvalidName {
            name,
            reason: "empty, or contains '/' or NUL",
        },
        other => BackendError::Io {
            op: "sim",
            name: String::new(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

fn map_state(s: SimProcessState) -> ProcessState {
    match s {
        SimProcessState::Alive => ProcessState::Alive,
        SimProcessState::Dead => ProcessState::Dead,
        SimProcessState::Unknown => ProcessState::Unknown,
    }
}

// SAFETY: the contract of `Region` is the backend crate's mapping contract: SimRegionHandle maps the
// whole object once (fully allocated, page aligned, zero-filled on create) and unmaps it only
// on drop; see the backend crate's region docs.
unsafe impl Region for SimRegionHandle {
    fn as_ptr(&self) -> *mut u8 {
        self.region.as_ptr()
    }
    fn len(&self) -> usize {
        self.region.len()
    }
    fn is_owner(&self) -> bool {
        self.is_owner
    }
    fn owner_state(&self) -> ProcessState {
        if self.world.owner_released(&self.region) {
            return ProcessState::Dead;
        }
        dead_seen(map_state(self.world.process_state(self.owner_pid)))
    }
    fn finish(&self, _mode: u32) -> Result<(), BackendError> {
        self.world.finish_region(&self.name, &self.region);
        Ok(())
    }
    fn try_lock_slot(&self, slot: u64) -> Result<bool, BackendError> {
        Ok(self
            .world
            .try_lock_slot(&self.region, slot, self.pid, self.handle))
    }
    fn unlock_slot(&self, slot: u64) {
        self.world.unlock_slot(&self.region, slot, self.handle)
    }
    fn keep_name_on_drop(&self) {
        self.keep_name
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    fn is_linked(&self) -> bool {
        self.world.is_linked(&self.name, &self.region)
    }
    fn slot_state(&self, slot: u64) -> ProcessState {
        if self.world.slot_held(&self.region, slot, self.handle) {
            ProcessState::Alive
        } else {
            dead_seen(ProcessState::Dead)
        }
    }
}

/// What a removal's `keep` test is shown of a simulated region: the header words it reads,
/// loaded through the typed header (the region's words are atomics, of another layout under
/// loom), at their byte offsets ([`crate::ring::layout::head_image_of`]); empty if the region
/// cannot hold a header.
fn head_of(region: &myelon_backend_sim::SimRegion) -> Vec<u8> {
    // SAFETY: a simulated region is mapped, page aligned and `len()` bytes long for as long as
    // the `SimRegion` lives, which outlives this call.
    unsafe { crate::ring::layout::head_image_of(region.as_ptr(), region.len()) }.unwrap_or_default()
}

/// The native-endian `u64` at the start of a simulated region (0 if it is shorter).
fn first_word(region: &myelon_backend_sim::SimRegion) -> u64 {
    if region.len() < 8 {
        return 0;
    }
    // The first word is only ever accessed atomically (the `magic` field of both headers,
    // written with `ptr::write` of an atomic, I4 of ring/layout.rs); a zeroed word is valid.
    // SAFETY: the region is page aligned and at least 8 bytes long (checked above), and an
    // atomic read of a word only ever accessed atomically is never a mixed access.
    let word = unsafe { &*(region.as_ptr() as *const crate::ring::sync::AtomicU64) };
    word.load(Ordering::Acquire)
}

impl Drop for SimRegionHandle {
    fn drop(&mut self) {
        self.world.release_handle(self.handle);
        // A killed owner removes nothing (its name stays, as after SIGKILL, for a reclaim).
        if self.is_owner && self.world.process_state(self.owner_pid) != SimProcessState::Dead {
            if self.keep_name.load(std::sync::atomic::Ordering::Relaxed) {
                // As a real owner's descriptor closing releases its lock: the name stays, its
                // owner is gone.
                self.world.release_owner(&self.region);
            } else {
                self.world.remove_region_if_same(&self.name, &self.region);
            }
        }
    }
}

impl RingBackend for SimBackend {
    type Region = SimRegionHandle;

    fn kind(&self) -> &'static str {
        "sim"
    }
    fn os_name(&self, name: &str) -> Result<String, BackendError> {
        let name = name.trim_start_matches('/');
        SimWorld::validate_name(name).map_err(map_sim_error)?;
        Ok(name.to_string())
    }
    fn create(&self, name: &str, len: usize) -> Result<SimRegionHandle, BackendError> {
        self.sched_point(SchedPoint::RegionOp, 0);
        let name = self.os_name(name)?;
        let region = self
            .world
            .create_region(&name, len, self.pid)
            .map_err(map_sim_error)?;
        Ok(SimRegionHandle {
            world: Arc::clone(&self.world),
            region,
            name,
            owner_pid: self.pid,
            is_owner: true,
            pid: self.pid,
            handle: self.world.new_handle(),
            keep_name: Default::default(),
        })
    }
    fn open(&self, name: &str) -> Result<SimRegionHandle, BackendError> {
        self.sched_point(SchedPoint::RegionOp, 0);
        let name = self.os_name(name)?;
        let (region, owner_pid) = self.world.open_region(&name).map_err(map_sim_error)?;
        Ok(SimRegionHandle {
            world: Arc::clone(&self.world),
            region,
            name,
            owner_pid,
            is_owner: false,
            pid: self.pid,
            handle: self.world.new_handle(),
            keep_name: Default::default(),
        })
    }
    fn remove(&self, name: &str) -> Result<(), BackendError> {
        self.sched_point(SchedPoint::RegionOp, 0);
        let name = self.os_name(name)?;
        self.world.remove_region(&name).map_err(map_sim_error)
    }
    fn remove_if_abandoned(
        &self,
        name: &str,
        magics: &[u64],
        guard: RemovalGuard<'_>,
    ) -> Result<bool, BackendError> {
        self.sched_point(SchedPoint::RegionOp, 0);
        let name = self.os_name(name)?;
        if self.world.open_region(&name).is_err() {
            return Err(BackendError::NotFound { name });
        }
        // As on a real platform: ours if its creator never finished it, or if it carries one of
        // the magics.
        self.world
            .remove_region_if_abandoned_guarded(
                &name,
                guard.slots,
                |region, finished| !finished || magics.contains(&first_word(region)),
                |region| guard.keep.is_some_and(|keep| keep(&head_of(region))),
            )
            .map_err(map_sim_error)
    }
    fn list(&self) -> Result<Vec<String>, BackendError> {
        self.sched_point(SchedPoint::RegionOp, 0);
        Ok(self.world.list_regions())
    }
    fn now(&self) -> Duration {
        // Under madsim the simulated machine runs on madsim's virtual clock, so that the ring's
        // deadlines (producer checks, liveness) and the users' timers agree.
        #[cfg(madsim)]
        if let Some(t) = madsim::time::TimeHandle::try_current() {
            return t.elapsed();
        }
        self.world.now()
    }
    fn process_killed(&self) -> bool {
        self.world.process_state(self.pid) == SimProcessState::Dead
    }
    fn wake_on_change(&self, word: &AtomicU32, expected: u32, waker: &std::task::Waker) -> bool {
        // One step, as in a futex: no scheduling point between the check and the registration.
        if word.load(Ordering::Acquire) != expected {
            waker.wake_by_ref();
        } else {
            self.world
                .register_waker(word as *const AtomicU32 as usize, waker);
        }
        true
    }
    fn wait(&self, word: &AtomicU32, expected: u32, timeout: Duration) -> WaitOutcome {
        #[cfg(loom)]
        if self.strict_futex {
            loom_futex::wait(word, expected);
            return WaitOutcome::Woken;
        }
        if word.load(Ordering::Acquire) != expected {
            return WaitOutcome::Woken;
        }
        // Inside an actor: park until woken or timed out, as the scheduler decides. The value
        // check above and the park are one step (no scheduling point between them), as in a
        // futex.
        let park = Suspend::Park {
            addr: word as *const AtomicU32 as usize,
            timeout,
        };
        match actor::suspend(park) {
            Some(Resumed::TimedOut) => return WaitOutcome::TimedOut,
            Some(_) => return WaitOutcome::Woken,
            None => {}
        }
        self.world.advance(timeout.min(SIM_WAIT_QUANTUM));
        self.yield_now();
        if word.load(Ordering::Acquire) != expected {
            WaitOutcome::Woken
        } else {
            WaitOutcome::TimedOut
        }
    }
    fn wake_all(&self, word: &AtomicU32) {
        #[cfg(loom)]
        loom_futex::wake_all(word);
        self.world
            .wake_registered(word as *const AtomicU32 as usize);
        actor::suspend(Suspend::Wake {
            addr: word as *const AtomicU32 as usize,
        });
    }
    fn yield_now(&self) {
        if actor::suspend(Suspend::Yield).is_some() {
            return;
        }
        #[cfg(loom)]
        loom::thread::yield_now();
        #[cfg(not(loom))]
        std::thread::yield_now();
    }
    fn sleep(&self, d: Duration) {
        if actor::suspend(Suspend::Sleep(d)).is_some() {
            return;
        }
        self.world.advance(d);
        self.yield_now();
    }
    fn process_token(&self) -> u64 {
        u64::from(self.pid)
    }
    fn process_identity(&self) -> (u32, u64) {
        (self.pid, 0)
    }
    #[inline]
    fn sched_point(&self, point: SchedPoint, data: i64) {
        actor::suspend(Suspend::Point {
            code: point as u16,
            data,
        });
    }
    fn spin_rounds(&self, nominal: u32) -> u32 {
        nominal.min(4)
    }
    fn registry_lock_floor(&self, nominal: Duration) -> Duration {
        nominal.min(Duration::from_micros(500))
    }
    fn token_state(&self, token: u64) -> ProcessState {
        match u32::try_from(token) {
            Ok(pid) if pid != 0 => dead_seen(map_state(self.world.process_state(pid))),
            _ => ProcessState::Unknown,
        }
    }
}

/// A liveness verdict on its way out: under loom, a `Dead` one acquires the deaths before it
/// (`loom_deaths`); otherwise the identity.
#[inline]
fn dead_seen(state: ProcessState) -> ProcessState {
    #[cfg(loom)]
    if state == ProcessState::Dead {
        loom_deaths::observe();
    }
    state
}

/// Loom models only: the happens-before edge from a process's death to whoever learns of it.
/// On a real platform a death is learnt from the kernel (a lock slot it released when the
/// process died, its pid gone), and the kernel releases those only after the process's last
/// store, under locks the observer's query takes too: everything the dead process did
/// happens-before the observer's next instruction. The simulated world keeps its process table
/// and lock slots outside loom's view, so this module makes that edge: a kill (on the killed
/// process's thread) increments `DEATHS` with `Release`, and an observer that saw a death reads
/// `DEATHS` with a read-modify-write (the latest value), which acquires every kill before it.
#[cfg(loom)]
mod loom_deaths {
    use crate::ring::sync::{AtomicU64, Ordering};

    loom::lazy_static! {
        static ref DEATHS: AtomicU64 = AtomicU64::new(0);
    }

    /// A process dies (called on its own thread).
    pub(super) fn record() {
        DEATHS.fetch_add(1, Ordering::Release);
    }

    /// A death was seen.
    pub(super) fn observe() {
        DEATHS.fetch_add(0, Ordering::Acquire);
    }
}

/// A futex for loom models ([`SimBackend::with_strict_futex`]): the value check and the
/// enqueueing of a sleeper happen under one lock, which every wake takes too, as in the kernel's
/// futex hash bucket. So a wake after the check always finds the sleeper, and a wake before it
/// made the check fail (the waker changes the word before it wakes).
#[cfg(loom)]
mod loom_futex {
    use crate::ring::sync::{AtomicU32, Ordering};
    use loom::sync::Mutex;
    use loom::thread::Thread;

    loom::lazy_static! {
        /// Threads parked in a strict wait, with the address of their word.
        static ref SLEEPERS: Mutex<Vec<(usize, Thread)>> = Mutex::new(Vec::new());
    }

    fn addr(word: &AtomicU32) -> usize {
        word as *const AtomicU32 as usize
    }

    /// Parks until a [`wake_all`] on `word`, unless `word` no longer holds `expected`.
    pub(super) fn wait(word: &AtomicU32, expected: u32) {
        let mut sleepers = SLEEPERS.lock().unwrap();
        if word.load(Ordering::Acquire) != expected {
            return;
        }
        sleepers.push((addr(word), loom::thread::current()));
        drop(sleepers);
        loom::thread::park();
    }

    /// Unparks every strict waiter on `word`.
    pub(super) fn wake_all(word: &AtomicU32) {
        let a = addr(word);
        SLEEPERS.lock().unwrap().retain(|(w, t)| {
            if *w == a {
                t.unpark();
            }
            *w != a
        });
    }
}
