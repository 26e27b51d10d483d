//! Framing of your own: the [`Decoder`] trait a protocol implements to cut
//! a connection's bytes into messages (compare tokio-util's `Decoder` and
//! Netty's `ByteToMessageDecoder`), without copying them.

use std::borrow::Cow;
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
/// returns is handed to [`Handler::on_message`](crate::Handler::on_message)
/// as a slice of the read buffer, never copied.
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
    /// Finds the first complete message at the start of `buf`: `Ok(Some)`
    /// with where its payload lies and how many bytes it used up,
    /// `Ok(None)` if more bytes are needed (the same bytes, and more, come
    /// back next time).
    ///
    /// # Errors
    ///
    /// The bytes break the protocol: the connection reads nothing more.
    fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame>, DecodeError>;

    /// The peer ended its output with `buf` still unframed. The default
    /// drops it: a partial message is not a message.
    ///
    /// # Errors
    ///
    /// As [`decode`](Decoder::decode).
    fn decode_eof(&mut self, buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
        let _ = buf;
        Ok(None)
    }
}

/// Makes one [`Decoder`] per connection.
pub(crate) type DecoderFactory = Arc<dyn Fn() -> Box<dyn Decoder> + Send + Sync>;

/// A custom framing as [`Config`](crate::Config) keeps it: the factory and
/// the largest message the loop lets through.
#[derive(Clone)]
pub(crate) struct CustomFraming {
    pub(crate) make: DecoderFactory,
    pub(crate) max_message: usize,
}

impl fmt::Debug for CustomFraming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomFraming")
            .field("max_message", &self.max_message)
            .finish()
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
            fn decode(&mut self, _buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
                Ok(None)
            }
        }
        let framing = CustomFraming {
            make: Arc::new(|| Box::new(Nothing)),
            max_message: 64,
        };
        assert_eq!(format!("{framing:?}"), "CustomFraming { max_message: 64 }");
        // A decoder that keeps the default drops a partial message at the
        // end of input.
        assert_eq!((framing.make)().decode_eof(b"partial"), Ok(None));
    }
}
