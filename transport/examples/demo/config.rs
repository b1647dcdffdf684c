//! The command line: options, roles, and the wait strategy they select.

use myelon::AutoWaitStrategy;

pub const USAGE: &str = "\
usage: demo [--events N] [--consumers N] [--capacity N] [--rate N] [--wait MODE]

  --events N     events to publish (default 5M; '_' and the suffixes k, M, G are accepted)
  --consumers N  consumer processes, 1 to 16 (default 2)
  --capacity N   ring capacity in events, a power of two (default 4096)
  --rate N       pace the producer at N events/s by spinning (default: as fast as the ring allows)
  --wait MODE    how consumers wait for events: auto, spin, yield or block (default auto: spin
                 when every process can have its own core, yield otherwise)
";

#[derive(Debug, Clone)]
pub struct Config {
    pub events: u64,
    pub consumers: usize,
    pub capacity: usize,
    pub rate: Option<u64>,
    pub wait: Wait,
    /// Test hook (not in the usage text): consumer `c0` exits abruptly, without dropping its
    /// consumer (as after a crash), once it has received this many events.
    pub crash_after: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Auto,
    Spin,
    Yield,
    Block,
}

pub enum Role {
    Producer,
    Consumer { id: String, segment: String },
}

/// Every option; each takes a value (`--key value` or `--key=value`).
const KEYS: [&str; 9] = [
    "--events",
    "--consumers",
    "--capacity",
    "--rate",
    "--wait",
    "--crash-after",
    "--role",
    "--id",
    "--segment",
];

pub struct Cli {
    pub cfg: Config,
    pub role: Role,
}

impl Cli {
    pub fn parse(args: Vec<String>) -> Result<Cli, String> {
        let mut cfg = Config {
            events: 5_000_000,
            consumers: 2,
            capacity: 4096,
            rate: None,
            wait: Wait::Auto,
            crash_after: None,
        };
        let (mut role, mut id, mut segment) = (None, None, None);
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let (key, value) = match arg.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None if !KEYS.contains(&arg.as_str()) => {
                    return Err(format!("unknown argument {arg:?}"));
                }
                None => {
                    let v = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
                    (arg, v)
                }
            };
            match key.as_str() {
                "--role" => role = Some(value),
                "--id" => id = Some(value),
                "--segment" => segment = Some(value),
                _ => cfg.set(&key, &value)?,
            }
        }
        cfg.validate()?;
        let role = match (role.as_deref(), id, segment) {
            (None | Some("producer"), _, _) => Role::Producer,
            (Some("consumer"), Some(id), Some(segment)) => Role::Consumer { id, segment },
            (Some("consumer"), _, _) => {
                return Err("--role consumer needs --id and --segment".into())
            }
            (Some(other), _, _) => return Err(format!("unknown role {other:?}")),
        };
        Ok(Cli { cfg, role })
    }
}

impl Config {
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let bad = |e: String| format!("{key}: {e}");
        match key {
            "--events" => self.events = parse_count(value).map_err(bad)?,
            "--consumers" => self.consumers = parse_count(value).map_err(bad)? as usize,
            "--capacity" => self.capacity = parse_count(value).map_err(bad)? as usize,
            "--rate" => self.rate = Some(parse_count(value).map_err(bad)?),
            "--crash-after" => self.crash_after = Some(parse_count(value).map_err(bad)?),
            "--wait" => self.wait = Wait::parse(value).ok_or_else(|| bad(value.into()))?,
            _ => return Err(format!("unknown argument {key:?}")),
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        if self.events == 0 {
            return Err("--events must be at least 1".into());
        }
        if !(1..=myelon::DEFAULT_MAX_CONSUMERS).contains(&self.consumers) {
            let max = myelon::DEFAULT_MAX_CONSUMERS;
            return Err(format!("--consumers must be between 1 and {max}"));
        }
        if !self.capacity.is_power_of_two() || self.capacity > myelon::MAX_CAPACITY {
            return Err("--capacity must be a power of two (at most 2^30)".into());
        }
        if self.rate == Some(0) {
            return Err("--rate must be at least 1 event/s".into());
        }
        Ok(())
    }
}

/// `5000000`, `5_000_000`, `5M`, `200k`, `1G`.
fn parse_count(text: &str) -> Result<u64, String> {
    let clean = text.replace('_', "");
    let (digits, scale) = match clean.char_indices().last() {
        Some((i, 'k' | 'K')) => (&clean[..i], 1_000),
        Some((i, 'm' | 'M')) => (&clean[..i], 1_000_000),
        Some((i, 'g' | 'G')) => (&clean[..i], 1_000_000_000),
        _ => (clean.as_str(), 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{text:?} is not a count"))
}

impl Wait {
    fn parse(text: &str) -> Option<Wait> {
        match text {
            "auto" => Some(Wait::Auto),
            "spin" => Some(Wait::Spin),
            "yield" => Some(Wait::Yield),
            "block" => Some(Wait::Block),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Wait::Auto => "auto",
            Wait::Spin => "spin",
            Wait::Yield => "yield",
            Wait::Block => "block",
        }
    }

    /// `Auto` becomes `Spin` when the producer and every consumer can each have a core.
    pub fn resolve(self, consumers: usize) -> Wait {
        match self {
            Wait::Auto if cores() > consumers => Wait::Spin,
            Wait::Auto => Wait::Yield,
            other => other,
        }
    }

    pub fn strategy(self) -> AutoWaitStrategy {
        match self {
            Wait::Auto | Wait::Yield => AutoWaitStrategy::Yield,
            Wait::Spin => AutoWaitStrategy::BusySpin,
            Wait::Block => AutoWaitStrategy::Block,
        }
    }
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
