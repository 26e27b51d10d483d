//! monoio echo server: the io_uring peer. monoio (bytedance's
//! thread-per-core runtime) drives every socket through an io_uring of its
//! own, one runtime per thread; `--threads N` starts N of them, each with
//! its own `SO_REUSEPORT` listener, as it is meant to be deployed. One task
//! per connection: read into an owned buffer, write it all back.
//!
//! A read in flight owns its buffer (the kernel writes it), so each
//! connection holds one from its first read on, idle or not: the price of
//! completion I/O without provided buffers, which monoio 0.2 does not use.

#[cfg(target_os = "linux")]
fn main() -> std::io::Result<()> {
    use std::io;

    let selectloop_bench::ServerArgs { addr, threads, .. } =
        selectloop_bench::server_args().map_err(io::Error::other)?;
    let threads = threads.max(1);
    // The first listener is bound here, so that `--addr 127.0.0.1:0`
    // gives one port for every thread.
    let first = reuseport_listener(addr)?;
    let addr = first.local_addr()?;
    selectloop_bench::announce(addr);
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(reuseport_listener(addr)?);
    }
    let workers: Vec<_> = listeners
        .into_iter()
        .map(|listener| std::thread::spawn(move || serve(listener)))
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| io::Error::other("a worker panicked"))??;
    }
    Ok(())
}

/// A listening socket with `SO_REUSEPORT`, non-blocking as monoio wants.
#[cfg(target_os = "linux")]
fn reuseport_listener(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// One runtime, on this thread, serving `listener`.
#[cfg(target_os = "linux")]
fn serve(listener: std::net::TcpListener) -> std::io::Result<()> {
    use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
    use monoio::net::{TcpListener, TcpStream};

    async fn echo(mut stream: TcpStream) {
        let mut buf = Vec::with_capacity(16 * 1024);
        loop {
            let (read, back) = stream.read(buf).await;
            buf = back;
            match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let (written, back) = stream.write_all(buf).await;
            buf = back;
            if written.is_err() {
                return;
            }
            buf.clear();
        }
    }

    let mut runtime = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .with_entries(1024)
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            monoio::spawn(echo(stream));
        }
    })
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("monoio_echo runs on io_uring, which is Linux's");
    std::process::exit(2);
}
