//! The built-in codecs: any bytes, any split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selectloop::codec::{ByteOrder, Codec, HeaderWidth, LengthPrefixed, Lines};

#[path = "check.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    let (cuts, input) = check::split_input(data);
    for codec in [
        Codec::from(Lines::new(64)),
        Codec::from(LengthPrefixed::new(64)),
        Codec::from(LengthPrefixed::new(300).with_width(HeaderWidth::U16).with_order(ByteOrder::LittleEndian)),
    ] {
        let whole = check::decode_in_pieces(|b| codec.decode(b).map_err(Into::into), input, &[]);
        let split = check::decode_in_pieces(|b| codec.decode(b).map_err(Into::into), input, &cuts);
        // Lines tolerate a split '\r\n' the same way; errors may come at a
        // different point only in what was framed before them.
        if whole.error.is_none() && split.error.is_none() {
            assert_eq!(whole.payloads, split.payloads, "{codec:?} framed differently when split");
        }
    }
});
