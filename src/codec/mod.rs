//! Framing: how the byte stream of a connection is cut into messages.
//!
//! TCP carries bytes, not messages. The Python server treats whatever one
//! `recv(1024)` returned as a message, so `b"one"` and `b"two"` sent back to back
//! may be answered as one `b"response: onetwo"`. A [`Codec`] makes the boundary
//! explicit:
//!
//! - [`Chunks`]: each read's bytes are the message, cut into pieces of at most
//!   `max` bytes. This is the seed's `recv(1024)` kept on purpose, for the
//!   faithful port.
//! - [`Lines`]: messages end with `\n`; a `\r` before it is dropped too.
//! - [`LengthPrefixed`]: a `u16` or `u32` length header (big or little endian)
//!   then that many bytes, the framing the seed notes build with `struct.pack`.
//!
//! Every codec has a maximum message length. A peer that exceeds it gets a
//! [`FrameError`], and the reactor closes that connection only, with
//! [`CloseReason::FrameTooLong`](crate::CloseReason::FrameTooLong).
//!
//! Decoding gives the same messages however the bytes were split across reads
//! (for [`Lines`] and [`LengthPrefixed`]; [`Chunks`] is by definition the split).
//!
//! A protocol of your own implements [`Decoder`] and is given to
//! [`Config::decoder`](crate::Config::decoder): one decoder per connection,
//! which may keep state, and sees the connection's buffered bytes in place.
//!
//! # Examples
//!
//! ```
//! use selectloop::codec::{Codec, Lines};
//!
//! let codec = Codec::from(Lines::new(64));
//! let buf = b"one\r\ntwo\nthr";
//! let first = codec.decode(buf).unwrap().unwrap();
//! assert_eq!(&buf[first.payload()], b"one");
//! let rest = &buf[first.consumed()..];
//! let second = codec.decode(rest).unwrap().unwrap();
//! assert_eq!(&rest[second.payload()], b"two");
//! // "thr" has no end yet: the codec waits for more bytes.
//! assert!(codec.decode(&rest[second.consumed()..]).unwrap().is_none());
//! ```

use std::error::Error;
use std::fmt;
use std::ops::Range;

mod decoder;
mod kinds;

pub(crate) use decoder::{AnyDecoder, CustomFraming, TypeTag};
pub use decoder::{DecodeError, Decoder};
pub use kinds::{ByteOrder, Chunks, HeaderWidth, LengthPrefixed, Lines};

/// No codec accepts messages of 1 GiB or more: no peer should make a
/// server buffer that much for one message.
pub const MAX_MESSAGE: usize = (1 << 30) - 1;

/// Where one decoded message lies in the buffer given to [`Codec::decode`]
/// or [`Decoder::decode`], and what a decoder made of it.
///
/// A frame is one of two things:
///
/// - a **message**: its payload is a range of the buffer, handed to the
///   handler as a slice (never copied), with the item the decoder parsed
///   (`T`, nothing for the built-in codecs);
/// - a **discard** ([`Frame::discard`]): bytes the protocol says to skip,
///   such as a value the server refused, dropped by the loop as they
///   arrive, even those not read yet. No hook hears of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<T = ()> {
    start: usize,
    end: usize,
    consumed: usize,
    /// `None`: a discard.
    item: Option<T>,
}

impl Frame {
    /// A message whose bytes are `payload` of the buffer the decoder was
    /// given, and which used up the first `consumed` bytes of it (header
    /// and delimiter included). The loop checks both against the buffer: a
    /// frame that does not fit, or consumes nothing, closes the connection.
    pub fn new(payload: Range<usize>, consumed: usize) -> Frame {
        Frame::with_item(payload, consumed, ())
    }
}

impl<T> Frame<T> {
    /// A message as [`Frame::new`] makes it, with what the decoder parsed:
    /// [`Handler::on_item`](crate::Handler::on_item) receives `item` with
    /// the payload, so the handler never parses the bytes again. An item
    /// may hold offsets into the payload rather than copies of its bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use selectloop::codec::Frame;
    ///
    /// // "GET key\n": the command parsed, the key left in the payload.
    /// #[derive(Debug, PartialEq)]
    /// enum Command { Get { key: std::ops::Range<usize> } }
    ///
    /// let frame = Frame::with_item(0..7, 8, Command::Get { key: 4..7 });
    /// assert_eq!(frame.item(), Some(&Command::Get { key: 4..7 }));
    /// assert_eq!(frame.consumed(), 8);
    /// ```
    pub fn with_item(payload: Range<usize>, consumed: usize, item: T) -> Frame<T> {
        Frame {
            start: payload.start,
            end: payload.end,
            consumed,
            item: Some(item),
        }
    }

    /// `len` bytes, starting at the front of the buffer, that are no
    /// message: the loop drops them and hands nothing to the handler.
    /// `len` may be more than the buffer holds (a 1 MiB value announced
    /// by a command the server refuses): the bytes still to come are
    /// dropped as they arrive, never buffered, and the decoder is asked
    /// again only after the last of them.
    ///
    /// # Examples
    ///
    /// ```
    /// use selectloop::codec::Frame;
    ///
    /// let skip: Frame = Frame::discard(1_048_578);
    /// assert!(skip.is_discard());
    /// assert_eq!(skip.consumed(), 1_048_578);
    /// assert_eq!(skip.payload(), 0..0);
    /// ```
    pub fn discard(len: usize) -> Frame<T> {
        Frame {
            start: 0,
            end: 0,
            consumed: len,
            item: None,
        }
    }

    /// The message bytes, without header or delimiter (empty for a
    /// discard).
    pub fn payload(&self) -> Range<usize> {
        self.start..self.end
    }

    /// How many bytes of the buffer this message used up, header and
    /// delimiter included; the next message starts there. For a discard,
    /// how many bytes to drop.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// What the decoder parsed; `None` for a discard.
    pub fn item(&self) -> Option<&T> {
        self.item.as_ref()
    }

    /// Whether this is a [`discard`](Frame::discard) rather than a message.
    pub fn is_discard(&self) -> bool {
        self.item.is_none()
    }

    /// Takes the item out (`None` for a discard).
    pub fn into_item(self) -> Option<T> {
        self.item
    }
}

/// A peer sent a message longer than the codec allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameError {
    /// The length the peer announced (length prefix) or has sent so far
    /// without a delimiter (lines).
    pub len: usize,
    /// The codec's maximum.
    pub max: usize,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "message of {} bytes exceeds the codec maximum of {} bytes",
            self.len, self.max
        )
    }
}

impl Error for FrameError {}

/// One of the framings above; what [`Config::codec`](crate::Config::codec) takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// See [`Chunks`].
    Chunks(Chunks),
    /// See [`Lines`].
    Lines(Lines),
    /// See [`LengthPrefixed`].
    LengthPrefixed(LengthPrefixed),
}

impl From<Chunks> for Codec {
    fn from(c: Chunks) -> Codec {
        Codec::Chunks(c)
    }
}

impl From<Lines> for Codec {
    fn from(c: Lines) -> Codec {
        Codec::Lines(c)
    }
}

impl From<LengthPrefixed> for Codec {
    fn from(c: LengthPrefixed) -> Codec {
        Codec::LengthPrefixed(c)
    }
}

impl Default for Codec {
    /// Lines of at most 64 KiB.
    fn default() -> Codec {
        Codec::Lines(Lines::new(64 * 1024))
    }
}

impl Codec {
    /// The longest message this codec accepts.
    pub fn max_message(&self) -> usize {
        match self {
            Codec::Chunks(c) => c.max(),
            Codec::Lines(c) => c.max(),
            Codec::LengthPrefixed(c) => c.max(),
        }
    }

    /// Finds the first complete message at the start of `buf`.
    ///
    /// Returns `Ok(None)` while the message is incomplete. For [`Chunks`], the
    /// first `max` bytes of a non-empty `buf` are one message (the caller
    /// gives it the bytes of one read).
    ///
    /// # Errors
    ///
    /// [`FrameError`] when the message is, or is announced to be, longer than
    /// the maximum; the stream cannot be resynchronised after that.
    pub fn decode(&self, buf: &[u8]) -> Result<Option<Frame>, FrameError> {
        let mut scanned = 0;
        self.decode_from(buf, &mut scanned)
    }

    /// Like [`decode`](Codec::decode), but skips the first `*scanned` bytes when
    /// looking for a line end, and records how far it looked. Without this, a
    /// long line arriving a byte at a time would be scanned quadratically.
    pub(crate) fn decode_from(
        &self,
        buf: &[u8],
        scanned: &mut usize,
    ) -> Result<Option<Frame>, FrameError> {
        match self {
            Codec::Chunks(c) => {
                if buf.is_empty() {
                    return Ok(None);
                }
                let end = buf.len().min(c.max());
                Ok(Some(Frame::new(0..end, end)))
            }
            Codec::Lines(c) => {
                let from = (*scanned).min(buf.len());
                match buf[from..].iter().position(|&b| b == b'\n') {
                    Some(offset) => {
                        let newline = from + offset;
                        let end = if newline > 0 && buf[newline - 1] == b'\r' {
                            newline - 1
                        } else {
                            newline
                        };
                        if end > c.max() {
                            return Err(FrameError {
                                len: end,
                                max: c.max(),
                            });
                        }
                        *scanned = 0;
                        Ok(Some(Frame::new(0..end, newline + 1)))
                    }
                    None => {
                        // One byte of slack for a '\r' whose '\n' is on its way.
                        let pending = if buf.last() == Some(&b'\r') {
                            buf.len() - 1
                        } else {
                            buf.len()
                        };
                        if pending > c.max() {
                            return Err(FrameError {
                                len: pending,
                                max: c.max(),
                            });
                        }
                        *scanned = buf.len();
                        Ok(None)
                    }
                }
            }
            Codec::LengthPrefixed(c) => {
                let header = c.header_len();
                if buf.len() < header {
                    return Ok(None);
                }
                let len = c.read_header(&buf[..header]);
                if len > c.max() {
                    return Err(FrameError { len, max: c.max() });
                }
                if buf.len() < header + len {
                    return Ok(None);
                }
                Ok(Some(Frame::new(header..header + len, header + len)))
            }
        }
    }

    /// What is left when the peer ends its output in the middle of a message:
    /// a last line without its `\n` is still a line (as `BufRead::lines` reads
    /// it); a partial chunk or length-prefixed frame is not a message.
    pub(crate) fn decode_at_end(&self, buf: &[u8]) -> Option<Frame> {
        match self {
            Codec::Lines(c) if !buf.is_empty() && buf.len() <= c.max() => {
                Some(Frame::new(0..buf.len(), buf.len()))
            }
            _ => None,
        }
    }

    /// Appends `payload` to `out` framed for the peer: a `\n` after it for
    /// [`Lines`], a length header before it for [`LengthPrefixed`], nothing
    /// for [`Chunks`].
    ///
    /// # Errors
    ///
    /// [`FrameError`] if `payload` is longer than this codec's maximum, so the
    /// peer could not decode it (nothing is appended).
    ///
    /// # Examples
    ///
    /// ```
    /// use selectloop::codec::{Codec, LengthPrefixed, HeaderWidth};
    ///
    /// let codec = Codec::from(LengthPrefixed::new(1024).with_width(HeaderWidth::U16));
    /// let mut out = Vec::new();
    /// codec.encode(b"hi", &mut out).unwrap();
    /// assert_eq!(out, [0, 2, b'h', b'i']);
    /// ```
    pub fn encode(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
        let max = self.max_message();
        if payload.len() > max {
            return Err(FrameError {
                len: payload.len(),
                max,
            });
        }
        match self {
            Codec::Chunks(_) => out.extend_from_slice(payload),
            Codec::Lines(_) => {
                out.extend_from_slice(payload);
                out.push(b'\n');
            }
            Codec::LengthPrefixed(c) => {
                c.write_header(payload.len(), out);
                out.extend_from_slice(payload);
            }
        }
        Ok(())
    }

    /// The header and trailer [`encode`](Codec::encode) puts around a payload
    /// of `len` bytes, without allocating: `(header buffer, header length,
    /// trailer)`.
    pub(crate) fn frame_parts(&self, len: usize) -> ([u8; 4], usize, &'static [u8]) {
        match self {
            Codec::Chunks(_) => ([0; 4], 0, b""),
            Codec::Lines(_) => ([0; 4], 0, b"\n"),
            Codec::LengthPrefixed(c) => {
                let mut bytes = [0u8; 4];
                let n = c.header_len();
                c.write_header_into(len, &mut bytes[..n]);
                (bytes, n, b"")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &Codec, mut buf: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut out = Vec::new();
        while let Some(frame) = codec.decode(buf)? {
            out.push(buf[frame.payload()].to_vec());
            buf = &buf[frame.consumed()..];
        }
        Ok(out)
    }

    #[test]
    fn lines_tolerate_crlf_and_keep_empty_lines() {
        let codec = Codec::from(Lines::new(16));
        let got = decode_all(&codec, b"a\r\n\nb\nrest").unwrap();
        assert_eq!(got, [b"a".to_vec(), Vec::new(), b"b".to_vec()]);
    }

    #[test]
    fn lines_reject_a_long_line_before_its_end_arrives() {
        let codec = Codec::from(Lines::new(4));
        assert_eq!(codec.decode(b"abcd\r").unwrap(), None);
        assert_eq!(codec.decode(b"abcde"), Err(FrameError { len: 5, max: 4 }));
        assert_eq!(codec.decode(b"abcde\n"), Err(FrameError { len: 5, max: 4 }));
    }

    #[test]
    fn length_prefix_in_each_width_and_order() {
        for width in [HeaderWidth::U16, HeaderWidth::U32] {
            for order in [ByteOrder::BigEndian, ByteOrder::LittleEndian] {
                let codec =
                    Codec::from(LengthPrefixed::new(100).with_width(width).with_order(order));
                let mut wire = Vec::new();
                codec.encode(b"hello", &mut wire).unwrap();
                codec.encode(b"", &mut wire).unwrap();
                let got = decode_all(&codec, &wire).unwrap();
                assert_eq!(got, [b"hello".to_vec(), Vec::new()], "{width:?} {order:?}");
            }
        }
    }

    #[test]
    fn length_prefix_rejects_an_announced_oversize_frame_at_once() {
        let codec = Codec::from(LengthPrefixed::new(10));
        assert_eq!(
            codec.decode(&[0, 0, 0, 11]),
            Err(FrameError { len: 11, max: 10 })
        );
    }

    #[test]
    fn chunks_take_everything_up_to_max() {
        let codec = Codec::from(Chunks::new(3));
        let frame = codec.decode(b"abcdef").unwrap().unwrap();
        assert_eq!(frame.payload(), 0..3);
        assert_eq!(codec.decode(b"").unwrap(), None);
    }

    /// Each maximum at its edge: a message of exactly the maximum passes,
    /// one byte more is refused, whichever codec.
    #[test]
    fn a_message_of_exactly_the_maximum_passes_and_one_byte_more_does_not() {
        let lines = Codec::from(Lines::new(4));
        let frame = lines.decode(b"abcd\n").unwrap().unwrap();
        assert_eq!((frame.payload(), frame.consumed()), (0..4, 5));
        assert_eq!(lines.decode(b"abcde\n"), Err(FrameError { len: 5, max: 4 }));
        let prefixed = Codec::from(LengthPrefixed::new(10));
        let mut wire = vec![0, 0, 0, 10];
        wire.extend_from_slice(b"0123456789");
        let frame = prefixed.decode(&wire).unwrap().unwrap();
        assert_eq!((frame.payload(), frame.consumed()), (4..14, 14));
        assert_eq!(
            prefixed.decode(&[0, 0, 0, 10]),
            Ok(None),
            "announced, not arrived"
        );
    }

    /// No codec accepts a message of 1 GiB, however large a maximum it is
    /// given.
    #[test]
    fn no_codec_reaches_a_gibibyte() {
        for codec in [
            Codec::from(Lines::new(usize::MAX)),
            Codec::from(Chunks::new(usize::MAX)),
            Codec::from(LengthPrefixed::new(usize::MAX)),
        ] {
            assert!(codec.max_message() < 1 << 30, "{codec:?}");
            assert_eq!(codec.max_message(), (1 << 30) - 1, "{codec:?}");
        }
        let prefixed = Codec::from(LengthPrefixed::new(usize::MAX));
        assert_eq!(
            prefixed.decode(&(1u32 << 30).to_be_bytes()),
            Err(FrameError {
                len: 1 << 30,
                max: (1 << 30) - 1
            })
        );
    }

    /// The end of input: a last line without its newline is a line (up to
    /// the maximum); nothing left, or a partial chunk or frame, is not.
    #[test]
    fn at_the_end_of_input_only_a_last_line_counts() {
        let lines = Codec::from(Lines::new(4));
        let last = lines.decode_at_end(b"abcd").expect("a last line");
        assert_eq!((last.payload(), last.consumed()), (0..4, 4));
        assert_eq!(lines.decode_at_end(b"abcde"), None, "over the maximum");
        assert_eq!(lines.decode_at_end(b""), None, "nothing left");
        assert_eq!(Codec::from(Chunks::new(4)).decode_at_end(b"ab"), None);
        assert_eq!(
            Codec::from(LengthPrefixed::new(4)).decode_at_end(&[0, 0]),
            None
        );
    }

    #[test]
    fn encode_takes_exactly_the_maximum() {
        let codec = Codec::from(Lines::new(3));
        let mut out = Vec::new();
        codec.encode(b"abc", &mut out).unwrap();
        assert_eq!(out, b"abc\n");
        assert_eq!(
            codec.encode(b"abcd", &mut out),
            Err(FrameError { len: 4, max: 3 })
        );
    }

    #[test]
    fn a_frame_error_says_both_lengths() {
        let text = FrameError { len: 70, max: 64 }.to_string();
        assert_eq!(
            text,
            "message of 70 bytes exceeds the codec maximum of 64 bytes"
        );
    }

    #[test]
    fn encode_refuses_what_the_peer_could_not_decode() {
        let codec = Codec::from(Lines::new(2));
        let mut out = Vec::new();
        assert!(codec.encode(b"abc", &mut out).is_err());
        assert!(out.is_empty());
    }
}
