//! What a bridge is told: direction, ring, zenoh session, delivery mode. Read from a TOML file
//! and/or command-line flags (the binary merges them; flags win).

use crate::error::BridgeError;
use serde::Deserialize;
use std::path::PathBuf;

/// Which way messages flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Consume a local ring, `put` on zenoh.
    RingToZenoh,
    /// Subscribe on zenoh, publish into a local ring (created by the bridge).
    ZenohToRing,
}

/// zenoh session mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Peer-to-peer (the default).
    #[default]
    Peer,
    /// Client of a zenoh router (give it with `connect`).
    Client,
}

/// What the sending side does when zenoh cannot take a message now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Reliability {
    /// Reliable + `CongestionControl::Block`: a slow remote side stops the bridge consuming,
    /// so the ring fills and its producer waits. The sending bridge also waits for a matching
    /// subscriber before each `put` (nothing is published into the void).
    #[default]
    Lossless,
    /// `CongestionControl::Drop`: zenoh drops what it cannot send now; the receiving bridge
    /// counts the loss as gaps in the sequence numbers. No wait for a subscriber.
    Lossy,
}

/// Which layer the ring carries. Both are bridged the same way: a typed ring (Layer 2/3) is a
/// framed ring whose messages are codec bytes, and the bridge passes bytes through unchanged,
/// so a typed consumer on the far side decodes them as it would locally (same codec, same
/// message type). The setting documents the intent; it changes nothing on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    /// Layer 1: byte messages.
    #[default]
    Framed,
    /// Layers 2/3: codec-encoded messages (carried as their bytes).
    Typed,
}

/// Slot size of the ring (`FixedFrame<{slot - 12}>`): it is part of the ring's type, so the
/// bridge must be told the one the ring was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
pub enum SlotSize {
    /// `FixedFrame<244>`.
    #[serde(rename = "256")]
    #[value(name = "256")]
    B256,
    /// `FixedFrame<1012>`.
    #[default]
    #[serde(rename = "1024")]
    #[value(name = "1024")]
    B1024,
    /// `FixedFrame<4084>`.
    #[serde(rename = "4096")]
    #[value(name = "4096")]
    B4096,
    /// `FixedFrame<16372>`.
    #[serde(rename = "16384")]
    #[value(name = "16384")]
    B16384,
}

/// Everything one bridge needs. Only `direction`, `ring` and `key` have no default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    /// Which way messages flow.
    pub direction: Direction,
    /// The ring's shared-memory name.
    pub ring: String,
    /// The ring's capacity in slots (it is part of the ring's geometry; the receiving side
    /// creates its ring with it).
    #[serde(default = "default_capacity")]
    pub capacity: usize,
    /// The ring's slot size.
    #[serde(default)]
    pub slot_bytes: SlotSize,
    /// The ring's layer (bytes pass through either way; see [`Layer`]).
    #[serde(default)]
    pub layer: Layer,
    /// The zenoh key expression messages are put on / subscribed to.
    pub key: String,
    /// zenoh mode.
    #[serde(default)]
    pub mode: Mode,
    /// Endpoints to listen on (`tcp/127.0.0.1:7447`).
    #[serde(default)]
    pub listen: Vec<String>,
    /// Endpoints to connect to.
    #[serde(default)]
    pub connect: Vec<String>,
    /// zenoh multicast scouting (off unless asked for: only the endpoints given are used).
    #[serde(default)]
    pub multicast_scouting: bool,
    /// Lossless (backpressure) or lossy (drop and count).
    #[serde(default)]
    pub reliability: Reliability,
    /// ring → zenoh: the consumer id the bridge attaches under (reserve it at the producer so
    /// nothing is published before the bridge attaches, and so a restart resumes).
    #[serde(default = "default_consumer_id")]
    pub consumer_id: String,
    /// zenoh → ring: consumer ids the created ring reserves (they receive everything from the
    /// first message even if they attach later).
    #[serde(default)]
    pub reserve: Vec<String>,
    /// zenoh → ring: where to keep per-source accounting across restarts.
    #[serde(default)]
    pub state_file: Option<PathBuf>,
    /// zenoh → ring: drop duplicates instead of publishing them (they are counted either way).
    #[serde(default)]
    pub drop_duplicates: bool,
    /// zenoh → ring: depth of the channel between zenoh's receive task and the ring.
    #[serde(default = "default_channel")]
    pub channel: usize,
    /// Largest message accepted from the ring (longer ones are dropped and counted).
    #[serde(default = "default_max_message")]
    pub max_message_size: usize,
}

fn default_capacity() -> usize {
    1024
}
fn default_consumer_id() -> String {
    "zenoh-bridge".to_string()
}
fn default_channel() -> usize {
    256
}
fn default_max_message() -> usize {
    64 << 20
}

impl BridgeConfig {
    /// A configuration with every default but the three required fields.
    pub fn new(direction: Direction, ring: impl Into<String>, key: impl Into<String>) -> Self {
        BridgeConfig {
            direction,
            ring: ring.into(),
            capacity: default_capacity(),
            slot_bytes: SlotSize::default(),
            layer: Layer::default(),
            key: key.into(),
            mode: Mode::default(),
            listen: Vec::new(),
            connect: Vec::new(),
            multicast_scouting: false,
            reliability: Reliability::default(),
            consumer_id: default_consumer_id(),
            reserve: Vec::new(),
            state_file: None,
            drop_duplicates: false,
            channel: default_channel(),
            max_message_size: default_max_message(),
        }
    }

    /// Parses a TOML document.
    pub fn from_toml(text: &str) -> Result<Self, BridgeError> {
        toml::from_str(text).map_err(|e| BridgeError::Config(e.to_string()))
    }

    /// Reads and parses a TOML file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, BridgeError> {
        let text = std::fs::read_to_string(path).map_err(|source| BridgeError::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Checks values no type rules out.
    pub fn validate(&self) -> Result<(), BridgeError> {
        if self.capacity == 0 || !self.capacity.is_power_of_two() {
            return Err(BridgeError::Config(format!(
                "capacity {} is not a power of two",
                self.capacity
            )));
        }
        if self.channel == 0 {
            return Err(BridgeError::Config("channel must be at least 1".into()));
        }
        zenoh::key_expr::KeyExpr::try_from(self.key.as_str())
            .map_err(|e| BridgeError::Config(format!("key {:?}: {e}", self.key)))?;
        Ok(())
    }

    /// The zenoh session configuration: mode, endpoints, and multicast scouting and gossip off
    /// unless `multicast_scouting` (so a bridge talks to exactly the endpoints it was given).
    pub fn zenoh_config(&self) -> Result<zenoh::Config, BridgeError> {
        let mut c = zenoh::Config::default();
        let mode = match self.mode {
            Mode::Peer => "\"peer\"",
            Mode::Client => "\"client\"",
        };
        let scouting = if self.multicast_scouting {
            "true"
        } else {
            "false"
        };
        for (key, value) in [
            ("mode", mode.to_string()),
            ("listen/endpoints", json_list(&self.listen)),
            ("connect/endpoints", json_list(&self.connect)),
            ("scouting/multicast/enabled", scouting.to_string()),
            ("scouting/gossip/enabled", scouting.to_string()),
        ] {
            c.insert_json5(key, &value)
                .map_err(|e| BridgeError::Config(format!("zenoh {key} = {value}: {e}")))?;
        }
        Ok(c)
    }
}

/// A JSON list of strings without a JSON dependency: each is quoted with Rust's `Debug`
/// escaping, which JSON5 reads the same for the characters endpoints use.
fn json_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_with_defaults_and_rejections() {
        let c = BridgeConfig::from_toml(
            r#"
            direction = "zenoh-to-ring"
            ring = "/frames-b"
            key = "myelon/frames"
            listen = ["tcp/127.0.0.1:7447"]
            reliability = "lossy"
            slot_bytes = "4096"
            reserve = ["worker"]
            "#,
        )
        .expect("parses");
        assert_eq!(c.direction, Direction::ZenohToRing);
        assert_eq!(c.reliability, Reliability::Lossy);
        assert_eq!(c.slot_bytes, SlotSize::B4096);
        assert_eq!(c.capacity, 1024);
        assert_eq!(c.consumer_id, "zenoh-bridge");
        assert!(!c.multicast_scouting);
        c.validate().expect("valid");
        assert!(
            BridgeConfig::from_toml("direction = \"sideways\"\nring = \"r\"\nkey = \"k\"").is_err()
        );
        assert!(BridgeConfig::from_toml(
            "direction = \"ring-to-zenoh\"\nring = \"r\"\nkey = \"k\"\nbogus = 1"
        )
        .is_err());
        let mut bad = c.clone();
        bad.capacity = 1000;
        assert!(bad.validate().is_err());
    }

    #[test]
    fn the_example_config_parses() {
        let c = BridgeConfig::from_toml(include_str!("../bridge.example.toml")).expect("parses");
        c.validate().expect("valid");
        c.zenoh_config().expect("zenoh config");
    }

    #[test]
    fn zenoh_config_turns_scouting_off_and_sets_endpoints() {
        let mut c = BridgeConfig::new(Direction::RingToZenoh, "r", "k");
        c.listen = vec!["tcp/127.0.0.1:7000".into()];
        c.connect = vec!["tcp/127.0.0.1:7001".into()];
        let z = c.zenoh_config().expect("config");
        let get = |k: &str| z.get_json(k).expect(k);
        assert_eq!(get("scouting/multicast/enabled"), "false");
        assert_eq!(get("scouting/gossip/enabled"), "false");
        assert!(get("listen/endpoints").contains("tcp/127.0.0.1:7000"));
        assert!(get("connect/endpoints").contains("tcp/127.0.0.1:7001"));
        assert_eq!(get("mode"), "\"peer\"");
    }
}
