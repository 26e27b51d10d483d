//! The bounded channel from other threads to the loop, and its wake-up.
//!
//! Bounded twice: in commands ([`Config::handle_queue`](crate::Config::handle_queue))
//! and in the bytes they carry ([`Config::handle_queue_bytes`](crate::Config::handle_queue_bytes)),
//! so that a thread sending large buffers to a slow loop meets a full queue
//! long before the process runs out of memory. Commands sent between two
//! turns share one wake-up: the first sender sets a flag and wakes the
//! poll, the others see the flag and only queue.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use super::waker::Waker;

/// Why a command was not queued (the handle turns it into its public error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// As many commands, or as many bytes, as the bounds allow are waiting.
    Full,
    /// The loop is gone.
    Gone,
}

/// What the loop and every sender share; `C` is the command type.
pub(crate) struct Shared<C> {
    sender: mpsc::SyncSender<(C, usize)>,
    pub(crate) waker: Waker,
    /// A wake-up is on its way: later senders need not wake again.
    wake_pending: AtomicBool,
    /// Cleared when the loop's end is closed.
    alive: AtomicBool,
    /// Bytes carried by the commands queued and not yet taken.
    queued_bytes: AtomicUsize,
    max_bytes: usize,
    pub(crate) commands: AtomicU64,
    pub(crate) wakes: AtomicU64,
}

impl<C> Shared<C> {
    /// A channel of `capacity` commands and `max_bytes` bytes, and the
    /// loop's end of it.
    pub(crate) fn new(
        waker: Waker,
        capacity: usize,
        max_bytes: usize,
    ) -> (Arc<Shared<C>>, mpsc::Receiver<(C, usize)>) {
        let (sender, receiver) = mpsc::sync_channel(capacity.max(1));
        let shared = Arc::new(Shared {
            sender,
            waker,
            wake_pending: AtomicBool::new(false),
            alive: AtomicBool::new(true),
            queued_bytes: AtomicUsize::new(0),
            max_bytes,
            commands: AtomicU64::new(0),
            wakes: AtomicU64::new(0),
        });
        (shared, receiver)
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Queues a command carrying `bytes` without waiting, or gives it back
    /// with the reason (`Ok(Some(_))` never happens: `Err((_, None))` means
    /// it was queued but the loop could not be woken).
    ///
    /// One command larger than the byte bound is taken when no bytes are
    /// queued: the bound limits the backlog, and a lone large send must not
    /// be refused forever.
    pub(crate) fn try_push(&self, command: C, bytes: usize) -> Result<(), (Refused, Option<C>)> {
        if !self.is_alive() {
            return Err((Refused::Gone, Some(command)));
        }
        if bytes > 0 {
            let before = self.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
            if before > 0 && before + bytes > self.max_bytes {
                self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
                return Err((Refused::Full, Some(command)));
            }
        }
        if let Err(e) = self.sender.try_send((command, bytes)) {
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
            return Err(match e {
                mpsc::TrySendError::Full((command, _)) => (Refused::Full, Some(command)),
                mpsc::TrySendError::Disconnected((command, _)) => (Refused::Gone, Some(command)),
            });
        }
        self.queued().map_err(|refused| (refused, None))
    }

    /// Queues a command that carries no bytes the bound counts, waiting for
    /// room among the commands: for worker threads, whose results must not
    /// be lost, and which may wait where the loop may not.
    pub(crate) fn push_waiting(&self, command: C) -> Result<(), Refused> {
        if !self.is_alive() {
            return Err(Refused::Gone);
        }
        self.sender.send((command, 0)).map_err(|_| Refused::Gone)?;
        self.queued()
    }

    /// Counts a queued command and wakes the loop unless a wake-up is due.
    fn queued(&self) -> Result<(), Refused> {
        self.commands.fetch_add(1, Ordering::Relaxed);
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            self.wakes.fetch_add(1, Ordering::Relaxed);
            self.waker.wake().map_err(|_| Refused::Gone)?;
        }
        Ok(())
    }

    /// The loop took a command that carried `bytes`.
    pub(crate) fn taken(&self, bytes: usize) {
        if bytes > 0 {
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        }
    }

    /// Bytes queued and not yet taken by the loop.
    #[cfg(test)]
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Acquire)
    }

    /// Wakes the loop without a command (it left some for the next turn).
    pub(crate) fn push_wake(&self) -> std::io::Result<()> {
        self.wake_pending.store(true, Ordering::Release);
        self.waker.wake()
    }

    /// Called by the loop before it drains the channel: a command queued from
    /// now on needs a new wake-up.
    pub(crate) fn clear_pending(&self) {
        self.wake_pending.store(false, Ordering::Release);
    }

    pub(crate) fn close(&self) {
        self.alive.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(
        capacity: usize,
        max_bytes: usize,
    ) -> (Arc<Shared<u32>>, mpsc::Receiver<(u32, usize)>) {
        Shared::new(Waker::new().unwrap(), capacity, max_bytes)
    }

    #[test]
    fn the_byte_bound_refuses_what_would_pass_it_and_frees_what_the_loop_takes() {
        let (shared, receiver) = queue(100, 1000);
        shared.try_push(1, 600).unwrap();
        // 600 + 500 > 1000: refused, given back, and not counted.
        assert_eq!(
            shared.try_push(2, 500).unwrap_err(),
            (Refused::Full, Some(2))
        );
        assert_eq!(shared.queued_bytes(), 600);
        shared.try_push(3, 400).unwrap();
        assert_eq!(shared.queued_bytes(), 1000, "exactly the bound is allowed");
        assert_eq!(shared.try_push(4, 1).unwrap_err().0, Refused::Full);
        // Commands without bytes are bounded by count only.
        shared.try_push(5, 0).unwrap();
        let (command, bytes) = receiver.try_recv().unwrap();
        assert_eq!((command, bytes), (1, 600));
        shared.taken(bytes);
        assert_eq!(shared.queued_bytes(), 400);
        shared.try_push(6, 600).unwrap();
    }

    #[test]
    fn one_command_over_the_bound_goes_through_an_empty_queue() {
        let (shared, receiver) = queue(100, 1000);
        shared.try_push(1, 5000).unwrap();
        assert_eq!(shared.try_push(2, 1).unwrap_err().0, Refused::Full);
        let (_, bytes) = receiver.try_recv().unwrap();
        shared.taken(bytes);
        assert_eq!(shared.queued_bytes(), 0);
        shared.try_push(3, 1).unwrap();
    }

    #[test]
    fn the_count_bound_holds_and_a_refused_command_frees_its_bytes() {
        let (shared, _receiver) = queue(2, 1000);
        shared.try_push(1, 10).unwrap();
        shared.try_push(2, 10).unwrap();
        assert_eq!(
            shared.try_push(3, 10).unwrap_err(),
            (Refused::Full, Some(3))
        );
        assert_eq!(shared.queued_bytes(), 20);
        shared.close();
        assert_eq!(shared.try_push(4, 0).unwrap_err(), (Refused::Gone, Some(4)));
        assert_eq!(shared.push_waiting(5).unwrap_err(), Refused::Gone);
    }
}
