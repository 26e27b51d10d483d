//! The ring itself: how it is set up, how the loop enters it (submit
//! and wait in one system call), and what an entry's `user_data` says:
//! its kind, its descriptor and the generation it was made under.

use std::io;
use std::os::unix::io::RawFd;
use std::time::{Duration, Instant};

use io_uring::{squeue, types, IoUring};

/// Submission entries in the ring; the completion ring is four times as
/// large, since one armed poll may complete many times before it is read.
const RING_ENTRIES: u32 = 1024;

/// The `user_data` of a `POLL_REMOVE` or an `ASYNC_CANCEL`: its own
/// completion says nothing about any descriptor. No other entry has all
/// its bits set: that would take an accept on descriptor 2^30 - 1 under
/// generation `u32::MAX`, which the listeners never give (see
/// [`user_data`]).
pub(super) const CANCEL: u64 = u64::MAX;

/// What an entry is, in the top two bits of its `user_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Poll = 0,
    Receive = 1,
    Send = 2,
    Accept = 3,
}

/// Descriptors are kept in 30 bits of a `user_data` (Linux's limit on
/// open files is 2^20 by default, and below 2^30 always).
const FD_BITS: u64 = (1 << 30) - 1;

/// The ring, with its completion work run cooperatively where the kernel
/// allows it (5.19 and later): without that, every completion of a
/// multishot poll interrupts the loop thread at once to run the kernel's
/// completion work, which doubled the server CPU per message of an echo
/// server at 50 connections (14.3 µs against epoll's 7.1). With it, the
/// work waits for the loop's next system call, and the cost is within a
/// few percent of epoll's. (Deferring the work to the loop's own waits,
/// `DEFER_TASKRUN`, measured the same, but then a poll's removal holds
/// its socket open until the next wait, and the ring's descriptor no
/// longer wakes a foreign loop.)
pub(super) fn new_ring() -> io::Result<IoUring> {
    let cooperative = IoUring::builder()
        .setup_cqsize(RING_ENTRIES * 4)
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .build(RING_ENTRIES);
    match cooperative {
        // An older kernel: the plain ring.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => IoUring::builder()
            .setup_cqsize(RING_ENTRIES * 4)
            .build(RING_ENTRIES),
        other => other,
    }
}

/// Submits what is queued in `ring` and waits up to `timeout` for a
/// completion.
pub(super) fn enter(ring: &mut IoUring, timeout: Option<Duration>) -> io::Result<()> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut remaining = timeout;
    loop {
        let result = match remaining {
            Some(t) if t.is_zero() => {
                // Completions are read from shared memory: a wait of
                // zero needs the kernel only to take what was queued,
                // or to run the completion work that waits for us.
                let queue = ring.submission();
                if queue.is_empty() && !queue.taskrun() {
                    return Ok(());
                }
                drop(queue);
                ring.submit().map(drop)
            }
            Some(t) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                ring.submitter().submit_with_args(1, &args).map(drop)
            }
            None => ring.submit_and_wait(1).map(drop),
        };
        match result {
            Ok(()) => return Ok(()),
            // The wait's time ran out.
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => return Ok(()),
            // The completion ring is full or the kernel is short of
            // memory for the moment: read what is there first.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                // A signal cut the wait short: wait again for what is
                // left of the caller's timeout.
                remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Hands the kernel what is queued, if anything (the crate's `submit`
/// enters the kernel even with nothing queued: a system call for nothing
/// on every connection closed).
pub(super) fn submit_queued(ring: &mut IoUring) -> io::Result<()> {
    if ring.submission().is_empty() {
        return Ok(());
    }
    ring.submit().map(drop)
}

/// Puts `entry` in `ring`'s submission queue, first submitting what is
/// there if it is full.
///
/// # Safety
///
/// Whatever memory `entry` points at stays valid, and unchanged where the
/// kernel reads it, until the entry's last completion is reaped.
pub(super) unsafe fn push_entry(ring: &mut IoUring, entry: &squeue::Entry) -> io::Result<()> {
    if ring.submission().is_full() {
        ring.submit()?;
    }
    // SAFETY: as the caller promises.
    unsafe { ring.submission().push(entry) }
        .map_err(|_| io::Error::other("the io_uring submission queue is full"))
}

/// An entry's `user_data`: what it is, the descriptor, and the generation
/// it was made under.
pub(super) fn user_data(kind: Kind, fd: RawFd, generation: u32) -> u64 {
    ((kind as u64) << 62) | ((u64::from(fd as u32) & FD_BITS) << 32) | u64::from(generation)
}

/// The kind, descriptor and generation [`user_data`] put in; `None` for
/// [`CANCEL`].
pub(super) fn decode(data: u64) -> Option<(Kind, RawFd, u32)> {
    if data == CANCEL {
        return None;
    }
    let kind = match data >> 62 {
        0 => Kind::Poll,
        1 => Kind::Receive,
        2 => Kind::Send,
        _ => Kind::Accept,
    };
    Some((kind, ((data >> 32) & FD_BITS) as RawFd, data as u32))
}
