//! A backend on io_uring (Linux): every descriptor's news, and the bytes
//! of the connections, through one ring shared with the kernel ([`ring`]),
//! with a turn's entries and the wait itself submitted together in one
//! `io_uring_enter`.
//!
//! Two halves. **Readiness** (this file): a multishot `POLL_ADD` per
//! descriptor the loop does not hand to the ring (the waker, the
//! embedder's sources, the connections it opens itself until they have
//! connected), reported as epoll would. **Completion**
//! ([`table`], [`driver`], [`ring_stream`], [`listener`]): listeners whose
//! connections the ring accepts, and connections whose reads and writes
//! it performs, from buffers the kernel picks ([`buffers`]); the loop
//! accepts, reads and writes them as it would any socket, and pays no
//! system call for it. [`UringBackend::new`] builds the readiness half
//! alone; [`BackendKind::Uring`](super::BackendKind::Uring) builds both.

use std::fmt;
use std::io;
use std::os::unix::io::{AsRawFd, RawFd};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types};

use crate::Interest;

mod buffers;
mod driver;
mod listener;
mod ring;
mod ring_stream;
mod slot;
mod table;

use buffers::BufferRing;
use driver::Driver;
pub(crate) use driver::Streams;
pub(crate) use listener::{Next, RingListener};
use ring::{decode, enter, new_ring, push_entry, submit_queued, user_data, Kind, CANCEL};
pub(crate) use ring_stream::RingStream;

use super::{readiness_from_poll, Backend, Readiness, Token};

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
                driver.table.bundles = driver.ring.params().is_feature_recvsend_bundle();
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
        if self.accepts_on(fd) {
            self.driver.driver().accepts.register(fd, token);
            return self.watch_stopped_listeners();
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
        if self.accepts_on(fd) {
            self.driver.driver().accepts.register(fd, token);
            return self.watch_stopped_listeners();
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
            submit_queued(&mut driver.ring)?;
            return Ok(());
        }
        if self.accepts_on(fd) {
            self.driver.driver().accepts.deregister(fd);
            self.watch_stopped_listeners()?;
            let mut driver = self.driver.driver();
            // Its accept is cancelled now: an armed accept holds the
            // listening socket open past its close, and goes on accepting.
            driver.push_entries()?;
            submit_queued(&mut driver.ring)?;
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
        self.watch_stopped_listeners()?;
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
        let (table, accepts) = (&driver.table, &driver.accepts);
        let news = !self.ready.is_empty() || table.has_reports() || accepts.has_reports();
        let pending = table.has_pending() || accepts.has_pending();
        news || pending || !driver.ring.submission().is_empty()
    }

    fn poll(&mut self, events: &mut Vec<Readiness>, timeout: Option<Duration>) -> io::Result<()> {
        if self.ready.is_empty() {
            self.watch_stopped_listeners()?;
            let mut driver = self.driver.driver();
            let Driver { table, buffers, .. } = &mut *driver;
            if let Some(buffers) = buffers.as_mut() {
                table.spill_lent(buffers);
            }
            driver.push_entries()?;
            // Completions left by a full batch, and news of connections,
            // are read before anything waits.
            let waiting = driver.table.has_reports()
                || driver.accepts.has_reports()
                || !driver.ring.completion().is_empty();
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
        let mut driver = self.driver.driver();
        driver.accepts.report(&mut self.ready);
        driver.table.report(&mut self.ready, self.capacity);
        drop(driver);
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
            accepts,
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
                Kind::Accept => {
                    accepts.accepted(fd, generation, &cqe);
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

    /// Whether `fd` is a listener the ring accepts on.
    fn accepts_on(&self, fd: RawFd) -> bool {
        self.driver.driver().accepts.serves(fd)
    }

    /// Watches with a poll the listeners whose ring stopped accepting
    /// (the loop accepts on them by itself), and stops watching those
    /// whose ring accepts again or that the loop deregistered.
    fn watch_stopped_listeners(&mut self) -> io::Result<()> {
        if !self.driver.driver().accepts.has_pending() {
            return Ok(());
        }
        let changes = self.driver.driver().accepts.polls_to_change();
        for (fd, token, poll) in changes {
            let watched = self.slot(fd)?.take();
            if let Some(watch) = watched {
                self.disarm(fd, watch.generation)?;
            }
            if poll {
                let generation = self.arm(fd, Interest::READABLE)?;
                *self.slot(fd)? = Some(Watch {
                    token,
                    interest: Interest::READABLE,
                    generation,
                    reported_in: 0,
                    at: 0,
                });
            }
            self.driver.driver().accepts.set_polled(fd, poll);
        }
        Ok(())
    }

    fn register_stream(&mut self, fd: RawFd, token: Token, interest: Option<Interest>) {
        self.driver.driver().table.register(fd, token, interest);
    }
}

#[cfg(test)]
mod completion_tests;
#[cfg(test)]
mod tests;
