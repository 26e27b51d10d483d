//! The http_server example's HTTP/1.1 request decoder and request reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selectloop::codec::Decoder;

// The example's modules, at the paths its own `crate::` names expect.
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
    if whole.error.is_none() && split.error.is_none() {
        assert_eq!(whole.payloads, split.payloads, "framed differently when split");
    }
    // Every framed request reads back, but for a target the server does
    // not route (authority- or asterisk-form); a body framed apart (after
    // Expect: 100-continue) lies within its frame.
    let frames = whole.payloads.iter().flatten();
    for (frame, item) in frames.zip(&whole.items) {
        match item {
            http::HttpItem::Body(pieces) => {
                let _ = http::body_of(frame, pieces);
            }
            http::HttpItem::Request(parsed) => {
                if http::Request::read(frame, parsed).is_none() {
                    let mut headers = [httparse::EMPTY_HEADER; 64];
                    let mut head = httparse::Request::new(&mut headers);
                    assert!(head.parse(frame).is_ok(), "framed but unparsable");
                    let target = head.path.unwrap_or("");
                    assert!(framing::target_path(target).is_none(), "framed but unreadable");
                }
            }
        }
    }
});
