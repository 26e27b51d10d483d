//! The solution of the exercise of `book/src/completion.md`, which the
//! book shows folded; `tests/exercises/completion.rs` holds it to the
//! exercise.

use super::*;

// ANCHOR: solution
pub fn shout_on(backend: BackendKind, request: &[u8]) -> io::Result<(Vec<u8>, &'static str)> {
    // The one line that differs between backends.
    let config = Config::new().backend(backend).codec(Lines::new(1024));
    let mut reactor = Reactor::with_config(config)?;
    let listener = reactor.listen("127.0.0.1:0")?;
    let addr = reactor.local_addr(listener).expect("it listens");

    let mut client = TcpStream::connect(addr)?;
    client.write_all(request)?;
    client.shutdown(Shutdown::Write)?; // it closes once it has answered
    client.set_nonblocking(true)?;

    // The handler: it never learns which backend read its lines.
    let mut shout = |cx: &mut Context<'_>, conn: ConnId, line: &[u8]| {
        let _ = cx.send_frame(conn, &line.to_ascii_uppercase());
    };
    let mut answers = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if Instant::now() > deadline {
            return Err(io::ErrorKind::TimedOut.into());
        }
        // One turn; when it returns, what it wrote is in the kernel, on
        // io_uring too (its sends are entries in the ring).
        reactor.run_once(&mut shout, Some(Duration::from_millis(10)))?;
        match client.read(&mut buf) {
            Ok(0) => break, // the server closed: everything came
            Ok(n) => answers.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok((answers, reactor.backend_name()))
}
// ANCHOR_END: solution
