//! Steady-state cost of `publish_managed` (liveness enabled) against `publish` on the same SHM
//! ring: the liveness checks run only while a publish is blocked, so a publish that finds room
//! should cost the same. One thread publishes 1024 events, then drains them with one batch
//! consume, so the producer never blocks; rounds of both variants alternate and the medians and
//! their ratio are printed (no absolute threshold: a ratio within noise of 1.0 is the claim).
//!
//! `cargo bench -p myelon --bench liveness`; with `SAME=1` both variants call `publish` (an A/A
//! control: the spread of that ratio is the noise level).

use myelon::{
    attach_shared_consumer, build_shared_single_producer, RequiredConsumerLivenessConfig,
};
use std::hint::black_box;
use std::time::Instant;

const CAP: usize = 4096;
const BURST: u64 = 1024;
const BURSTS: u64 = 2_000;
const ROUNDS: usize = 9;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let name = format!("myelon-bench-live-{}", std::process::id());
    let mut p = build_shared_single_producer::<u64>(&name, CAP)
        .build_producer(|| 0)
        .expect("producer");
    let mut c = attach_shared_consumer::<u64>(&name, CAP)
        .with_consumer_id("r0")
        .build_consumer()
        .expect("consumer");
    let mut plain = Vec::new();
    let mut managed = Vec::new();
    let mut sum = 0u64;
    let same = std::env::var_os("SAME").is_some();
    for round in 0..2 * ROUNDS {
        let use_managed = round % 2 == 1;
        if use_managed && !p.required_consumer_liveness_enabled() {
            let cfg = RequiredConsumerLivenessConfig::new(["r0"]).expect("config");
            p.enable_required_consumer_liveness(cfg).expect("enable");
        }
        let t = Instant::now();
        for b in 0..BURSTS {
            for i in 0..BURST {
                let v = b * BURST + i;
                if use_managed && !same {
                    p.publish_managed(|e| *e = v).expect("room");
                } else {
                    p.publish(|e| *e = v);
                }
            }
            let n = c
                .try_consume_batch(BURST as usize, |e, _, _| sum = sum.wrapping_add(*e))
                .expect("consume");
            assert_eq!(n as u64, BURST);
        }
        let ns = t.elapsed().as_nanos() as f64 / (BURST * BURSTS) as f64;
        if use_managed {
            &mut managed
        } else {
            &mut plain
        }
        .push(ns);
    }
    black_box(sum);
    let (a, b) = (median(plain), median(managed));
    println!("publish (+ batch consume): {a:.2} ns/event");
    println!("publish_managed (+ batch consume, liveness on): {b:.2} ns/event");
    println!("managed / plain: {:.3}", b / a);
}
