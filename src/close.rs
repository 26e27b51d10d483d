//! Why connections close, and the errors of sending: the vocabulary that
//! the loop and the handler API share.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::io;

use crate::codec::{DecodeError, FrameError};
use crate::token::{ConnId, ListenerId};

/// How a connection came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Accepted on this listener.
    Accepted(ListenerId),
    /// Opened by [`Context::connect`](crate::Context::connect) or [`Context::connect_unix`](crate::Context::connect_unix).
    Outbound,
    /// Accepted elsewhere and handed over by
    /// [`Handle::adopt`](crate::Handle::adopt) (a [`Group`](crate::Group)'s
    /// acceptor, say).
    Adopted,
}

/// Why a connection closed.
#[derive(Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer ended its output (a read returned 0); whatever was owed to it
    /// was written first.
    PeerClosed,
    /// The peer reset the connection, or vanished while we wrote
    /// (`ECONNRESET`, `EPIPE`).
    Reset,
    /// Another I/O error on this connection.
    Error(io::Error),
    /// The handler called [`Context::close`](crate::Context::close) or [`Context::close_now`](crate::Context::close_now).
    ClosedByHandler,
    /// The peer sent a message longer than the codec allows.
    FrameTooLong(FrameError),
    /// The peer's bytes broke the protocol: its decoder said how.
    ProtocolError(Cow<'static, str>),
    /// No complete message within [`Config::idle_timeout`](crate::Config::idle_timeout).
    IdleTimeout,
    /// A message took longer than [`Config::message_deadline`](crate::Config::message_deadline)
    /// to arrive complete.
    MessageTimeout,
    /// Output queued for the peer passed [`Config::max_output`](crate::Config::max_output).
    OutputLimit,
    /// A handler hook panicked while serving this connection.
    HandlerPanic,
    /// [`Reactor::shutdown`](crate::Reactor::shutdown) closed it.
    Shutdown,
    /// An outbound connect failed (refused, unreachable) or timed out
    /// (`ErrorKind::TimedOut`); the connection never opened.
    ConnectFailed(io::Error),
}

impl CloseReason {
    /// The reason a connection whose bytes were refused closes with.
    pub(crate) fn refused(error: DecodeError) -> CloseReason {
        match error {
            DecodeError::TooLong(e) => CloseReason::FrameTooLong(e),
            DecodeError::Invalid(why) => CloseReason::ProtocolError(why),
        }
    }

    pub(crate) fn from_io(error: io::Error) -> CloseReason {
        match error.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => CloseReason::Reset,
            _ => CloseReason::Error(error),
        }
    }

    /// Whether this is an ordinary end rather than a fault.
    pub fn is_orderly(&self) -> bool {
        matches!(
            self,
            CloseReason::PeerClosed | CloseReason::ClosedByHandler | CloseReason::Shutdown
        )
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("peer closed the connection"),
            CloseReason::Reset => f.write_str("connection reset by peer"),
            CloseReason::Error(e) => write!(f, "I/O error: {e}"),
            CloseReason::ClosedByHandler => f.write_str("closed by the handler"),
            CloseReason::FrameTooLong(e) => write!(f, "frame too long: {e}"),
            CloseReason::ProtocolError(why) => write!(f, "protocol error: {why}"),
            CloseReason::IdleTimeout => f.write_str("idle timeout (Config::idle_timeout)"),
            CloseReason::MessageTimeout => {
                f.write_str("message not complete in time (Config::message_deadline)")
            }
            CloseReason::OutputLimit => f.write_str("output limit passed (Config::max_output)"),
            CloseReason::HandlerPanic => f.write_str("the handler panicked"),
            CloseReason::Shutdown => f.write_str("server shutting down"),
            CloseReason::ConnectFailed(e) => write!(f, "connect failed: {e}"),
        }
    }
}

/// The connection named is no longer open (or never was).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed(pub ConnId);

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is closed", self.0)
    }
}

impl Error for Closed {}

/// Why [`Context::send_frame`](crate::Context::send_frame) refused a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The connection is gone.
    Closed(Closed),
    /// The payload is longer than the codec lets the peer accept.
    TooLong(FrameError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed(e) => e.fmt(f),
            SendError::TooLong(e) => e.fmt(f),
        }
    }
}

impl Error for SendError {}

impl From<Closed> for SendError {
    fn from(e: Closed) -> SendError {
        SendError::Closed(e)
    }
}
