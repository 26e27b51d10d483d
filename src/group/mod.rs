//! Several reactors, one per thread, serving one address: shared-nothing.
//!
//! One reactor uses one core. A [`Group`] runs N of them, each on its own
//! thread with its own handler (built there by a factory), its own
//! connections, buffers and timers; nothing is shared between them but the
//! address they serve. How new connections are spread is the [`Balance`].

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::Config;
use crate::handle::Handle;
use crate::handler::Handler;
use crate::reactor::Reactor;
use crate::sources::{Signal, SignalPipe};
use crate::stats::Stats;

mod start;

use start::{reuseport_listeners, start_acceptor, start_loop};

/// How a [`Group`] spreads new connections over its loops.
///
/// nginx offers the same two (its `reuseport` listen option, and one
/// listening socket shared by the workers): see docs/threads.md for the
/// measured spread of each and when to choose which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    /// Each loop has a listening socket of its own on the same address
    /// (`SO_REUSEPORT`), and the kernel picks one per connection by a hash
    /// of the connection's addresses. No thread in between and no lock; the
    /// spread is random, so with few clients it can be uneven. Linux only.
    ReusePort,
    /// One acceptor thread accepts every connection and hands each to the
    /// next loop in turn ([`Handle::adopt`]): an even spread by count,
    /// whatever the addresses, at the cost of one hand-over per connection.
    Acceptor,
}

impl Default for Balance {
    /// [`ReusePort`](Balance::ReusePort) on Linux, [`Acceptor`](Balance::Acceptor)
    /// elsewhere (where `SO_REUSEPORT` does not spread connections).
    fn default() -> Balance {
        if cfg!(target_os = "linux") {
            Balance::ReusePort
        } else {
            Balance::Acceptor
        }
    }
}

/// Builds a [`Group`]: [`Group::builder`].
pub struct GroupBuilder {
    config: Config,
    threads: usize,
    balance: Balance,
    pin: bool,
    setup: Option<Arc<SetUp>>,
}

/// What each loop runs on its own reactor before serving: its sources,
/// timers, datagram sockets.
type SetUp = dyn Fn(&mut Reactor, usize) -> io::Result<()> + Send + Sync;

impl std::fmt::Debug for GroupBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupBuilder")
            .field("threads", &self.threads)
            .field("balance", &self.balance)
            .field("pin", &self.pin)
            .field("setup", &self.setup.is_some())
            .finish()
    }
}

/// N reactors on N threads serving one address.
///
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use selectloop::{Balance, Context, ConnId, Config, Group};
///
/// // Each loop's handler: echo every line (the default codec).
/// let echo = |_index: usize| {
///     |cx: &mut Context<'_>, conn: ConnId, line: &[u8]| {
///         let _ = cx.send_frame(conn, line);
///     }
/// };
/// let group = Group::builder(Config::new())
///     .threads(2)
///     .balance(Balance::Acceptor)
///     .spawn("127.0.0.1:0", echo)?;
/// let mut client = std::net::TcpStream::connect(group.local_addr())?;
/// client.set_read_timeout(Some(Duration::from_secs(10)))?;
/// client.write_all(b"ping\n")?;
/// let mut answer = [0u8; 5];
/// client.read_exact(&mut answer)?;
/// assert_eq!(&answer, b"ping\n");
/// group.shutdown(Duration::from_secs(1));
/// let stats = group.join()?;
/// assert_eq!(stats.iter().map(|s| s.accepted).sum::<u64>(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Group {
    addr: SocketAddr,
    handles: Vec<Handle>,
    loops: Vec<JoinHandle<io::Result<Stats>>>,
    acceptor: Option<Acceptor>,
    /// The signals caught for [`run_until_signal`](Group::run_until_signal).
    signals: Option<SignalPipe>,
}

#[derive(Debug)]
struct Acceptor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Group {
    /// A builder whose loops each get a copy of `config`.
    pub fn builder(config: Config) -> GroupBuilder {
        GroupBuilder {
            config,
            threads: 1,
            balance: Balance::default(),
            pin: false,
            setup: None,
        }
    }

    /// The address the group serves (with the port chosen, if 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many loops it runs.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether it runs no loop (never, once spawned).
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// A handle to each loop, in order: loop `i` was built with the
    /// factory's argument `i`.
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// Stops every loop after its current turn (and the acceptor).
    /// Connections are dropped as they are; see [`shutdown`](Group::shutdown).
    pub fn stop(&self) {
        self.stop_accepting();
        for handle in &self.handles {
            let _ = handle.stop();
        }
    }

    /// Shuts every loop down gracefully: each stops accepting, answers what
    /// it was sent, and closes, within `grace`
    /// ([`Reactor::shutdown`](crate::Reactor::shutdown)).
    pub fn shutdown(&self, grace: Duration) {
        self.stop_accepting();
        for handle in &self.handles {
            let _ = handle.shutdown(grace);
        }
    }

    /// Catches SIGINT, SIGTERM and SIGHUP from now on, for
    /// [`run_until_signal`](Group::run_until_signal). Call it before the
    /// address is made known: a signal sent earlier finds the default
    /// action, the end of the process. On Windows: Ctrl-C and Ctrl-Break
    /// (or the console closing), as [`Signal::Interrupt`] and
    /// [`Signal::Terminate`]; Windows has no SIGHUP.
    ///
    /// # Errors
    ///
    /// The pipe could not be made, or a signal handler installed.
    pub fn catch_signals(&mut self) -> io::Result<()> {
        if self.signals.is_none() {
            let mut pipe = SignalPipe::new()?;
            pipe.add(Signal::Interrupt)?;
            pipe.add(Signal::Terminate)?;
            #[cfg(unix)]
            pipe.add(Signal::Hangup)?;
            self.signals = Some(pipe);
        }
        Ok(())
    }

    /// Blocks the calling thread until SIGINT or SIGTERM comes, handing
    /// each SIGHUP meanwhile to every loop's [`Handler::on_signal`] (on the
    /// loop's thread, as any hook); then shuts every loop down gracefully
    /// within `grace` and joins them ([`shutdown`](Group::shutdown), then
    /// [`join`](Group::join)).
    ///
    /// # Errors
    ///
    /// The signals could not be caught, or as [`join`](Group::join).
    pub fn run_until_signal(mut self, grace: Duration) -> io::Result<Vec<Stats>> {
        self.catch_signals()?;
        let Some(mut pipe) = self.signals.take() else {
            unreachable!("caught above");
        };
        pipe.set_blocking()?;
        let mut came = Vec::new();
        while !came.iter().any(|signal: &Signal| signal.is_stop()) {
            came.clear();
            pipe.wait(&mut came)?;
            for &signal in came.iter().filter(|signal| !signal.is_stop()) {
                for handle in &self.handles {
                    let _ = handle.signal(signal);
                }
            }
        }
        info!("caught {came:?}: shutting the group down, {grace:?} to drain");
        self.shutdown(grace);
        self.join()
    }

    fn stop_accepting(&self) {
        if let Some(acceptor) = &self.acceptor {
            acceptor.stop.store(true, Ordering::Release);
        }
    }

    /// Each loop's counters, asked of the loop itself; `timeout` bounds the
    /// wait for each.
    ///
    /// # Errors
    ///
    /// A loop that is gone, or did not answer in time.
    pub fn stats(&self, timeout: Duration) -> io::Result<Vec<Stats>> {
        self.handles
            .iter()
            .enumerate()
            .map(|(index, handle)| {
                let (tx, rx) = mpsc::channel();
                handle
                    .run(move |cx| {
                        let _ = tx.send(cx.stats());
                    })
                    .map_err(|e| io::Error::other(format!("loop {index}: {e}")))?;
                rx.recv_timeout(timeout).map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("loop {index} did not answer within {timeout:?}"),
                    )
                })
            })
            .collect()
    }

    /// Waits for every loop to return (after [`stop`](Group::stop),
    /// [`shutdown`](Group::shutdown), or a handler's `cx.stop()` on each),
    /// and gives each loop's final counters.
    ///
    /// # Errors
    ///
    /// The first loop that failed (its poller failed, or it panicked with
    /// [`Config::catch_panics`] off).
    pub fn join(mut self) -> io::Result<Vec<Stats>> {
        self.stop_accepting();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.thread.join();
        }
        let mut all = Vec::with_capacity(self.loops.len());
        let mut first_error = None;
        let threads: Vec<_> = self.loops.drain(..).collect();
        for (index, thread) in threads.into_iter().enumerate() {
            let ended = thread
                .join()
                .map_err(|_| io::Error::other(format!("loop {index} panicked")))
                .and_then(|result| result);
            match ended {
                Ok(stats) => all.push(stats),
                Err(e) => {
                    // One loop failed: the others are stopped rather than
                    // waited for forever, and every thread is joined.
                    for handle in &self.handles {
                        let _ = handle.stop();
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(all),
        }
    }
}

impl Drop for Group {
    /// A group dropped without [`join`](Group::join) stops its loops (they
    /// finish their current turn and end on their own threads) rather than
    /// leave them serving with no one to stop them.
    fn drop(&mut self) {
        if !self.loops.is_empty() {
            self.stop();
        }
    }
}

impl GroupBuilder {
    /// How many loops (threads). Default 1; 0 is taken as 1.
    pub fn threads(mut self, threads: usize) -> GroupBuilder {
        self.threads = threads.max(1);
        self
    }

    /// How connections are spread. Default: [`Balance::default`].
    pub fn balance(mut self, balance: Balance) -> GroupBuilder {
        self.balance = balance;
        self
    }

    /// Pins loop `i` to CPU `i` (modulo the CPUs this process may use), so
    /// that each keeps its caches and no two share a core while others
    /// idle. Linux only: elsewhere [`spawn`](GroupBuilder::spawn) refuses
    /// it. Default off: the scheduler places the threads.
    pub fn pin_to_cores(mut self, pin: bool) -> GroupBuilder {
        self.pin = pin;
        self
    }

    /// Runs `setup(reactor, i)` on loop `i`'s thread once its reactor is
    /// built, before it serves: the place to register sources, set
    /// timers, catch signals or bind a datagram socket per loop
    /// ([`Reactor::bind_udp_reuseport`]: each loop its own socket on one
    /// port, the kernel spreading the datagrams). An error fails
    /// [`spawn`](GroupBuilder::spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use selectloop::{Config, ConnId, Context, Group};
    ///
    /// let group = Group::builder(Config::new())
    ///     .threads(2)
    ///     .setup(|reactor, _index| {
    ///         // Each loop ticks on its own.
    ///         reactor.context().set_periodic(Duration::from_secs(1));
    ///         Ok(())
    ///     })
    ///     .spawn("127.0.0.1:0", |_| |cx: &mut Context<'_>, conn: ConnId, msg: &[u8]| {
    ///         let _ = cx.send(conn, msg);
    ///     })?;
    /// group.stop();
    /// group.join()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn setup(
        mut self,
        setup: impl Fn(&mut Reactor, usize) -> io::Result<()> + Send + Sync + 'static,
    ) -> GroupBuilder {
        self.setup = Some(Arc::new(setup));
        self
    }

    /// Listens on `addr` and starts the loops; loop `i` runs the handler
    /// `make_handler(i)`, built on its own thread (so the handler need not
    /// be `Send`).
    ///
    /// # Errors
    ///
    /// The address cannot be bound, [`Balance::ReusePort`] or
    /// [`pin_to_cores`](GroupBuilder::pin_to_cores) off Linux
    /// (`Unsupported`, before anything starts), or a loop failed to start
    /// (its error is returned, and the loops already started are stopped).
    pub fn spawn<I, H, F>(self, addr: impl ToSocketAddrs, make_handler: F) -> io::Result<Group>
    where
        I: 'static,
        H: Handler<I> + 'static,
        F: Fn(usize) -> H + Send + Sync + 'static,
    {
        if self.pin && !cfg!(target_os = "linux") {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "GroupBuilder::pin_to_cores needs Linux's sched_setaffinity: leave it off here",
            ));
        }
        let wanted = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))?;
        let make_handler = Arc::new(make_handler);
        let (listeners, addr) = match self.balance {
            Balance::ReusePort => reuseport_listeners(wanted, self.threads)?,
            Balance::Acceptor => {
                let listener = TcpListener::bind(wanted)?;
                let addr = listener.local_addr()?;
                (vec![listener], addr)
            }
        };
        let mut group = Group {
            addr,
            handles: Vec::with_capacity(self.threads),
            loops: Vec::with_capacity(self.threads),
            acceptor: None,
            signals: None,
        };
        // Each loop listens for itself, or the acceptor listens for all.
        let (mut own_listeners, shared_listener): (Vec<_>, _) = match self.balance {
            Balance::ReusePort => (listeners.into_iter().map(Some).collect(), None),
            Balance::Acceptor => (Vec::new(), listeners.into_iter().next()),
        };
        own_listeners.resize_with(self.threads, || None);
        for (index, listener) in own_listeners.into_iter().enumerate() {
            let cpu = self.pin.then_some(index);
            let started = start_loop::<I, H, F>(
                index,
                cpu,
                self.config.clone(),
                listener,
                make_handler.clone(),
                self.setup.clone(),
            );
            match started {
                Ok((handle, thread)) => {
                    group.handles.push(handle);
                    group.loops.push(thread);
                }
                Err(e) => {
                    group.stop();
                    let _ = group.join();
                    return Err(e);
                }
            }
        }
        if let Some(listener) = shared_listener {
            match start_acceptor(listener, group.handles.clone()) {
                Ok(acceptor) => group.acceptor = Some(acceptor),
                Err(e) => {
                    group.stop();
                    let _ = group.join();
                    return Err(e);
                }
            }
        }
        Ok(group)
    }
}
