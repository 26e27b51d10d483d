//! Framing of your own: the [`Decoder`] trait a protocol implements to cut
//! a connection's bytes into messages (compare tokio-util's `Decoder` and
//! Netty's `ByteToMessageDecoder`), without copying them.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::sync::Arc;

use super::{Frame, FrameError};

/// Cuts one connection's byte stream into messages, for a protocol the
/// built-in codecs do not speak (RESP, HTTP, memcached...).
///
/// Each connection gets a decoder of its own, made by the factory given to
/// [`Config::decoder`](crate::Config::decoder), so it may keep state between
/// calls (HTTP reads headers, then a body of the length they announced).
/// The loop calls [`decode`](Decoder::decode) with the connection's bytes not
/// yet cut, after every read, until it returns `Ok(None)`; each frame it
/// returns is handed to [`Handler::on_item`](crate::Handler::on_item) as a
/// slice of the read buffer, never copied, with the [`Item`](Decoder::Item)
/// the decoder parsed from it: what the command was, its arguments, where
/// its key lies. A handler that asks for those items (it implements
/// [`Handler<Item>`](crate::Handler)) never parses the bytes a second time;
/// one that does not gets the bytes alone in
/// [`Handler::on_message`](crate::Handler::on_message). Bytes the protocol
/// says to skip are a [`Frame::discard`], dropped as they arrive.
///
/// The loop enforces the maximum message size given with the factory: bytes
/// that stay unframed past it close the connection with
/// [`CloseReason::FrameTooLong`](crate::CloseReason::FrameTooLong), whatever
/// the decoder says. An error closes only the connection it came from, after
/// the messages before it are answered and
/// [`Handler::on_decode_error`](crate::Handler::on_decode_error) has had the
/// chance to queue a reply.
///
/// # Examples
///
/// Messages that end with a `;`, as in a toy protocol:
///
/// ```
/// use selectloop::codec::{DecodeError, Decoder, Frame};
///
/// struct Semicolons {
///     /// Bytes already searched: a long message arriving slowly is not
///     /// scanned again from its start every time.
///     scanned: usize,
/// }
///
/// impl Decoder for Semicolons {
///     // The message is the bytes; there is nothing more to tell.
///     type Item = ();
///
///     fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
///         match buf[self.scanned..].iter().position(|&b| b == b';') {
///             Some(at) => {
///                 let end = self.scanned + at;
///                 self.scanned = 0;
///                 if buf[..end].contains(&0) {
///                     return Err(DecodeError::invalid("NUL in a message"));
///                 }
///                 Ok(Some(Frame::new(0..end, end + 1)))
///             }
///             None => {
///                 self.scanned = buf.len();
///                 Ok(None)
///             }
///         }
///     }
/// }
///
/// let mut decoder = Semicolons { scanned: 0 };
/// let frame = decoder.decode(b"one;two").unwrap().unwrap();
/// assert_eq!(frame.payload(), 0..3);
/// assert_eq!(frame.consumed(), 4);
/// assert!(decoder.decode(b"two").unwrap().is_none());
/// ```
pub trait Decoder: 'static {
    /// What the decoder parsed out of each message, handed to
    /// [`Handler::on_item`](crate::Handler::on_item) beside the payload;
    /// `()` when the bytes are all there is to say. It may hold offsets
    /// into the payload in place of copies of its bytes.
    type Item: 'static;

    /// Finds the first complete message at the start of `buf`: `Ok(Some)`
    /// with where its payload lies, how many bytes it used up and what it
    /// says ([`Frame::with_item`]), or bytes to skip ([`Frame::discard`]);
    /// `Ok(None)` if more bytes are needed (the same bytes, and more, come
    /// back next time).
    ///
    /// # Errors
    ///
    /// The bytes break the protocol: the connection reads nothing more.
    fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame<Self::Item>>, DecodeError>;

    /// The peer ended its output with `buf` still unframed. The default
    /// drops it: a partial message is not a message.
    ///
    /// # Errors
    ///
    /// As [`decode`](Decoder::decode).
    fn decode_eof(&mut self, buf: &[u8]) -> Result<Option<Frame<Self::Item>>, DecodeError> {
        let _ = buf;
        Ok(None)
    }
}

/// A [`Decoder`] as a connection holds it, whatever its item type: it
/// answers with the frame's place alone and keeps the items, in order, in
/// a queue of its own, from which the handling phase takes one per
/// message (the loop knows the handler's item type there, not here).
pub(crate) trait AnyDecoder {
    /// As [`Decoder::decode`]; a message's item joins the queue.
    fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame>, DecodeError>;
    /// As [`Decoder::decode_eof`].
    fn decode_eof(&mut self, buf: &[u8]) -> Result<Option<Frame>, DecodeError>;
    /// The queue of items, a `VecDeque<D::Item>`, for the handler to
    /// downcast.
    fn items(&mut self) -> &mut dyn Any;
    /// Drops the oldest item: its message goes to a handler that takes
    /// bytes alone.
    fn skip_item(&mut self);
    /// Whether bytes of a discard are still to arrive.
    fn is_discarding(&self) -> bool;
}

/// A decoder with the queue of the items it parsed and that no handler
/// took yet. Every message frame the loop queues pushed one item, and the
/// loop queues no message after a refusal, so the queue and the
/// connection's frames stay in step: a refused frame's item, if any, is
/// last and never taken.
///
/// It also carries out a discard longer than the bytes buffered: it
/// answers with the part buffered, then with each part of the rest as it
/// arrives, and asks the decoder nothing until the last part is gone.
struct WithItems<D: Decoder> {
    decoder: D,
    items: VecDeque<D::Item>,
    /// Bytes of a discard not yet arrived.
    discarding: usize,
}

impl<D: Decoder> WithItems<D> {
    fn keep(&mut self, found: Option<Frame<D::Item>>, buffered: usize) -> Option<Frame> {
        let frame = found?;
        Some(match frame.item {
            Some(item) => {
                self.items.push_back(item);
                Frame::new(frame.start..frame.end, frame.consumed)
            }
            None => self.discard(frame.consumed, buffered),
        })
    }

    /// Drops what is buffered of `len` bytes; the rest is dropped later.
    fn discard(&mut self, len: usize, buffered: usize) -> Frame {
        let now = len.min(buffered);
        self.discarding = len - now;
        Frame::discard(now)
    }
}

impl<D: Decoder> AnyDecoder for WithItems<D> {
    fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
        if self.discarding > 0 {
            return Ok((!buf.is_empty()).then(|| self.discard(self.discarding, buf.len())));
        }
        let found = self.decoder.decode(buf)?;
        Ok(self.keep(found, buf.len()))
    }

    fn decode_eof(&mut self, buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
        if self.discarding > 0 {
            return Ok(None); // the input ended inside the bytes to drop
        }
        let found = self.decoder.decode_eof(buf)?;
        Ok(self.keep(found, buf.len()))
    }

    fn items(&mut self) -> &mut dyn Any {
        &mut self.items
    }

    fn skip_item(&mut self) {
        self.items.pop_front();
    }

    fn is_discarding(&self) -> bool {
        self.discarding > 0
    }
}

/// Makes one [`Decoder`] per connection.
pub(crate) type DecoderFactory = Arc<dyn Fn() -> Box<dyn AnyDecoder> + Send + Sync>;

/// A custom framing as [`Config`](crate::Config) keeps it: the factory,
/// the largest message the loop lets through, and the item type its
/// decoders make (a handler must take that type, or bytes alone).
#[derive(Clone)]
pub(crate) struct CustomFraming {
    pub(crate) make: DecoderFactory,
    pub(crate) max_message: usize,
    pub(crate) item: TypeTag,
}

impl CustomFraming {
    pub(crate) fn new<D: Decoder>(
        max_message: usize,
        make: impl Fn() -> D + Send + Sync + 'static,
    ) -> CustomFraming {
        CustomFraming {
            make: Arc::new(move || {
                Box::new(WithItems {
                    decoder: make(),
                    items: VecDeque::new(),
                    discarding: 0,
                }) as Box<dyn AnyDecoder>
            }),
            max_message,
            item: TypeTag::of::<D::Item>(),
        }
    }
}

impl fmt::Debug for CustomFraming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomFraming")
            .field("max_message", &self.max_message)
            .field("item", &self.item.name)
            .finish()
    }
}

/// A type, by id and by name (for the error that names it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TypeTag {
    pub(crate) id: TypeId,
    pub(crate) name: &'static str,
}

impl TypeTag {
    pub(crate) fn of<T: ?Sized + 'static>() -> TypeTag {
        TypeTag {
            id: TypeId::of::<T>(),
            name: std::any::type_name::<T>(),
        }
    }

    /// Bytes alone: what the built-in codecs make, and what every
    /// handler can take.
    pub(crate) fn bytes() -> TypeTag {
        TypeTag::of::<()>()
    }
}

/// Why a connection's bytes could not be cut into messages.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A message is, or is announced to be, longer than allowed.
    TooLong(FrameError),
    /// The bytes break the protocol. The text says how, in words fit for
    /// the peer (Redis sends it back as `-ERR Protocol error: ...`).
    Invalid(Cow<'static, str>),
}

impl DecodeError {
    /// A protocol violation described by `why`.
    pub fn invalid(why: impl Into<Cow<'static, str>>) -> DecodeError {
        DecodeError::Invalid(why.into())
    }
}

impl From<FrameError> for DecodeError {
    fn from(e: FrameError) -> DecodeError {
        DecodeError::TooLong(e)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLong(e) => e.fmt(f),
            DecodeError::Invalid(why) => write!(f, "protocol error: {why}"),
        }
    }
}

impl Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decode_error_reads_as_what_the_peer_did() {
        let invalid = DecodeError::invalid("expected SIZE n");
        assert_eq!(invalid.to_string(), "protocol error: expected SIZE n");
        let too_long = DecodeError::from(FrameError { len: 9, max: 8 });
        assert_eq!(
            too_long.to_string(),
            "message of 9 bytes exceeds the codec maximum of 8 bytes"
        );
    }

    #[test]
    fn custom_framing_shows_its_maximum() {
        struct Nothing;
        impl Decoder for Nothing {
            type Item = ();
            fn decode(&mut self, _buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
                Ok(None)
            }
        }
        let framing = CustomFraming::new(64, || Nothing);
        assert_eq!(
            format!("{framing:?}"),
            "CustomFraming { max_message: 64, item: \"()\" }"
        );
        // A decoder that keeps the default drops a partial message at the
        // end of input.
        assert_eq!((framing.make)().decode_eof(b"partial"), Ok(None));
    }

    /// Lines, each parsed into its length; `SKIP n` discards n bytes after
    /// its line.
    struct Counted;
    impl Decoder for Counted {
        type Item = usize;
        fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame<usize>>, DecodeError> {
            let Some(end) = buf.iter().position(|&b| b == b'\n') else {
                return Ok(None);
            };
            if let Some(n) = buf[..end].strip_prefix(b"SKIP ") {
                let n: usize = std::str::from_utf8(n).unwrap().parse().unwrap();
                return Ok(Some(Frame::discard(end + 1 + n)));
            }
            Ok(Some(Frame::with_item(0..end, end + 1, end)))
        }
        fn decode_eof(&mut self, buf: &[u8]) -> Result<Option<Frame<usize>>, DecodeError> {
            Ok((!buf.is_empty()).then(|| Frame::with_item(0..buf.len(), buf.len(), buf.len())))
        }
    }

    fn items(decoder: &mut dyn AnyDecoder) -> Vec<usize> {
        let queue = decoder.items().downcast_mut::<VecDeque<usize>>().unwrap();
        queue.drain(..).collect()
    }

    #[test]
    fn items_wait_in_order_beside_their_frames() {
        let mut decoder = (CustomFraming::new(64, || Counted).make)();
        let first = decoder.decode(b"abc\nde\n").unwrap().unwrap();
        assert_eq!(
            (first.payload(), first.consumed(), first.is_discard()),
            (0..3, 4, false)
        );
        let second = decoder.decode(b"de\n").unwrap().unwrap();
        assert_eq!(second.consumed(), 3);
        assert_eq!(decoder.decode(b"par").unwrap(), None);
        let last = decoder.decode_eof(b"tial").unwrap().unwrap();
        assert_eq!(last.consumed(), 4);
        assert_eq!(decoder.decode_eof(b"").unwrap(), None);
        assert_eq!(items(&mut *decoder), [3, 2, 4]);
        // A handler of bytes alone drops each item as its message goes.
        decoder.decode(b"x\n").unwrap();
        decoder.decode(b"yz\n").unwrap();
        decoder.skip_item();
        assert_eq!(items(&mut *decoder), [2]);
    }

    #[test]
    fn a_discard_longer_than_the_buffer_is_dropped_as_it_arrives() {
        let mut decoder = (CustomFraming::new(64, || Counted).make)();
        // "SKIP 10\n" and 10 bytes: 18 in all, 12 here.
        let first = decoder.decode(b"SKIP 10\nabcd").unwrap().unwrap();
        assert!(first.is_discard());
        assert_eq!(first.consumed(), 12, "what is buffered of it");
        assert!(decoder.is_discarding());
        // Nothing new: nothing to drop, the decoder not asked.
        assert_eq!(decoder.decode(b"").unwrap(), None);
        // The input ended inside it: what came is no message.
        assert_eq!(decoder.decode_eof(b"xy").unwrap(), None);
        let second = decoder.decode(b"efg").unwrap().unwrap();
        assert_eq!((second.consumed(), second.is_discard()), (3, true));
        assert!(decoder.is_discarding());
        // The last 3 bytes of it, then a line of its own.
        let third = decoder.decode(b"hijok\n").unwrap().unwrap();
        assert_eq!((third.consumed(), third.is_discard()), (3, true));
        assert!(!decoder.is_discarding());
        let line = decoder.decode(b"ok\n").unwrap().unwrap();
        assert_eq!((line.payload(), line.is_discard()), (0..2, false));
        assert_eq!(items(&mut *decoder), [2], "a discard has no item");
        // One that fits is dropped whole, at once.
        let whole = decoder.decode(b"SKIP 2\nxyz\n").unwrap().unwrap();
        assert_eq!(whole.consumed(), 9);
        assert!(!decoder.is_discarding());
    }
}
