//! Ctrl-C, Ctrl-Break and the console closing, on Windows: what Unix
//! delivers as SIGINT and SIGTERM.
//!
//! Windows calls a console control handler on a thread of its own, so
//! the handler may do what a Unix signal handler may not (lock, send);
//! it has no argument of ours, so what it serves is a process-wide list.
//! Each [`SignalPipe`](super::SignalPipe) that catches an event adds its
//! flag and the sending end of its wake-up to the list; the handler sets
//! the flags of the event that came and sends a byte on each wire.

use std::io;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};

use windows_sys::core::BOOL;
use windows_sys::Win32::System::Console::{
    SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_C_EVENT, CTRL_SHUTDOWN_EVENT,
};

use super::Signal;

/// One pipe's interest in one event.
struct Listener {
    id: u64,
    signal: Signal,
    flag: Arc<AtomicBool>,
    wire: UdpSocket,
}

static LISTENERS: Mutex<Vec<Listener>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();

/// A listener on the list until dropped.
#[derive(Debug)]
pub(crate) struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        let mut listeners = LISTENERS.lock().unwrap_or_else(|e| e.into_inner());
        listeners.retain(|listener| listener.id != self.0);
    }
}

/// Sets `flag` and sends a byte on `wire` whenever `signal` comes:
/// [`Signal::Interrupt`] is Ctrl-C; [`Signal::Terminate`] is Ctrl-Break,
/// the console window closing, or the system shutting down. The others
/// have no Windows counterpart: `Unsupported`.
pub(crate) fn register(
    signal: Signal,
    flag: Arc<AtomicBool>,
    wire: UdpSocket,
) -> io::Result<Registration> {
    if !matches!(signal, Signal::Interrupt | Signal::Terminate) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{signal:?} has no Windows counterpart (only Ctrl-C and Ctrl-Break, as Interrupt and Terminate)"),
        ));
    }
    wire.set_nonblocking(true)?;
    let mut installed = Ok(());
    INSTALL.call_once(|| {
        // SAFETY: `on_console_event` is a plain function that lives as
        // long as the process and touches only the list's lock, atomics
        // and sockets.
        if unsafe { SetConsoleCtrlHandler(Some(on_console_event), 1) } == 0 {
            installed = Err(io::Error::last_os_error());
        }
    });
    installed?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut listeners = LISTENERS.lock().unwrap_or_else(|e| e.into_inner());
    listeners.push(Listener {
        id,
        signal,
        flag,
        wire,
    });
    Ok(Registration(id))
}

/// The console's handler: whether some loop took the event (else the
/// next handler runs, by default the one that ends the process).
unsafe extern "system" fn on_console_event(event: u32) -> BOOL {
    let signal = match event {
        CTRL_C_EVENT => Signal::Interrupt,
        CTRL_BREAK_EVENT | CTRL_CLOSE_EVENT | CTRL_SHUTDOWN_EVENT => Signal::Terminate,
        _ => return 0,
    };
    let listeners = LISTENERS.lock().unwrap_or_else(|e| e.into_inner());
    let mut heard = false;
    for listener in listeners.iter().filter(|l| l.signal == signal) {
        // The flag first, so that the byte that wakes the loop finds it.
        listener.flag.store(true, Ordering::Release);
        let _ = listener.wire.send(&[1]);
        heard = true;
    }
    BOOL::from(heard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::SignalPipe;

    /// Ctrl-C (or Ctrl-Break) as Windows sends it to every process on
    /// this console: through the handler, on a thread of its own. A
    /// process without a console (a test run whose output is piped, as
    /// under Wine in CI) cannot be sent one: the handler is then called as
    /// Windows would call it, on a thread, and must say it took the event.
    fn send_console_event(event: u32) {
        use windows_sys::Win32::System::Console::GenerateConsoleCtrlEvent;
        // SAFETY: no pointers; group 0 is this process's console.
        if unsafe { GenerateConsoleCtrlEvent(event, 0) } != 0 {
            return;
        }
        // SAFETY: the handler takes an event code and touches only the
        // list's lock, atomics and sockets.
        let taken = std::thread::spawn(move || unsafe { on_console_event(event) });
        assert_eq!(taken.join().unwrap(), 1, "the handler took event {event}");
    }

    fn wait_for(pipe: &mut SignalPipe, signal: Signal) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut came = Vec::new();
        while !came.contains(&signal) {
            assert!(
                std::time::Instant::now() < deadline,
                "{signal:?} never came: {came:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
            pipe.take(&mut came);
        }
    }

    /// Ctrl-C and Ctrl-Break reach the pipes that catch them, as the
    /// signals they stand for; one dropped hears nothing more.
    #[test]
    fn ctrl_c_and_ctrl_break_arrive_as_interrupt_and_terminate() {
        let mut pipe = SignalPipe::new().unwrap();
        pipe.add(Signal::Interrupt).unwrap();
        pipe.add(Signal::Terminate).unwrap();
        send_console_event(CTRL_C_EVENT);
        wait_for(&mut pipe, Signal::Interrupt);
        send_console_event(CTRL_BREAK_EVENT);
        wait_for(&mut pipe, Signal::Terminate);
        drop(pipe);
        let listeners = LISTENERS.lock().unwrap();
        assert!(
            listeners.iter().all(|l| l.signal != Signal::Interrupt),
            "dropped pipes leave the list"
        );
    }

    #[test]
    fn signals_windows_lacks_are_refused() {
        let mut pipe = SignalPipe::new().unwrap();
        for signal in [Signal::Hangup, Signal::User1, Signal::User2] {
            let refused = pipe.add(signal).unwrap_err();
            assert_eq!(refused.kind(), io::ErrorKind::Unsupported, "{signal:?}");
        }
    }
}
