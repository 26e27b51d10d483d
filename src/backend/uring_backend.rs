//! A backend on io_uring (Linux): readiness from multishot `POLL_ADD`
//! entries in a ring shared with the kernel, every change of interest and
//! the wait itself submitted together in one `io_uring_enter`.
//!
//! This is the readiness half of a completion driver: the loop still reads
//! and writes its sockets itself, as on epoll, but the waker, the timers
//! (the wait's timeout), the embedder's sources and every socket are on
//! the same ring, and a turn that registers a hundred new connections
//! makes one system call for them, not a hundred `epoll_ctl`.

use std::fmt;
use std::io;
use std::os::unix::io::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use crate::Interest;

use super::{readiness_from_poll, Backend, Readiness, Token};

/// Submission entries in the ring; the completion ring is four times as
/// large, since one armed poll may complete many times before it is read.
const RING_ENTRIES: u32 = 1024;

/// The `user_data` of a `POLL_REMOVE`: its own completion says nothing
/// about any descriptor (a poll's is its descriptor and generation, and
/// no descriptor is `u32::MAX`).
const REMOVAL: u64 = u64::MAX;

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
    ring: IoUring,
    /// By descriptor number.
    watched: Vec<Option<Watch>>,
    next_generation: u32,
    /// Polls made so far: tells this batch's reports from earlier ones.
    polls: u64,
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
            ring,
            watched: Vec::new(),
            next_generation: 0,
            polls: 0,
            capacity: capacity.max(1),
        })
    }

    /// Puts `entry` in the submission ring, first submitting what is there
    /// if it is full.
    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        if self.ring.submission().is_full() {
            self.ring.submit()?;
        }
        // SAFETY: the entries pushed here are POLL_ADD and POLL_REMOVE,
        // which point at no memory of ours: the kernel reads only the
        // descriptor, the mask and the user_data copied into the entry.
        unsafe { self.ring.submission().push(entry) }
            .map_err(|_| io::Error::other("the io_uring submission queue is full"))
    }

    /// Arms a multishot poll for `fd` under a new generation.
    fn arm(&mut self, fd: RawFd, interest: Interest) -> io::Result<u32> {
        self.next_generation = self.next_generation.wrapping_add(1);
        let generation = self.next_generation;
        let entry = opcode::PollAdd::new(types::Fd(fd), poll_mask(interest))
            .multi(true)
            .build()
            .user_data(user_data(fd, generation));
        self.push(&entry)?;
        Ok(generation)
    }

    /// Asks the kernel to drop the poll armed for `fd` under `generation`.
    fn disarm(&mut self, fd: RawFd, generation: u32) -> io::Result<()> {
        let entry = opcode::PollRemove::new(user_data(fd, generation))
            .build()
            .user_data(REMOVAL);
        self.push(&entry)
    }

    fn slot(&mut self, fd: RawFd) -> io::Result<&mut Option<Watch>> {
        let at = usize::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        if at >= self.watched.len() {
            self.watched.resize(at + 1, None);
        }
        Ok(&mut self.watched[at])
    }

    /// Submits what is queued and waits up to `timeout` for a completion.
    fn enter(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut remaining = timeout;
        loop {
            let result = match remaining {
                Some(t) if t.is_zero() => {
                    // Completions are read from shared memory: a wait of
                    // zero needs the kernel only to take what was queued,
                    // or to run the completion work that waits for us.
                    let queue = self.ring.submission();
                    if queue.is_empty() && !queue.taskrun() {
                        return Ok(());
                    }
                    drop(queue);
                    self.ring.submit().map(drop)
                }
                Some(t) => {
                    let ts = types::Timespec::from(t);
                    let args = types::SubmitArgs::new().timespec(&ts);
                    self.ring.submitter().submit_with_args(1, &args).map(drop)
                }
                None => self.ring.submit_and_wait(1).map(drop),
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

/// A poll entry's `user_data`: the descriptor and the generation it was
/// armed under.
fn user_data(fd: RawFd, generation: u32) -> u64 {
    (u64::from(fd as u32) << 32) | u64::from(generation)
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
        let Some(watch) = self.slot(fd)?.take() else {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        };
        self.disarm(fd, watch.generation)?;
        // Submitted now: an armed poll holds the socket's file open, so the
        // close that follows would not end the connection (no FIN) until
        // the removal reached the kernel. A removal runs as it is
        // submitted.
        self.ring.submit()?;
        Ok(())
    }

    fn raw_fd(&self) -> Option<RawFd> {
        Some(self.ring.as_raw_fd())
    }

    fn has_unsubmitted(&mut self) -> bool {
        !self.ring.submission().is_empty()
    }

    fn poll(&mut self, events: &mut Vec<Readiness>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        // Completions left by a full batch are read before anything waits.
        let waiting = !self.ring.completion().is_empty();
        self.enter(if waiting {
            Some(Duration::ZERO)
        } else {
            timeout
        })?;
        self.polls += 1;
        let batch = self.polls;
        let mut rearm = Vec::new();
        let mut completions = self.ring.completion();
        while events.len() < self.capacity {
            let Some(cqe) = completions.next() else { break };
            let data = cqe.user_data();
            if data == REMOVAL {
                continue;
            }
            let fd = (data >> 32) as RawFd;
            let generation = data as u32;
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
                events[watch.at].merge(&report);
            } else if report != Readiness::none(watch.token) {
                watch.reported_in = batch;
                watch.at = events.len();
                events.push(report);
            }
        }
        drop(completions);
        for (fd, interest) in rearm {
            let generation = self.arm(fd, interest)?;
            if let Some(Some(watch)) = self.watched.get_mut(fd as usize) {
                watch.generation = generation;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    fn backend() -> UringBackend {
        UringBackend::new(64).expect("io_uring on this kernel")
    }

    /// A socket pair, and a backend watching the first socket under
    /// `token` for `interest`, its poll armed.
    fn watching(token: Token, interest: Interest) -> (UnixStream, UnixStream, UringBackend) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let mut backend = backend();
        backend.add(ours.as_raw_fd(), token, interest).unwrap();
        poll_now(&mut backend);
        (ours, theirs, backend)
    }

    fn poll_now(backend: &mut UringBackend) -> Vec<Readiness> {
        let mut events = Vec::new();
        backend
            .poll(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        events
    }

    #[test]
    fn a_poll_reports_each_wake_up_once_and_stays_armed() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut backend = backend();
        backend
            .add(ours.as_raw_fd(), Token(7), Interest::READABLE)
            .unwrap();
        assert!(backend.has_unsubmitted(), "queued until the next poll");
        assert!(poll_now(&mut backend).is_empty());
        assert!(!backend.has_unsubmitted());
        theirs.write_all(b"x").unwrap();
        let events = poll_now(&mut backend);
        assert_eq!(events, vec![Readiness::readable(Token(7))]);
        // Edge-like: unread data is not reported again...
        assert!(poll_now(&mut backend).is_empty());
        (&ours).read_exact(&mut [0u8; 1]).unwrap();
        // ...but the next arrival is, without arming anything again.
        theirs.write_all(b"yz").unwrap();
        assert_eq!(poll_now(&mut backend), vec![Readiness::readable(Token(7))]);
    }

    #[test]
    fn wake_ups_of_one_descriptor_in_one_batch_make_one_report() {
        let (_ours, mut theirs, mut backend) = watching(Token(1), Interest::READABLE);
        for _ in 0..3 {
            theirs.write_all(b"x").unwrap();
        }
        drop(theirs);
        let events = poll_now(&mut backend);
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(events[0].readable && events[0].read_closed);
    }

    #[test]
    fn a_changed_interest_reports_under_the_new_token_and_not_the_old_poll() {
        let (ours, theirs, mut backend) = watching(Token(1), Interest::READABLE);
        backend
            .modify(ours.as_raw_fd(), Token(2), Interest::WRITABLE)
            .unwrap();
        // Writable at once: the new poll looks when it is armed.
        let events = poll_now(&mut backend);
        assert_eq!(events, vec![Readiness::writable(Token(2))]);
        (&theirs).write_all(b"x").unwrap();
        assert!(
            poll_now(&mut backend).iter().all(|e| !e.readable),
            "the old poll was removed"
        );
    }

    #[test]
    fn a_deleted_descriptor_is_not_reported() {
        let (ours, theirs, mut backend) = watching(Token(3), Interest::READABLE);
        backend.delete(ours.as_raw_fd()).unwrap();
        let again = backend.delete(ours.as_raw_fd());
        assert!(again.is_err(), "not watched any more");
        (&theirs).write_all(b"x").unwrap();
        assert!(poll_now(&mut backend).is_empty());
    }

    #[test]
    fn a_deleted_socket_closes_when_it_is_closed_not_when_the_ring_next_enters() {
        let (ours, mut theirs, mut backend) = watching(Token(3), Interest::READABLE);
        backend.delete(ours.as_raw_fd()).unwrap();
        // No poll in between: the removal went to the kernel with the
        // delete, so the armed poll no longer holds the socket open.
        drop(ours);
        theirs
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(theirs.read(&mut [0u8; 1]).unwrap(), 0, "end of stream");
        drop(backend);
    }

    #[test]
    fn a_full_batch_leaves_the_rest_for_the_next_poll() {
        let pairs: Vec<_> = (0..5).map(|_| UnixStream::pair().unwrap()).collect();
        let mut backend = UringBackend::new(2).unwrap();
        for (i, (ours, _)) in pairs.iter().enumerate() {
            backend
                .add(ours.as_raw_fd(), Token(i), Interest::READABLE)
                .unwrap();
        }
        poll_now(&mut backend);
        for (_, theirs) in &pairs {
            (&*theirs).write_all(b"x").unwrap();
        }
        let mut seen = Vec::new();
        for _ in 0..3 {
            let events = poll_now(&mut backend);
            assert!(events.len() <= 2);
            seen.extend(events.iter().map(|e| e.token.0));
        }
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn it_is_named_and_its_ring_is_pollable() {
        let (_ours, mut theirs, mut backend) = watching(Token(1), Interest::READABLE);
        assert_eq!(backend.name(), "uring");
        let ring = backend.raw_fd().expect("the ring's descriptor");
        let readable = |fd| {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for the length given.
            unsafe { libc::poll(&mut pfd, 1, 1000) == 1 }
        };
        theirs.write_all(b"x").unwrap();
        assert!(readable(ring), "a completion waits in the ring");
        poll_now(&mut backend);
    }

    #[test]
    fn a_change_of_token_alone_arms_nothing() {
        let (ours, _theirs, mut backend) = watching(Token(1), Interest::READABLE);
        let fd = ours.as_raw_fd();
        backend.modify(fd, Token(2), Interest::WRITABLE).unwrap();
        assert!(backend.has_unsubmitted(), "a new poll for a new interest");
        assert_eq!(poll_now(&mut backend), vec![Readiness::writable(Token(2))]);
        backend.modify(fd, Token(3), Interest::WRITABLE).unwrap();
        assert!(!backend.has_unsubmitted(), "the armed poll still fits");
    }

    #[test]
    fn a_poll_that_fails_reports_an_error_for_the_loop_to_meet() {
        // A descriptor number nothing has open: the highest one allowed.
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit, which `limit` is.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        let unused = (limit.rlim_cur.min(65_536) - 1) as RawFd;
        let mut backend = backend();
        backend.add(unused, Token(9), Interest::READABLE).unwrap();
        let events = poll_now(&mut backend);
        assert_eq!(events.len(), 1, "{events:?}");
        let report = events[0];
        assert!(
            report.error && report.readable && report.writable,
            "{report:?}"
        );
        backend.delete(unused).unwrap();
    }

    #[test]
    fn a_signal_during_the_wait_does_not_end_it() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        // A handler, so that the signal interrupts the system call rather
        // than being ignored; SIGURG, which nothing else here uses.
        let caught = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(libc::SIGURG, caught.clone()).unwrap();
        let mut backend = backend();
        // SAFETY: pthread_self names this thread, alive until the join.
        let waiting = unsafe { libc::pthread_self() };
        let signaller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            // SAFETY: the thread is alive: the wait below lasts 150 ms.
            unsafe { libc::pthread_kill(waiting, libc::SIGURG) };
        });
        let started = Instant::now();
        let mut events = Vec::new();
        backend
            .poll(&mut events, Some(Duration::from_millis(150)))
            .unwrap();
        signaller.join().unwrap();
        assert!(caught.load(Ordering::SeqCst), "the signal came");
        assert!(events.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(150), "waited on");
    }

    #[test]
    fn a_wait_ends_at_its_timeout() {
        let mut backend = backend();
        let started = Instant::now();
        let mut events = Vec::new();
        backend
            .poll(&mut events, Some(Duration::from_millis(30)))
            .unwrap();
        assert!(events.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(30));
    }
}
