//! Pinning the calling thread to a CPU.

use std::io;

/// Restricts the calling thread to CPU `cpu` (`sched_setaffinity(0, ..)`). Returns the OS error if
/// the CPU is not allowed (e.g. outside the cgroup's cpuset) and `InvalidInput` if `cpu` is beyond
/// `CPU_SETSIZE`. `Unsupported` on platforms other than Linux.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    imp::pin_current_thread(cpu)
}

/// The number of CPUs this process may run on (at least 1).
pub fn available_cpus() -> usize {
    allowed_cpus()
        .ok()
        .map(|cpus| cpus.len())
        .filter(|&n| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}

/// The CPU numbers the calling thread may run on, ascending (`sched_getaffinity`). `Unsupported`
/// on platforms other than Linux.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    imp::allowed_cpus()
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::mem;

    fn setsize() -> usize {
        libc::CPU_SETSIZE as usize
    }

    pub(super) fn pin_current_thread(cpu: usize) -> io::Result<()> {
        if cpu >= setsize() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cpu index beyond CPU_SETSIZE",
            ));
        }
        // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
        let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
        // SAFETY: `cpu` < CPU_SETSIZE was checked above, so the bit is inside `set`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: `set` is a live cpu_set_t and we pass its exact size; pid 0 = calling thread.
        let rc = unsafe { libc::sched_setaffinity(0, mem::size_of::<libc::cpu_set_t>(), &set) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub(super) fn allowed_cpus() -> io::Result<Vec<usize>> {
        // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
        let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
        // SAFETY: `set` is a live, writable cpu_set_t and we pass its exact size.
        let rc = unsafe { libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: every index tested is < CPU_SETSIZE, inside `set`.
        Ok((0..setsize())
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect())
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;

    pub(super) fn pin_current_thread(_cpu: usize) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "thread pinning is only implemented on Linux",
        ))
    }

    pub(super) fn allowed_cpus() -> io::Result<Vec<usize>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "CPU affinity is only implemented on Linux",
        ))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn available_cpus_matches_the_affinity_mask() {
        let allowed = allowed_cpus().unwrap();
        assert!(!allowed.is_empty());
        assert_eq!(available_cpus(), allowed.len());
    }

    #[test]
    fn pinning_moves_the_thread() {
        // Pin a scratch thread, not the test runner's, to the last allowed CPU.
        let target = *allowed_cpus().unwrap().last().unwrap();
        let (cpu, mask) = std::thread::spawn(move || {
            pin_current_thread(target).unwrap();
            // SAFETY: sched_getcpu has no preconditions.
            let cpu = unsafe { libc::sched_getcpu() };
            (cpu, allowed_cpus().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(cpu, target as i32);
        assert_eq!(mask, vec![target]);
    }

    #[test]
    fn out_of_range_cpu_is_rejected() {
        let err = pin_current_thread(usize::MAX).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}
