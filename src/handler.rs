//! The [`Handler`] trait, which a server implements: the hooks the loop
//! calls, each with the [`Context`] it may act through (context.rs).

use std::any::Any;

pub use crate::context::Context;

use crate::backend::Readiness;
use crate::close::CloseReason;
use crate::codec::DecodeError;
use crate::schedule::TimerId;
use crate::sources::{DatagramPeer, Signal};
use crate::token::{ConnId, SourceId};

/// What a server does when the loop has news for it.
///
/// Each hook gets a [`Context`] to act through. Hooks run on the loop's thread
/// and should return quickly: while one runs, no other connection is served.
///
/// # Examples
///
/// The seed's echo server: a greeting on connect, `response: ` + each message.
///
/// ```
/// use selectloop::{ConnId, Context, Handler};
///
/// struct Echo;
///
/// impl Handler for Echo {
///     fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
///         let _ = cx.send(conn, b"Hello client-side");
///     }
///
///     fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
///         let _ = cx.send_parts(conn, &[b"response: ", msg]);
///     }
/// }
/// ```
///
/// A closure `FnMut(&mut Context, ConnId, &[u8])` is a handler too, with no
/// connect, close or timer hooks.
///
/// # Typed messages
///
/// A protocol with a [`Decoder`](crate::codec::Decoder) of its own parses
/// each message once, in the decoder, into its
/// [`Item`](crate::codec::Decoder::Item). A handler that wants those items
/// implements `Handler<Item>` and [`on_item`](Handler::on_item), which
/// receives the item with the payload; a plain `Handler` (of `()`) gets the
/// bytes alone in [`on_message`](Handler::on_message).
///
/// ```
/// use std::ops::Range;
/// use selectloop::codec::{DecodeError, Decoder, Frame};
/// use selectloop::{ConnId, Context, Handler};
///
/// /// `ADD a b` lines, parsed once.
/// struct Sum(u64, u64);
///
/// struct Adds;
/// impl Decoder for Adds {
///     type Item = Sum;
///     fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame<Sum>>, DecodeError> {
///         let Some(end) = buf.iter().position(|&b| b == b'\n') else {
///             return Ok(None);
///         };
///         let line = std::str::from_utf8(&buf[..end]).map_err(|_| DecodeError::invalid("not UTF-8"))?;
///         let mut words = line.split(' ');
///         let mut number = || words.next().and_then(|w| w.parse().ok());
///         match (line.starts_with("ADD "), number().and(number()), number(), number()) {
///             (true, Some(_), Some(a), Some(b)) => Ok(Some(Frame::with_item(0..end, end + 1, Sum(a, b)))),
///             _ => Err(DecodeError::invalid("expected ADD a b")),
///         }
///     }
/// }
///
/// struct Calculator;
/// impl Handler<Sum> for Calculator {
///     fn on_item(&mut self, cx: &mut Context<'_>, conn: ConnId, sum: Sum, _line: &[u8]) {
///         let _ = cx.send(conn, format!("{}\n", sum.0 + sum.1).as_bytes());
///     }
/// }
/// # let _ = selectloop::Config::new().decoder(64, || Adds);
/// # let _: Range<usize> = 0..0;
/// ```
///
/// [`Reactor::run`](crate::Reactor::run) checks at once that the handler
/// takes what the configured decoder makes (or bytes alone).
pub trait Handler<Item: 'static = ()> {
    /// A connection was accepted, or an outbound connect completed
    /// ([`Context::origin`] tells which). Queue a greeting here if the
    /// protocol has one.
    fn on_connect(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        let _ = (cx, conn);
    }

    /// One decoded message arrived. Called once per message, in arrival order;
    /// `msg` is only borrowed for the call.
    ///
    /// A handler of typed messages implements [`on_item`](Handler::on_item)
    /// instead, and this is never called; one that implements neither
    /// drops every message.
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        let _ = (cx, conn, msg);
    }

    /// One decoded message arrived, with what the decoder parsed from it
    /// (its [`Item`](crate::codec::Decoder::Item)); `payload` is the
    /// message's bytes as the frame gave them, borrowed for the call.
    /// Called once per message, in arrival order. The default hands the
    /// bytes to [`on_message`](Handler::on_message).
    fn on_item(&mut self, cx: &mut Context<'_>, conn: ConnId, item: Item, payload: &[u8]) {
        let _ = item;
        self.on_message(cx, conn, payload);
    }

    /// The connection closed, for `reason`. `conn` is already gone: sending
    /// to it fails. Called exactly once per connection accepted or connected
    /// (an outbound connect that fails is reported here too, with
    /// [`CloseReason::ConnectFailed`]).
    fn on_close(&mut self, cx: &mut Context<'_>, conn: ConnId, reason: &CloseReason) {
        let _ = (cx, conn, reason);
    }

    /// A timer set through the context is due.
    fn on_timer(&mut self, cx: &mut Context<'_>, timer: TimerId) {
        let _ = (cx, timer);
    }

    /// A timer set with [`Context::set_timer_with`] is due, with the value
    /// it carries; downcast it to the type you gave. The default calls
    /// [`on_timer`](Handler::on_timer) and drops the value.
    fn on_timer_value(&mut self, cx: &mut Context<'_>, timer: TimerId, value: Box<dyn Any>) {
        drop(value);
        self.on_timer(cx, timer);
    }

    /// A descriptor registered with
    /// [`Reactor::register_source`](crate::Reactor::register_source) is ready.
    fn on_source(&mut self, cx: &mut Context<'_>, source: SourceId, event: &Readiness) {
        let _ = (cx, source, event);
    }

    /// A datagram arrived on a datagram socket of the loop
    /// ([`Reactor::bind_udp`](crate::Reactor::bind_udp)) from `from`;
    /// `data` is only borrowed for the call. Answer with
    /// [`Context::send_to`].
    fn on_datagram(
        &mut self,
        cx: &mut Context<'_>,
        socket: SourceId,
        from: &DatagramPeer,
        data: &[u8],
    ) {
        let _ = (cx, socket, from, data);
    }

    /// A message sent with [`Handle::notify`](crate::Handle::notify) from
    /// another thread; downcast it to the type you sent.
    fn on_notify(&mut self, cx: &mut Context<'_>, message: Box<dyn Any + Send>) {
        let _ = (cx, message);
    }

    /// `conn` sent bytes its decoder refused, or a message longer than the
    /// maximum. The messages before them have been handled; nothing more
    /// is read from it, and it closes (with
    /// [`CloseReason::ProtocolError`] or [`CloseReason::FrameTooLong`]) once
    /// what is queued for it is written. Queue an error reply here if the
    /// protocol has one: Redis answers `-ERR Protocol error: ...`.
    fn on_decode_error(&mut self, cx: &mut Context<'_>, conn: ConnId, error: &DecodeError) {
        let _ = (cx, conn, error);
    }

    /// A signal caught with [`Reactor::catch_signals`](crate::Reactor::catch_signals)
    /// came (or, in a [`Group`](crate::Group), was passed to every loop).
    /// The default shuts down gracefully on SIGINT and SIGTERM, with
    /// [`Config::shutdown_grace`](crate::Config::shutdown_grace), and
    /// ignores the others.
    fn on_signal(&mut self, cx: &mut Context<'_>, signal: Signal) {
        if signal.is_stop() {
            let grace = cx.core.config.shutdown_grace;
            cx.shutdown(grace);
        }
    }

    /// `conn`'s output, which had gone above the high watermark, has drained
    /// below the low one: a good time to resume whatever feeds it (see
    /// [`Context::resume_reading`]). The way a proxy passes backpressure from
    /// one side to the other.
    fn on_drained(&mut self, cx: &mut Context<'_>, conn: ConnId) {
        let _ = (cx, conn);
    }
}

impl<F> Handler for F
where
    F: FnMut(&mut Context<'_>, ConnId, &[u8]),
{
    fn on_message(&mut self, cx: &mut Context<'_>, conn: ConnId, msg: &[u8]) {
        self(cx, conn, msg)
    }
}
