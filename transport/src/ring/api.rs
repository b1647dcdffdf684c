//! The Layer 0 entry points of the reference API: the SHM and mmap producer/consumer aliases and
//! the builder constructors for them.

#[cfg(all(feature = "shm", not(loom)))]
mod shm_api {
    use crate::backend::ShmBackend;
    use crate::ring::builder::SharedDisruptorBuilder;
    use crate::ring::consumer::Consumer;
    use crate::ring::event::ShmEvent;
    use crate::ring::producer::Producer;

    /// Multi-process producer over POSIX shared memory.
    pub type SharedProducer<E> = Producer<E, ShmBackend>;
    /// Broadcast consumer over POSIX shared memory.
    pub type SharedConsumer<E> = Consumer<E, ShmBackend>;

    /// Create a shared single producer for multi-process communication: a builder for ring
    /// `segment` of `capacity` events (a power of two) in POSIX shared memory.
    pub fn build_shared_single_producer<E: ShmEvent>(
        segment: &str,
        capacity: usize,
    ) -> SharedDisruptorBuilder<E, ShmBackend> {
        SharedDisruptorBuilder::with_backend(ShmBackend, segment, capacity)
    }

    /// One producer of a multi-producer ring in POSIX shared memory (`ring::multi`): the first
    /// one built creates ring `segment` of `capacity` events, later ones attach to it. Its
    /// consumers attach with [`attach_shared_multi_consumer`].
    pub fn build_shared_multi_producer<E: ShmEvent>(
        segment: &str,
        capacity: usize,
    ) -> crate::ring::multi::MultiProducerBuilder<E, ShmBackend> {
        crate::ring::multi::MultiProducerBuilder::with_backend(ShmBackend, segment, capacity)
    }

    /// A consumer builder for a multi-producer ring of `E`: its consumer receives
    /// [`crate::Sourced<E>`] (each event with the id of the producer that sent it).
    pub fn attach_shared_multi_consumer<E: ShmEvent>(
        segment: &str,
        capacity: usize,
    ) -> SharedDisruptorBuilder<crate::ring::multi::Sourced<E>, ShmBackend> {
        SharedDisruptorBuilder::with_backend(ShmBackend, segment, capacity)
    }

    /// Attach to an existing shared disruptor as a consumer: a builder whose `build_consumer`
    /// waits for ring `segment` to be ready and checks its type and capacity.
    pub fn attach_shared_consumer<E: ShmEvent>(
        segment: &str,
        capacity: usize,
    ) -> SharedDisruptorBuilder<E, ShmBackend> {
        SharedDisruptorBuilder::with_backend(ShmBackend, segment, capacity)
    }
}
#[cfg(all(feature = "shm", not(loom)))]
pub use shm_api::*;

#[cfg(all(feature = "mmap", not(loom)))]
mod mmap_api {
    use crate::backend::BackendError;
    use crate::backend::MmapBackend;
    use crate::ring::builder::SharedDisruptorBuilder;
    use crate::ring::consumer::Consumer;
    use crate::ring::event::ShmEvent;
    use crate::ring::producer::Producer;
    use std::path::Path;

    /// Producer for the mmap transport.
    pub type MmapProducer<E> = Producer<E, MmapBackend>;
    /// Consumer for the mmap transport.
    pub type MmapConsumer<E> = Consumer<E, MmapBackend>;

    fn builder<E: ShmEvent>(
        path: &Path,
        capacity: usize,
    ) -> SharedDisruptorBuilder<E, MmapBackend> {
        match MmapBackend::for_path(path) {
            Ok((backend, name)) => SharedDisruptorBuilder::with_backend(backend, &name, capacity),
            Err(e) => {
                let (name, reason) = match e {
                    BackendError::InvalidName { name, reason } => (name, reason),
                    _ => (path.display().to_string(), "unusable ring path"),
                };
                let backend = MmapBackend::new(".");
                SharedDisruptorBuilder::with_invalid_name(backend, name, reason, capacity)
            }
        }
    }

    /// A producer builder for a ring stored in the file at `path` (created exclusively, mode
    /// 0600; an existing file is never truncated). A path without a UTF-8 file name is reported
    /// by `build_producer` (`Backend(InvalidName)`), like every other creation error.
    pub fn build_mmap_single_producer<E: ShmEvent>(
        path: impl AsRef<Path>,
        capacity: usize,
    ) -> SharedDisruptorBuilder<E, MmapBackend> {
        builder(path.as_ref(), capacity)
    }

    /// One producer of a multi-producer ring stored in the file at `path` (the first creates
    /// it, mode 0600, never truncating an existing file; later ones attach).
    pub fn build_mmap_multi_producer<E: ShmEvent>(
        path: impl AsRef<Path>,
        capacity: usize,
    ) -> crate::ring::multi::MultiProducerBuilder<E, MmapBackend> {
        crate::ring::multi::MultiProducerBuilder::from_inner(builder(path.as_ref(), capacity))
    }

    /// A consumer builder for the multi-producer ring stored in the file at `path`.
    pub fn attach_mmap_multi_consumer<E: ShmEvent>(
        path: impl AsRef<Path>,
        capacity: usize,
    ) -> SharedDisruptorBuilder<crate::ring::multi::Sourced<E>, MmapBackend> {
        builder(path.as_ref(), capacity)
    }

    /// A consumer builder for the ring stored in the file at `path`; path errors are reported
    /// by `build_consumer`.
    pub fn attach_mmap_consumer<E: ShmEvent>(
        path: impl AsRef<Path>,
        capacity: usize,
    ) -> SharedDisruptorBuilder<E, MmapBackend> {
        builder(path.as_ref(), capacity)
    }
}
#[cfg(all(feature = "mmap", not(loom)))]
pub use mmap_api::*;
