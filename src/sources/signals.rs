//! Signals heard on the loop: the handlers `signal-hook` installs set a
//! flag and write a byte to a pipe (all a signal handler may safely do);
//! the loop watches the pipe's other end like any source and, when it is
//! readable, says which signals came.
//!
//! Windows has no such signals: its console's Ctrl-C, Ctrl-Break and
//! close events run a handler on a thread of their own
//! ([`console`](super::console)), which sets the same flags and sends the
//! same byte, over a loopback UDP socket (the only thing Windows polls).

use std::io;
#[cfg(unix)]
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::sys::RawSource;

/// The two ends of the wake-up: a socket pair on Unix, a UDP socket on
/// loopback and another connected to it on Windows.
#[cfg(unix)]
type Wire = std::os::unix::net::UnixStream;
#[cfg(windows)]
type Wire = std::net::UdpSocket;

#[cfg(unix)]
fn wire_pair() -> io::Result<(Wire, Wire)> {
    Wire::pair()
}

/// Two sockets, not one connected to itself as the waker's is: the reader
/// may block (a group's signal thread waits on it) while the writer, in
/// the console's handler, never must.
#[cfg(windows)]
fn wire_pair() -> io::Result<(Wire, Wire)> {
    let read = Wire::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
    let write = Wire::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
    write.connect(read.local_addr()?)?;
    read.connect(write.local_addr()?)?;
    Ok((read, write))
}

/// Reads what waits on `wire` into `bytes`.
fn read_wire(wire: &mut Wire, bytes: &mut [u8]) -> io::Result<usize> {
    #[cfg(unix)]
    {
        wire.read(bytes)
    }
    #[cfg(windows)]
    {
        wire.recv(bytes)
    }
}

/// What undoes one signal's registration when the pipe goes.
#[cfg(unix)]
type Registration = signal_hook::SigId;
#[cfg(windows)]
type Registration = super::console::Registration;

/// A signal the loop can hear ([`Reactor::catch_signals`](crate::Reactor::catch_signals)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// `SIGINT`: Ctrl-C. By default, a graceful shutdown.
    Interrupt,
    /// `SIGTERM`: what `kill` and service managers send. By default, a
    /// graceful shutdown.
    Terminate,
    /// `SIGHUP`: by custom, reload the configuration. Ignored by default.
    /// Unix only.
    Hangup,
    /// `SIGUSR1`. Ignored by default. Unix only.
    User1,
    /// `SIGUSR2`. Ignored by default. Unix only.
    User2,
}

impl Signal {
    /// The signal's number on this system (`libc::SIGTERM`, ...). Unix
    /// only: Windows's console events are not numbered signals.
    #[cfg(unix)]
    pub fn number(self) -> i32 {
        match self {
            Signal::Interrupt => libc::SIGINT,
            Signal::Terminate => libc::SIGTERM,
            Signal::Hangup => libc::SIGHUP,
            Signal::User1 => libc::SIGUSR1,
            Signal::User2 => libc::SIGUSR2,
        }
    }

    /// Whether it asks the process to stop (SIGINT, SIGTERM).
    pub fn is_stop(self) -> bool {
        matches!(self, Signal::Interrupt | Signal::Terminate)
    }
}

/// The pipe the signal handlers write to, and a flag per signal caught.
pub(crate) struct SignalPipe {
    read: Wire,
    write: Wire,
    caught: Vec<(Signal, Arc<AtomicBool>)>,
    registrations: Vec<Registration>,
}

impl std::fmt::Debug for SignalPipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let signals: Vec<Signal> = self.caught.iter().map(|(s, _)| *s).collect();
        f.debug_struct("SignalPipe")
            .field("signals", &signals)
            .finish()
    }
}

impl SignalPipe {
    pub(crate) fn new() -> io::Result<SignalPipe> {
        let (read, write) = wire_pair()?;
        read.set_nonblocking(true)?;
        // A full pipe must not block a signal handler: the byte is only a
        // wake-up, and the flag says what came.
        write.set_nonblocking(true)?;
        Ok(SignalPipe {
            read,
            write,
            caught: Vec::new(),
            registrations: Vec::new(),
        })
    }

    /// Catches `signal` from now on (again: nothing changes).
    pub(crate) fn add(&mut self, signal: Signal) -> io::Result<()> {
        if self.caught.iter().any(|(caught, _)| *caught == signal) {
            return Ok(());
        }
        let flag = Arc::new(AtomicBool::new(false));
        #[cfg(windows)]
        {
            let registration =
                super::console::register(signal, flag.clone(), self.write.try_clone()?)?;
            self.registrations.push(registration);
            self.caught.push((signal, flag));
            Ok(())
        }
        #[cfg(unix)]
        self.add_unix(signal, flag)
    }

    #[cfg(unix)]
    fn add_unix(&mut self, signal: Signal, flag: Arc<AtomicBool>) -> io::Result<()> {
        // The flag first: signal-hook runs a signal's actions in the order
        // they were registered, so the byte that wakes the loop always
        // finds the flag set.
        let raised = signal_hook::flag::register(signal.number(), flag.clone())?;
        let woken = match signal_hook::low_level::pipe::register(
            signal.number(),
            self.write.try_clone()?,
        ) {
            Ok(id) => id,
            Err(e) => {
                signal_hook::low_level::unregister(raised);
                return Err(e);
            }
        };
        self.registrations.extend([raised, woken]);
        self.caught.push((signal, flag));
        Ok(())
    }

    /// Reads the wake-ups, then adds each signal that came since the last
    /// call to `came` (once, however many times it came), in the order
    /// they were added.
    pub(crate) fn take(&mut self, came: &mut Vec<Signal>) {
        let mut bytes = [0u8; 64];
        while matches!(read_wire(&mut self.read, &mut bytes), Ok(n) if n > 0) {}
        for (signal, flag) in &self.caught {
            if flag.swap(false, Ordering::AcqRel) {
                came.push(*signal);
            }
        }
    }

    /// Makes reads block (for a thread that waits on nothing else).
    pub(crate) fn set_blocking(&self) -> io::Result<()> {
        self.read.set_nonblocking(false)
    }

    /// Waits for the next wake-up (after [`set_blocking`](SignalPipe::set_blocking)).
    pub(crate) fn wait(&mut self, came: &mut Vec<Signal>) -> io::Result<()> {
        let mut byte = [0u8; 1];
        loop {
            match read_wire(&mut self.read, &mut byte) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        for (signal, flag) in &self.caught {
            if flag.swap(false, Ordering::AcqRel) {
                came.push(*signal);
            }
        }
        Ok(())
    }
}

impl SignalPipe {
    /// The descriptor the loop watches.
    pub(crate) fn raw_source(&self) -> RawSource {
        crate::sys::raw_source(&self.read)
    }
}

impl Drop for SignalPipe {
    /// Takes its actions off the signals. signal-hook leaves its handler in
    /// place, doing nothing more for these: a signal that came after is
    /// not heard (nor does it kill the process).
    fn drop(&mut self) {
        #[cfg(unix)]
        for id in self.registrations.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        // Windows: each registration takes itself off the console's list.
        #[cfg(windows)]
        self.registrations.clear();
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A signal raised in this process sets its flag and wakes the pipe;
    /// each is reported once, however many times it came.
    #[test]
    fn a_raised_signal_is_taken_once() {
        let mut pipe = SignalPipe::new().unwrap();
        pipe.add(Signal::User2).unwrap();
        pipe.add(Signal::User2).unwrap();
        assert_eq!(pipe.registrations.len(), 2, "added once");
        let mut came = Vec::new();
        pipe.take(&mut came);
        assert!(came.is_empty());
        signal_hook::low_level::raise(libc::SIGUSR2).unwrap();
        signal_hook::low_level::raise(libc::SIGUSR2).unwrap();
        pipe.take(&mut came);
        assert_eq!(came, [Signal::User2]);
        came.clear();
        pipe.take(&mut came);
        assert!(came.is_empty(), "taken already");
    }
}
