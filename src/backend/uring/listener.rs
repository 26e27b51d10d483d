//! Listeners whose connections the ring accepts: one multishot `ACCEPT`
//! armed on each listening socket, every completion a connected socket
//! queued for the loop's `accept`, which then costs no system call of its
//! own (nor does the socket's mode: the ring makes it blocking, as the
//! completion half wants it, and close-on-exec).
//!
//! - **Bounded.** The kernel's backlog bounds the connections waiting on
//!   a polled listener; the ring would accept without end while the loop
//!   is busy elsewhere, spending descriptors on connections nobody reads.
//!   So a listener holding [`QUEUED_MOST`] accepted sockets has its accept
//!   cancelled, and it is armed again once the loop has taken half: the
//!   rest wait in the kernel's backlog, as on epoll. (The bound is checked
//!   as completions are read: a burst already in the backlog when the
//!   accept is armed is taken whole, since the kernel accepts until the
//!   backlog is empty; a backlog's worth at most.)
//! - **Errors.** The kernel ends a multishot accept at its first error.
//!   One the loop would skip (the client gave up first) is skipped here
//!   too, and the accept armed again. Any other (out of descriptors, say)
//!   is queued after the sockets accepted before it and handed to the
//!   loop's `accept`, which pauses the listener or sheds connections, as
//!   on epoll. The ring then stops accepting on it: the kernel takes a
//!   descriptor before it looks for a connection, so an accept armed
//!   while descriptors are short fails at once, connection or not, and
//!   re-arming it would spin. Until the loop frees a descriptor (a
//!   connection closes) or registers the listener again (its pause
//!   ended), it is watched by a poll and `accept` is the plain system
//!   call, as on epoll, so shedding with the spare descriptor works as it
//!   does on every backend.
//! - **Paused and closed.** The loop deregisters a listener to pause it,
//!   and before it closes it: its accept is cancelled at once (an armed
//!   accept holds the listening socket open, so the port would go on
//!   accepting connections nobody takes). Sockets accepted before the
//!   cancellation took effect are queued all the same (they are clients
//!   the kernel has answered); those of a listener already gone are
//!   closed.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::io::RawFd;

use io_uring::{cqueue, opcode, squeue, types};

use super::driver::Streams;
use super::ring_stream::RingStream;
use super::slot::Receive;
use super::table::cancel;
use super::{user_data, Kind};
use crate::backend::{Readiness, Token};

/// Accepted sockets a listener may hold before its accept is cancelled:
/// the loop's default accept budget, one turn's worth.
pub(super) const QUEUED_MOST: usize = 256;

/// One listener the ring accepts on.
#[derive(Debug)]
pub(super) struct Listening {
    fd: RawFd,
    /// Whether its sockets are Unix domain ones (else TCP).
    unix: bool,
    /// The generation of its first accept: completions of its accepts
    /// carry this one or a later one, up to `generation`.
    born: u32,
    /// The generation of the accept last armed.
    generation: u32,
    token: Token,
    /// The loop watches it (registered, not paused).
    registered: bool,
    accept: Receive,
    /// Its accept ended with an error: the loop accepts by itself, on a
    /// poll's word, until a descriptor is freed or it registers the
    /// listener again.
    stopped: bool,
    /// The backend watches it with a poll (while it is stopped).
    polled: bool,
    /// Accepted sockets, and the error that ended an accept, in order.
    queue: VecDeque<Result<OwnedFd, i32>>,
    /// Something was queued since the loop last heard of it.
    news: bool,
}

impl Listening {
    /// Whether an accept should be in the kernel: more connections are
    /// wanted, and the queue has room (half of it, to arm one again).
    fn wants_accept(&self, queued_most: usize) -> bool {
        let room = match self.accept {
            Receive::Armed => queued_most,
            Receive::Idle | Receive::Cancelling => queued_most / 2,
        };
        self.registered && !self.stopped && self.queue.len() < room
    }

    /// Whether a completion made under `generation` is one of its accepts.
    fn made(&self, generation: u32) -> bool {
        generation.wrapping_sub(self.born) <= self.generation.wrapping_sub(self.born)
    }

    /// Whether it is to be watched by a poll: registered, and stopped.
    fn wants_poll(&self) -> bool {
        self.registered && self.stopped
    }

    /// Whether its accept is to be armed or cancelled at the next push.
    fn needs_push(&self, queued_most: usize) -> bool {
        let wants = self.wants_accept(queued_most);
        match self.accept {
            Receive::Armed => !wants,
            Receive::Idle | Receive::Cancelling => wants,
        }
    }
}

/// The listeners the ring accepts on (a server has few: a list).
#[derive(Debug)]
pub(super) struct Accepts {
    listening: Vec<Listening>,
    next_generation: u32,
    /// [`QUEUED_MOST`], or fewer in a test.
    pub(super) queued_most: usize,
}

impl Default for Accepts {
    fn default() -> Accepts {
        Accepts {
            listening: Vec::new(),
            next_generation: 0,
            queued_most: QUEUED_MOST,
        }
    }
}

impl Accepts {
    fn get_mut(&mut self, fd: RawFd) -> Option<&mut Listening> {
        self.listening.iter_mut().find(|l| l.fd == fd)
    }

    /// Accepted sockets waiting, on every listener.
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.listening.iter().map(|l| l.queue.len()).sum()
    }

    /// Whether `fd` is a listener the ring accepts on.
    pub(super) fn serves(&self, fd: RawFd) -> bool {
        self.listening.iter().any(|l| l.fd == fd)
    }

    fn generation(&mut self) -> u32 {
        // Never `u32::MAX`, so that no accept's user_data is `CANCEL`.
        self.next_generation = self.next_generation.wrapping_add(1) % u32::MAX;
        self.next_generation
    }

    /// The loop registers `fd` (after a pause too): its accept is armed
    /// with the next push, and what waits queued is reported.
    pub(super) fn register(&mut self, fd: RawFd, token: Token) {
        if let Some(listening) = self.get_mut(fd) {
            listening.token = token;
            listening.registered = true;
            listening.stopped = false;
            listening.news = !listening.queue.is_empty();
        }
    }

    /// The loop deregisters `fd` (a pause, or before it closes it): its
    /// accept is cancelled with the next push.
    pub(super) fn deregister(&mut self, fd: RawFd) {
        if let Some(listening) = self.get_mut(fd) {
            listening.registered = false;
        }
    }

    /// Whether an accept waits to be armed or cancelled, or a poll to be
    /// armed or removed.
    pub(super) fn has_pending(&self) -> bool {
        let queued_most = self.queued_most;
        self.listening
            .iter()
            .any(|l| l.needs_push(queued_most) || l.wants_poll() != l.polled)
    }

    /// The listeners whose poll is to be armed (`true`) or removed, with
    /// their tokens; the caller does it, then calls
    /// [`set_polled`](Accepts::set_polled).
    pub(super) fn polls_to_change(&self) -> Vec<(RawFd, Token, bool)> {
        let changed = self.listening.iter().filter(|l| l.wants_poll() != l.polled);
        changed.map(|l| (l.fd, l.token, l.wants_poll())).collect()
    }

    /// Whether the backend watches `fd` with a poll now.
    pub(super) fn set_polled(&mut self, fd: RawFd, polled: bool) {
        if let Some(listening) = self.get_mut(fd) {
            listening.polled = polled;
        }
    }

    /// Whether news waits for the loop that no completion will bring.
    pub(super) fn has_reports(&self) -> bool {
        self.listening.iter().any(|l| l.news && l.registered)
    }

    /// Arms or cancels the accepts that need it.
    pub(super) fn push_entries(
        &mut self,
        mut push: impl FnMut(&squeue::Entry) -> io::Result<()>,
    ) -> io::Result<()> {
        for at in 0..self.listening.len() {
            if !self.listening[at].needs_push(self.queued_most) {
                continue;
            }
            if self.listening[at].accept == Receive::Armed {
                let listening = &mut self.listening[at];
                push(&cancel(user_data(
                    Kind::Accept,
                    listening.fd,
                    listening.generation,
                )))?;
                listening.accept = Receive::Cancelling;
                continue;
            }
            let generation = self.generation();
            let listening = &mut self.listening[at];
            // Blocking sockets (no SOCK_NONBLOCK), as the ring serves them.
            let entry = opcode::AcceptMulti::new(types::Fd(listening.fd))
                .flags(libc::SOCK_CLOEXEC)
                .build()
                .user_data(user_data(Kind::Accept, listening.fd, generation));
            push(&entry)?;
            listening.generation = generation;
            listening.accept = Receive::Armed;
        }
        Ok(())
    }

    /// A completion of an accept: a socket, or the accept's end.
    pub(super) fn accepted(&mut self, fd: RawFd, generation: u32, cqe: &cqueue::Entry) {
        let result = cqe.result();
        let Some(listening) = self.get_mut(fd).filter(|l| l.made(generation)) else {
            if result >= 0 {
                // SAFETY: the kernel made this descriptor for this
                // completion; nothing else holds it. Its listener is gone.
                drop(unsafe { OwnedFd::from_raw_fd(result) });
            }
            return;
        };
        if result >= 0 {
            // SAFETY: as above; the queue owns it from now on.
            listening
                .queue
                .push_back(Ok(unsafe { OwnedFd::from_raw_fd(result) }));
            listening.news = true;
        }
        let current = generation == listening.generation;
        if cqueue::more(cqe.flags()) || !current {
            return;
        }
        listening.accept = Receive::Idle;
        if result < 0 && !skipped(-result) {
            listening.queue.push_back(Err(-result));
            listening.news = true;
            listening.stopped = true;
        }
    }

    /// Reports the listeners with news as readable.
    pub(super) fn report(&mut self, ready: &mut Vec<Readiness>) {
        for listening in &mut self.listening {
            if std::mem::take(&mut listening.news) && listening.registered {
                ready.push(Readiness::readable(listening.token));
            }
        }
    }
}

/// An accept's error the loop skips (the client gave up before it was
/// accepted, or a signal), or our own cancellation: the accept is armed
/// again, and the loop hears nothing.
fn skipped(errno: i32) -> bool {
    errno == libc::ECANCELED
        || crate::limits::is_transient_accept_error(&io::Error::from_raw_os_error(errno))
}

/// A listener whose connections the ring accepts, as the loop sees it:
/// made by [`Streams::listen`], forgotten (its queued sockets closed)
/// when dropped.
#[derive(Debug)]
pub(crate) struct RingListener {
    streams: Streams,
    fd: RawFd,
}

/// What [`RingListener::next`] found.
#[derive(Debug)]
pub(crate) enum Next {
    /// A connection the ring accepted, served by the ring.
    Stream(RingStream),
    /// The error that ended the ring's accept.
    Failed(io::Error),
    /// Nothing queued, and the ring is accepting: nothing to accept now.
    Nothing,
    /// Nothing queued, and the ring is not accepting (its accept failed):
    /// the caller accepts by itself.
    AcceptYourself,
}

impl Streams {
    /// Has the ring accept the connections of the listening socket `fd`
    /// (non-blocking; the caller keeps it open while the result lives).
    /// It accepts once the loop registers `fd` with the backend.
    pub(crate) fn listen(&self, fd: RawFd, unix: bool) -> RingListener {
        let mut driver = self.driver();
        let accepts = &mut driver.accepts;
        let born = accepts.generation();
        accepts.listening.push(Listening {
            fd,
            unix,
            born,
            generation: born,
            token: Token(0),
            registered: false,
            accept: Receive::Idle,
            stopped: false,
            polled: false,
            queue: VecDeque::new(),
            news: false,
        });
        RingListener {
            streams: self.clone(),
            fd,
        }
    }
}

impl RingListener {
    /// The next connection accepted, or why there is none.
    pub(crate) fn next(&self) -> Next {
        let mut driver = self.streams.driver();
        let Some(listening) = driver.accepts.get_mut(self.fd) else {
            return Next::Failed(io::Error::from_raw_os_error(libc::EBADF));
        };
        let unix = listening.unix;
        match listening.queue.pop_front() {
            Some(Ok(socket)) => {
                drop(driver);
                Next::Stream(self.streams.adopt_blocking(socket, unix))
            }
            Some(Err(errno)) => Next::Failed(io::Error::from_raw_os_error(errno)),
            None if listening.stopped => Next::AcceptYourself,
            None => Next::Nothing,
        }
    }

    /// The loop freed a descriptor: a ring stopped for want of them may
    /// accept again.
    pub(crate) fn descriptor_freed(&self) {
        if let Some(listening) = self.streams.driver().accepts.get_mut(self.fd) {
            listening.stopped = false;
        }
    }
}

impl Drop for RingListener {
    /// Forgets the listener: its queued sockets are closed, and an accept
    /// still in the kernel (the loop deregisters a listener before it
    /// closes it, which cancels it) has what it accepts closed on arrival.
    fn drop(&mut self) {
        let mut driver = self.streams.driver();
        let accepts = &mut driver.accepts;
        let Some(at) = accepts.listening.iter().position(|l| l.fd == self.fd) else {
            return;
        };
        let listening = accepts.listening.swap_remove(at);
        if listening.accept == Receive::Armed {
            let data = user_data(Kind::Accept, listening.fd, listening.generation);
            // SAFETY: a cancellation points at no memory.
            let _ = unsafe { super::push_entry(&mut driver.ring, &cancel(data)) };
            let _ = super::submit_queued(&mut driver.ring);
        }
    }
}
