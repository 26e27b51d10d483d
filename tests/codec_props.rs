//! Framing must not depend on how the bytes were split across reads.

mod util;

use proptest::prelude::*;
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

fn codecs() -> impl Strategy<Value = Codec> {
    prop_oneof![
        Just(Codec::from(Lines::new(300))),
        Just(Codec::from(LengthPrefixed::new(300))),
        Just(Codec::from(
            LengthPrefixed::new(300)
                .with_width(HeaderWidth::U16)
                .with_order(ByteOrder::LittleEndian)
        )),
    ]
}

/// Message bodies valid for every codec above: no newline, at most 300 bytes.
fn bodies() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(
        prop::collection::vec(
            any::<u8>().prop_filter("no newline", |b| *b != b'\n'),
            0..300,
        ),
        0..20,
    )
    .prop_map(|bodies| {
        // A body ending in '\r' would lose it to the CRLF tolerance of lines.
        bodies
            .into_iter()
            .map(|mut b| {
                if b.last() == Some(&b'\r') {
                    b.pop();
                }
                b
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn decoding_is_independent_of_how_bytes_are_split(
        codec in codecs(),
        messages in bodies(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut wire = Vec::new();
        for m in &messages {
            codec.encode(m, &mut wire).unwrap();
        }
        prop_assert_eq!(decode_in_pieces(&codec, &wire, &cuts), messages);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The same property through the reactor: tiny read buffers and budgets
    /// make it cut and resume frames at every possible place.
    #[test]
    fn reactor_echoes_the_same_messages_whatever_the_read_sizes(
        codec in codecs(),
        messages in bodies(),
        buffer in 64usize..200,
        budget in 1usize..150,
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let config = Config::new().codec(codec).read_buffer_size(buffer).read_budget(budget);
        let server = Server::start(config, Echo::default());
        let mut client = connect(server.addr);
        let mut wire = Vec::new();
        for m in &messages {
            codec.encode(m, &mut wire).unwrap();
        }
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        points.push(wire.len());
        points.sort_unstable();
        let mut start = 0;
        for end in points {
            write_all(&mut client, &wire[start..end.max(start)]);
            start = end.max(start);
        }
        // The echo is the same messages, framed the same way.
        prop_assert_eq!(read_n(&mut client, wire.len()), wire);
        let stats = server.stop();
        prop_assert_eq!(stats.messages, messages.len() as u64);
    }
}
