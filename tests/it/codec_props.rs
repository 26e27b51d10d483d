//! Framing must not depend on how the bytes were split across reads.
//!
//! Cases come from a small seeded generator (xorshift), so every run tries
//! the same cases and a failure names the case to replay; no property-test
//! framework is needed, and none is built for the examples.

use crate::util;

use util::BackendKind;

use selectloop::codec::{ByteOrder, Codec, HeaderWidth, LengthPrefixed, Lines};
use selectloop::Config;
use util::{connect, read_n, write_all, Echo, Server};

/// Feeds `wire` to `codec` in the pieces given by `cuts`, decoding whatever is
/// complete after each piece, as the reactor does after each read.
fn decode_in_pieces(codec: &Codec, wire: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut buffered = Vec::new();
    let mut messages = Vec::new();
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    points.push(wire.len());
    points.sort_unstable();
    for end in points {
        buffered.extend_from_slice(&wire[start..end.max(start)]);
        start = end.max(start);
        while let Some(frame) = codec.decode(&buffered).expect("valid input") {
            messages.push(buffered[frame.payload()].to_vec());
            buffered.drain(..frame.consumed());
        }
    }
    assert!(buffered.is_empty(), "bytes left over");
    messages
}

/// Marsaglia's xorshift64*: deterministic, good enough to spread cases.
struct Cases(u64);

impl Cases {
    fn new(seed: u64) -> Cases {
        Cases(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `range`.
    fn within(&mut self, range: std::ops::Range<usize>) -> usize {
        range.start + (self.next() % (range.end - range.start) as u64) as usize
    }

    fn codec(&mut self) -> Codec {
        match self.within(0..3) {
            0 => Codec::from(Lines::new(300)),
            1 => Codec::from(LengthPrefixed::new(300)),
            _ => Codec::from(
                LengthPrefixed::new(300)
                    .with_width(HeaderWidth::U16)
                    .with_order(ByteOrder::LittleEndian),
            ),
        }
    }

    /// Message bodies valid for every codec: no newline, at most 300 bytes,
    /// not ending in '\r' (lines would take it as part of a CRLF ending).
    fn bodies(&mut self) -> Vec<Vec<u8>> {
        (0..self.within(0..20))
            .map(|_| {
                let mut body: Vec<u8> = (0..self.within(0..300))
                    .map(|_| self.next() as u8)
                    .filter(|&b| b != b'\n')
                    .collect();
                if body.last() == Some(&b'\r') {
                    body.pop();
                }
                body
            })
            .collect()
    }

    fn cuts(&mut self, most: usize) -> Vec<usize> {
        (0..self.within(0..most))
            .map(|_| self.next() as usize)
            .collect()
    }
}

fn encode_all(codec: &Codec, messages: &[Vec<u8>]) -> Vec<u8> {
    let mut wire = Vec::new();
    for m in messages {
        codec.encode(m, &mut wire).unwrap();
    }
    wire
}

#[test]
fn decoding_is_independent_of_how_bytes_are_split() {
    for case in 0..500 {
        let mut cases = Cases::new(0x005e_1ec7 + case);
        let codec = cases.codec();
        let messages = cases.bodies();
        let cuts = cases.cuts(40);
        let wire = encode_all(&codec, &messages);
        assert_eq!(
            decode_in_pieces(&codec, &wire, &cuts),
            messages,
            "case {case}: {codec:?}, cuts {cuts:?}"
        );
    }
}

/// The same property through the reactor: tiny read buffers and budgets
/// make it cut and resume frames at every possible place.
fn reactor_echoes_the_same_messages_whatever_the_read_sizes(backend: BackendKind) {
    for case in 0..24 {
        let mut cases = Cases::new(0x0007_ead5 + case);
        let codec = cases.codec();
        let messages = cases.bodies();
        let buffer = cases.within(16..200);
        let budget = cases.within(1..150);
        let cuts = cases.cuts(10);
        let config = Config::new()
            .backend(backend)
            .codec(codec)
            .read_buffer_size(buffer)
            .read_budget(budget);
        let server = Server::start(config, Echo::default());
        let mut client = connect(server.addr);
        let wire = encode_all(&codec, &messages);
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        points.push(wire.len());
        points.sort_unstable();
        let mut start = 0;
        for end in points {
            write_all(&mut client, &wire[start..end.max(start)]);
            start = end.max(start);
        }
        // The echo is the same messages, framed the same way.
        assert_eq!(read_n(&mut client, wire.len()), wire, "case {case}");
        let stats = server.stop();
        assert_eq!(stats.messages, messages.len() as u64, "case {case}");
    }
}
per_backend!(reactor_echoes_the_same_messages_whatever_the_read_sizes);
