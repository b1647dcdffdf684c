//! Timestamps for latency samples: `lfence; rdtsc` on x86-64 (invariant TSC, shared by both
//! CPUs), calibrated once against `Instant`; `Instant` elsewhere. Samples are stored as ticks in
//! a preallocated vector and converted to nanoseconds after the timed loop.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    ns_per_tick: f64,
    #[cfg(not(target_arch = "x86_64"))]
    origin: Instant,
}

impl Clock {
    /// Measures the tick rate over 50 ms.
    pub fn calibrate() -> Clock {
        let mut c = Clock {
            ns_per_tick: 1.0,
            #[cfg(not(target_arch = "x86_64"))]
            origin: Instant::now(),
        };
        let (t0, i0) = (c.now(), Instant::now());
        while i0.elapsed() < Duration::from_millis(50) {
            std::hint::spin_loop();
        }
        let (t1, ns) = (c.now(), i0.elapsed().as_nanos() as f64);
        c.ns_per_tick = ns / (t1.wrapping_sub(t0).max(1)) as f64;
        c
    }

    /// The current timestamp in ticks.
    #[inline(always)]
    pub fn now(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: lfence and rdtsc exist on every x86-64 CPU and touch no memory.
            unsafe {
                std::arch::x86_64::_mm_lfence();
                std::arch::x86_64::_rdtsc()
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self.origin.elapsed().as_nanos() as u64
        }
    }

    /// Ticks to nanoseconds.
    pub fn ns(&self, ticks: u64) -> f64 {
        ticks as f64 * self.ns_per_tick
    }

    /// The CPU clock rate implied by the calibration (MHz; 1000 when ticks are ns).
    pub fn mhz(&self) -> f64 {
        1e3 / self.ns_per_tick
    }
}

/// Runs `warmup + iters` round trips; returns the `iters` timed ones in ticks.
pub fn time_trips(
    clock: &Clock,
    warmup: u64,
    iters: u64,
    mut trip: impl FnMut(u64) -> crate::proc::BenchResult<()>,
) -> crate::proc::BenchResult<Vec<u64>> {
    for i in 0..warmup {
        trip(i)?;
    }
    let mut ticks = Vec::with_capacity(iters as usize);
    for i in warmup..warmup + iters {
        let t0 = clock.now();
        trip(i)?;
        ticks.push(clock.now().wrapping_sub(t0));
    }
    Ok(ticks)
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process of the machine, so a stamp
/// taken by one process can be compared with a reading in another (the fan-in one-way latency).
#[inline(always)]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` on this stack frame; CLOCK_MONOTONIC is
    // always supported on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
