//! What other threads ask of the loop: the bounded command channel and its
//! wake-up descriptor, and the worker pool with the results it hands back.
//!
//! Owns: the loop's end of the channel, the waker, the worker threads and
//! the ordered results waiting for earlier ones.
//!
//! May not touch: connections, the backend or the handler. It is generic
//! over the command it carries, so it knows nothing of what a command does:
//! the loop takes commands out and carries them out.

mod jobs;
mod queue;
mod waker;
mod workers;

use std::sync::{mpsc, Arc};

pub(crate) use jobs::Jobs;
pub(crate) use queue::{Refused, Shared};
pub(crate) use waker::Waker;
pub use workers::JobRejected;

/// The loop's end of the handles' channel.
pub(crate) struct Remote<C> {
    shared: Arc<Shared<C>>,
    receiver: mpsc::Receiver<(C, usize)>,
}

impl<C> Remote<C> {
    /// A channel bounded by `capacity` commands and `max_bytes` bytes,
    /// waking the loop through `waker`.
    pub(crate) fn new(waker: Waker, capacity: usize, max_bytes: usize) -> Remote<C> {
        let (shared, receiver) = Shared::new(waker, capacity, max_bytes);
        Remote { shared, receiver }
    }

    /// The half every handle holds.
    pub(crate) fn shared(&self) -> &Arc<Shared<C>> {
        &self.shared
    }

    /// Called when the waker fires, before the commands are taken: a
    /// command queued from now on wakes the loop again, so none is left
    /// behind.
    pub(crate) fn begin_drain(&self) {
        self.shared.waker.drain();
        self.shared.clear_pending();
    }

    /// The next command, if any is queued.
    pub(crate) fn next(&self) -> Option<C> {
        let (command, bytes) = self.receiver.try_recv().ok()?;
        self.shared.taken(bytes);
        Some(command)
    }

    /// Commands are left for the next turn: wake it.
    pub(crate) fn wake_again(&self) {
        let _ = self.shared.push_wake();
    }

    /// Marks every handle dead: their calls fail from now on, and workers
    /// waiting for room are released when the receiver drops.
    pub(crate) fn close(self) -> crate::sys::RawSource {
        self.shared.close();
        self.shared.waker.raw_fd()
    }
}
