//! A signal that interrupts the poll must not end the turn early or fail it.

use crate::util;

use util::BackendKind;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use selectloop::{Config, ConnId, Context, Reactor};

extern "C" fn ignore_signal(_: libc::c_int) {}

fn poll_interrupted_by_a_signal_waits_out_the_remaining_timeout(backend: BackendKind) {
    util::init_logger();
    // A handler (not SIG_IGN) so that epoll_wait really returns EINTR.
    // SAFETY: installs a handler that does nothing, for a signal nothing
    // else in this test binary uses.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
            0
        );
    }
    let (tid_tx, tid_rx) = mpsc::channel();
    let looper = thread::spawn(move || {
        // SAFETY: pthread_self has no preconditions.
        tid_tx.send(unsafe { libc::pthread_self() }).unwrap();
        let mut reactor = Reactor::with_config(Config::new().backend(backend)).unwrap();
        let mut handler = |_: &mut Context<'_>, _: ConnId, _: &[u8]| {};
        let started = Instant::now();
        let result = reactor.run_once(&mut handler, Some(Duration::from_millis(300)));
        (result.map_err(|e| e.to_string()), started.elapsed())
    });
    let tid = tid_rx.recv().unwrap();
    for _ in 0..3 {
        thread::sleep(Duration::from_millis(50));
        // SAFETY: the thread is alive until it returns from run_once, which
        // takes at least 300 ms; these signals are sent within 150 ms.
        unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
    }
    let (result, elapsed) = looper.join().unwrap();
    assert_eq!(result, Ok(()));
    assert!(
        elapsed >= Duration::from_millis(300),
        "the turn ended after {elapsed:?}, before its timeout"
    );
}
per_backend!(poll_interrupted_by_a_signal_waits_out_the_remaining_timeout);
