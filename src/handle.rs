//! Reaching the loop from other threads: a [`Handle`] queues commands on a
//! bounded channel and wakes the poll through a descriptor the loop watches
//! (libuv's `uv_async_send`, Netty's `eventLoop.execute`).
//!
//! The loop owns every connection, so nothing outside it touches them: other
//! threads *ask*, and the loop acts between two turns. That is why the
//! reactor's own state needs no lock; the channel is the only shared thing.
//! Commands sent between two turns share one wake-up: the first sender sets
//! a flag and wakes the poll, the others see the flag and only queue.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::handler::Context;
use crate::remote::Refused;
use crate::sources::Signal;
use crate::token::ConnId;

/// A closure run on the loop thread.
pub(crate) type LoopTask = Box<dyn FnOnce(&mut Context<'_>) + Send>;

/// A finished job's result, waiting to be handed over on the loop thread.
pub(crate) type JobDelivery = Box<dyn FnOnce(&mut Context<'_>, ConnId) + Send>;

/// What another thread can ask of the loop.
pub(crate) enum Command {
    Send(ConnId, Vec<u8>),
    Close(ConnId),
    Stop,
    Shutdown(Duration),
    Run(LoopTask),
    Notify(Box<dyn Any + Send>),
    /// A signal a group caught, for the handler's `on_signal`.
    Signal(Signal),
    /// A connection accepted elsewhere, to serve as if accepted here.
    Adopt(std::net::TcpStream),
    /// A worker finished a job: deliver its result on the loop thread.
    JobDone {
        conn: ConnId,
        /// Position in the connection's ordered results, if it asked for order.
        order: Option<u64>,
        deliver: JobDelivery,
    },
}

/// The half of the channel every handle holds.
pub(crate) type Shared = crate::remote::Shared<Command>;

impl Command {
    /// The bytes this command holds in the queue, which
    /// [`Config::handle_queue_bytes`](crate::Config::handle_queue_bytes) bounds.
    fn bytes(&self) -> usize {
        match self {
            Command::Send(_, bytes) => bytes.len(),
            _ => 0,
        }
    }
}

fn handle_error(refused: Refused) -> HandleError {
    match refused {
        Refused::Full => HandleError::QueueFull,
        Refused::Gone => HandleError::LoopGone,
    }
}

impl Shared {
    /// Queues a command without waiting: a full queue is an error for the
    /// caller to handle (the loop is behind; shed load or retry later).
    pub(crate) fn push(&self, command: Command) -> Result<(), HandleError> {
        let bytes = command.bytes();
        self.try_push(command, bytes)
            .map_err(|(refused, _)| handle_error(refused))
    }
}

/// Talks to a [`Reactor`](crate::Reactor) from any thread.
///
/// Cheap to clone; `Send` and `Sync`. Every method queues a command that the
/// loop carries out between two turns, and returns at once. A command for a
/// connection that has closed meanwhile is dropped and counted
/// ([`Stats::handle_undelivered`](crate::Stats::handle_undelivered)), never
/// a panic. The queue is bounded in commands
/// ([`Config::handle_queue`](crate::Config::handle_queue)) and in the bytes
/// that sends carry ([`Config::handle_queue_bytes`](crate::Config::handle_queue_bytes)):
/// when the loop falls that far behind, methods return
/// [`HandleError::QueueFull`] rather than let memory grow. Once the reactor
/// is dropped, every method returns [`HandleError::LoopGone`].
///
/// The worker pool ([`Context::submit`]) hands its results back through
/// the same queue, but a worker never gets `QueueFull`: a result must not
/// be lost, so a worker whose result finds the queue full waits for the
/// loop to take commands (it takes up to 65,536 a turn). While it waits it
/// starts no new job, so when the loop is slow the job queue
/// ([`Config::job_queue`](crate::Config::job_queue)) fills and
/// [`Context::submit`] returns [`JobRejected::QueueFull`](crate::JobRejected::QueueFull):
/// the back-pressure reaches the handler, and the loop itself never waits.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use selectloop::{ConnId, Context, Reactor};
///
/// let mut reactor = Reactor::new()?;
/// let handle = reactor.handle()?;
/// std::thread::spawn(move || {
///     // Runs on the loop thread, with a context.
///     handle.run(|cx| cx.stop()).unwrap();
/// });
/// let mut handler = |_: &mut Context<'_>, _: ConnId, _: &[u8]| {};
/// reactor.run(&mut handler)?; // returns once the other thread asked
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("alive", &self.shared.is_alive())
            .finish()
    }
}

impl Handle {
    /// Queues `bytes` for `conn`, as [`Context::send`] would.
    ///
    /// # Errors
    ///
    /// [`HandleError::QueueFull`] when the loop is that far behind: as many
    /// commands as [`Config::handle_queue`](crate::Config::handle_queue)
    /// allows are waiting, or these bytes would take the bytes waiting past
    /// [`Config::handle_queue_bytes`](crate::Config::handle_queue_bytes);
    /// [`HandleError::LoopGone`] once the reactor is dropped.
    pub fn send(&self, conn: ConnId, bytes: impl Into<Vec<u8>>) -> Result<(), HandleError> {
        self.shared.push(Command::Send(conn, bytes.into()))
    }

    /// Closes `conn` once its output is written, as [`Context::close`].
    ///
    /// # Errors
    ///
    /// [`HandleError::QueueFull`] when the loop is that far behind,
    /// [`HandleError::LoopGone`] once the reactor is dropped.
    pub fn close(&self, conn: ConnId) -> Result<(), HandleError> {
        self.shared.push(Command::Close(conn))
    }

    /// Hands the loop a connected TCP socket to serve as if it had accepted
    /// it: the same limits, the handler's `on_connect`, and
    /// [`Origin::Adopted`](crate::Origin::Adopted). How an acceptor thread
    /// spreads connections over several loops
    /// ([`Balance::Acceptor`](crate::Balance::Acceptor)); also for a socket
    /// inherited from a supervisor.
    ///
    /// # Errors
    ///
    /// [`HandleError::QueueFull`] when the loop is that far behind, and
    /// [`HandleError::LoopGone`] once the reactor is dropped; the socket is
    /// closed then, as a full backlog would refuse it.
    pub fn adopt(&self, stream: std::net::TcpStream) -> Result<(), HandleError> {
        self.shared.push(Command::Adopt(stream))
    }

    /// [`adopt`](Handle::adopt), giving the socket back if the loop cannot
    /// take it, so that the caller can offer it to another (`None`: it was
    /// queued, but the loop could not be woken: it is gone).
    pub(crate) fn offer(
        &self,
        stream: std::net::TcpStream,
    ) -> Result<(), Option<std::net::TcpStream>> {
        self.shared
            .try_push(Command::Adopt(stream), 0)
            .map_err(|(_, command)| match command {
                Some(Command::Adopt(stream)) => Some(stream),
                _ => None,
            })
    }

    /// Makes [`Reactor::run`](crate::Reactor::run) return after the current turn.
    ///
    /// # Errors
    ///
    /// [`HandleError::QueueFull`] when the loop is that far behind,
    /// [`HandleError::LoopGone`] once the reactor is dropped.
    pub fn stop(&self) -> Result<(), HandleError> {
        self.shared.push(Command::Stop)
    }

    /// Makes [`Reactor::run`](crate::Reactor::run) shut down gracefully
    /// ([`Reactor::shutdown`](crate::Reactor::shutdown) with `grace`), then
    /// return.
    ///
    /// # Errors
    ///
    /// [`HandleError::QueueFull`] when the loop is that far behind,
    /// [`HandleError::LoopGone`] once the reactor is dropped.
    pub fn shutdown(&self, grace: Duration) -> Result<(), HandleError> {
        self.shared.push(Command::Shutdown(grace))
    }

    /// Runs `task` on the loop thread, with a [`Context`].
    ///
    /// # Errors
    ///
    /// [`HandleError::QueueFull`] when the loop is that far behind,
    /// [`HandleError::LoopGone`] once the reactor is dropped.
    pub fn run(
        &self,
        task: impl FnOnce(&mut Context<'_>) + Send + 'static,
    ) -> Result<(), HandleError> {
        self.shared.push(Command::Run(Box::new(task)))
    }

    /// Hands `message` to [`Handler::on_notify`](crate::Handler::on_notify)
    /// on the loop thread: the way to reach the handler's own state.
    ///
    /// # Errors
    ///
    /// [`HandleError::QueueFull`] when the loop is that far behind,
    /// [`HandleError::LoopGone`] once the reactor is dropped.
    pub fn notify(&self, message: impl Any + Send) -> Result<(), HandleError> {
        self.shared.push(Command::Notify(Box::new(message)))
    }

    /// Hands `signal` to the loop's [`Handler::on_signal`](crate::Handler::on_signal)
    /// as if the loop had caught it: how a [`Group`](crate::Group) passes
    /// SIGHUP to every loop, and a way to test a handler's signal hook.
    ///
    /// # Errors
    ///
    /// As [`send`](Handle::send), but never `QueueFull` for bytes.
    pub fn signal(&self, signal: Signal) -> Result<(), HandleError> {
        self.shared.push(Command::Signal(signal))
    }
}

/// Why a [`Handle`] could not queue a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleError {
    /// [`Config::handle_queue`](crate::Config::handle_queue) commands, or
    /// [`Config::handle_queue_bytes`](crate::Config::handle_queue_bytes)
    /// bytes of sends, are already waiting for the loop: it is behind.
    /// Nothing was queued.
    QueueFull,
    /// The reactor behind the handle has been dropped.
    LoopGone,
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandleError::QueueFull => {
                "the reactor's command queue is full (Config::handle_queue or handle_queue_bytes)"
            }
            HandleError::LoopGone => "the reactor is gone",
        })
    }
}

impl Error for HandleError {}
