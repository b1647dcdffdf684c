//! Layout helpers: portable segment names for a one-engine / N-runner session.
//!
//! A session is one *engine* (scheduler) and `N` *runners* (workers). It uses `N + 2` shared
//! objects, all named from a session label so that every process derives the same names
//! independently, with no configuration to pass around:
//!
//! | segment | name | who creates it |
//! |---|---|---|
//! | dispatch ring (engine → every runner, broadcast) | `/{prefix}-{tag}-rpc` | engine |
//! | response ring of runner `r` (runner `r` → engine) | `/{prefix}-{tag}-rsp{r}` | runner `r` |
//! | coordination cursor (see [`super::coordination_cursor`]) | `/{prefix}-{tag}-cur` | engine |
//!
//! `tag` is [`compact_session_tag`] of the label (at most [`SESSION_TAG_MAX_LEN`] characters).
//! With the default prefix every name is at most 30 bytes, inside macOS's 31-byte
//! `PSHMNAMLEN` ([`SEGMENT_NAME_LIMIT_MACOS`]); a custom prefix that would push a name over the
//! limit is refused when the configuration is built, never truncated silently.
//!
//! The same names (without the leading `/`) are the file names of an mmap-backed session, in
//! its directory: see [`MyelonTransportLayout::mmap_layout`].

use crate::ring::event::Fnv1a;
use crate::ring::layout::DEFAULT_MAX_CONSUMERS;
use crate::ring::wait::{default_consume_sleep_duration, AutoWaitStrategy};
use std::fmt;
use std::str::FromStr;

/// Longest shared-memory object name macOS accepts (`PSHMNAMLEN`), counting the leading `/`.
pub const SEGMENT_NAME_LIMIT_MACOS: usize = 31;
/// Default first component of every segment name of a session.
pub const DEFAULT_TRANSPORT_PREFIX: &str = "myelon";
/// Default capacity (slots) of the dispatch ring.
pub const DEFAULT_MYELON_RPC_DEPTH: usize = 1024;
/// Default capacity (slots) of each response ring.
pub const DEFAULT_MYELON_RESPONSE_DEPTH: usize = 1024;
/// Most runners a session can have: each is one entry of the dispatch ring's consumer table.
pub const MAX_RUNNERS: usize = DEFAULT_MAX_CONSUMERS;
/// Longest [`compact_session_tag`].
pub const SESSION_TAG_MAX_LEN: usize = SESSION_TAG_HEAD + SESSION_TAG_HASH;
/// Longest prefix a configuration accepts (keeps every name within the macOS limit).
pub const MAX_TRANSPORT_PREFIX_LEN: usize =
    SEGMENT_NAME_LIMIT_MACOS - 1 - 1 - SESSION_TAG_MAX_LEN - 1 - LONGEST_ROLE.len();

const SESSION_TAG_HEAD: usize = 6;
const SESSION_TAG_HASH: usize = 10;
const LONGEST_ROLE: &str = "rsp15";
const _: () = assert!(MAX_RUNNERS <= 16, "LONGEST_ROLE assumes two-digit ranks");

/// Environment variable overriding the prefix in [`MyelonTransportConfig::from_env`].
pub const PREFIX_ENV: &str = "MYELON_TRANSPORT_PREFIX";
/// Environment variable overriding the dispatch depth in [`MyelonTransportConfig::from_env`].
pub const RPC_DEPTH_ENV: &str = "MYELON_RPC_DEPTH";
/// Environment variable overriding the response depth in [`MyelonTransportConfig::from_env`].
pub const RESPONSE_DEPTH_ENV: &str = "MYELON_RESPONSE_DEPTH";
/// Environment variable overriding the wait strategy (`spin`, `yield`, `sleep`, `block`).
pub const WAIT_STRATEGY_ENV: &str = "MYELON_WAIT_STRATEGY";

/// Why a segment name is not portable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentNameError {
    /// The name is empty or only `/`.
    Empty,
    /// The name does not start with `/`.
    MissingLeadingSlash {
        /// The name.
        name: String,
    },
    /// The name is longer than [`SEGMENT_NAME_LIMIT_MACOS`] bytes.
    TooLong {
        /// The name.
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A character outside `[A-Za-z0-9._-]` after the leading `/`.
    InvalidChar {
        /// The name.
        name: String,
        /// The character.
        ch: char,
        /// Its byte offset.
        index: usize,
    },
}

impl fmt::Display for SegmentNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "segment name is empty"),
            Self::MissingLeadingSlash { name } => {
                write!(f, "segment name {name:?} must start with '/'")
            }
            Self::TooLong { name, len, max } => write!(
                f,
                "segment name {name:?} is {len} bytes, over the portable limit of {max}"
            ),
            Self::InvalidChar { name, ch, index } => write!(
                f,
                "segment name {name:?} has {ch:?} at byte {index}; only [A-Za-z0-9._-] is portable"
            ),
        }
    }
}

impl std::error::Error for SegmentNameError {}

/// Why a session configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MyelonLayoutError {
    /// The session label is empty.
    EmptySessionLabel,
    /// The prefix is empty, too long or has characters outside `[A-Za-z0-9_]`.
    InvalidPrefix {
        /// The prefix.
        prefix: String,
        /// Why.
        reason: &'static str,
    },
    /// A runner count outside `1..=MAX_RUNNERS`.
    RunnerCount {
        /// The count.
        count: usize,
        /// [`MAX_RUNNERS`].
        max: usize,
    },
    /// A runner rank not below the runner count.
    RankOutOfRange {
        /// The rank.
        rank: usize,
        /// The runner count.
        runners: usize,
    },
    /// A ring depth that is not a power of two in `2..=2^30`.
    InvalidDepth {
        /// Which ring ("rpc" or "response").
        ring: &'static str,
        /// The depth.
        depth: usize,
    },
    /// A derived name failed validation (only possible with a hand-built name).
    Name(SegmentNameError),
    /// An environment variable could not be parsed.
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
}

impl fmt::Display for MyelonLayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptySessionLabel => write!(f, "session label is empty"),
            Self::InvalidPrefix { prefix, reason } => {
                write!(f, "transport prefix {prefix:?}: {reason}")
            }
            Self::RunnerCount { count, max } => {
                write!(f, "{count} runners: a session has 1 to {max}")
            }
            Self::RankOutOfRange { rank, runners } => {
                write!(f, "runner rank {rank} out of range for {runners} runners")
            }
            Self::InvalidDepth { ring, depth } => write!(
                f,
                "{ring} depth {depth}: must be a power of two between 2 and 2^30"
            ),
            Self::Name(e) => e.fmt(f),
            Self::InvalidEnv { var, value } => write!(f, "{var}={value:?} cannot be parsed"),
        }
    }
}

impl std::error::Error for MyelonLayoutError {}

impl From<SegmentNameError> for MyelonLayoutError {
    fn from(e: SegmentNameError) -> Self {
        MyelonLayoutError::Name(e)
    }
}

/// Checks that `name` is a portable POSIX shared-memory name: a leading `/`, then 1 or more of
/// `[A-Za-z0-9._-]`, at most [`SEGMENT_NAME_LIMIT_MACOS`] bytes in all.
pub fn validate_segment_name(name: &str) -> Result<(), SegmentNameError> {
    let Some(rest) = name.strip_prefix('/') else {
        return Err(if name.is_empty() {
            SegmentNameError::Empty
        } else {
            SegmentNameError::MissingLeadingSlash { name: name.into() }
        });
    };
    if rest.is_empty() {
        return Err(SegmentNameError::Empty);
    }
    if let Some((i, ch)) = rest.char_indices().find(|(_, c)| !is_portable(*c)) {
        return Err(SegmentNameError::InvalidChar {
            name: name.into(),
            ch,
            index: i + 1,
        });
    }
    if name.len() > SEGMENT_NAME_LIMIT_MACOS {
        return Err(SegmentNameError::TooLong {
            name: name.into(),
            len: name.len(),
            max: SEGMENT_NAME_LIMIT_MACOS,
        });
    }
    Ok(())
}

fn is_portable(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// A short, deterministic tag for a session label: up to six lowercase alphanumerics of the
/// label (for humans reading `myelon list`) followed by ten hex digits of its 64-bit FNV-1a
/// hash (for uniqueness). Always 10 to [`SESSION_TAG_MAX_LEN`] characters of `[a-z0-9]`.
///
/// ```
/// assert_eq!(myelon::compact_session_tag("Llama-70B/run 3").len(), 16);
/// assert!(myelon::compact_session_tag("Llama-70B/run 3").starts_with("llama7"));
/// ```
pub fn compact_session_tag(session_label: &str) -> String {
    let head: String = session_label
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(SESSION_TAG_HEAD)
        .collect();
    let mut h = Fnv1a::new();
    h.write(session_label.as_bytes());
    let hash = h.finish() >> (64 - 4 * SESSION_TAG_HASH as u32);
    format!("{head}{hash:0width$x}", width = SESSION_TAG_HASH)
}

/// The coordination cursor name of session `session_label` with the default prefix (see
/// [`MyelonTransportLayout::coordination_segment`] for a custom prefix).
pub fn coordination_cursor_name(session_label: &str) -> String {
    segment_name(
        DEFAULT_TRANSPORT_PREFIX,
        &compact_session_tag(session_label),
        "cur",
    )
}

fn segment_name(prefix: &str, tag: &str, role: &str) -> String {
    format!("/{prefix}-{tag}-{role}")
}

/// How the processes of a session wait for messages: a portable, parseable name for
/// [`AutoWaitStrategy`] (`spin`, `yield`, `sleep`, `block`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MyelonWaitStrategy {
    /// Spin: lowest latency, one core busy per waiting process.
    BusySpin,
    /// Spin briefly, then yield the CPU between polls.
    Yield,
    /// Sleep [`crate::default_consume_sleep_duration`] between polls.
    Sleep,
    /// Block on a futex in shared memory (a real kernel sleep); the default, since an inference
    /// engine's processes are idle between requests.
    #[default]
    Block,
}

impl MyelonWaitStrategy {
    /// The ring-level strategy.
    pub fn to_auto(self) -> AutoWaitStrategy {
        match self {
            Self::BusySpin => AutoWaitStrategy::BusySpin,
            Self::Yield => AutoWaitStrategy::Yield,
            Self::Sleep => AutoWaitStrategy::Sleep(default_consume_sleep_duration()),
            Self::Block => AutoWaitStrategy::Block,
        }
    }

    /// The name [`FromStr`] accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BusySpin => "spin",
            Self::Yield => "yield",
            Self::Sleep => "sleep",
            Self::Block => "block",
        }
    }
}

impl fmt::Display for MyelonWaitStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MyelonWaitStrategy {
    type Err = MyelonLayoutError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "spin" | "busyspin" | "busy-spin" => Ok(Self::BusySpin),
            "yield" => Ok(Self::Yield),
            "sleep" => Ok(Self::Sleep),
            "block" => Ok(Self::Block),
            _ => Err(MyelonLayoutError::InvalidEnv {
                var: WAIT_STRATEGY_ENV,
                value: s.into(),
            }),
        }
    }
}

/// The segment names and consumer ids of one session (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyelonTransportLayout {
    session_tag: String,
    dispatch: String,
    responses: Vec<String>,
    coordination: String,
}

impl MyelonTransportLayout {
    /// The layout of session `session_label` with `runners` runners and `prefix`.
    pub fn new(
        session_label: &str,
        prefix: &str,
        runners: usize,
    ) -> Result<Self, MyelonLayoutError> {
        if session_label.is_empty() {
            return Err(MyelonLayoutError::EmptySessionLabel);
        }
        check_prefix(prefix)?;
        if runners == 0 || runners > MAX_RUNNERS {
            return Err(MyelonLayoutError::RunnerCount {
                count: runners,
                max: MAX_RUNNERS,
            });
        }
        let tag = compact_session_tag(session_label);
        let layout = MyelonTransportLayout {
            dispatch: segment_name(prefix, &tag, "rpc"),
            responses: (0..runners)
                .map(|r| segment_name(prefix, &tag, &format!("rsp{r}")))
                .collect(),
            coordination: segment_name(prefix, &tag, "cur"),
            session_tag: tag,
        };
        for name in layout.all_segments() {
            validate_segment_name(name)?;
        }
        Ok(layout)
    }

    /// The session tag every name carries.
    pub fn session_tag(&self) -> &str {
        &self.session_tag
    }

    /// Number of runners.
    pub fn runners(&self) -> usize {
        self.responses.len()
    }

    /// The dispatch ring (engine → runners).
    pub fn dispatch_segment(&self) -> &str {
        &self.dispatch
    }

    /// The response ring of runner `rank` (runner → engine), `None` if out of range.
    pub fn response_segment(&self, rank: usize) -> Option<&str> {
        self.responses.get(rank).map(String::as_str)
    }

    /// The coordination cursor segment.
    pub fn coordination_segment(&self) -> &str {
        &self.coordination
    }

    /// Every segment name: dispatch, responses by rank, coordination cursor.
    pub fn all_segments(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.dispatch.as_str())
            .chain(self.responses.iter().map(String::as_str))
            .chain(std::iter::once(self.coordination.as_str()))
    }

    /// The consumer id runner `rank` uses on the dispatch ring.
    pub fn dispatch_consumer_id(rank: usize) -> String {
        format!("runner-{rank}")
    }

    /// The consumer id the engine uses on every response ring.
    pub const RESPONSE_CONSUMER_ID: &'static str = "engine";
}

fn check_prefix(prefix: &str) -> Result<(), MyelonLayoutError> {
    let reason = if prefix.is_empty() {
        "empty"
    } else if prefix.len() > MAX_TRANSPORT_PREFIX_LEN {
        "too long to keep every segment name within 31 bytes"
    } else if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        "only [A-Za-z0-9_] is allowed"
    } else {
        return Ok(());
    };
    Err(MyelonLayoutError::InvalidPrefix {
        prefix: prefix.into(),
        reason,
    })
}

fn check_depth(ring: &'static str, depth: usize) -> Result<usize, MyelonLayoutError> {
    if depth >= 2 && depth.is_power_of_two() && depth <= crate::MAX_CAPACITY {
        Ok(depth)
    } else {
        Err(MyelonLayoutError::InvalidDepth { ring, depth })
    }
}

/// The engine side of a session: label, prefix, runner count, ring depths, wait strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyelonTransportConfig {
    session_label: String,
    prefix: String,
    layout: MyelonTransportLayout,
    rpc_depth: usize,
    response_depth: usize,
    wait_strategy: MyelonWaitStrategy,
}

impl MyelonTransportConfig {
    /// A session of `runners` runners named after `session_label`, with the default prefix,
    /// depths and wait strategy.
    pub fn new(session_label: &str, runners: usize) -> Result<Self, MyelonLayoutError> {
        Ok(MyelonTransportConfig {
            layout: MyelonTransportLayout::new(session_label, DEFAULT_TRANSPORT_PREFIX, runners)?,
            session_label: session_label.into(),
            prefix: DEFAULT_TRANSPORT_PREFIX.into(),
            rpc_depth: DEFAULT_MYELON_RPC_DEPTH,
            response_depth: DEFAULT_MYELON_RESPONSE_DEPTH,
            wait_strategy: MyelonWaitStrategy::default(),
        })
    }

    /// [`Self::new`], then the overrides of the environment: [`PREFIX_ENV`],
    /// [`RPC_DEPTH_ENV`], [`RESPONSE_DEPTH_ENV`], [`WAIT_STRATEGY_ENV`] (each optional).
    pub fn from_env(session_label: &str, runners: usize) -> Result<Self, MyelonLayoutError> {
        let mut c = Self::new(session_label, runners)?;
        if let Ok(p) = std::env::var(PREFIX_ENV) {
            c = c.with_prefix(&p)?;
        }
        let depth = |var: &'static str| -> Result<Option<usize>, MyelonLayoutError> {
            match std::env::var(var) {
                Err(_) => Ok(None),
                Ok(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| MyelonLayoutError::InvalidEnv { var, value: v }),
            }
        };
        if let Some(d) = depth(RPC_DEPTH_ENV)? {
            c = c.with_rpc_depth(d)?;
        }
        if let Some(d) = depth(RESPONSE_DEPTH_ENV)? {
            c = c.with_response_depth(d)?;
        }
        if let Ok(w) = std::env::var(WAIT_STRATEGY_ENV) {
            c.wait_strategy = w.parse()?;
        }
        Ok(c)
    }

    /// Replaces the prefix (`[A-Za-z0-9_]`, at most [`MAX_TRANSPORT_PREFIX_LEN`] bytes).
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, MyelonLayoutError> {
        self.layout = MyelonTransportLayout::new(&self.session_label, prefix, self.runners())?;
        self.prefix = prefix.into();
        Ok(self)
    }

    /// Capacity of the dispatch ring in slots (a power of two).
    pub fn with_rpc_depth(mut self, depth: usize) -> Result<Self, MyelonLayoutError> {
        self.rpc_depth = check_depth("rpc", depth)?;
        Ok(self)
    }

    /// Capacity of each response ring in slots (a power of two).
    pub fn with_response_depth(mut self, depth: usize) -> Result<Self, MyelonLayoutError> {
        self.response_depth = check_depth("response", depth)?;
        Ok(self)
    }

    /// How the session's processes wait.
    pub fn with_wait_strategy(mut self, strategy: MyelonWaitStrategy) -> Self {
        self.wait_strategy = strategy;
        self
    }

    /// The session label.
    pub fn session_label(&self) -> &str {
        &self.session_label
    }
    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// Number of runners.
    pub fn runners(&self) -> usize {
        self.layout.runners()
    }
    /// Dispatch ring capacity.
    pub fn rpc_depth(&self) -> usize {
        self.rpc_depth
    }
    /// Response ring capacity.
    pub fn response_depth(&self) -> usize {
        self.response_depth
    }
    /// The wait strategy.
    pub fn wait_strategy(&self) -> MyelonWaitStrategy {
        self.wait_strategy
    }
    /// The segment names.
    pub fn layout(&self) -> &MyelonTransportLayout {
        &self.layout
    }

    /// The configuration of runner `rank`.
    pub fn runner(&self, rank: usize) -> Result<RunnerMyelonTransportConfig, MyelonLayoutError> {
        if rank >= self.runners() {
            return Err(MyelonLayoutError::RankOutOfRange {
                rank,
                runners: self.runners(),
            });
        }
        Ok(RunnerMyelonTransportConfig {
            session: self.clone(),
            rank,
        })
    }
}

/// The runner side of a session: the engine's configuration plus this runner's rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerMyelonTransportConfig {
    session: MyelonTransportConfig,
    rank: usize,
}

impl RunnerMyelonTransportConfig {
    /// The session configuration.
    pub fn session(&self) -> &MyelonTransportConfig {
        &self.session
    }
    /// This runner's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }
    /// The dispatch ring this runner consumes.
    pub fn dispatch_segment(&self) -> &str {
        self.session.layout.dispatch_segment()
    }
    /// The response ring this runner produces.
    pub fn response_segment(&self) -> &str {
        &self.session.layout.responses[self.rank]
    }
    /// This runner's consumer id on the dispatch ring.
    pub fn dispatch_consumer_id(&self) -> String {
        MyelonTransportLayout::dispatch_consumer_id(self.rank)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_table() {
        let long = format!("/{}", "a".repeat(SEGMENT_NAME_LIMIT_MACOS));
        let cases: [(&str, Option<&str>); 8] = [
            ("/ok", None),
            ("/a.b_c-9", None),
            ("", Some("empty")),
            ("/", Some("empty")),
            ("noslash", Some("start with")),
            ("/a/b", Some("'/' at byte 2")),
            ("/é", Some("at byte 1")),
            (&long, Some("over the portable limit")),
        ];
        for (name, want) in cases {
            match (validate_segment_name(name), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{name:?}: {e}"),
                (got, _) => panic!("{name:?}: {got:?}"),
            }
        }
        let exact = format!("/{}", "a".repeat(SEGMENT_NAME_LIMIT_MACOS - 1));
        assert_eq!(validate_segment_name(&exact), Ok(()));
    }

    #[test]
    fn tags_are_short_deterministic_and_distinct() {
        for label in [
            "",
            "x",
            "Llama-70B/run 3",
            &"é".repeat(50),
            &"z".repeat(500),
        ] {
            let t = compact_session_tag(label);
            assert_eq!(t, compact_session_tag(label));
            assert!(t.len() <= SESSION_TAG_MAX_LEN && t.len() >= SESSION_TAG_HASH);
            assert!(t
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        }
        assert_ne!(compact_session_tag("run-1"), compact_session_tag("run-2"));
    }

    #[test]
    fn longest_prefix_fits_and_one_more_is_refused() {
        let p = "p".repeat(MAX_TRANSPORT_PREFIX_LEN);
        let l = MyelonTransportLayout::new(&"s".repeat(64), &p, MAX_RUNNERS).unwrap();
        assert!(l
            .all_segments()
            .all(|n| n.len() <= SEGMENT_NAME_LIMIT_MACOS));
        let longest = l.all_segments().map(str::len).max().unwrap();
        assert_eq!(longest, SEGMENT_NAME_LIMIT_MACOS);
        let p = "p".repeat(MAX_TRANSPORT_PREFIX_LEN + 1);
        assert!(matches!(
            MyelonTransportLayout::new("s", &p, 2),
            Err(MyelonLayoutError::InvalidPrefix { .. })
        ));
    }

    #[test]
    fn config_rejects_nonsense() {
        assert!(matches!(
            MyelonTransportConfig::new("", 2),
            Err(MyelonLayoutError::EmptySessionLabel)
        ));
        for n in [0, MAX_RUNNERS + 1] {
            assert!(matches!(
                MyelonTransportConfig::new("s", n),
                Err(MyelonLayoutError::RunnerCount { .. })
            ));
        }
        let c = MyelonTransportConfig::new("s", 2).unwrap();
        for d in [0, 1, 3, 1000] {
            assert!(c.clone().with_rpc_depth(d).is_err(), "{d}");
            assert!(c.clone().with_response_depth(d).is_err(), "{d}");
        }
        assert!(c.clone().with_prefix("a-b").is_err());
        assert!(matches!(
            c.runner(2),
            Err(MyelonLayoutError::RankOutOfRange {
                rank: 2,
                runners: 2
            })
        ));
        assert_eq!(c.runner(1).unwrap().dispatch_consumer_id(), "runner-1");
    }

    #[test]
    fn wait_strategy_round_trips() {
        for w in [
            MyelonWaitStrategy::BusySpin,
            MyelonWaitStrategy::Yield,
            MyelonWaitStrategy::Sleep,
            MyelonWaitStrategy::Block,
        ] {
            assert_eq!(w.as_str().parse::<MyelonWaitStrategy>(), Ok(w));
        }
        assert!("fast".parse::<MyelonWaitStrategy>().is_err());
        assert_eq!(MyelonWaitStrategy::Block.to_auto(), AutoWaitStrategy::Block);
    }
}
