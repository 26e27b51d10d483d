//! The http_server example's request decoder beside a reference framer
//! written from RFC 9112's ABNF (`fuzz/reference/http_rfc.rs`): for any
//! input, both find the same request boundaries. (Where one refuses bytes
//! the other still waits on, neither frames a request out of them.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use selectloop::codec::Decoder;

#[path = "../../examples/http_server/chunked.rs"]
#[allow(dead_code)]
mod chunked;
#[path = "../../examples/http_server/framing.rs"]
#[allow(dead_code)]
mod framing;
#[path = "../../examples/http_server/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "../../examples/http_server/validators.rs"]
#[allow(dead_code)]
mod validators;
#[path = "../reference/http_rfc.rs"]
mod reference;

fuzz_target!(|input: &[u8]| {
    let mut decoder = http::HttpDecoder::new(http::Limits {
        max_header: 512,
        max_body: 512,
    });
    let mut ends = Vec::new();
    let mut at = 0;
    while let Ok(Some(frame)) = decoder.decode(&input[at..]) {
        at += frame.consumed();
        ends.push(at);
    }
    let limits = reference::Limits {
        max_header: 512,
        max_body: 512,
    };
    let (reference_ends, _) = reference::frame_all(input, limits);
    assert_eq!(ends, reference_ends, "the decoder and the RFC reference frame differently");
});
