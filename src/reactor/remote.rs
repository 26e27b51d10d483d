//! Phase work for other threads' commands: the handle created with its
//! waker on first use, and the commands carried out on the loop thread
//! when the waker's descriptor is readable.

use std::io;

use super::Core;
use crate::handle::{Command, Handle};
use crate::handler::Handler;
use crate::remote::{Remote, Waker};
use crate::stream::Stream;
use crate::token::{ConnId, WAKER_TOKEN};
use crate::Interest;

/// Commands taken from the channel per wake-up, so a flood from other
/// threads cannot hold the loop; the rest wait for the next turn.
const COMMANDS_PER_TURN: usize = 65_536;

impl Core {
    /// The handle for other threads, created with its waker on first use.
    pub(crate) fn handle(&mut self) -> io::Result<Handle> {
        if let Some(remote) = &self.remote {
            return Ok(Handle {
                shared: remote.shared().clone(),
            });
        }
        let waker = Waker::new()?;
        self.backend
            .add(waker.raw_fd(), WAKER_TOKEN, Interest::READABLE)?;
        let remote = Remote::new(
            waker,
            self.config.handle_queue,
            self.config.handle_queue_bytes,
        );
        let shared = remote.shared().clone();
        self.remote = Some(remote);
        Ok(Handle { shared })
    }

    /// Marks every handle dead: their calls fail from now on, and workers
    /// waiting for room in the queue are released.
    pub(crate) fn close_handles(&mut self) {
        if let Some(remote) = self.remote.take() {
            let _ = self.backend.delete(remote.close());
        }
    }

    /// The waker fired: carry out what other threads asked.
    pub(crate) fn drain_commands<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
    ) {
        let Some(remote) = &self.remote else { return };
        remote.begin_drain();
        self.stats.handle_wakeups += 1;
        for _ in 0..COMMANDS_PER_TURN {
            let Some(command) = self.remote.as_ref().and_then(Remote::next) else {
                return;
            };
            self.stats.handle_commands += 1;
            self.execute(handler, command);
        }
        // More are queued than one turn takes: come back next turn.
        if let Some(remote) = &self.remote {
            remote.wake_again();
        }
    }

    fn execute<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        command: Command,
    ) {
        match command {
            Command::Send(conn, bytes) => {
                if self.send(conn, &[&bytes]).is_err() {
                    self.undelivered(conn, "send");
                }
            }
            Command::Close(conn) => {
                if !self.close_after_flush(conn) {
                    self.undelivered(conn, "close");
                }
            }
            Command::Stop => self.stop_requested = true,
            Command::Shutdown(grace) => {
                self.shutdown_requested = Some(grace);
                self.stop_requested = true;
            }
            Command::Signal(signal) => self.deliver_signal(handler, signal),
            Command::Run(task) => {
                self.call_hook(handler, "a handle's task", |_, cx| task(cx));
            }
            Command::Adopt(stream) => self.adopt_handed_over(handler, stream),
            Command::Notify(message) => {
                self.call_hook(handler, "on_notify", |h, cx| h.on_notify(cx, message));
            }
            Command::JobDone {
                conn,
                order,
                deliver,
            } => self.deliver_job(handler, conn, order, deliver),
        }
        self.run_close_hooks(handler);
    }

    fn adopt_handed_over<I: 'static, H: Handler<I> + ?Sized + 'static>(
        &mut self,
        handler: &mut H,
        stream: std::net::TcpStream,
    ) {
        // A listener's sockets are non-blocking; one accepted by a
        // blocking accept is not.
        if let Err(e) = stream.set_nonblocking(true) {
            warn!("a handed-over connection dropped: {e}");
            return;
        }
        let stream = Stream::Tcp(mio::net::TcpStream::from_std(stream));
        self.adopt(handler, stream, crate::conn::ADOPTED);
    }

    pub(crate) fn undelivered(&mut self, conn: ConnId, what: &str) {
        self.stats.handle_undelivered += 1;
        debug!("{what} from a handle for {conn} dropped: it is closed");
    }
}
