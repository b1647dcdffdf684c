//! Async receive and publish on every layer (feature `tokio`).
//!
//! | layer | sync | async (`into_async()`) |
//! |---|---|---|
//! | 0 raw | [`Consumer`](crate::Consumer), [`Producer`](crate::Producer) | [`AsyncConsumer`] (`recv`, `recv_leased`, `recv_batch`, `Stream`), [`AsyncProducer`] (`publish`, `publish_managed`, `claim_batch`) |
//! | 1 framed | [`FramedTransportConsumer`](crate::FramedTransportConsumer), [`FramedTransportProducer`](crate::FramedTransportProducer) | [`AsyncFramedConsumer`] (`recv`, `recv_vec`, `Stream` of `Vec<u8>`), [`AsyncFramedProducer`] (`publish`, `publish_managed`) |
//! | 2 typed | [`TypedConsumer`](crate::TypedConsumer), [`TypedProducer`](crate::TypedProducer) | [`AsyncTypedConsumer`] (`recv`, `recv_leased`, `Stream` of `T`), [`AsyncTypedProducer`] (`publish`, `publish_managed`) |
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use myelon::{attach_shared_consumer, MultiProcessError};
//! use std::time::Duration;
//!
//! let mut consumer = attach_shared_consumer::<u64>("/async-doc", 1024)
//!     .with_consumer_id("c0")
//!     .build_consumer()?
//!     .into_async();
//! loop {
//!     tokio::select! {
//!         event = consumer.recv() => match event {
//!             Ok(v) => println!("event {v}"),
//!             Err(MultiProcessError::Closed) => break,
//!             Err(e) => return Err(e.into()),
//!         },
//!         _ = tokio::time::sleep(Duration::from_secs(1)) => println!("idle"),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! **Wake-ups.** A task that finds its ring empty (a consumer) or full (a producer) arms a
//! doorbell on the ring's futex wake line and re-checks; a helper thread per handle sleeps in
//! the futex and wakes the task's `Waker`. The other side rings only when someone is armed, so a
//! publish with no async consumer waiting costs what it did before (one relaxed load). The
//! protocol, its proof sketch and why a thread: `doorbell.rs` (ARCHITECTURE.md, "Async
//! doorbell").
//!
//! **Cancellation.** Every future here consumes or publishes only in the poll that completes
//! it: dropping one loses nothing (a framed message larger than the ring, which is streamed in
//! parts, is the exception: dropping its `publish` after the first part leaves consumers a
//! partial message, which they drop and count).
//!
//! **Executors.** The handles use nothing but std `Waker`s and their own thread, so they work
//! on any executor; they are built and tested with tokio.

mod consumer;
mod doorbell;
mod multi;
mod producer;
mod wait;

cfg_not_loom! {
    mod framed;
    mod typed;
    pub use framed::{AsyncFramedConsumer, AsyncFramedProducer};
    pub use typed::{AsyncTypedConsumer, AsyncTypedProducer, TypedLease};
}

pub use consumer::AsyncConsumer;
pub use multi::AsyncMultiProducer;
pub use producer::AsyncProducer;
