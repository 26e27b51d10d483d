//! The chunked transfer coding, read as RFC 9112 section 7.1 writes it:
//!
//! ```text
//! chunked-body    = *chunk last-chunk trailer-section CRLF
//! chunk           = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size      = 1*HEXDIG
//! last-chunk      = 1*("0") [ chunk-ext ] CRLF
//! chunk-ext       = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! chunk-ext-val   = token / quoted-string
//! trailer-section = *( field-line CRLF )
//! ```
//!
//! Every line ends in CRLF: a bare LF or a bare CR anywhere is refused, as
//! in the head (see `framing.rs`), because a front proxy that reads the
//! same bytes with the other rule would see a different request boundary.
//! Trailer fields are parsed (and bounded) so that their end is found by
//! the grammar, then dropped: this server has no use for them.

use std::ops::Range;

use crate::framing::{is_tchar, is_token, Refusal};

/// The longest chunk-size line, extensions included (nginx refuses a
/// chunk line past a few KiB too).
pub const MAX_CHUNK_LINE: usize = 4096;

/// What one call of [`Chunked::step`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The bytes so far end inside the body: call again with more.
    NeedMore,
    /// The data of one chunk, at this range of the buffer.
    Data(Range<usize>),
    /// The body, trailers included, ends just before this offset.
    End(usize),
}

/// Where the reader is in a chunked body.
#[derive(Clone, Copy, Debug)]
enum Next {
    /// A chunk-size line starting at `pos`.
    Size { pos: usize },
    /// `size` bytes of chunk data at `pos`, then CRLF.
    Data { pos: usize, size: usize },
    /// A trailer field line, or the empty line that ends the body, at `pos`.
    Trailer { pos: usize },
}

/// Reads one chunked body from a buffer that grows between calls (offsets
/// stay those of the same buffer).
#[derive(Clone, Copy, Debug)]
pub struct Chunked {
    next: Next,
    /// Data bytes announced so far, for the body limit.
    body: usize,
    /// Trailer bytes so far, for the trailer limit.
    trailers: usize,
    max_body: usize,
    max_trailers: usize,
}

impl Chunked {
    /// A body whose first chunk-size line starts at `start`, refused past
    /// `max_body` bytes of data (413) or `max_trailers` bytes of trailer
    /// lines (431).
    pub fn new(start: usize, max_body: usize, max_trailers: usize) -> Chunked {
        Chunked {
            next: Next::Size { pos: start },
            body: 0,
            trailers: 0,
            max_body,
            max_trailers,
        }
    }

    /// Reads the next piece of the body out of `buf`.
    pub fn step(&mut self, buf: &[u8]) -> Result<Step, Refusal> {
        match self.next {
            Next::Size { pos } => {
                let Some((line, after)) = crlf_line(buf, pos, MAX_CHUNK_LINE)? else {
                    return Ok(Step::NeedMore);
                };
                let size = chunk_size_line(&buf[line])?;
                if size == 0 {
                    self.next = Next::Trailer { pos: after };
                    return self.step(buf);
                }
                self.body = self
                    .body
                    .checked_add(size)
                    .filter(|&body| body <= self.max_body)
                    .ok_or(Refusal(413, "body too large"))?;
                self.next = Next::Data { pos: after, size };
                self.step(buf)
            }
            Next::Data { pos, size } => {
                let end = pos + size; // size <= max_body: no overflow
                if buf.len() < end + 2 {
                    return Ok(Step::NeedMore);
                }
                if &buf[end..end + 2] != b"\r\n" {
                    return Err(Refusal(400, "chunk data not followed by CRLF"));
                }
                self.next = Next::Size { pos: end + 2 };
                Ok(Step::Data(pos..end))
            }
            Next::Trailer { mut pos } => loop {
                let room = self.max_trailers - self.trailers;
                let found = crlf_line(buf, pos, room).map_err(|refusal| {
                    if refusal.1 == LINE_TOO_LONG {
                        Refusal(431, "trailers too large")
                    } else {
                        refusal
                    }
                })?;
                let Some((line, after)) = found else {
                    self.next = Next::Trailer { pos };
                    return Ok(Step::NeedMore);
                };
                if line.is_empty() {
                    return Ok(Step::End(after));
                }
                self.trailers += after - line.start;
                if self.trailers > self.max_trailers {
                    return Err(Refusal(431, "trailers too large"));
                }
                field_line(&buf[line])?;
                pos = after;
                self.next = Next::Trailer { pos };
            },
        }
    }
}

const LINE_TOO_LONG: &str = "line too long";

/// The line starting at `pos`, without its CRLF, and where the next one
/// starts; `None` while its end has not arrived. A bare LF, or a line of
/// more than `max` bytes, is refused.
pub fn crlf_line(
    buf: &[u8],
    pos: usize,
    max: usize,
) -> Result<Option<(Range<usize>, usize)>, Refusal> {
    let window = &buf[pos..buf.len().min(pos.saturating_add(max).saturating_add(2))];
    match window.iter().position(|&b| b == b'\n') {
        Some(at) if at == 0 || window[at - 1] != b'\r' => Err(Refusal(400, "bare LF")),
        Some(at) => Ok(Some((pos..pos + at - 1, pos + at + 1))),
        None if window.len() >= max.saturating_add(2) => Err(Refusal(400, LINE_TOO_LONG)),
        None => Ok(None),
    }
}

/// `chunk-size [ chunk-ext ]`: the size, extensions checked and ignored.
fn chunk_size_line(line: &[u8]) -> Result<usize, Refusal> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(Refusal(400, "chunk size missing"));
    }
    let mut size: usize = 0;
    for &digit in &line[..digits] {
        let value = (digit as char).to_digit(16).unwrap_or(0) as usize;
        size = size
            .checked_mul(16)
            .and_then(|size| size.checked_add(value))
            .ok_or(Refusal(400, "chunk size overflows"))?;
    }
    chunk_extensions(&line[digits..])?;
    Ok(size)
}

/// `*( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`.
fn chunk_extensions(ext: &[u8]) -> Result<(), Refusal> {
    const BAD: Refusal = Refusal(400, "bad chunk extension");
    let mut at = 0;
    loop {
        let before_space = at;
        at = skip_whitespace(ext, at);
        if at == ext.len() {
            // Whitespace belongs before a `;`, never at the end.
            return if at == before_space { Ok(()) } else { Err(BAD) };
        }
        if ext[at] != b';' {
            return Err(BAD);
        }
        at = skip_whitespace(ext, at + 1);
        let name_end = at + ext[at..].iter().take_while(|&&b| is_tchar(b)).count();
        if name_end == at {
            return Err(BAD);
        }
        at = name_end;
        let after_space = skip_whitespace(ext, at);
        if ext.get(after_space) != Some(&b'=') {
            continue; // the whitespace, if any, is the next `BWS ";"`'s
        }
        at = skip_whitespace(ext, after_space + 1);
        at = if ext.get(at) == Some(&b'"') {
            quoted_string_end(ext, at).ok_or(BAD)?
        } else {
            let end = at + ext[at..].iter().take_while(|&&b| is_tchar(b)).count();
            if end == at {
                return Err(BAD);
            }
            end
        };
    }
}

fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    at
}

/// Where the quoted-string opening at `open` ends (just past its closing
/// quote); `None` if it is not one.
fn quoted_string_end(bytes: &[u8], open: usize) -> Option<usize> {
    let mut at = open + 1;
    loop {
        match *bytes.get(at)? {
            b'"' => return Some(at + 1),
            b'\\' => {
                let escaped = *bytes.get(at + 1)?;
                if !(escaped == b'\t' || escaped == b' ' || escaped >= 0x21 && escaped != 0x7f) {
                    return None;
                }
                at += 2;
            }
            b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => at += 1,
            _ => return None,
        }
    }
}

/// `field-name ":" OWS field-value OWS`; an obs-fold (a line starting
/// with whitespace) is no field name, so it is refused.
fn field_line(line: &[u8]) -> Result<(), Refusal> {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(Refusal(400, "bad trailer field"));
    };
    let value_ok = line[colon + 1..]
        .iter()
        .all(|&b| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80);
    if !is_token(&line[..colon]) || !value_ok {
        return Err(Refusal(400, "bad trailer field"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data and the end of one whole body, or its refusal.
    fn read(wire: &[u8]) -> Result<(Vec<u8>, usize), Refusal> {
        let mut chunked = Chunked::new(0, 1 << 20, 1024);
        let mut data = Vec::new();
        loop {
            match chunked.step(wire)? {
                Step::NeedMore => return Err(Refusal(0, "incomplete")),
                Step::Data(range) => data.extend_from_slice(&wire[range]),
                Step::End(end) => return Ok((data, end)),
            }
        }
    }

    #[test]
    fn accepts_what_the_grammar_allows() {
        let cases: [(&[u8], &[u8]); 6] = [
            (b"3\r\nabc\r\n0\r\n\r\n", b"abc"),
            (b"3;a\r\nabc\r\n0\r\n\r\n", b"abc"),
            (b"3 ; a = b ;c=\"q \\\" d\"\r\nabc\r\n0\r\n\r\n", b"abc"),
            (b"A\r\n0123456789\r\n000\r\n\r\n", b"0123456789"),
            (b"1\r\nx\r\n0\r\nX-Sum: 1\r\nY:\r\n\r\n", b"x"),
            (b"0000000000000000000001\r\nx\r\n0\r\n\r\n", b"x"),
        ];
        for (wire, data) in cases {
            let got =
                read(wire).unwrap_or_else(|e| panic!("{:?}: {e:?}", String::from_utf8_lossy(wire)));
            assert_eq!(
                got,
                (data.to_vec(), wire.len()),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn refuses_every_other_reading() {
        let cases: [(&[u8], u16); 17] = [
            (b"2;\nxx\r\n0\r\n\r\n", 400),         // bare LF in an extension
            (b"2\nxx\r\n0\r\n\r\n", 400),          // bare LF after the size
            (b"\r\n", 400),                        // empty size line
            (b"x\r\n", 400),                       // no hex digit
            (b"-1\r\n", 400),                      // sign
            (b"0x5\r\nhello\r\n0\r\n\r\n", 400),   // prefix
            (b"5 \r\nhello\r\n0\r\n\r\n", 400),    // trailing whitespace
            (b"2\r\nxx\n0\r\n\r\n", 400),          // data ended by LF
            (b"2\r\nxxx\r\n0\r\n\r\n", 400),       // data longer than its size
            (b"10000000000000000\r\n", 400),       // overflows 64 bits
            (b"3;=x\r\nabc\r\n0\r\n\r\n", 400),    // extension without a name
            (b"3;a=\r\nabc\r\n0\r\n\r\n", 400),    // extension without a value
            (b"3;a=\"x\r\nabc\r\n0\r\n\r\n", 400), // unterminated quote
            (b"0\r\n\n", 400),                     // trailers ended by a bare LF
            (b"0\r\nX: 1\r\n Y\r\n\r\n", 400),     // obs-fold in the trailers
            (b"0\r\nX\rY: 1\r\n\r\n", 400),        // bare CR
            (b"0\r\nX\r\n\r\n", 400),              // a trailer line without a colon
        ];
        for (wire, status) in cases {
            match read(wire) {
                Err(Refusal(got, _)) => {
                    assert_eq!(got, status, "{:?}", String::from_utf8_lossy(wire))
                }
                Ok(found) => panic!("{:?} accepted as {found:?}", String::from_utf8_lossy(wire)),
            }
        }
    }

    #[test]
    fn limits_refuse_with_their_status() {
        let mut small = Chunked::new(0, 4, 1024);
        assert_eq!(small.step(b"5\r\n"), Err(Refusal(413, "body too large")));
        let mut few_trailers = Chunked::new(0, 1024, 8);
        assert_eq!(
            few_trailers
                .step(b"0\r\nX-Long: 123456789\r\n\r\n")
                .map_err(|e| e.0),
            Err(431)
        );
        let long_line = [b"1;a=".as_slice(), &[b'b'; MAX_CHUNK_LINE]].concat();
        assert_eq!(
            Chunked::new(0, 10, 10).step(&long_line).map_err(|e| e.0),
            Err(400)
        );
    }

    /// The limits are inclusive, a chunk is handed over as soon as its
    /// CRLF is in, and a quoted-pair escapes exactly what RFC 9110 5.6.4
    /// lets it.
    #[test]
    fn edges_of_the_rules() {
        let mut exact = Chunked::new(0, 4, 1024);
        let wire = b"4\r\nabcd\r\n0\r\n\r\n";
        assert_eq!(
            exact.step(wire),
            Ok(Step::Data(3..7)),
            "a body of exactly max_body"
        );
        let mut eager = Chunked::new(0, 100, 100);
        assert_eq!(eager.step(b"3\r\nabc\r\n"), Ok(Step::Data(3..6)));
        assert_eq!(eager.step(b"3\r\nabc\r\n"), Ok(Step::NeedMore));
        let trailer = b"0\r\nX: 1\r\n\r\n";
        let mut full = Chunked::new(0, 100, 6);
        assert_eq!(
            full.step(trailer),
            Ok(Step::End(trailer.len())),
            "trailers of exactly the limit"
        );
        for (ext, ok) in [
            (&b"1;a=\"\\\t\"\r\nx\r\n0\r\n\r\n"[..], true),
            (b"1;a=\"\\ \"\r\nx\r\n0\r\n\r\n", true),
            (b"1;a=\"\\\x80\"\r\nx\r\n0\r\n\r\n", true),
            (b"1;a=\"\\\x7f\"\r\nx\r\n0\r\n\r\n", false),
            (b"1;a=\"\\\x01\"\r\nx\r\n0\r\n\r\n", false),
            (b"1;a=\"\\\"\r\nx\r\n0\r\n\r\n", false),
        ] {
            assert_eq!(read(ext).is_ok(), ok, "{:?}", String::from_utf8_lossy(ext));
        }
    }

    #[test]
    fn every_split_gives_the_same_body() {
        let wire = b"3;x=\"y\"\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\nGET";
        for cut in 0..wire.len() {
            let mut chunked = Chunked::new(0, 100, 100);
            let mut data = Vec::new();
            let mut end = None;
            for buf in [&wire[..cut], &wire[..]] {
                loop {
                    match chunked.step(buf).unwrap() {
                        Step::NeedMore => break,
                        Step::Data(range) => data.extend_from_slice(&buf[range]),
                        Step::End(at) => {
                            end = Some(at);
                            break;
                        }
                    }
                }
                if end.is_some() {
                    break;
                }
            }
            assert_eq!(
                (data.as_slice(), end),
                (b"abcde".as_slice(), Some(wire.len() - 3)),
                "cut {cut}"
            );
        }
    }
}
