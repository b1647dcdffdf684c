//! What one seed runs: the workload (events, ring capacity, consumers, required set, timeouts)
//! and the fault schedule, generated from the seed under a swarm profile, or read back from a
//! schedule file (`replay --schedule`, written by `shrink`).

use crate::rng::Rng;
use std::fmt::Write as _;

/// Who a fault acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The producer.
    Producer,
    /// Consumer `i` of [`Workload::consumers`].
    Consumer(usize),
}

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The actor is not scheduled for `dur_us` (as under SIGSTOP).
    Stall {
        /// Whom.
        actor: Actor,
        /// For how long (virtual microseconds).
        dur_us: u64,
    },
    /// The consumer's state is forgotten without `Drop` and its process killed (SIGKILL).
    Crash {
        /// Which consumer.
        consumer: usize,
    },
    /// A crashed consumer restarts under the same id (no-op if it is not crashed).
    Rejoin {
        /// Which consumer.
        consumer: usize,
    },
    /// The producer's state is forgotten without `Drop` and its process killed.
    ProducerCrash,
}

/// A fault at a virtual instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// When (virtual microseconds since the start).
    pub at_us: u64,
    /// What.
    pub kind: FaultKind,
}

/// One consumer of the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// Its consumer id (`r*` required, `c*` not).
    pub id: String,
    /// Whether it is in the required set.
    pub required: bool,
    /// When it first attaches (`None`: never).
    pub attach_us: Option<u64>,
    /// Processing time per event (0: as fast as scheduled).
    pub slow_us: u64,
}

/// Liveness settings of a workload (virtual microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessSpec {
    /// `startup_wait_timeout`.
    pub startup_us: u64,
    /// `progress_timeout`.
    pub progress_us: u64,
    /// `progress_check_interval`.
    pub check_us: u64,
    /// `shutdown_grace_period`.
    pub grace_us: u64,
    /// `RequiredConsumerFailureAction::AlertOnly` instead of the graceful shutdown.
    pub alert_only: bool,
}

/// Everything one run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Seed of the scheduler's choices (and of the generation, for generated workloads).
    pub seed: u64,
    /// Ring capacity (a power of two, small enough to wrap).
    pub capacity: usize,
    /// Events the producer publishes.
    pub events: u64,
    /// Largest claim of one managed publish step (1: single events).
    pub batch_max: u64,
    /// How often a waiting consumer checks that the producer lives.
    pub producer_check_us: u64,
    /// Liveness settings.
    pub liveness: LivenessSpec,
    /// The consumers.
    pub consumers: Vec<ConsumerSpec>,
    /// The fault schedule, sorted by time.
    pub faults: Vec<Fault>,
    /// Layer 1 mode: 0 runs plain Layer 0 events; `k >= 1` runs framed messages of `1..=k`
    /// frames each (`k <= capacity`), one message per claim, consumed through the framed
    /// reassembler (`events` then counts frames).
    pub framed: u64,
}

/// A swarm profile: which fault kinds a seed may switch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Every fault kind, each switched on or off per seed (swarm testing).
    Default,
    /// No faults: the plain protocol under random interleavings.
    Calm,
    /// Liveness-heavy: required consumers, long stalls, crashes and late rejoins.
    Liveness,
}

impl Profile {
    /// Parses a profile name.
    pub fn parse(s: &str) -> Option<Profile> {
        match s {
            "default" => Some(Profile::Default),
            "calm" => Some(Profile::Calm),
            "liveness" => Some(Profile::Liveness),
            _ => None,
        }
    }

    /// The profile's name.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Default => "default",
            Profile::Calm => "calm",
            Profile::Liveness => "liveness",
        }
    }
}

struct Swarm {
    stalls: bool,
    crashes: bool,
    rejoins: bool,
    late: bool,
    never: bool,
    producer_crash: bool,
    slow: bool,
    batches: bool,
}

impl Swarm {
    fn pick(rng: &mut Rng, profile: Profile) -> Swarm {
        match profile {
            Profile::Calm => Swarm {
                stalls: false,
                crashes: false,
                rejoins: false,
                late: rng.chance(50),
                never: false,
                producer_crash: false,
                slow: rng.chance(40),
                batches: rng.chance(50),
            },
            Profile::Default => Swarm {
                stalls: rng.chance(60),
                crashes: rng.chance(50),
                rejoins: rng.chance(75),
                late: rng.chance(50),
                never: rng.chance(12),
                producer_crash: rng.chance(10),
                slow: rng.chance(40),
                batches: rng.chance(50),
            },
            Profile::Liveness => Swarm {
                stalls: rng.chance(85),
                crashes: rng.chance(70),
                rejoins: rng.chance(70),
                late: rng.chance(60),
                never: rng.chance(15),
                producer_crash: rng.chance(5),
                slow: rng.chance(50),
                batches: rng.chance(60),
            },
        }
    }
}

impl Workload {
    /// The workload of `seed` under `profile`.
    pub fn generate(seed: u64, profile: Profile) -> Workload {
        let mut rng = Rng::fork(seed, 1);
        let sw = Swarm::pick(&mut rng, profile);
        let capacity = 1usize << rng.range(1, 6);
        let events = rng.log_range(1, 1000);
        let batch_max = if sw.batches {
            rng.range(2, (capacity as u64).max(2))
        } else {
            1
        };
        let progress_us = rng.log_range(200, 20_000);
        let liveness = LivenessSpec {
            startup_us: rng.range(progress_us, 5 * progress_us),
            progress_us,
            check_us: rng.range((progress_us / 10).max(1), progress_us / 2),
            grace_us: rng.range(0, 3 * progress_us),
            alert_only: rng.chance(20),
        };
        let n = rng.range(1, 4) as usize;
        let want_required = profile == Profile::Liveness || rng.chance(85);
        let mut consumers: Vec<ConsumerSpec> = (0..n)
            .map(|i| {
                let required = want_required && (i == 0 || rng.chance(50));
                let attach_us = if sw.late && rng.chance(50) {
                    Some(rng.range(0, 2 * liveness.startup_us))
                } else {
                    Some(0)
                };
                let slow_us = if sw.slow && rng.chance(50) {
                    rng.log_range(1, progress_us)
                } else {
                    0
                };
                let id = format!("{}{i}", if required { 'r' } else { 'c' });
                ConsumerSpec {
                    id,
                    required,
                    attach_us,
                    slow_us,
                }
            })
            .collect();
        if sw.never {
            let i = rng.below(n as u64) as usize;
            consumers[i].attach_us = None;
        }
        let horizon = (4 * progress_us + liveness.grace_us).max(events * 4);
        let mut faults = Vec::new();
        let count = if sw.stalls || sw.crashes || sw.producer_crash {
            rng.range(1, 6)
        } else {
            0
        };
        for _ in 0..count {
            let at_us = rng.range(0, horizon);
            let c = rng.below(n as u64) as usize;
            let kind = rng.below(3);
            if sw.stalls && (kind == 0 || !sw.crashes) {
                let actor = if rng.chance(15) {
                    Actor::Producer
                } else {
                    Actor::Consumer(c)
                };
                let dur_us = rng.log_range(10, 3 * (progress_us + liveness.grace_us) + 10);
                faults.push(Fault {
                    at_us,
                    kind: FaultKind::Stall { actor, dur_us },
                });
            } else if sw.crashes {
                faults.push(Fault {
                    at_us,
                    kind: FaultKind::Crash { consumer: c },
                });
                if sw.rejoins {
                    let delay = rng.log_range(1, 2 * (progress_us + liveness.grace_us) + 1);
                    faults.push(Fault {
                        at_us: at_us + delay,
                        kind: FaultKind::Rejoin { consumer: c },
                    });
                }
            }
        }
        if sw.producer_crash {
            faults.push(Fault {
                at_us: rng.range(0, horizon),
                kind: FaultKind::ProducerCrash,
            });
        }
        faults.sort_by_key(|f| f.at_us);
        let producer_check_us = rng.range(10, 500);
        // Drawn last, so the Layer 0 seeds keep the workloads they always had.
        let framed = if rng.chance(35) {
            rng.range(2, (capacity as u64).min(6))
        } else {
            0
        };
        Workload {
            seed,
            capacity,
            events,
            batch_max,
            producer_check_us,
            liveness,
            consumers,
            faults,
            framed,
        }
    }

    /// Ids of the required consumers.
    pub fn required_ids(&self) -> Vec<String> {
        self.consumers
            .iter()
            .filter(|c| c.required)
            .map(|c| c.id.clone())
            .collect()
    }

    /// The schedule file form (read back by [`Workload::parse`]).
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let l = &self.liveness;
        let _ = writeln!(
            s,
            "# myelon-dst schedule (replay with: dst replay --schedule FILE)"
        );
        let _ = writeln!(s, "seed {:#x}", self.seed);
        let _ = writeln!(s, "capacity {}", self.capacity);
        let _ = writeln!(s, "events {}", self.events);
        let _ = writeln!(s, "batch_max {}", self.batch_max);
        let _ = writeln!(s, "producer_check_us {}", self.producer_check_us);
        if self.framed > 0 {
            let _ = writeln!(s, "framed {}", self.framed);
        }
        let _ = writeln!(
            s,
            "liveness {} {} {} {} {}",
            l.startup_us,
            l.progress_us,
            l.check_us,
            l.grace_us,
            if l.alert_only {
                "alert_only"
            } else {
                "shutdown"
            }
        );
        for c in &self.consumers {
            let attach = c.attach_us.map_or("never".to_string(), |t| t.to_string());
            let req = if c.required { "required" } else { "optional" };
            let _ = writeln!(s, "consumer {} {req} {attach} {}", c.id, c.slow_us);
        }
        for f in &self.faults {
            let what = match f.kind {
                FaultKind::Stall { actor, dur_us } => {
                    format!("stall {} {dur_us}", actor_name(actor))
                }
                FaultKind::Crash { consumer } => format!("crash {consumer}"),
                FaultKind::Rejoin { consumer } => format!("rejoin {consumer}"),
                FaultKind::ProducerCrash => "producer_crash".to_string(),
            };
            let _ = writeln!(s, "fault {} {what}", f.at_us);
        }
        s
    }

    /// Parses a schedule file.
    pub fn parse(text: &str) -> Result<Workload, String> {
        let mut w = Workload {
            seed: 0,
            capacity: 0,
            events: 0,
            batch_max: 1,
            producer_check_us: 100,
            liveness: LivenessSpec {
                startup_us: 1,
                progress_us: 1,
                check_us: 1,
                grace_us: 0,
                alert_only: false,
            },
            consumers: Vec::new(),
            faults: Vec::new(),
            framed: 0,
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            let bad = || format!("line {}: cannot parse {line:?}", n + 1);
            let num = |i: usize| f.get(i).and_then(|v| parse_u64(v)).ok_or_else(bad);
            match f[0] {
                "seed" => w.seed = num(1)?,
                "capacity" => w.capacity = num(1)? as usize,
                "events" => w.events = num(1)?,
                "batch_max" => w.batch_max = num(1)?,
                "producer_check_us" => w.producer_check_us = num(1)?,
                "framed" => w.framed = num(1)?,
                "liveness" => {
                    w.liveness = LivenessSpec {
                        startup_us: num(1)?,
                        progress_us: num(2)?,
                        check_us: num(3)?,
                        grace_us: num(4)?,
                        alert_only: f.get(5) == Some(&"alert_only"),
                    }
                }
                "consumer" => w.consumers.push(ConsumerSpec {
                    id: f.get(1).ok_or_else(bad)?.to_string(),
                    required: f.get(2) == Some(&"required"),
                    attach_us: match f.get(3) {
                        Some(&"never") => None,
                        _ => Some(num(3)?),
                    },
                    slow_us: num(4)?,
                }),
                "fault" => {
                    let at_us = num(1)?;
                    let kind = match f.get(2) {
                        Some(&"stall") => FaultKind::Stall {
                            actor: parse_actor(f.get(3).ok_or_else(bad)?).ok_or_else(bad)?,
                            dur_us: num(4)?,
                        },
                        Some(&"crash") => FaultKind::Crash {
                            consumer: num(3)? as usize,
                        },
                        Some(&"rejoin") => FaultKind::Rejoin {
                            consumer: num(3)? as usize,
                        },
                        Some(&"producer_crash") => FaultKind::ProducerCrash,
                        _ => return Err(bad()),
                    };
                    w.faults.push(Fault { at_us, kind });
                }
                _ => return Err(bad()),
            }
        }
        if !w.capacity.is_power_of_two() || w.consumers.is_empty() || w.consumers.len() > 8 {
            return Err("schedule needs a power-of-two capacity and 1..=8 consumers".into());
        }
        if w.framed > w.capacity as u64 {
            return Err("framed messages may not have more frames than the capacity".into());
        }
        let n = w.consumers.len();
        let ok = w.faults.iter().all(|f| match f.kind {
            FaultKind::Stall {
                actor: Actor::Consumer(c),
                ..
            }
            | FaultKind::Crash { consumer: c }
            | FaultKind::Rejoin { consumer: c } => c < n,
            _ => true,
        });
        if !ok {
            return Err("a fault names a consumer that does not exist".into());
        }
        w.faults.sort_by_key(|f| f.at_us);
        Ok(w)
    }
}

fn actor_name(a: Actor) -> String {
    match a {
        Actor::Producer => "producer".into(),
        Actor::Consumer(i) => i.to_string(),
    }
}

fn parse_actor(s: &str) -> Option<Actor> {
    if s == "producer" {
        Some(Actor::Producer)
    } else {
        s.parse().ok().map(Actor::Consumer)
    }
}

/// Parses a seed or number in decimal or `0x` hex.
pub fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim().replace('_', "");
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_text_round_trips() {
        for seed in 0..300 {
            for p in [Profile::Default, Profile::Liveness, Profile::Calm] {
                let w = Workload::generate(seed, p);
                assert_eq!(Workload::parse(&w.to_text()).unwrap(), w, "seed {seed}");
            }
        }
    }

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_u64("42"), Some(42));
        assert_eq!(parse_u64("0x2a"), Some(42));
        assert_eq!(parse_u64("0X2A"), Some(42));
        assert_eq!(parse_u64("1_000"), Some(1000));
        assert_eq!(parse_u64("nope"), None);
    }
}
