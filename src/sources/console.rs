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
