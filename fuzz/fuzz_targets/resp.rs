//! The resp_server example's RESP2 decoder and argument reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selectloop::codec::Decoder;

// The example's modules, at the paths its own `crate::` names expect.
#[path = "../../examples/resp_server/inline.rs"]
mod inline;
#[path = "../../examples/resp_server/resp.rs"]
#[allow(dead_code)]
mod resp;
#[path = "check.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    let (cuts, input) = check::split_input(data);
    let limits = resp::Limits {
        max_multibulk: 64,
        max_bulk: 1024,
        max_inline: 1024,
    };
    let mut whole_decoder = resp::RespDecoder::new(limits);
    let whole = check::decode_in_pieces(|b| whole_decoder.decode(b), input, &[]);
    let mut split_decoder = resp::RespDecoder::new(limits);
    let split = check::decode_in_pieces(|b| split_decoder.decode(b), input, &cuts);
    if whole.error.is_none() && split.error.is_none() {
        assert_eq!(whole.payloads, split.payloads, "framed differently when split");
        assert_eq!(whole.items, split.items, "read differently when split");
    }
    // Every argument the decoder found lies within its request.
    let requests = whole.payloads.iter().flatten();
    for (request, args) in requests.zip(&whole.items) {
        for i in 0..args.len() {
            let _ = args.get(request, i);
        }
    }
});
