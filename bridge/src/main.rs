//! `myelon-bridge`: one direction of a ring ↔ zenoh bridge (see the crate README).
//!
//! Prints `READY` on stdout once attached and declared (ring → zenoh, lossless: once a
//! subscriber matches), and `COUNTERS key=value ...` when it stops (the producer closed the
//! ring, SIGTERM or SIGINT). Logs go to stderr (`RUST_LOG`, default `info`).

use clap::Parser;
use myelon_bridge::{BridgeConfig, Counters, Direction, Layer, Mode, Reliability, SlotSize};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// Bridges a myelon framed ring over zenoh, one direction per process.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML file with any of the settings below (flags given override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// ring-to-zenoh or zenoh-to-ring.
    #[arg(long, value_enum)]
    direction: Option<Direction>,
    /// The ring's shared-memory name.
    #[arg(long)]
    ring: Option<String>,
    /// The ring's capacity in slots (power of two).
    #[arg(long)]
    capacity: Option<usize>,
    /// The ring's slot size in bytes (frame header included).
    #[arg(long, value_enum)]
    slot_bytes: Option<SlotSize>,
    /// framed or typed: bridged the same way (typed messages are codec bytes in a framed ring).
    #[arg(long, value_enum)]
    layer: Option<Layer>,
    /// zenoh key expression.
    #[arg(long)]
    key: Option<String>,
    /// zenoh mode.
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// zenoh endpoint to listen on, e.g. tcp/127.0.0.1:7447 (repeatable).
    #[arg(long)]
    listen: Vec<String>,
    /// zenoh endpoint to connect to (repeatable).
    #[arg(long)]
    connect: Vec<String>,
    /// Turn zenoh multicast scouting and gossip on (off by default).
    #[arg(long)]
    multicast_scouting: bool,
    /// lossless (backpressure) or lossy (drop and count).
    #[arg(long, value_enum)]
    reliability: Option<Reliability>,
    /// ring-to-zenoh: consumer id to attach under.
    #[arg(long)]
    consumer_id: Option<String>,
    /// zenoh-to-ring: consumer id the created ring reserves (repeatable).
    #[arg(long)]
    reserve: Vec<String>,
    /// zenoh-to-ring: file keeping the per-source accounting across restarts.
    #[arg(long)]
    state_file: Option<PathBuf>,
    /// zenoh-to-ring: drop duplicates instead of publishing them.
    #[arg(long)]
    drop_duplicates: bool,
    /// zenoh-to-ring: depth of the channel between zenoh and the ring.
    #[arg(long)]
    channel: Option<usize>,
}

impl Cli {
    fn config(self) -> Result<BridgeConfig, String> {
        let mut c = match &self.config {
            Some(path) => BridgeConfig::from_file(path).map_err(|e| e.to_string())?,
            None => {
                let (Some(d), Some(r), Some(k)) = (self.direction, &self.ring, &self.key) else {
                    return Err("without --config, give --direction, --ring and --key".into());
                };
                BridgeConfig::new(d, r.clone(), k.clone())
            }
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { c.$field = v; } )* };
        }
        set!(
            direction,
            ring,
            capacity,
            slot_bytes,
            layer,
            key,
            mode,
            reliability,
            consumer_id,
            channel
        );
        if self.state_file.is_some() {
            c.state_file = self.state_file;
        }
        for (list, more) in [
            (&mut c.listen, self.listen),
            (&mut c.connect, self.connect),
            (&mut c.reserve, self.reserve),
        ] {
            if !more.is_empty() {
                *list = more;
            }
        }
        c.multicast_scouting |= self.multicast_scouting;
        c.drop_duplicates |= self.drop_duplicates;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = match Cli::parse().config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("myelon-bridge: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("myelon-bridge: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let counters = Arc::new(Counters::default());
    let (ready_tx, mut ready_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let done = Arc::new(Notify::new());
    rt.spawn(async move {
        if ready_rx.wait_for(|r| *r).await.is_ok() {
            println!("READY");
        }
    });
    rt.spawn(on_signal(stop_tx, Arc::clone(&done), Arc::clone(&counters)));
    let result = rt.block_on(myelon_bridge::run(
        &config,
        Arc::clone(&counters),
        ready_tx,
        stop_rx,
    ));
    done.notify_one();
    println!("COUNTERS {}", counters.snapshot());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("myelon-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}

/// On SIGTERM or SIGINT asks the bridge to stop. A `put` blocked in zenoh (lossless, remote
/// side stalled) cannot see that request: after 5 s the counters are printed here and the
/// process exits, as if killed (the message being sent is sent again by the next run).
async fn on_signal(stop: watch::Sender<bool>, done: Arc<Notify>, counters: Arc<Counters>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("signal: stopping");
    stop.send_replace(true);
    if tokio::time::timeout(Duration::from_secs(5), done.notified())
        .await
        .is_err()
    {
        println!("COUNTERS {}", counters.snapshot());
        std::process::exit(3);
    }
}
