//! The memcached_server example's text-protocol decoder: any bytes, any
//! split, the same commands, and every key and value within its frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selectloop::codec::Decoder;

// The example's module, at the path its own `crate::` names expect.
#[path = "../../examples/memcached_server/protocol.rs"]
#[allow(dead_code)]
mod protocol;
#[path = "check.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    let (cuts, input) = check::split_input(data);
    let mut whole_decoder = protocol::MemcacheDecoder::new(64);
    let whole = check::decode_in_pieces(|b| whole_decoder.decode(b), input, &[]);
    let mut split_decoder = protocol::MemcacheDecoder::new(64);
    let split = check::decode_in_pieces(|b| split_decoder.decode(b), input, &cuts);
    if whole.error.is_none() && split.error.is_none() {
        assert_eq!(whole.payloads, split.payloads, "framed differently when split");
        assert_eq!(whole.items, split.items, "read differently when split");
    }
    let frames = whole.payloads.iter().flatten();
    for (frame, command) in frames.zip(&whole.items) {
        use protocol::Command;
        let ranges: Vec<&std::ops::Range<usize>> = match command {
            Command::Get { keys, .. } => keys.iter().collect(),
            Command::Store { key, value, .. } => vec![key, value],
            Command::TooLarge { key, .. }
            | Command::Delete { key, .. }
            | Command::Arith { key, .. }
            | Command::Touch { key, .. } => vec![key],
            _ => Vec::new(),
        };
        for range in ranges {
            assert!(range.end <= frame.len(), "a place outside its frame");
            assert!(range.len() <= frame.len());
        }
    }
});
