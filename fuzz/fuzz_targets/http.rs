//! The http_server example's HTTP/1.1 request decoder and request reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selectloop::codec::Decoder;

#[path = "../../examples/http_server/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "check.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    let (cuts, input) = check::split_input(data);
    let limits = http::Limits {
        max_header: 512,
        max_body: 512,
    };
    let mut whole_decoder = http::HttpDecoder::new(limits);
    let whole = check::decode_in_pieces(|b| whole_decoder.decode(b), input, &[]);
    let mut split_decoder = http::HttpDecoder::new(limits);
    let split = check::decode_in_pieces(|b| split_decoder.decode(b), input, &cuts);
    if whole.1.is_none() && split.1.is_none() {
        assert_eq!(whole.0, split.0, "framed differently when split");
    }
    // Every framed request can be read back.
    for request in &whole.0 {
        assert!(http::Request::parse(request).is_some(), "framed but unreadable");
    }
});
