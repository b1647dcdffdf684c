//! The slot sizes the bridge is built for: the frame type is part of a ring's type, so each
//! size is one monomorphisation of the generic bridge.

/// Calls the generic async function `$f::<Frame>($args..)` for the configured slot size.
macro_rules! with_frame {
    ($slot:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $slot {
            $crate::config::SlotSize::B256 => {
                $f::<myelon::transport::FixedFrame<{ 256 - 12 }>>($($arg),*).await
            }
            $crate::config::SlotSize::B1024 => {
                $f::<myelon::transport::FixedFrame<{ 1024 - 12 }>>($($arg),*).await
            }
            $crate::config::SlotSize::B4096 => {
                $f::<myelon::transport::FixedFrame<{ 4096 - 12 }>>($($arg),*).await
            }
            $crate::config::SlotSize::B16384 => {
                $f::<myelon::transport::FixedFrame<{ 16384 - 12 }>>($($arg),*).await
            }
        }
    };
}
pub(crate) use with_frame;
