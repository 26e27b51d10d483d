//! The rules the loop holds every decoder to, whatever the decoder says:
//! an embedder's [`Decoder`] is trusted to cut frames, not to stay inside
//! the bytes it was given or under the maximum length.

use crate::codec::{AnyDecoder, DecodeError, Frame, FrameError};

/// A connection's own decoder (none: the configured codec frames it).
pub(crate) struct OwnDecoder(pub(super) Option<Box<dyn AnyDecoder>>);

impl std::fmt::Debug for OwnDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "custom" } else { "codec" })
    }
}

impl OwnDecoder {
    /// Whether bytes of a discard are still to arrive.
    pub(super) fn is_discarding(&self) -> bool {
        self.0.as_ref().is_some_and(|d| d.is_discarding())
    }
}

/// Holds a decoder's answer to the rules the loop enforces whatever the
/// decoder: a frame lies within the buffer and uses up at least one byte
/// (or the loop would ask forever), and no message, framed or still
/// incomplete, is longer than `max`. A discard uses at least one byte too,
/// and no more than is buffered (the decoder's wrapper cuts a longer one
/// into the part buffered and the rest, dropped as it arrives).
pub(super) fn checked(
    found: Option<Frame>,
    buffered: usize,
    max: usize,
) -> Result<Option<Frame>, DecodeError> {
    match found {
        Some(frame) if frame.is_discard() => {
            if frame.consumed() == 0 || frame.consumed() > buffered {
                return Err(DecodeError::invalid(
                    "the decoder discarded no bytes, or bytes it was not given",
                ));
            }
            Ok(Some(frame))
        }
        Some(frame) => {
            let payload = frame.payload();
            if frame.consumed() == 0
                || frame.consumed() > buffered
                || payload.start > payload.end
                || payload.end > frame.consumed()
            {
                return Err(DecodeError::invalid(
                    "the decoder returned a frame outside the bytes it was given",
                ));
            }
            if payload.len() > max {
                return Err(FrameError {
                    len: payload.len(),
                    max,
                }
                .into());
            }
            Ok(Some(frame))
        }
        None if buffered > max => Err(FrameError { len: buffered, max }.into()),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn too_long(result: Result<Option<Frame>, DecodeError>) -> (usize, usize) {
        match result {
            Err(DecodeError::TooLong(FrameError { len, max })) => (len, max),
            other => panic!("expected TooLong, got {other:?}"),
        }
    }

    fn invalid(result: Result<Option<Frame>, DecodeError>) -> bool {
        matches!(result, Err(DecodeError::Invalid(_)))
    }

    /// Each rule a decoder's frame is held to, at its edge: the last value
    /// allowed passes, the first one past it is refused.
    #[test]
    fn a_frame_must_lie_within_the_bytes_given_and_use_at_least_one() {
        // A frame that uses every byte given, its payload all of it.
        let whole = checked(Some(Frame::new(0..10, 10)), 10, 10).unwrap();
        assert_eq!(
            whole.map(|f| (f.payload(), f.consumed())),
            Some((0..10, 10))
        );
        // Consuming nothing would make the loop ask again forever.
        assert!(invalid(checked(Some(Frame::new(0..0, 0)), 10, 100)));
        // A frame of no payload that skips one byte is fine.
        assert!(checked(Some(Frame::new(0..0, 1)), 10, 100)
            .unwrap()
            .is_some());
        // Consuming one byte more than was buffered.
        assert!(invalid(checked(Some(Frame::new(0..5, 11)), 10, 100)));
        // A payload that starts after it ends.
        #[allow(clippy::reversed_empty_ranges)] // the mistake under test
        let backwards = 5..4;
        assert!(invalid(checked(Some(Frame::new(backwards, 6)), 10, 100)));
        // A payload that ends past what it consumed, by one.
        assert!(invalid(checked(Some(Frame::new(0..7, 6)), 10, 100)));
        assert!(checked(Some(Frame::new(2..6, 6)), 10, 100)
            .unwrap()
            .is_some());
    }

    #[test]
    fn no_message_framed_or_partial_passes_the_maximum() {
        // A payload of exactly the maximum passes; one byte more is refused,
        // with its length and the maximum.
        assert!(checked(Some(Frame::new(0..8, 9)), 20, 8).unwrap().is_some());
        assert_eq!(too_long(checked(Some(Frame::new(0..9, 10)), 20, 8)), (9, 8));
        // Framing overhead does not count: 8 bytes of payload in 12 consumed.
        assert!(checked(Some(Frame::new(2..10, 12)), 20, 8)
            .unwrap()
            .is_some());
        // No frame yet: the bytes buffered are the message so far. At the
        // maximum it may still finish; past it, it is refused.
        assert!(checked(None, 8, 8).unwrap().is_none());
        assert_eq!(too_long(checked(None, 9, 8)), (9, 8));
        assert!(checked(None, 0, 8).unwrap().is_none());
    }
}
