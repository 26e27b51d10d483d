//! Inline commands (`SET k "a b"`, what telnet sends), split into arguments
//! exactly as Redis's `sdssplitargs` splits them:
//!
//! - the line is a C string: it ends at its first NUL (and the decoder,
//!   like Redis, does not see a line end after a NUL: such a request waits
//!   until the inline limit refuses it);
//! - blanks between arguments are C's `isspace` (space, `\t`, `\n`, `\v`,
//!   `\f`, `\r`), but an unquoted argument ends only at a space, `\t`,
//!   `\n` or `\r` (so a `\v` inside one is part of it);
//! - a `"` or `'` anywhere in an argument opens a quoted part, joined to
//!   what came before it (`a"b c"` is `ab c`); its closing quote ends the
//!   argument, and must be followed by a blank or the end of the line;
//! - inside double quotes, `\xHH` is a byte, `\n`, `\r`, `\t`, `\b`, `\a`
//!   what C means by them, and `\` before anything else that thing; inside
//!   single quotes only `\'` is an escape;
//! - a quote left open is `unbalanced quotes in request`.

use std::ops::Range;

use selectloop::codec::DecodeError;

use crate::resp::protocol_error;

/// Where an argument's bytes are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// In the request itself.
    In(Range<usize>),
    /// Built from a quoted argument, in the `owned` list.
    Owned(usize),
}

/// C's `isspace`.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Splits `line` into arguments: ranges of `line` for plain ones, entries
/// pushed onto `owned` for those with quotes.
pub fn split_inline(line: &[u8], owned: &mut Vec<Vec<u8>>) -> Result<Vec<Arg>, DecodeError> {
    let line = &line[..line.iter().position(|&b| b == 0).unwrap_or(line.len())];
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_c_space(line[i]) {
            i += 1;
        }
        if i == line.len() {
            return Ok(args);
        }
        let start = i;
        // Bytes of an argument with quotes, built as they are read; an
        // argument without any stays a range of the line.
        let mut built: Option<Vec<u8>> = None;
        loop {
            match line.get(i) {
                None | Some(b' ' | b'\t' | b'\n' | b'\r') => break,
                Some(&quote @ (b'"' | b'\'')) => {
                    let value = built.get_or_insert_with(|| line[start..i].to_vec());
                    i = quoted(line, i + 1, quote, value)?;
                    break; // a closing quote ends the argument
                }
                Some(&b) => {
                    if let Some(value) = built.as_mut() {
                        value.push(b);
                    }
                    i += 1;
                }
            }
        }
        match built {
            Some(value) => {
                owned.push(value);
                args.push(Arg::Owned(owned.len() - 1));
            }
            None => args.push(Arg::In(start..i)),
        }
    }
}

/// Reads a quoted part that opened just before `at`, appending its bytes
/// to `value`; returns where the argument goes on (after the closing quote).
fn quoted(
    line: &[u8],
    mut at: usize,
    quote: u8,
    value: &mut Vec<u8>,
) -> Result<usize, DecodeError> {
    const UNBALANCED: &str = "unbalanced quotes in request";
    loop {
        let Some(&b) = line.get(at) else {
            return Err(protocol_error(UNBALANCED));
        };
        let next = line.get(at + 1).copied();
        if b == quote {
            if next.is_some_and(|n| !is_c_space(n)) {
                return Err(protocol_error(UNBALANCED));
            }
            return Ok(at + 1);
        }
        if quote == b'\'' {
            if b == b'\\' && next == Some(b'\'') {
                value.push(b'\'');
                at += 2;
            } else {
                value.push(b);
                at += 1;
            }
            continue;
        }
        match (b, next) {
            (b'\\', Some(b'x')) if hex_byte(line.get(at + 2..at + 4)).is_some() => {
                value.extend(hex_byte(line.get(at + 2..at + 4)));
                at += 4;
            }
            (b'\\', Some(escaped)) => {
                value.push(match escaped {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => other,
                });
                at += 2;
            }
            _ => {
                value.push(b);
                at += 1;
            }
        }
    }
}

/// Two hexadecimal digits as the byte they spell.
fn hex_byte(digits: Option<&[u8]>) -> Option<u8> {
    let digits = digits?;
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u8::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &[u8]) -> Result<Vec<Vec<u8>>, DecodeError> {
        let mut owned = Vec::new();
        let args = split_inline(line, &mut owned)?;
        Ok(args
            .into_iter()
            .map(|arg| match arg {
                Arg::In(range) => line[range].to_vec(),
                Arg::Owned(k) => owned[k].clone(),
            })
            .collect())
    }

    #[test]
    fn splits_as_sdssplitargs() {
        let cases: [(&[u8], &[&[u8]]); 12] = [
            (b"SET k v", &[b"SET", b"k", b"v"]),
            (b"  SET\t k  ", &[b"SET", b"k"]),
            (b"ECHO \"a b\"", &[b"ECHO", b"a b"]),
            (b"ECHO a\"b c\"", &[b"ECHO", b"ab c"]),
            (
                b"ECHO \"\\x41\\x4\\n\\b\\a\\q\"",
                &[b"ECHO", b"Ax4\n\x08\x07q"],
            ),
            (b"ECHO 'a\\'b' 'c\\d'", &[b"ECHO", b"a'b", b"c\\d"]),
            (b"ECHO \"\"", &[b"ECHO", b""]),
            (b"ECHO a\x0bb", &[b"ECHO", b"a\x0bb"]),
            (b"PING \x0b\x0c", &[b"PING"]),
            (b"ECHO a\0b c", &[b"ECHO", b"a"]),
            (b"ECHO \"a\"\x0b", &[b"ECHO", b"a"]),
            (b"", &[]),
        ];
        for (line, want) in cases {
            let got = split(line).unwrap_or_else(|e| panic!("{line:?}: {e:?}"));
            let want: Vec<Vec<u8>> = want.iter().map(|a| a.to_vec()).collect();
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn unbalanced_quotes_are_refused() {
        for line in [
            &b"ECHO \"open"[..],
            b"ECHO 'open",
            b"ECHO \"a\"b",
            b"ECHO 'a'b",
            b"ECHO \"a\0\"",
            b"ECHO \"a\\",
        ] {
            assert_eq!(
                split(line),
                Err(protocol_error("unbalanced quotes in request")),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
