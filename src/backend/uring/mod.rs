//! A backend on io_uring (Linux): every descriptor's news, and the bytes
//! of the connections, through one ring shared with the kernel, with a
//! turn's entries and the wait itself submitted together in one
//! `io_uring_enter`.
//!
//! Two halves. **Readiness** (this file): a multishot `POLL_ADD` per
//! descriptor the loop does not hand to the ring (listeners, the waker,
//! the embedder's sources, the connections it opens itself, which start
//! by waiting for WRITABLE), reported as epoll would. **Completion** ([`table`], [`driver`], [`ring_stream`]):
//! connections whose reads and
//! writes the ring itself performs, from buffers the kernel picks
//! ([`buffers`]); the loop reads and writes them as it would any socket,
//! and pays no system call for it. [`UringBackend::new`] builds the
//! readiness half alone; [`BackendKind::Uring`](super::BackendKind::Uring)
//! builds both.

use std::fmt;
use std::io;
use std::os::unix::io::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use crate::Interest;

mod buffers;
mod driver;
mod ring_stream;
mod table;

use buffers::BufferRing;
use driver::Driver;
pub(crate) use driver::Streams;
pub(crate) use ring_stream::RingStream;

use super::{readiness_from_poll, Backend, Readiness, Token};

/// Submission entries in the ring; the completion ring is four times as
/// large, since one armed poll may complete many times before it is read.
const RING_ENTRIES: u32 = 1024;

/// The `user_data` of a `POLL_REMOVE` or an `ASYNC_CANCEL`: its own
/// completion says nothing about any descriptor (no entry of another kind
/// has all bits set: see [`user_data`]).
pub(super) const CANCEL: u64 = u64::MAX;

/// What an entry is, in the top two bits of its `user_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Poll = 0,
    Receive = 1,
    Send = 2,
}

/// Descriptors are kept in 30 bits of a `user_data` (Linux's limit on
/// open files is 2^20 by default, and below 2^30 always).
const FD_BITS: u64 = (1 << 30) - 1;

/// What one descriptor is watched for, and the generation of the poll
/// entry armed for it: a completion of an earlier entry (one changed or
/// removed since) carries an older generation and is dropped.
#[derive(Clone, Copy, Debug)]
struct Watch {
    token: Token,
    interest: Interest,
    generation: u32,
    /// The last poll whose batch reported it, and where: a second
    /// completion for it in the same batch is merged into that entry.
    reported_in: u64,
    at: usize,
}

/// [`Backend`] over io_uring: one multishot poll entry per watched
/// descriptor, armed once and reporting every wake-up until removed.
///
/// The reports are edge-like (one completion per wake-up of the socket,
/// as epoll's `EPOLLET`), so the loop reads until `WouldBlock` as it does
/// on epoll. Built with [`UringBackend::new`], or by
/// [`BackendKind::Uring`](super::BackendKind::Uring), which falls back to
/// epoll, with one log line, where io_uring cannot be had.
pub struct UringBackend {
    /// The ring, and the connections served by completions (none unless
    /// built by `with_streams`).
    driver: Streams,
    /// By descriptor number.
    watched: Vec<Option<Watch>>,
    next_generation: u32,
    /// Batches handed to the loop so far: tells the next batch's
    /// reports from earlier ones.
    batches: u64,
    /// The next batch, filled from the completions (by `poll`, or by a
    /// `submit` that reads what its sends left).
    ready: Vec<Readiness>,
    capacity: usize,
}

impl UringBackend {
    /// A ring that reports at most `capacity` descriptors per poll.
    ///
    /// # Errors
    ///
    /// io_uring is not available: the kernel is older than 5.13 (no
    /// multishot poll, no timeout on the wait), or `io_uring_setup` was
    /// refused (`kernel.io_uring_disabled`, a seccomp filter, the memory
    /// lock limit).
    pub fn new(capacity: usize) -> io::Result<UringBackend> {
        let ring = new_ring()?;
        let params = ring.params();
        // EXT_ARG (5.11) carries the wait's timeout; RSRC_TAGS came with
        // 5.13, the release that added multishot poll, which has no
        // feature flag of its own.
        if !params.is_feature_ext_arg() || !params.is_feature_resource_tagging() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the kernel's io_uring has no multishot poll (5.13 or later is needed)",
            ));
        }
        Ok(UringBackend {
            driver: Streams::new(ring),
            watched: Vec::new(),
            next_generation: 0,
            batches: 1,
            ready: Vec::new(),
            capacity: capacity.max(1),
        })
    }

    /// Both halves: readiness, and connections served by completions
    /// (the [`Streams`] handed back, through which the loop adopts them).
    /// Where the kernel has no provided-buffer rings (before 5.19) the
    /// readiness half alone is built, and one log line says so.
    ///
    /// # Errors
    ///
    /// As [`new`](UringBackend::new).
    pub(crate) fn with_streams(capacity: usize) -> io::Result<(UringBackend, Option<Streams>)> {
        UringBackend::with_streams_and_buffers(capacity, buffers::COUNT)
    }

    /// As [`with_streams`](UringBackend::with_streams), with `buffers`
    /// receive buffers (a power of two): few, to run the ring dry in a
    /// test.
    pub(super) fn with_streams_and_buffers(
        capacity: usize,
        buffers: u16,
    ) -> io::Result<(UringBackend, Option<Streams>)> {
        let backend = UringBackend::new(capacity)?;
        let mut driver = backend.driver.driver();
        match BufferRing::register(&driver.ring, buffers) {
            Ok(buffers) => {
                driver.buffers = Some(buffers);
                drop(driver);
                let streams = backend.driver.clone();
                Ok((backend, Some(streams)))
            }
            Err(e) => {
                drop(driver);
                warn!(
                    "io_uring has no provided buffers ({e}): connections are polled, as on epoll"
                );
                Ok((backend, None))
            }
        }
    }

    /// Puts `entry` in the submission ring, first submitting what is there
    /// if it is full.
    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        // SAFETY: the entries pushed here are POLL_ADD and POLL_REMOVE,
        // which point at no memory of ours: the kernel reads only the
        // descriptor, the mask and the user_data copied into the entry.
        unsafe { push_entry(&mut self.driver.driver().ring, entry) }
    }

    /// Arms a multishot poll for `fd` under a new generation.
    fn arm(&mut self, fd: RawFd, interest: Interest) -> io::Result<u32> {
        self.next_generation = self.next_generation.wrapping_add(1);
        let generation = self.next_generation;
        let entry = opcode::PollAdd::new(types::Fd(fd), poll_mask(interest))
            .multi(true)
            .build()
            .user_data(user_data(Kind::Poll, fd, generation));
        self.push(&entry)?;
        Ok(generation)
    }

    /// Asks the kernel to drop the poll armed for `fd` under `generation`.
    fn disarm(&mut self, fd: RawFd, generation: u32) -> io::Result<()> {
        let entry = opcode::PollRemove::new(user_data(Kind::Poll, fd, generation))
            .build()
            .user_data(CANCEL);
        self.push(&entry)
    }

    fn slot(&mut self, fd: RawFd) -> io::Result<&mut Option<Watch>> {
        let at = usize::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        if at >= self.watched.len() {
            self.watched.resize(at + 1, None);
        }
        Ok(&mut self.watched[at])
    }
}

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
fn new_ring() -> io::Result<IoUring> {
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
    let kind = match data >> 62 {
        0 => Kind::Poll,
        1 => Kind::Receive,
        2 => Kind::Send,
        _ => return None,
    };
    Some((kind, ((data >> 32) & FD_BITS) as RawFd, data as u32))
}

/// The `poll(2)` events that stand for `interest`.
fn poll_mask(interest: Interest) -> u32 {
    let mut mask = 0;
    if interest.is_readable() {
        mask |= (libc::POLLIN | libc::POLLPRI | libc::POLLRDHUP) as u32;
    }
    if interest.is_writable() {
        mask |= libc::POLLOUT as u32;
    }
    mask
}

impl fmt::Debug for UringBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UringBackend")
            .field("watched", &self.watched.iter().flatten().count())
            .finish()
    }
}

impl Backend for UringBackend {
    fn name(&self) -> &'static str {
        "uring"
    }

    fn add(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        if self.serves(fd) {
            self.register_stream(fd, token, Some(interest));
            return Ok(());
        }
        if self.slot(fd)?.is_some() {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        let generation = self.arm(fd, interest)?;
        *self.slot(fd)? = Some(Watch {
            token,
            interest,
            generation,
            reported_in: 0,
            at: 0,
        });
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        if self.serves(fd) {
            self.register_stream(fd, token, Some(interest));
            return Ok(());
        }
        let Some(watch) = *self.slot(fd)? else {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        };
        let generation = if watch.interest == interest {
            watch.generation // the armed poll still asks the right thing
        } else {
            // A new poll, armed after the old one's removal in the same
            // submission: it looks at the socket as it is when armed, so
            // readiness that came in between is not lost.
            self.disarm(fd, watch.generation)?;
            self.arm(fd, interest)?
        };
        *self.slot(fd)? = Some(Watch {
            token,
            interest,
            generation,
            ..watch
        });
        Ok(())
    }

    fn delete(&mut self, fd: RawFd) -> io::Result<()> {
        if self.serves(fd) {
            let mut driver = self.driver.driver();
            driver.table.register(fd, Token(0), None);
            // Its receive is cancelled now: an armed receive, like an
            // armed poll, holds the socket open past its close.
            driver.push_entries()?;
            driver.ring.submit()?;
            return Ok(());
        }
        let Some(watch) = self.slot(fd)?.take() else {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        };
        self.disarm(fd, watch.generation)?;
        // Submitted now: an armed poll holds the socket's file open, so the
        // close that follows would not end the connection (no FIN) until
        // the removal reached the kernel. A removal runs as it is
        // submitted.
        self.driver.driver().ring.submit()?;
        Ok(())
    }

    fn raw_fd(&self) -> Option<RawFd> {
        Some(self.driver.driver().ring.as_raw_fd())
    }

    fn submit(&mut self) -> io::Result<()> {
        // A send that completes may leave more of its connection's bytes
        // to send: its completion is read (into the next batch) and the
        // rest submitted, a few rounds at most.
        for _ in 0..4 {
            {
                let mut driver = self.driver.driver();
                driver.push_entries()?;
                if driver.ring.submission().is_empty() {
                    break;
                }
                driver.ring.submit()?;
            }
            self.reap()?;
        }
        Ok(())
    }

    fn has_unsubmitted(&mut self) -> bool {
        let mut driver = self.driver.driver();
        let table = &driver.table;
        let news = !self.ready.is_empty() || table.has_reports();
        news || table.has_pending() || !driver.ring.submission().is_empty()
    }

    fn poll(&mut self, events: &mut Vec<Readiness>, timeout: Option<Duration>) -> io::Result<()> {
        if self.ready.is_empty() {
            let mut driver = self.driver.driver();
            driver.push_entries()?;
            // Completions left by a full batch, and news of connections,
            // are read before anything waits.
            let waiting = driver.table.has_reports() || !driver.ring.completion().is_empty();
            enter(
                &mut driver.ring,
                if waiting {
                    Some(Duration::ZERO)
                } else {
                    timeout
                },
            )?;
        }
        self.reap()?;
        self.driver
            .driver()
            .table
            .report(&mut self.ready, self.capacity);
        events.clear();
        if self.ready.len() <= self.capacity {
            std::mem::swap(events, &mut self.ready);
        } else {
            // A full batch: the rest is the start of the next one.
            events.extend(self.ready.drain(..self.capacity));
        }
        self.batches += 1;
        Ok(())
    }
}

impl UringBackend {
    /// Reads every completion waiting: polls' reports go to the next batch
    /// (`ready`), merged by descriptor; the connections' receives and
    /// sends go to their table, which reports what the loop is to hear.
    fn reap(&mut self) -> io::Result<()> {
        let batch = self.batches;
        let mut rearm = Vec::new();
        let mut driver = self.driver.driver();
        let Driver {
            ring,
            table,
            buffers,
        } = &mut *driver;
        let mut completions = ring.completion();
        for cqe in &mut completions {
            let Some((kind, fd, generation)) = decode(cqe.user_data()) else {
                continue; // a removal's or a cancellation's
            };
            match kind {
                Kind::Receive => {
                    if let Some(buffers) = buffers.as_mut() {
                        table.received(fd, generation, &cqe, buffers);
                    }
                    continue;
                }
                Kind::Send => {
                    table.sent(fd, generation, cqe.result());
                    continue;
                }
                Kind::Poll => {}
            }
            let Some(Some(watch)) = self.watched.get_mut(fd as usize) else {
                continue; // removed since
            };
            if watch.generation != generation {
                continue; // an entry changed or removed since
            }
            if !cqueue::more(cqe.flags()) {
                // The kernel ended the multishot poll (cancelled, or
                // short of memory): arm another, or the socket goes
                // unwatched.
                rearm.push((fd, watch.interest));
            }
            let result = cqe.result();
            let report = if result >= 0 {
                readiness_from_poll(watch.token, result as libc::c_short)
            } else {
                // The poll itself failed (a descriptor gone bad): let the
                // loop try the socket and meet the error there.
                Readiness {
                    readable: true,
                    writable: true,
                    error: true,
                    ..Readiness::none(watch.token)
                }
            };
            if watch.reported_in == batch {
                self.ready[watch.at].merge(&report);
            } else if report != Readiness::none(watch.token) {
                watch.reported_in = batch;
                watch.at = self.ready.len();
                self.ready.push(report);
            }
        }
        drop(completions);
        drop(driver);
        for (fd, interest) in rearm {
            let generation = self.arm(fd, interest)?;
            if let Some(Some(watch)) = self.watched.get_mut(fd as usize) {
                watch.generation = generation;
            }
        }
        Ok(())
    }

    /// Whether `fd` is a connection served by completions.
    fn serves(&self, fd: RawFd) -> bool {
        self.driver.driver().table.serves(fd)
    }

    fn register_stream(&mut self, fd: RawFd, token: Token, interest: Option<Interest>) {
        self.driver.driver().table.register(fd, token, interest);
    }
}

#[cfg(test)]
mod completion_tests;
#[cfg(test)]
mod tests;
