//! The solution of the exercise of `book/src/reactor.md`, which the book
//! shows folded; `tests/exercises/reactor.rs` holds it to the exercise.

use super::*;

// ANCHOR: solution
pub fn answer_with_length(cx: &mut Context<'_>, conn: ConnId, line: &[u8]) {
    // send_frame frames the answer with the connection's codec: a line.
    let _ = cx.send_frame(conn, line.len().to_string().as_bytes());
}

/// Starts the server on `addr` on a thread of its own; returns where it
/// listens, a handle to stop it, and the thread, which ends with the loop.
pub fn start(addr: &str) -> io::Result<(SocketAddr, Handle, JoinHandle<io::Result<()>>)> {
    let addr = addr.to_string();
    let (ready_tx, ready_rx) = mpsc::channel();
    // A Reactor stays on the thread that made it (it is not Send): build
    // it there, and send back only what other threads may hold.
    let thread = thread::spawn(move || {
        let started = (|| {
            let mut reactor = Reactor::with_config(Config::new().codec(Lines::new(1024)))?;
            let listener = reactor.listen(&addr)?;
            let bound = reactor
                .local_addr(listener)
                .expect("a listener has an address");
            Ok::<_, io::Error>((reactor.handle()?, bound, reactor))
        })();
        match started {
            Ok((handle, bound, mut reactor)) => {
                let _ = ready_tx.send(Ok((bound, handle)));
                reactor.run(&mut answer_with_length)
            }
            Err(e) => {
                let _ = ready_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                Err(e)
            }
        }
    });
    let (bound, handle) = ready_rx.recv().expect("the loop thread reports")?;
    Ok((bound, handle, thread))
}
// ANCHOR_END: solution
