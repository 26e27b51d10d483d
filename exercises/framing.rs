//! Your answer to the exercise of `book/src/framing.md`.
//!
//! > Framing. *Exercise:* write a `Decoder` for netstrings (`5:hello,`: the
//! > length in decimal, a colon, the bytes, a comma), and a server that
//! > echoes each one. Bytes that break the format close only the connection
//! > that sent them, after the messages before them are answered.
//!
//! Replace each `todo!()`: the signatures are what the tests call. A
//! type's fields are the book's solution's, a suggestion; change them as
//! you like. Then check it with `cargo xtask exercises framing`.

#![allow(unused_imports, unused_variables, dead_code)]

use super::*;

pub struct Netstring;

impl Decoder for Netstring {
    type Item = ();
    fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame>, DecodeError> {
        todo!()
    }
}

pub fn echo_netstring(cx: &mut Context<'_>, conn: ConnId, payload: &[u8]) {
    todo!()
}

pub fn netstring_config() -> Config {
    todo!()
}
