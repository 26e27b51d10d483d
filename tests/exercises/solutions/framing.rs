//! The solution of the exercise of `book/src/framing.md`, which the book
//! shows folded; `tests/exercises/framing.rs` holds it to the exercise.

use super::*;

// ANCHOR: solution
pub struct Netstring;

impl Decoder for Netstring {
    type Item = ();
    fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
        let Some(colon) = buf.iter().position(|&b| b == b':') else {
            // No colon yet: fine while what came is a few digits. The
            // loop's maximum message size bounds how long we may wait.
            return match buf.iter().all(u8::is_ascii_digit) {
                true if buf.len() <= 9 => Ok(None),
                _ => Err(DecodeError::invalid(
                    "a netstring starts with its length in digits",
                )),
            };
        };
        let digits = &buf[..colon];
        if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(DecodeError::invalid(
                "a netstring starts with its length in digits",
            ));
        }
        let len: usize = std::str::from_utf8(digits).unwrap().parse().unwrap();
        let (start, end) = (colon + 1, colon + 1 + len);
        match buf.get(end) {
            None => Ok(None), // the bytes or the comma are still to come
            Some(b',') => Ok(Some(Frame::new(start..end, end + 1))),
            Some(_) => Err(DecodeError::invalid("a netstring ends with a comma")),
        }
    }
}

pub fn echo_netstring(cx: &mut Context<'_>, conn: ConnId, payload: &[u8]) {
    let len = payload.len().to_string();
    let _ = cx.send_parts(conn, &[len.as_bytes(), b":", payload, b","]);
}

pub fn netstring_config() -> Config {
    Config::new().decoder(64 * 1024, || Netstring)
}
// ANCHOR_END: solution
