//! `AutoConsumer`: a consumer driven by a background thread.

use crate::backend::RingBackend;
use crate::ring::consumer::Consumer;
use crate::ring::error::{MultiProcessError, MultiProcessResult};
use crate::ring::event::ShmEvent;
use crate::ring::wait::AutoWaitStrategy;
use crate::Sequence;
// The stop flag is shared by two threads of one process, never by processes.
#[allow(clippy::disallowed_types)]
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Events handled per batch by the background thread.
const AUTO_BATCH: usize = 256;

/// Longest wait between two checks of the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(20);

/// What the background thread hands back: the consumer and how the thread ended.
type Outcome<E, B> = (Consumer<E, B>, MultiProcessResult<()>);

/// Automatic consumer that runs in a background thread: it calls the handler with
/// `(event, sequence, end_of_batch)` for every event, waiting with the given strategy when the
/// ring is empty, until stopped, the stream closes, or an error occurs.
#[derive(Debug)]
#[allow(clippy::disallowed_types)] // `stop` is process-local (two threads)
pub struct AutoConsumer<E: ShmEvent, B: RingBackend> {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Outcome<E, B>>>,
}

impl<E: ShmEvent, B: RingBackend> AutoConsumer<E, B> {
    /// Starts the background thread.
    #[allow(clippy::disallowed_types)] // the process-local stop flag
    pub fn spawn<F>(
        mut consumer: Consumer<E, B>,
        strategy: AutoWaitStrategy,
        mut handler: F,
    ) -> Self
    where
        F: FnMut(&E, Sequence, bool) + Send + 'static,
    {
        consumer.set_wait_strategy(strategy);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name(format!("myelon-auto-{}", consumer.consumer_id()))
            .spawn(move || {
                // The consumer's core, as its builder pinned the thread that built it.
                if let Some(core) = consumer.core() {
                    if let Err(e) = crate::ring::pinning::pin(core) {
                        return (consumer, Err(e));
                    }
                }
                let r = run(&mut consumer, &flag, &mut handler);
                (consumer, r)
            })
            .expect("spawning the AutoConsumer thread");
        AutoConsumer {
            stop,
            handle: Some(handle),
        }
    }

    /// Whether the thread has ended (stream closed, error, or stopped).
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Stops the thread and returns the consumer with the thread's outcome: `Ok(())` when it
    /// was stopped or the stream closed, the error otherwise.
    pub fn stop(mut self) -> (Consumer<E, B>, MultiProcessResult<()>) {
        self.stop.store(true, Ordering::Release);
        self.join_inner()
    }

    /// Waits for the thread to end by itself (end of stream or error).
    pub fn join(mut self) -> (Consumer<E, B>, MultiProcessResult<()>) {
        self.join_inner()
    }

    fn join_inner(&mut self) -> (Consumer<E, B>, MultiProcessResult<()>) {
        let handle = self.handle.take().expect("joined once");
        match handle.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl<E: ShmEvent, B: RingBackend> Drop for AutoConsumer<E, B> {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.stop.store(true, Ordering::Release);
            let _ = h.join();
        }
    }
}

#[allow(clippy::disallowed_types)] // the process-local stop flag
fn run<E: ShmEvent, B: RingBackend, F: FnMut(&E, Sequence, bool)>(
    consumer: &mut Consumer<E, B>,
    stop: &AtomicBool,
    handler: &mut F,
) -> MultiProcessResult<()> {
    while !stop.load(Ordering::Acquire) {
        match consumer.consume_batch_timeout(AUTO_BATCH, STOP_CHECK, &mut *handler) {
            Ok(_) | Err(MultiProcessError::Timeout { .. }) => {}
            Err(MultiProcessError::Closed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
