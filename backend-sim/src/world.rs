//! The simulated machine: named regions, a virtual clock and a process table.

use crate::region::SimRegion;
use std::collections::BTreeMap;
use std::fmt;
#[allow(clippy::disallowed_types)] // the virtual clock: simulator state, not simulated memory
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

/// Errors of the simulated platform, mirroring what a real one reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimError {
    /// A region of that name exists already.
    AlreadyExists {
        /// The region name.
        name: String,
    },
    /// No region of that name exists.
    NotFound {
        /// The region name.
        name: String,
    },
    /// The world's memory budget cannot hold the requested region.
    NoSpace {
        /// The region name.
        name: String,
        /// Bytes requested.
        requested: usize,
    },
    /// The name is empty or contains a NUL or '/'.
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// The region at the name was not made by the caller's protocol; it is never removed.
    Foreign {
        /// The region name.
        name: String,
    },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::AlreadyExists { name } => write!(f, "sim region {name:?} already exists"),
            SimError::NotFound { name } => write!(f, "sim region {name:?} not found"),
            SimError::NoSpace { name, requested } => {
                write!(
                    f,
                    "sim memory budget cannot hold {requested} bytes for {name:?}"
                )
            }
            SimError::InvalidName { name } => write!(f, "invalid sim region name {name:?}"),
            SimError::Foreign { name } => {
                write!(f, "sim region {name:?} was not made by this protocol")
            }
        }
    }
}

impl std::error::Error for SimError {}

/// Liveness of a simulated process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimProcessState {
    /// Spawned and not killed.
    Alive,
    /// Killed (or exited).
    Dead,
    /// Never spawned in this world.
    Unknown,
}

#[derive(Debug)]
struct Entry {
    region: Arc<SimRegion>,
    owner_pid: u32,
    /// Whether its creator lifted the unfinished mark (as `fchmod` to the final mode does on a
    /// real platform).
    finished: bool,
    /// The owner's handle went away without removing the name (a multi-producer ring whose
    /// creator detached first): as when a real owner closes its locked descriptor, the owner
    /// counts as gone from then on, whether or not its process lives.
    owner_released: bool,
}

#[derive(Debug, Default)]
struct State {
    regions: BTreeMap<String, Entry>,
    alive: BTreeMap<u32, bool>,
    next_pid: u32,
    used_bytes: usize,
    /// Lock slots held: (region address, slot) → (holder pid, holder handle).
    slot_locks: BTreeMap<(usize, u64), (u32, u64)>,
    next_handle: u64,
    /// Async tasks waiting for a wake on a word (by address), in registration order.
    wakers: BTreeMap<usize, Vec<Waker>>,
}

/// Virtual time each `now()` call lets pass by default, so that code spinning on the clock
/// (deadlines in busy loops) makes progress when threads drive the simulator directly.
pub const DEFAULT_TICK_NANOS: u64 = 1_000;

/// One simulated machine. Cheap to share: wrap it in an `Arc`.
#[derive(Debug)]
#[allow(clippy::disallowed_types)] // the clock words are simulator state, not simulated memory
pub struct SimWorld {
    state: Mutex<State>,
    clock_nanos: AtomicU64,
    /// Virtual nanoseconds every `now()` call adds (0: time moves only when advanced).
    tick_nanos: AtomicU64,
    budget_bytes: usize,
}

impl Default for SimWorld {
    fn default() -> Self {
        Self::new()
    }
}

impl SimWorld {
    /// A world with an unlimited memory budget and the clock at zero.
    pub fn new() -> SimWorld {
        Self::with_budget(usize::MAX)
    }

    /// A world whose regions may use at most `budget_bytes` in total (a "full /dev/shm").
    #[allow(clippy::disallowed_types)] // the clock words are simulator state
    pub fn with_budget(budget_bytes: usize) -> SimWorld {
        SimWorld {
            state: Mutex::new(State {
                next_pid: 1,
                ..State::default()
            }),
            clock_nanos: AtomicU64::new(0),
            tick_nanos: AtomicU64::new(DEFAULT_TICK_NANOS),
            budget_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated (every mutation is
        // a single insert/remove), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Validates a region name: non-empty, no NUL, no '/'.
    pub fn validate_name(name: &str) -> Result<(), SimError> {
        if name.is_empty() || name.contains('\0') || name.contains('/') {
            return Err(SimError::InvalidName { name: name.into() });
        }
        Ok(())
    }

    /// Registers a new live process and returns its pid.
    pub fn spawn_process(&self) -> u32 {
        let mut st = self.lock();
        let pid = st.next_pid;
        st.next_pid += 1;
        st.alive.insert(pid, true);
        pid
    }

    /// Marks a process dead, as after `SIGKILL`. Its regions and their bytes stay as they are.
    pub fn kill_process(&self, pid: u32) {
        self.lock().alive.insert(pid, false);
    }

    /// Registers an async task to be woken by the next [`SimWorld::wake_registered`] of the
    /// word at `addr` (the simulated futex's async side: a task instead of a parked thread).
    pub fn register_waker(&self, addr: usize, waker: &Waker) {
        let mut st = self.lock();
        let list = st.wakers.entry(addr).or_default();
        if !list.iter().any(|w| w.will_wake(waker)) {
            list.push(waker.clone());
        }
    }

    /// Wakes (in registration order) and forgets every task registered on the word at `addr`.
    pub fn wake_registered(&self, addr: usize) {
        let wakers = self.lock().wakers.remove(&addr);
        for w in wakers.into_iter().flatten() {
            w.wake();
        }
    }

    /// Liveness of `pid`.
    pub fn process_state(&self, pid: u32) -> SimProcessState {
        match self.lock().alive.get(&pid) {
            Some(true) => SimProcessState::Alive,
            Some(false) => SimProcessState::Dead,
            None => SimProcessState::Unknown,
        }
    }

    /// Creates a zero-filled region exclusively, owned by `owner_pid`.
    pub fn create_region(
        &self,
        name: &str,
        len: usize,
        owner_pid: u32,
    ) -> Result<Arc<SimRegion>, SimError> {
        Self::validate_name(name)?;
        let mut st = self.lock();
        if st.regions.contains_key(name) {
            return Err(SimError::AlreadyExists { name: name.into() });
        }
        let no_space = || SimError::NoSpace {
            name: name.into(),
            requested: len,
        };
        let total = st.used_bytes.checked_add(len).ok_or_else(no_space)?;
        if total > self.budget_bytes {
            return Err(no_space());
        }
        let region = Arc::new(SimRegion::new_zeroed(len).ok_or_else(no_space)?);
        st.used_bytes = total;
        st.regions.insert(
            name.into(),
            Entry {
                region: Arc::clone(&region),
                owner_pid,
                finished: false,
                owner_released: false,
            },
        );
        Ok(region)
    }

    /// Maps an existing region; returns it with its owner's pid.
    pub fn open_region(&self, name: &str) -> Result<(Arc<SimRegion>, u32), SimError> {
        Self::validate_name(name)?;
        let st = self.lock();
        let entry = st
            .regions
            .get(name)
            .ok_or_else(|| SimError::NotFound { name: name.into() })?;
        Ok((Arc::clone(&entry.region), entry.owner_pid))
    }

    /// Removes a name; processes that mapped the region keep their mapping, as with `unlink`.
    pub fn remove_region(&self, name: &str) -> Result<(), SimError> {
        let mut st = self.lock();
        let entry = st
            .regions
            .remove(name)
            .ok_or_else(|| SimError::NotFound { name: name.into() })?;
        st.used_bytes -= entry.region.len();
        Ok(())
    }

    /// Removes `name` only if it still refers to `region` (an owner never removes a successor).
    pub fn remove_region_if_same(&self, name: &str, region: &Arc<SimRegion>) -> bool {
        let mut st = self.lock();
        let same = st
            .regions
            .get(name)
            .is_some_and(|e| Arc::ptr_eq(&e.region, region));
        if same {
            if let Some(e) = st.regions.remove(name) {
                st.used_bytes -= e.region.len();
            }
        }
        same
    }

    /// The owner's handle of `region` went away and left its name (see `Entry::owner_released`).
    pub fn release_owner(&self, region: &Arc<SimRegion>) {
        let mut st = self.lock();
        for e in st.regions.values_mut() {
            if Arc::ptr_eq(&e.region, region) {
                e.owner_released = true;
            }
        }
    }

    /// Whether the owner's handle of `region` went away (see [`SimWorld::release_owner`]).
    pub fn owner_released(&self, region: &Arc<SimRegion>) -> bool {
        self.lock()
            .regions
            .values()
            .any(|e| Arc::ptr_eq(&e.region, region) && e.owner_released)
    }

    /// Names of all regions, sorted.
    pub fn list_regions(&self) -> Vec<String> {
        self.lock().regions.keys().cloned().collect()
    }

    /// Virtual time since the world was made. Each call first lets the tick pass (see
    /// [`SimWorld::set_tick`]).
    pub fn now(&self) -> Duration {
        let tick = self.tick_nanos.load(Ordering::Relaxed);
        let t = if tick == 0 {
            self.clock_nanos.load(Ordering::Acquire)
        } else {
            self.clock_nanos
                .fetch_add(tick, Ordering::AcqRel)
                .saturating_add(tick)
        };
        Duration::from_nanos(t)
    }

    /// Reads the clock without letting the tick pass.
    pub fn peek_now(&self) -> Duration {
        Duration::from_nanos(self.clock_nanos.load(Ordering::Acquire))
    }

    /// Sets how much virtual time each `now()` call lets pass (a deterministic scheduler that
    /// moves the clock itself sets 0).
    pub fn set_tick(&self, tick: Duration) {
        let nanos = u64::try_from(tick.as_nanos()).unwrap_or(u64::MAX);
        self.tick_nanos.store(nanos, Ordering::Relaxed);
    }

    /// Lifts the unfinished mark of `name` if it still refers to `region` (its creator wrote
    /// what identifies it).
    pub fn finish_region(&self, name: &str, region: &Arc<SimRegion>) {
        let mut st = self.lock();
        if let Some(e) = st.regions.get_mut(name) {
            if Arc::ptr_eq(&e.region, region) {
                e.finished = true;
            }
        }
    }

    /// Removes `name` if its owner process is dead and `is_ours(region, finished)` says the
    /// region was made by the caller's protocol, atomically with respect to other callers of
    /// this world. `Ok(true)`: removed; `Ok(false)`: its owner lives (or nothing is there);
    /// `Err(Foreign)`: abandoned but not ours, left alone.
    pub fn remove_region_if_abandoned(
        &self,
        name: &str,
        is_ours: impl FnOnce(&SimRegion, bool) -> bool,
    ) -> Result<bool, SimError> {
        self.remove_region_if_abandoned_guarded(name, &[], is_ours, |_| false)
    }

    /// [`Self::remove_region_if_abandoned`], and also `Ok(false)` (kept) when a live process
    /// holds a lock slot of the region in one of `guard_slots`, or when `keep(region)` says
    /// so — all in the same atomic step, as a real backend decides under its locks.
    pub fn remove_region_if_abandoned_guarded(
        &self,
        name: &str,
        guard_slots: &[std::ops::Range<u64>],
        is_ours: impl FnOnce(&SimRegion, bool) -> bool,
        keep: impl FnOnce(&SimRegion) -> bool,
    ) -> Result<bool, SimError> {
        let mut st = self.lock();
        let dead = match st.regions.get(name) {
            Some(e) => e.owner_released || st.alive.get(&e.owner_pid) != Some(&true),
            None => false,
        };
        if !dead {
            return Ok(false);
        }
        let e = &st.regions[name];
        let key = Arc::as_ptr(&e.region) as usize;
        let guarded = st.slot_locks.iter().any(|(&(k, slot), &(p, _))| {
            k == key
                && guard_slots.iter().any(|r| r.contains(&slot))
                && st.alive.get(&p) == Some(&true)
        });
        if guarded {
            return Ok(false);
        }
        if !is_ours(&e.region, e.finished) {
            return Err(SimError::Foreign { name: name.into() });
        }
        if keep(&e.region) {
            return Ok(false);
        }
        if let Some(e) = st.regions.remove(name) {
            st.used_bytes -= e.region.len();
        }
        Ok(true)
    }

    /// Whether `region` is still the region under `name` (not removed, not replaced).
    pub fn is_linked(&self, name: &str, region: &Arc<SimRegion>) -> bool {
        self.lock()
            .regions
            .get(name)
            .is_some_and(|e| Arc::ptr_eq(&e.region, region))
    }

    /// A fresh handle id: lock slots are held per handle, as open-file-description locks are
    /// held per open of an object on a real platform.
    pub fn new_handle(&self) -> u64 {
        let mut st = self.lock();
        st.next_handle += 1;
        st.next_handle
    }

    /// Takes lock slot `slot` of `region` for handle `handle` of process `pid`, without
    /// waiting. `true`: held now (also if this handle held it already); `false`: another live
    /// holder has it. A holder whose process is dead holds nothing (the kernel would have
    /// released its lock when it died).
    pub fn try_lock_slot(&self, region: &Arc<SimRegion>, slot: u64, pid: u32, handle: u64) -> bool {
        let key = (Arc::as_ptr(region) as usize, slot);
        let mut st = self.lock();
        if let Some(&(p, h)) = st.slot_locks.get(&key) {
            if h != handle && st.alive.get(&p) == Some(&true) {
                return false;
            }
        }
        st.slot_locks.insert(key, (pid, handle));
        true
    }

    /// Releases lock slot `slot` of `region` if `handle` holds it.
    pub fn unlock_slot(&self, region: &Arc<SimRegion>, slot: u64, handle: u64) {
        let key = (Arc::as_ptr(region) as usize, slot);
        let mut st = self.lock();
        if st.slot_locks.get(&key).is_some_and(|&(_, h)| h == handle) {
            st.slot_locks.remove(&key);
        }
    }

    /// Whether a live holder other than `handle` holds lock slot `slot` of `region`.
    pub fn slot_held(&self, region: &Arc<SimRegion>, slot: u64, handle: u64) -> bool {
        let key = (Arc::as_ptr(region) as usize, slot);
        let st = self.lock();
        st.slot_locks
            .get(&key)
            .is_some_and(|&(p, h)| h != handle && st.alive.get(&p) == Some(&true))
    }

    /// Releases every lock slot `handle` holds (the handle is closed).
    pub fn release_handle(&self, handle: u64) {
        self.lock().slot_locks.retain(|_, &mut (_, h)| h != handle);
    }

    /// Moves virtual time forward by `d` (saturating).
    pub fn advance(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .clock_nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(nanos))
            });
    }

    /// Moves virtual time forward to `t` if it is in the future.
    pub fn advance_to(&self, t: Duration) {
        let nanos = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
        self.clock_nanos.fetch_max(nanos, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_open_remove_lifecycle() {
        let w = SimWorld::new();
        let pid = w.spawn_process();
        let r = w.create_region("ring", 256, pid).unwrap();
        assert_eq!(
            w.create_region("ring", 256, pid).unwrap_err(),
            SimError::AlreadyExists {
                name: "ring".into()
            }
        );
        let (o, owner) = w.open_region("ring").unwrap();
        assert!(Arc::ptr_eq(&r, &o));
        assert_eq!(owner, pid);
        assert_eq!(w.list_regions(), vec!["ring".to_string()]);
        w.remove_region("ring").unwrap();
        assert!(matches!(
            w.open_region("ring"),
            Err(SimError::NotFound { .. })
        ));
        // The mapping outlives the name, as after unlink.
        assert_eq!(o.len(), 256);
    }

    #[test]
    fn budget_is_enforced_and_released() {
        let w = SimWorld::with_budget(1000);
        w.create_region("a", 600, 1).unwrap();
        assert!(matches!(
            w.create_region("b", 600, 1),
            Err(SimError::NoSpace { requested: 600, .. })
        ));
        w.remove_region("a").unwrap();
        w.create_region("b", 600, 1).unwrap();
    }

    #[test]
    fn names_are_validated() {
        let w = SimWorld::new();
        for bad in ["", "a/b", "nul\0"] {
            assert!(matches!(
                w.create_region(bad, 8, 1),
                Err(SimError::InvalidName { .. })
            ));
        }
    }

    #[test]
    fn processes_live_and_die() {
        let w = SimWorld::new();
        let a = w.spawn_process();
        let b = w.spawn_process();
        assert_ne!(a, b);
        assert_eq!(w.process_state(a), SimProcessState::Alive);
        w.kill_process(a);
        assert_eq!(w.process_state(a), SimProcessState::Dead);
        assert_eq!(w.process_state(b), SimProcessState::Alive);
        assert_eq!(w.process_state(999), SimProcessState::Unknown);
    }

    #[test]
    fn each_now_lets_the_tick_pass() {
        let w = SimWorld::new();
        w.set_tick(Duration::from_nanos(10));
        let a = w.now();
        let b = w.now();
        assert_eq!(b - a, Duration::from_nanos(10));
        assert_eq!(w.peek_now(), b);
    }

    #[test]
    fn only_abandoned_regions_are_removed() {
        let w = SimWorld::new();
        let a = w.spawn_process();
        w.create_region("r", 64, a).unwrap();
        let ours = |_: &SimRegion, _: bool| true;
        assert_eq!(w.remove_region_if_abandoned("r", ours), Ok(false));
        w.kill_process(a);
        assert_eq!(w.remove_region_if_abandoned("r", ours), Ok(true));
        assert_eq!(w.remove_region_if_abandoned("r", ours), Ok(false));
    }

    #[test]
    fn a_foreign_abandoned_region_is_kept() {
        let w = SimWorld::new();
        let a = w.spawn_process();
        let r = w.create_region("r", 64, a).unwrap();
        w.finish_region("r", &r);
        w.kill_process(a);
        let finished_is_foreign = |_: &SimRegion, finished: bool| !finished;
        assert_eq!(
            w.remove_region_if_abandoned("r", finished_is_foreign),
            Err(SimError::Foreign { name: "r".into() })
        );
        assert!(w.open_region("r").is_ok(), "kept");
    }

    #[test]
    fn remove_if_same_spares_a_successor() {
        let w = SimWorld::new();
        let first = w.create_region("r", 64, 1).unwrap();
        w.remove_region("r").unwrap();
        let _second = w.create_region("r", 64, 2).unwrap();
        assert!(!w.remove_region_if_same("r", &first));
        assert!(w.open_region("r").is_ok());
    }

    #[test]
    fn slot_locks_are_per_handle_and_die_with_their_process() {
        let w = SimWorld::new();
        let (a, b) = (w.spawn_process(), w.spawn_process());
        let r = w.create_region("locks", 4096, a).unwrap();
        let (ha, ha2, hb) = (w.new_handle(), w.new_handle(), w.new_handle());
        assert!(w.try_lock_slot(&r, 1, a, ha));
        assert!(w.try_lock_slot(&r, 1, a, ha), "re-locking one's own slot");
        assert!(
            !w.try_lock_slot(&r, 1, a, ha2),
            "another handle of the same process"
        );
        assert!(w.slot_held(&r, 1, hb) && !w.slot_held(&r, 1, ha));
        assert!(!w.slot_held(&r, 2, hb));
        w.unlock_slot(&r, 1, hb);
        assert!(w.slot_held(&r, 1, hb), "only the holder unlocks");
        w.kill_process(a);
        assert!(!w.slot_held(&r, 1, hb), "a dead holder holds nothing");
        assert!(w.try_lock_slot(&r, 1, b, hb));
        w.release_handle(hb);
        assert!(!w.slot_held(&r, 1, ha2));
    }

    #[test]
    fn clock_only_moves_forward() {
        let w = SimWorld::new();
        w.set_tick(Duration::ZERO);
        w.advance(Duration::from_millis(5));
        w.advance_to(Duration::from_millis(2));
        assert_eq!(w.now(), Duration::from_millis(5));
        w.advance_to(Duration::from_millis(9));
        assert_eq!(w.now(), Duration::from_millis(9));
    }
}
