//! `myelon`: look at and tidy the rings of this machine.
//!
//! ```text
//! myelon list  [--dir DIR]... [--no-shm] [--prefix P]     segments, owner pid, alive or stale
//! myelon stat  NAME [--dir DIR] [--watch] [--interval MS] [--count N]
//! myelon clean [--dir DIR]... [--no-shm] [--prefix P] [--dry-run]
//! ```
//!
//! A crate of its own (`myelon-cli`, `cargo install --path cli`), so that the `myelon` library
//! pulls no argument parser into the programs that link it.

mod stat;

use clap::{Args, Parser, Subcommand};
use myelon::backend::{BackendError, MmapBackend, ProcessState, RingBackend, ShmBackend};
use myelon::observability::{clean_abandoned, list_segments, CleanOutcome, SegmentListing};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "myelon",
    version,
    about = "Inspect and clean myelon shared-memory rings"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the myelon segments (rings, coordination cursors) in /dev/shm and in mmap
    /// directories, with their owner process and whether it is alive or the segment stale.
    List(Where),
    /// Show one ring: producer cursor, each consumer's id, cursor, lag and liveness, the
    /// counters and their rates.
    Stat(stat::StatArgs),
    /// Remove segments whose owner process is dead; a live owner's segment is never touched.
    Clean {
        #[command(flatten)]
        place: Where,
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which backends (and names) to look at.
#[derive(Args)]
struct Where {
    /// An mmap directory to look in as well (repeatable).
    #[arg(long = "dir", value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Skip POSIX shared memory (/dev/shm).
    #[arg(long)]
    no_shm: bool,
    /// Only segments whose name starts with this (a leading '/' is ignored).
    #[arg(long, value_name = "P")]
    prefix: Option<String>,
}

impl Where {
    fn selects(&self, name: &str) -> bool {
        self.prefix.as_deref().is_none_or(|p| {
            name.trim_start_matches('/')
                .starts_with(p.trim_start_matches('/'))
        })
    }

    fn places(&self) -> Vec<Place> {
        let mut v = Vec::new();
        if !self.no_shm {
            v.push(Place {
                kind: "shm",
                ops: Box::new(ShmBackend),
                dir: None,
            });
        }
        for d in &self.dirs {
            v.push(Place {
                kind: "mmap",
                ops: Box::new(MmapBackend::new(d.clone())),
                dir: Some(d.clone()),
            });
        }
        v
    }
}

/// One backend to look at.
struct Place {
    kind: &'static str,
    ops: Box<dyn Ops>,
    dir: Option<PathBuf>,
}

impl Place {
    fn show(&self, name: &str) -> String {
        match &self.dir {
            None => format!("/{}", name.trim_start_matches('/')),
            Some(d) => d.join(name).display().to_string(),
        }
    }
}

/// The listing operations over any backend, object-safe.
trait Ops {
    fn list(&self) -> Result<Vec<SegmentListing>, BackendError>;
    fn clean(
        &self,
        dry_run: bool,
        select: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<CleanOutcome>, BackendError>;
}

impl<B: RingBackend> Ops for B {
    fn list(&self) -> Result<Vec<SegmentListing>, BackendError> {
        list_segments(self)
    }
    fn clean(
        &self,
        dry_run: bool,
        select: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<CleanOutcome>, BackendError> {
        clean_abandoned(self, dry_run, select)
    }
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let r = match Cli::parse().command {
        Command::List(place) => list(&place),
        Command::Stat(args) => stat::run(&args),
        Command::Clean { place, dry_run } => clean(&place, dry_run),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("myelon: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn owner_word(s: ProcessState) -> &'static str {
    match s {
        ProcessState::Alive => "alive",
        ProcessState::Dead => "stale",
        ProcessState::Unknown => "unknown",
    }
}

fn opt(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn list(w: &Where) -> CliResult {
    println!(
        "{:<7} {:<40} {:<10} {:>8} {:<7} {:>9} {:>12} {:>9}",
        "BACKEND", "NAME", "KIND", "OWNER", "STATUS", "CAPACITY", "PUBLISHED", "CONSUMERS"
    );
    let mut total = 0;
    for place in w.places() {
        for l in place.ops.list()?.iter().filter(|l| w.selects(&l.name)) {
            total += 1;
            println!(
                "{:<7} {:<40} {:<10} {:>8} {:<7} {:>9} {:>12} {:>9}",
                place.kind,
                place.show(&l.name),
                l.kind.to_string(),
                opt(l.owner_pid),
                owner_word(l.owner),
                opt(l.capacity),
                opt(l.events_published),
                opt(l.consumers),
            );
        }
    }
    println!("{total} segment(s)");
    Ok(())
}

fn clean(w: &Where, dry_run: bool) -> CliResult {
    let mut removed = 0;
    for place in w.places() {
        for o in place.ops.clean(dry_run, &|n| w.selects(n))? {
            let what = match (dry_run, o.removed) {
                (true, _) => "would remove",
                (false, true) => "removed",
                (false, false) => "kept (owned again)",
            };
            removed += usize::from(o.removed);
            println!(
                "{what} {} {} ({}, owner pid {} dead)",
                place.kind,
                place.show(&o.listing.name),
                o.listing.kind,
                opt(o.listing.owner_pid)
            );
        }
    }
    let verb = if dry_run {
        "would be removed"
    } else {
        "removed"
    };
    println!("{removed} segment(s) {verb}");
    Ok(())
}
