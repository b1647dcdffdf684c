//! The event marker trait and type fingerprints.

/// Marker for types that may live in a shared-memory ring slot.
///
/// # Safety
///
/// Implement this only for types for which **every bit pattern is a valid value** and which hold
/// **no pointers or references** (nothing whose meaning depends on the address space of the
/// process that wrote it): integers, floats, arrays of them and `#[repr(C)]` structs made only of
/// such fields. `bool`, `char`, enums, references, `Box`, `Vec`, `String` and raw pointers do not
/// qualify. A peer process may write any bytes into a slot; this bound is what makes reading
/// them defined behaviour.
///
/// Prefer the [`shm_event!`](crate::shm_event) macro, which checks every field at compile time.
/// A manual one-line marker is `unsafe impl myelon::ShmEvent for MyEvent {}`.
pub unsafe trait ShmEvent: Copy + Send + Sync + 'static {
    /// A stable name for the type's wire identity. Producer and consumer must agree on it.
    /// The default is `core::any::type_name`, which differs between two distinct types even when
    /// their sizes are equal; override it when producer and consumer are built from different
    /// crates that each define the same layout.
    const WIRE_NAME: Option<&'static str> = None;
}

macro_rules! impl_shm_event {
    ($($t:ty),* $(,)?) => { $(
        // SAFETY: every bit pattern of a primitive integer or float is a valid value and it holds
        // no pointer.
        unsafe impl ShmEvent for $t {}
    )* };
}

impl_shm_event!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);

// SAFETY: an array of `T: ShmEvent` is valid for every bit pattern because each element is, and
// holds no pointer because no element does.
unsafe impl<T: ShmEvent, const N: usize> ShmEvent for [T; N] {}

/// Defines a `#[repr(C)]` event struct and implements [`ShmEvent`] for it, after checking at
/// compile time that every field type is itself `ShmEvent`.
///
/// ```
/// myelon::shm_event! {
///     #[derive(Clone, Copy, Debug, Default, PartialEq)]
///     pub struct Event {
///         pub sequence: u64,
///         pub checksum: u64,
///         pub payload: [u64; 4],
///     }
/// }
/// let e = Event::default();
/// assert_eq!(e.sequence, 0);
/// ```
#[macro_export]
macro_rules! shm_event {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field : $fty ),*
        }

        const _: fn() = || {
            fn field_is_shm_event<T: $crate::ShmEvent>() {}
            $( field_is_shm_event::<$fty>(); )*
        };

        // SAFETY: `$name` is `#[repr(C)]` and every field is `ShmEvent` (checked just above), so
        // every bit pattern of it is valid (padding bytes carry no validity requirement) and it
        // holds no pointer.
        unsafe impl $crate::ShmEvent for $name {}
    };
}

/// A 64-bit identity of an event type: FNV-1a over its wire name, size and alignment.
///
/// Stored in the segment header by the producer and compared by every consumer, so two types of
/// equal size but different identity never attach to each other.
pub fn type_fingerprint<E: ShmEvent>() -> u64 {
    let name = E::WIRE_NAME.unwrap_or_else(core::any::type_name::<E>);
    let mut h = Fnv1a::new();
    h.write(name.as_bytes());
    h.write(&(core::mem::size_of::<E>() as u64).to_le_bytes());
    h.write(&(core::mem::align_of::<E>() as u64).to_le_bytes());
    h.finish()
}

/// Minimal FNV-1a (64-bit); stable across platforms and compiler versions.
pub(crate) struct Fnv1a(u64);

impl Fnv1a {
    pub(crate) const fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::shm_event! {
        #[derive(Clone, Copy, Default)]
        struct A { x: u64, y: u64 }
    }
    crate::shm_event! {
        #[derive(Clone, Copy, Default)]
        struct B { x: u64, y: u64 }
    }

    #[derive(Clone, Copy)]
    #[allow(dead_code)] // only its type identity matters
    struct Named([u8; 16]);
    // SAFETY: a byte array newtype: every bit pattern valid, no pointers.
    unsafe impl ShmEvent for Named {
        const WIRE_NAME: Option<&'static str> = Some("test.Named.v1");
    }

    #[test]
    fn equal_size_types_have_different_fingerprints() {
        assert_eq!(core::mem::size_of::<A>(), core::mem::size_of::<B>());
        assert_ne!(type_fingerprint::<A>(), type_fingerprint::<B>());
        assert_ne!(type_fingerprint::<[u64; 2]>(), type_fingerprint::<A>());
        assert_ne!(type_fingerprint::<u32>(), type_fingerprint::<f32>());
    }

    #[test]
    fn fingerprint_is_stable_and_wire_name_overrides() {
        assert_eq!(type_fingerprint::<A>(), type_fingerprint::<A>());
        let mut h = Fnv1a::new();
        h.write(b"test.Named.v1");
        h.write(&16u64.to_le_bytes());
        h.write(&1u64.to_le_bytes());
        assert_eq!(type_fingerprint::<Named>(), h.finish());
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        let mut h = Fnv1a::new();
        assert_eq!(h.finish(), 0xcbf29ce484222325);
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63dc4c8601ec8c);
        let mut h = Fnv1a::new();
        h.write(b"foobar");
        assert_eq!(h.finish(), 0x85944171f73967e8);
    }
}
