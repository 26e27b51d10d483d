//! What every fuzz target checks of a decoder, whatever the input: it never
//! panics, its frames lie within the bytes it was given and consume some,
//! and it frames the same messages however the input is split across reads.

use selectloop::codec::{DecodeError, Frame};

/// Decodes `input` fed in pieces cut at `cuts`, as the reactor feeds a
/// connection's reads: returns the payloads, and the error that ended it.
pub fn decode_in_pieces(
    mut decode: impl FnMut(&[u8]) -> Result<Option<Frame>, DecodeError>,
    input: &[u8],
    cuts: &[usize],
) -> (Vec<Vec<u8>>, Option<DecodeError>) {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(input.len());
    points.sort_unstable();
    let mut buffered = Vec::new();
    let mut messages = Vec::new();
    let mut start = 0;
    for end in points {
        buffered.extend_from_slice(&input[start..end.max(start)]);
        start = end.max(start);
        loop {
            match decode(&buffered) {
                Ok(Some(frame)) => {
                    let payload = frame.payload();
                    assert!(frame.consumed() > 0, "a frame consumed nothing");
                    assert!(frame.consumed() <= buffered.len(), "a frame past the buffer");
                    assert!(payload.start <= payload.end && payload.end <= frame.consumed());
                    messages.push(buffered[payload].to_vec());
                    buffered.drain(..frame.consumed());
                }
                Ok(None) => break,
                Err(e) => return (messages, Some(e)),
            }
        }
    }
    (messages, None)
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
