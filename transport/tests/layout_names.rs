//! Layout helpers: segment names of a one-engine / N-runner session, and the coordination cursor
//! over POSIX shared memory.

use myelon::transport::{
    CoordinationCursor, CoordinationCursorError, MyelonLayoutError, SegmentNameError, MAX_RUNNERS,
};
use myelon::{
    compact_session_tag, coordination_cursor_name, ensure_coordination_cursor,
    validate_segment_name, MyelonTransportConfig, MyelonTransportLayout, SEGMENT_NAME_LIMIT_MACOS,
};
use std::collections::HashSet;
use std::time::Duration;

const LABELS: [&str; 5] = [
    "a",
    "llama-70b-prod",
    "Session With Spaces/and/slashes",
    "ünïcödé-label-that-is-quite-long-indeed-0123456789",
    "",
];

fn layouts(label: &str) -> impl Iterator<Item = (usize, MyelonTransportLayout)> + '_ {
    (1..=MAX_RUNNERS).map(move |n| {
        let l = if label.is_empty() {
            MyelonTransportLayout::new("x", "myelon", n)
        } else {
            MyelonTransportLayout::new(label, "myelon", n)
        };
        (n, l.expect("layout"))
    })
}

#[test]
fn every_worker_count_gives_valid_unique_deterministic_names() {
    for label in LABELS {
        for (n, layout) in layouts(label) {
            let names: Vec<&str> = layout.all_segments().collect();
            assert_eq!(names.len(), n + 2, "{label:?} n={n}");
            let unique: HashSet<&str> = names.iter().copied().collect();
            assert_eq!(unique.len(), names.len(), "duplicate name: {names:?}");
            for name in &names {
                assert!(name.len() <= SEGMENT_NAME_LIMIT_MACOS, "{name:?}");
                validate_segment_name(name).unwrap_or_else(|e| panic!("{e}"));
                assert!(name.contains(layout.session_tag()));
            }
            let again =
                MyelonTransportLayout::new(if label.is_empty() { "x" } else { label }, "myelon", n)
                    .unwrap();
            assert_eq!(again, layout, "derivation is not deterministic");
            // A layout for more runners extends this one: rank r's name never depends on N.
            for r in 0..n {
                let big = MyelonTransportLayout::new(
                    if label.is_empty() { "x" } else { label },
                    "myelon",
                    MAX_RUNNERS,
                )
                .unwrap();
                assert_eq!(big.response_segment(r), layout.response_segment(r));
            }
            assert_eq!(layout.response_segment(n), None);
        }
    }
}

#[test]
fn distinct_labels_give_disjoint_names() {
    let mut seen = HashSet::new();
    for i in 0..2000 {
        let l = MyelonTransportLayout::new(&format!("session-{i}"), "myelon", 2).unwrap();
        for n in l.all_segments() {
            assert!(seen.insert(n.to_string()), "collision on {n}");
        }
    }
}

#[test]
fn names_match_the_documented_shape() {
    let c = MyelonTransportConfig::new("demo", 3).unwrap();
    let tag = compact_session_tag("demo");
    assert_eq!(c.layout().dispatch_segment(), format!("/myelon-{tag}-rpc"));
    assert_eq!(
        c.layout().response_segment(2).unwrap(),
        format!("/myelon-{tag}-rsp2")
    );
    assert_eq!(
        c.layout().coordination_segment(),
        coordination_cursor_name("demo")
    );
    let r = c.runner(2).unwrap();
    assert_eq!(
        r.response_segment(),
        c.layout().response_segment(2).unwrap()
    );
    assert_eq!(r.dispatch_segment(), c.layout().dispatch_segment());
}

#[test]
fn errors_say_what_is_wrong() {
    let long = format!("/{}", "n".repeat(39));
    let e = validate_segment_name(&long).unwrap_err();
    assert!(
        matches!(
            e,
            SegmentNameError::TooLong {
                len: 40,
                max: 31,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("40 bytes"));
    let e = MyelonTransportConfig::new("s", 2)
        .unwrap()
        .with_prefix("much_too_long")
        .unwrap_err();
    assert!(matches!(e, MyelonLayoutError::InvalidPrefix { .. }));
    assert!(e.to_string().contains("31 bytes"), "{e}");
}

fn cursor_name(tag: &str) -> String {
    format!("/myelon-t{}-{tag}", std::process::id())
}

struct Unlink(String);
impl Drop for Unlink {
    fn drop(&mut self) {
        use myelon::backend::RingBackend;
        let _ = myelon::backend::ShmBackend.remove(&self.0);
    }
}

#[test]
fn coordination_cursor_over_shm() {
    let name = cursor_name("cur");
    let _guard = Unlink(name.clone());
    let engine = ensure_coordination_cursor(&name).expect("create");
    assert!(engine.is_owner());
    let runner =
        CoordinationCursor::open_with(myelon::backend::ShmBackend, &name, Duration::from_secs(10))
            .expect("open");
    let again = ensure_coordination_cursor(&name).expect("ensure the live one");
    assert!(!runner.is_owner() && !again.is_owner());
    assert_eq!(engine.advance_generation(), 1);
    assert_eq!(runner.generation(), 1);
    assert_eq!(runner.announce_rank(1), 1);
    assert_eq!(
        engine.wait_rank_change(1, 0, Duration::from_secs(10)),
        Some(1)
    );
    assert_eq!(again.rank_value(0), 0);
    drop(engine);
    // The owner removed the name; mapped handles keep working on their mapping.
    assert_eq!(runner.announce_rank(1), 2);
    assert!(matches!(
        CoordinationCursor::open_with(myelon::backend::ShmBackend, &name, Duration::ZERO),
        Err(CoordinationCursorError::NotReady { .. })
    ));
}

#[test]
fn ensure_refuses_bad_names() {
    assert!(matches!(
        ensure_coordination_cursor("no-slash"),
        Err(CoordinationCursorError::Name(
            SegmentNameError::MissingLeadingSlash { .. }
        ))
    ));
}

#[test]
fn every_worker_count_of_a_fixed_topology_fits_and_is_unique_per_rank() {
    use myelon::{FixedTopology, WorkerCount};
    for label in LABELS.iter().filter(|l| !l.is_empty()) {
        for w in WorkerCount::all() {
            let t = FixedTopology::new(label, w).unwrap();
            let names: HashSet<&str> = t.layout().all_segments().collect();
            assert_eq!(names.len(), w.get() + 2, "{label:?} {w}");
            assert!(names.iter().all(|n| validate_segment_name(n).is_ok()));
            let again = FixedTopology::new(label, w).unwrap();
            assert_eq!(again.layout(), t.layout());
            let ids: HashSet<String> = t.worker_ids().into_iter().collect();
            assert_eq!(ids.len(), w.get());
        }
    }
    for n in [0, 1, 9, 100] {
        assert!(WorkerCount::new(n).is_err(), "{n}");
    }
}
