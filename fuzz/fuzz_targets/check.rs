//! What every fuzz target checks of a decoder, whatever the input: it never
//! panics, its frames lie within the bytes it was given and consume some,
//! and it frames the same messages however the input is split across reads.

use selectloop::codec::{DecodeError, Frame};

/// What a decoder made of an input: each message's payload, in order (a
/// discard shows as `None`), the items beside them, and the error that
/// ended it.
pub struct Decoded<T> {
    pub payloads: Vec<Option<Vec<u8>>>,
    pub items: Vec<T>,
    pub error: Option<DecodeError>,
}

/// Decodes `input` fed in pieces cut at `cuts`, as the reactor feeds a
/// connection's reads: a discard that reaches past the bytes buffered
/// drops the rest as it arrives, without asking the decoder.
pub fn decode_in_pieces<T>(
    mut decode: impl FnMut(&[u8]) -> Result<Option<Frame<T>>, DecodeError>,
    input: &[u8],
    cuts: &[usize],
) -> Decoded<T> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(input.len());
    points.sort_unstable();
    let mut buffered = Vec::new();
    let mut decoded = Decoded { payloads: Vec::new(), items: Vec::new(), error: None };
    let mut skip = 0;
    let mut start = 0;
    for end in points {
        buffered.extend_from_slice(&input[start..end.max(start)]);
        start = end.max(start);
        let dropped = skip.min(buffered.len());
        buffered.drain(..dropped);
        skip -= dropped;
        while skip == 0 {
            match decode(&buffered) {
                Ok(Some(frame)) if frame.is_discard() => {
                    assert!(frame.consumed() > 0, "a discard of nothing");
                    let now = frame.consumed().min(buffered.len());
                    skip = frame.consumed() - now;
                    buffered.drain(..now);
                    decoded.payloads.push(None);
                }
                Ok(Some(frame)) => {
                    let payload = frame.payload();
                    assert!(frame.consumed() > 0, "a frame consumed nothing");
                    assert!(frame.consumed() <= buffered.len(), "a frame past the buffer");
                    assert!(payload.start <= payload.end && payload.end <= frame.consumed());
                    decoded.payloads.push(Some(buffered[payload].to_vec()));
                    buffered.drain(..frame.consumed());
                    decoded.items.extend(frame.into_item());
                }
                Ok(None) => break,
                Err(e) => {
                    decoded.error = Some(e);
                    return decoded;
                }
            }
        }
    }
    decoded
}

/// Splits the fuzzer's bytes: the first byte says how many cut points
/// follow (two bytes each); the rest is the input.
pub fn split_input(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let n = (n as usize % 8).min(rest.len() / 2);
    let cuts = rest[..2 * n]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]) as usize)
        .collect();
    (cuts, &rest[2 * n..])
}
