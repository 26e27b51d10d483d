//! A thread per connection with blocking `std::net` sockets: what Python's
//! `socketserver.ThreadingTCPServer` is, in Rust.

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::thread;

fn main() -> io::Result<()> {
    let addr = selectloop_bench::server_args()
        .map_err(io::Error::other)?
        .addr;
    let listener = TcpListener::bind(addr)?;
    selectloop_bench::announce(listener.local_addr()?);
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        // Small stacks: an echo needs little, and the default 2 MiB of
        // address space per thread would cap the connection count early.
        let spawned = thread::Builder::new().stack_size(64 * 1024).spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        if let Err(e) = spawned {
            eprintln!("thread_echo: cannot spawn a thread: {e}");
        }
    }
    Ok(())
}
