//! tokio echo servers: `--threads 1` is the `current_thread` runtime, the
//! single-threaded peer of selectloop; `--threads 2` the multi-thread one with
//! two workers (`--multi-thread` picks it for one worker too). One task per connection: read, then write everything back.
//! A connection's buffer is allocated with its first bytes, as a careful
//! tokio server would.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn main() -> io::Result<()> {
    let selectloop_bench::ServerArgs {
        addr,
        threads,
        multi_thread,
    } = selectloop_bench::server_args().map_err(io::Error::other)?;
    let runtime = if threads <= 1 && !multi_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_io()
            .build()?
    };
    runtime.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        selectloop_bench::announce(listener.local_addr()?);
        // ANCHOR: task
        loop {
            let (mut stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                // The buffer is allocated when the first bytes arrive, so an
                // idle connection costs only its task.
                if stream.readable().await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
        // ANCHOR_END: task
    })
}
