//! The decoder beside a reference written straight from RFC 9112's ABNF
//! (`fuzz/reference/http_rfc.rs`, also the oracle of the `http_differential`
//! fuzz target): on the smuggling vectors and on many mutated requests,
//! both find the same request boundaries. Where one refuses bytes the other
//! still waits on, neither frames a request out of them, so no boundary
//! differs; that is the property compared.

#[path = "../../fuzz/reference/http_rfc.rs"]
#[allow(dead_code)]
mod reference;

use selectloop::codec::Decoder;

use crate::http::{HttpDecoder, Limits};

const LIMITS: Limits = Limits {
    max_header: 512,
    max_body: 512,
};

/// Where the server's decoder ends each request of `input` (given at once).
fn decoder_ends(input: &[u8]) -> Vec<usize> {
    let mut decoder = HttpDecoder::new(LIMITS);
    let mut ends = Vec::new();
    let mut at = 0;
    while let Ok(Some(frame)) = decoder.decode(&input[at..]) {
        at += frame.consumed();
        ends.push(at);
    }
    ends
}

fn reference_ends(input: &[u8]) -> Vec<usize> {
    let limits = reference::Limits {
        max_header: LIMITS.max_header,
        max_body: LIMITS.max_body,
    };
    reference::frame_all(input, limits).0
}

fn assert_same_boundaries(input: &[u8]) {
    assert_eq!(
        decoder_ends(input),
        reference_ends(input),
        "{:?}",
        String::from_utf8_lossy(input)
    );
}

/// Well-formed requests, the material the mutations start from.
const SEEDS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
      3;x=\"q\"\r\nabc\r\n0\r\nT: v\r\n\r\n",
    b"PUT /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
    b"GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"\r\nGET http://a/x HTTP/1.1\r\nHost: a:80\r\n\r\n",
];

/// Bytes and pieces that matter to framing, for the mutations to insert.
const PIECES: &[&[u8]] = &[
    b"\r",
    b"\n",
    b"\r\n",
    b" ",
    b"\t",
    b":",
    b";",
    b"=",
    b"\"",
    b"\\",
    b",",
    b"0",
    b"1",
    b"a",
    b"f",
    b"\0",
    b"\x80",
    b"\xff",
    "\u{e9}".as_bytes(),
    "\u{3000}".as_bytes(),
    b"+",
    b"-",
    b"chunked",
    b"\r\n\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: 3\r\n",
    b"Host: b\r\n",
    b"Expect: 100-continue\r\n",
    b"HTTP/1.0",
    b"0\r\n\r\n",
    b"5\r\nhello\r\n",
];

/// A small, seeded generator: the same inputs every run.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Two or three seeds back to back, then a few random edits.
fn mutated(rng: &mut XorShift) -> Vec<u8> {
    let mut input = Vec::new();
    for _ in 0..2 + rng.below(2) {
        input.extend_from_slice(SEEDS[rng.below(SEEDS.len())]);
    }
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(3) {
            0 => {
                let piece = PIECES[rng.below(PIECES.len())];
                input.splice(at..at, piece.iter().copied());
            }
            1 if at < input.len() => {
                let len = (1 + rng.below(4)).min(input.len() - at);
                input.drain(at..at + len);
            }
            _ if at < input.len() => input[at] = PIECES[rng.below(PIECES.len())][0],
            _ => {}
        }
    }
    input
}

#[test]
fn the_decoder_and_the_reference_agree_on_the_seeds() {
    for seed in SEEDS {
        assert_same_boundaries(seed);
        let (ends, _) = reference::frame_all(
            seed,
            reference::Limits {
                max_header: LIMITS.max_header,
                max_body: LIMITS.max_body,
            },
        );
        assert!(!ends.is_empty(), "{:?}", String::from_utf8_lossy(seed));
    }
}

#[test]
fn the_decoder_and_the_reference_agree_on_mutated_requests() {
    let mut rng = XorShift(0x5eed_1234_abcd_ef01);
    let mut framed = 0;
    for _ in 0..300_000 {
        let input = mutated(&mut rng);
        assert_same_boundaries(&input);
        framed += decoder_ends(&input).len();
    }
    // The mutations leave most requests intact: the comparison is not
    // between two decoders that refuse everything.
    assert!(framed > 150_000, "only {framed} requests framed");
}
