//! Starting a group's loops: each on a thread of its own (pinned to a CPU
//! if asked), its listener bound with `SO_REUSEPORT` or none; and the
//! acceptor thread that hands connections round-robin when one listener
//! serves all.

use crate::sys::RawSourceExt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

#[cfg(target_os = "linux")]
use socket2::{Domain, Socket, Type};

use super::{Acceptor, SetUp};
use crate::config::Config;
use crate::handle::Handle;
use crate::handler::Handler;
use crate::reactor::Reactor;
use crate::stats::Stats;

/// `count` listening sockets on one address, each with `SO_REUSEPORT`, so
/// that the kernel spreads connections over them. A port of 0 is chosen by
/// the first and reused by the rest.
#[cfg(target_os = "linux")]
pub(super) fn reuseport_listeners(
    wanted: SocketAddr,
    count: usize,
) -> io::Result<(Vec<TcpListener>, SocketAddr)> {
    let mut addr = wanted;
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        let listener: TcpListener = socket.into();
        addr = listener.local_addr()?;
        listeners.push(listener);
    }
    Ok((listeners, addr))
}

#[cfg(not(target_os = "linux"))]
pub(super) fn reuseport_listeners(
    _wanted: SocketAddr,
    _count: usize,
) -> io::Result<(Vec<TcpListener>, SocketAddr)> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "Balance::ReusePort needs Linux's SO_REUSEPORT; use Balance::Acceptor",
    ))
}

pub(super) type LoopThread = JoinHandle<io::Result<Stats>>;

/// Starts loop `index` on a thread of its own; returns its handle once the
/// reactor is built (or the reason it could not be).
pub(super) fn start_loop<I, H, F>(
    index: usize,
    cpu: Option<usize>,
    config: Config,
    listener: Option<TcpListener>,
    make_handler: Arc<F>,
    setup: Option<Arc<SetUp>>,
) -> io::Result<(Handle, LoopThread)>
where
    I: 'static,
    H: Handler<I> + 'static,
    F: Fn(usize) -> H + Send + Sync + 'static,
{
    let (ready_tx, ready_rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .name(format!("selectloop-{index}"))
        .spawn(move || {
            if let Some(cpu) = cpu {
                pin_current_thread(cpu);
            }
            let built = (|| -> io::Result<(Reactor, Handle)> {
                // A handler that cannot take the decoder's items fails
                // `spawn`, not the loop once it runs.
                config.check_item_type::<I>()?;
                let mut reactor = Reactor::with_config(config)?;
                if let Some(listener) = listener {
                    reactor.add_listener(listener)?;
                }
                if let Some(setup) = &setup {
                    setup(&mut reactor, index)?;
                }
                let handle = reactor.handle()?;
                Ok((reactor, handle))
            })();
            let mut reactor = match built {
                Ok((reactor, handle)) => {
                    let _ = ready_tx.send(Ok(handle));
                    reactor
                }
                Err(e) => {
                    let kind = io::Error::new(e.kind(), e.to_string());
                    let _ = ready_tx.send(Err(e));
                    return Err(kind);
                }
            };
            let mut handler = make_handler(index);
            reactor.run(&mut handler)?;
            Ok(reactor.stats())
        })?;
    let handle = ready_rx
        .recv()
        .map_err(|_| io::Error::other(format!("loop {index} ended before it started")))??;
    Ok((handle, thread))
}

/// Pins the calling thread to the `index`-th CPU it is allowed to run on
/// (modulo their number).
#[cfg(target_os = "linux")]
fn pin_current_thread(index: usize) {
    // SAFETY: cpu_set_t is plain data; the calls read and write only it.
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut allowed) != 0 {
            return;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &allowed))
            .collect();
        let Some(&cpu) = cpus.get(index % cpus.len().max(1)) else {
            return;
        };
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) != 0 {
            warn!(
                "loop {index}: cannot pin to CPU {cpu}: {}",
                io::Error::last_os_error()
            );
        }
    }
}

/// Never called off Linux: `spawn` refuses `pin_to_cores` there.
#[cfg(not(target_os = "linux"))]
fn pin_current_thread(_index: usize) {
    unreachable!("pin_to_cores is refused before the loops start");
}

/// The acceptor thread: accepts on `listener` and hands each connection to
/// the next loop in turn, until told to stop.
pub(super) fn start_acceptor(listener: TcpListener, handles: Vec<Handle>) -> io::Result<Acceptor> {
    listener.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        thread::Builder::new()
            .name("selectloop-acceptor".into())
            .spawn(move || accept_loop(&listener, &handles, &stop))?
    };
    Ok(Acceptor { stop, thread })
}

fn accept_loop(listener: &TcpListener, handles: &[Handle], stop: &AtomicBool) {
    let mut next = 0;
    while !stop.load(Ordering::Acquire) {
        // Wait for a connection, but look at `stop` every 100 ms.
        if !crate::sys::wait_readable(listener.raw_source(), 100) {
            continue;
        }
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    hand_over(stream, handles, &mut next);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors, say: back off instead of spinning.
                    warn!("the group's acceptor: accept failed: {e}");
                    thread::sleep(Duration::from_millis(100));
                    break;
                }
            }
        }
    }
}

/// Gives `stream` to the next loop with room; a loop whose queue is full is
/// passed over, and if every one is full the connection is dropped, as a
/// full backlog would.
fn hand_over(mut stream: TcpStream, handles: &[Handle], next: &mut usize) {
    for _ in 0..handles.len() {
        let handle = &handles[*next % handles.len()];
        *next = next.wrapping_add(1);
        match handle.offer(stream) {
            Ok(()) | Err(None) => return,
            Err(Some(refused)) => stream = refused,
        }
    }
    warn!("the group's acceptor: every loop is full; a connection was dropped");
}
