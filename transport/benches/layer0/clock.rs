//! The one clock every latency figure is read from, and the statistics drawn from its samples.
//!
//! On x86-64 a timestamp is `lfence; rdtsc`: the `lfence` keeps `rdtsc` from running before
//! the loads that ended the measured interval (the spin that saw the reply), and the TSC is
//! invariant on this class of machine (`constant_tsc`, `nonstop_tsc`). Ticks are converted to
//! nanoseconds with a ratio calibrated once against `Instant` over [`CALIBRATION`]. Elsewhere a
//! timestamp is `Instant::now()`. A sample costs two timestamps and one store into a
//! preallocated vector, nothing else inside the timed window; the histogram is filled
//! afterwards. The cost of the empty window is measured and reported as `timer`, so every
//! latency row includes the same constant and the ratios stay fair.

use crate::proc::BenchResult;
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// How long the tick rate is calibrated against `Instant`.
const CALIBRATION: Duration = Duration::from_millis(100);

/// A calibrated timestamp source.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    #[cfg(not(target_arch = "x86_64"))]
    origin: Instant,
    ns_per_tick: f64,
}

impl Clock {
    /// Calibrates the tick rate (busy, about [`CALIBRATION`]).
    pub fn calibrate() -> Clock {
        #[cfg(target_arch = "x86_64")]
        {
            let (i0, t0) = (Instant::now(), raw_ticks());
            while i0.elapsed() < CALIBRATION {
                std::hint::spin_loop();
            }
            let (i1, t1) = (Instant::now(), raw_ticks());
            let ns = (i1 - i0).as_nanos() as f64;
            Clock {
                ns_per_tick: ns / (t1.wrapping_sub(t0)).max(1) as f64,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Clock {
            origin: Instant::now(),
            ns_per_tick: 1.0,
        }
    }

    /// A clock with a tick rate calibrated elsewhere (by the parent process).
    pub fn with_ns_per_tick(ns_per_tick: f64) -> Clock {
        Clock {
            #[cfg(not(target_arch = "x86_64"))]
            origin: Instant::now(),
            ns_per_tick,
        }
    }

    /// Nanoseconds per tick.
    pub fn ns_per_tick(&self) -> f64 {
        self.ns_per_tick
    }

    /// A timestamp in ticks.
    #[inline(always)]
    pub fn now(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        return raw_ticks();
        #[cfg(not(target_arch = "x86_64"))]
        return self.origin.elapsed().as_nanos() as u64;
    }

    /// Ticks to nanoseconds.
    pub fn ns(&self, ticks: u64) -> f64 {
        ticks as f64 * self.ns_per_tick
    }

    /// Ticks per microsecond, for display (the TSC rate in MHz).
    pub fn mhz(&self) -> f64 {
        1000.0 / self.ns_per_tick
    }

    /// A human name of the method.
    pub fn method(&self) -> &'static str {
        if cfg!(target_arch = "x86_64") {
            "lfence+rdtsc, calibrated against Instant"
        } else {
            "Instant"
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn raw_ticks() -> u64 {
    use core::arch::x86_64::{_mm_lfence, _rdtsc};
    // SAFETY: `lfence` and `rdtsc` are part of the x86-64 baseline (SSE2, TSC); neither touches
    // memory.
    unsafe {
        _mm_lfence();
        _rdtsc()
    }
}

/// Percentiles of one latency measurement, in nanoseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    pub samples: u64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Stats {
    /// Builds an HDR histogram (1 ns .. 10 s, 3 significant digits) from tick samples.
    pub fn from_ticks(clock: &Clock, ticks: &[u64]) -> Stats {
        let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3)
            .expect("valid histogram bounds");
        for &t in ticks {
            h.saturating_record(clock.ns(t).round().max(1.0) as u64);
        }
        Stats {
            samples: h.len(),
            p50: h.value_at_quantile(0.50) as f64,
            p99: h.value_at_quantile(0.99) as f64,
            p999: h.value_at_quantile(0.999) as f64,
            max: h.max() as f64,
            mean: h.mean(),
        }
    }
}

/// Runs `warmup + iters` round trips of `trip(i)`, timing each measured one with two
/// timestamps. Returns the per-trip tick counts.
#[inline(always)]
pub fn time_trips(
    clock: &Clock,
    warmup: u64,
    iters: u64,
    mut trip: impl FnMut(u64) -> BenchResult<()>,
) -> BenchResult<Vec<u64>> {
    for i in 0..warmup {
        trip(i)?;
    }
    // Filled with a non-zero value so every page is mapped before the first timed trip.
    let mut ticks = vec![u64::MAX; iters as usize];
    for (k, slot) in ticks.iter_mut().enumerate() {
        let t0 = clock.now();
        trip(warmup + k as u64)?;
        let t1 = clock.now();
        *slot = t1.wrapping_sub(t0);
    }
    Ok(ticks)
}
