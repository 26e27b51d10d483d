//! RESP2 requests: a `Decoder` that frames one command at a time, as Redis's
//! `processMultibulkBuffer` and `processInlineBuffer` do, and the replies.
//!
//! A request is either a multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, what
//! every client library and redis-cli send) or an inline command (`GET k`
//! ended by `\n`, what telnet sends). The decoder finds where a command
//! ends, checks it, and notes where each argument lies as it goes: the
//! handler gets those places as the frame's [`Request`] and reads the
//! arguments out of the frame's bytes, never parsing them again and never
//! copying them (quoted inline arguments aside).

use selectloop::codec::{DecodeError, Decoder, Frame};

use crate::inline::{split_inline, Arg};

/// Redis's limits on a request, with its defaults.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most arguments in one multibulk request. Redis 7.0 refuses more
    /// than `INT_MAX` (`Protocol error: invalid multibulk length`); the
    /// loop's own cap on one request (1 GiB) comes first in practice.
    pub max_multibulk: usize,
    /// Longest argument: Redis's `proto-max-bulk-len`, 512 MB.
    pub max_bulk: usize,
    /// Longest inline request or count line: Redis's
    /// `PROTO_INLINE_MAX_SIZE`, 64 KiB.
    pub max_inline: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_multibulk: i32::MAX as usize,
            max_bulk: 512 * 1024 * 1024,
            max_inline: 64 * 1024,
        }
    }
}

/// Frames RESP2 requests. It remembers how far into a multibulk request it
/// got, so a large request arriving in pieces is not parsed again from the
/// start on every read.
#[derive(Debug)]
pub struct RespDecoder {
    limits: Limits,
    /// Of the multibulk request being framed: where the next argument's
    /// header starts, and how many arguments are still to come.
    progress: Option<(usize, usize)>,
    /// Where the arguments framed so far lie.
    args: Vec<Arg>,
}

impl RespDecoder {
    pub fn new(limits: Limits) -> RespDecoder {
        RespDecoder {
            limits,
            progress: None,
            args: Vec::new(),
        }
    }
}

pub fn protocol_error(why: &'static str) -> DecodeError {
    DecodeError::invalid(why)
}

/// The end of the header line starting at `from`: the index of its first
/// `\r`, as Redis finds it (`strchr(..., '\r')`), once the byte after it
/// has arrived. A bare `\n` before that `\r` is part of the line, so its
/// number does not parse and the request is refused, as in Redis. Redis
/// skips whatever byte follows the `\r`; this decoder refuses anything but
/// `\n` there (`\r` then `X` could be read two ways).
fn line_end(buf: &[u8], from: usize) -> Result<Option<usize>, DecodeError> {
    let Some(offset) = buf
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\r'))
    else {
        return Ok(None);
    };
    let at = from + offset;
    match buf.get(at + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some(at)),
        Some(_) => Err(protocol_error("expected '\\n' after '\\r'")),
    }
}

/// A decimal integer, exactly as Redis's `string2ll` reads one: an
/// optional `-`, then `0` alone or digits not starting with `0`, 20 bytes
/// at most, within `i64` (so `01`, `+1`, `-0` and ` 1` are not integers,
/// and `-9223372036854775808` is).
pub fn parse_int(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    if text == b"0" {
        return Some(0);
    }
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut magnitude: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

impl Decoder for RespDecoder {
    type Item = Request;

    fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame<Request>>, DecodeError> {
        if buf.is_empty() {
            return Ok(None);
        }
        if buf[0] != b'*' {
            return self.decode_inline(buf);
        }
        let (mut pos, mut left) = match self.progress {
            Some(progress) => progress,
            None => {
                let Some(end) = line_end(buf, 0)? else {
                    if buf.len() > self.limits.max_inline {
                        return Err(protocol_error("too big mbulk count string"));
                    }
                    return Ok(None);
                };
                let count = parse_int(&buf[1..end])
                    .filter(|&n| n <= self.limits.max_multibulk as i64)
                    .ok_or(protocol_error("invalid multibulk length"))?;
                if count <= 0 {
                    // An empty request: Redis skips it.
                    return Ok(Some(Frame::discard(end + 2)));
                }
                self.args.clear();
                (end + 2, count as usize)
            }
        };
        while left > 0 {
            let Some(end) = line_end(buf, pos)? else {
                self.progress = Some((pos, left));
                if buf.len() - pos > self.limits.max_inline {
                    return Err(protocol_error("too big bulk count string"));
                }
                return Ok(None);
            };
            if buf[pos] != b'$' {
                return Err(DecodeError::invalid(format!(
                    "expected '$', got '{}'",
                    char::from(buf[pos])
                )));
            }
            let len = parse_int(&buf[pos + 1..end])
                .filter(|&n| n >= 0 && n as usize <= self.limits.max_bulk)
                .ok_or(protocol_error("invalid bulk length"))? as usize;
            let next = end + 2 + len + 2;
            if buf.len() < next {
                self.progress = Some((pos, left));
                return Ok(None);
            }
            if &buf[next - 2..next] != b"\r\n" {
                return Err(protocol_error("bulk argument not ended by CRLF"));
            }
            self.args.push(Arg::In(end + 2..end + 2 + len));
            pos = next;
            left -= 1;
        }
        self.progress = None;
        let request = Request {
            args: std::mem::take(&mut self.args),
            owned: Vec::new(),
        };
        Ok(Some(Frame::with_item(0..pos, pos, request)))
    }
}

impl RespDecoder {
    fn decode_inline(&mut self, buf: &[u8]) -> Result<Option<Frame<Request>>, DecodeError> {
        // Redis looks for the line end with `strchr`, which stops at a NUL:
        // a line end after one is not seen. (Searched together, so a read
        // of many short commands costs one pass, not one per command.)
        let end_or_nul = buf.iter().position(|&b| b == b'\n' || b == 0);
        let Some(newline) = end_or_nul.filter(|&at| buf[at] == b'\n') else {
            if buf.len() > self.limits.max_inline {
                return Err(protocol_error("too big inline request"));
            }
            return Ok(None);
        };
        let end = if newline > 0 && buf[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        // As in Redis, only a line still without its end is held to the
        // inline limit; a whole one is bounded by the loop's cap.
        let mut owned = Vec::new();
        let args = split_inline(&buf[..end], &mut owned)?;
        if args.is_empty() {
            // A blank line: Redis skips it.
            return Ok(Some(Frame::discard(newline + 1)));
        }
        Ok(Some(Frame::with_item(
            0..end,
            newline + 1,
            Request { args, owned },
        )))
    }
}

/// The arguments of one request, as the decoder found them: places in the
/// frame's bytes, and the bytes of quoted inline arguments, which had to be
/// built.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    args: Vec<Arg>,
    owned: Vec<Vec<u8>>,
}

impl Request {
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// Argument `i`, out of `request`: the bytes of the frame this came with.
    pub fn get<'a>(&'a self, request: &'a [u8], i: usize) -> &'a [u8] {
        match &self.args[i] {
            Arg::In(range) => &request[range.clone()],
            Arg::Owned(k) => &self.owned[*k],
        }
    }
}

/// `value` as C's `printf("%.17g")` writes it (`inf` and `-inf` for the
/// infinities): 17 significant digits, trailing zeros dropped, exponent
/// form below 1e-4 and from 1e17 on, with at least two exponent digits.
pub fn format_double(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // 17 significant digits in exponent form: d.dddddddddddddddde±x.
    let scientific = format!("{value:.16e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let trim = |digits: &str| -> String {
        if digits.contains('.') {
            digits
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        } else {
            digits.to_string()
        }
    };
    if !(-4..17).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa), exponent.abs());
    }
    // Fixed form with 17 - 1 - exponent digits after the point.
    let decimals = (16 - exponent).max(0) as usize;
    trim(&format!("{value:.decimals$}"))
}

/// Replies, RESP2-encoded into a buffer the handler sends in one piece.
pub mod reply {
    use std::io::Write;

    pub fn simple(out: &mut Vec<u8>, text: &str) {
        out.push(b'+');
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    pub fn error(out: &mut Vec<u8>, text: &str) {
        error_bytes(out, text.as_bytes());
    }

    /// An error whose text may hold any bytes (a client's own, quoted): a
    /// CR or LF in it becomes a space, as Redis's `addReplyErrorFormat`
    /// makes it, so the reply stays one line.
    pub fn error_bytes(out: &mut Vec<u8>, text: &[u8]) {
        out.push(b'-');
        out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        out.extend_from_slice(b"\r\n");
    }

    /// A double as Redis 7.0's `addReplyDouble` writes it in RESP2: a bulk
    /// string of `%.17g`, or `inf` and `-inf`.
    pub fn double(out: &mut Vec<u8>, value: f64) {
        bulk(out, super::format_double(value).as_bytes());
    }

    pub fn int(out: &mut Vec<u8>, n: i64) {
        let _ = write!(out, ":{n}\r\n");
    }

    pub fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
        let _ = write!(out, "${}\r\n", bytes.len());
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }

    pub fn nil(out: &mut Vec<u8>) {
        out.extend_from_slice(b"$-1\r\n");
    }

    pub fn nil_array(out: &mut Vec<u8>) {
        out.extend_from_slice(b"*-1\r\n");
    }

    pub fn array(out: &mut Vec<u8>, len: usize) {
        let _ = write!(out, "*{len}\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(wire: &[u8]) -> Result<Vec<Vec<u8>>, DecodeError> {
        let mut decoder = RespDecoder::new(Limits::default());
        let mut out = Vec::new();
        let mut rest = wire;
        while let Some(frame) = decoder.decode(rest)? {
            out.push(rest[frame.payload()].to_vec());
            rest = &rest[frame.consumed()..];
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline_requests_split_at_every_byte() {
        let wire: &[u8] = b"*2\r\n$4\r\nECHO\r\n$5\r\nhe\r\nl\r\nPING\r\nSET k \"a b\"\n*0\r\n";
        for cut in 0..=wire.len() {
            let mut decoder = RespDecoder::new(Limits::default());
            let mut got = Vec::new();
            let mut discarded = 0;
            let mut buffered = Vec::new();
            for piece in [&wire[..cut], &wire[cut..]] {
                buffered.extend_from_slice(piece);
                while let Some(frame) = decoder.decode(&buffered).unwrap() {
                    let bytes = buffered[frame.payload()].to_vec();
                    buffered.drain(..frame.consumed());
                    match frame.into_item() {
                        Some(request) => got.push((bytes, request)),
                        None => discarded += 1,
                    }
                }
            }
            assert_eq!(got.len(), 3, "cut at {cut}");
            assert_eq!(discarded, 1, "the empty request is skipped, cut at {cut}");
            let (bytes, request) = &got[0];
            assert_eq!(request.len(), 2);
            assert_eq!(request.get(bytes, 0), b"ECHO");
            assert_eq!(request.get(bytes, 1), b"he\r\nl", "cut at {cut}");
            let (bytes, request) = &got[1];
            assert_eq!(request.get(bytes, 0), b"PING");
            let (bytes, request) = &got[2];
            assert_eq!(request.len(), 3);
            assert_eq!(request.get(bytes, 2), b"a b");
        }
    }

    /// Each limit lets its own value through and refuses one more.
    #[test]
    fn limits_are_inclusive() {
        let limits = Limits {
            max_multibulk: 2,
            max_bulk: 3,
            max_inline: 8,
        };
        let decode = |wire: &[u8]| RespDecoder::new(limits).decode(wire);
        assert!(decode(b"*2\r\n$3\r\nabc\r\n$0\r\n\r\n").unwrap().is_some());
        assert!(decode(b"*3\r\n").is_err(), "one argument too many");
        assert!(decode(b"*1\r\n$4\r\n").is_err(), "one byte too long");
        // Lines still without their end: at most `max_inline` bytes.
        assert_eq!(decode(b"ECHO abc"), Ok(None));
        assert!(decode(b"ECHO abcd").is_err());
        assert_eq!(decode(b"*1234567"), Ok(None));
        assert!(decode(b"*12345678").is_err());
        assert_eq!(decode(b"*1\r\n$1234567"), Ok(None));
        assert!(decode(b"*1\r\n$12345678").is_err());
        // A whole inline line is not held to it, as in Redis.
        assert!(decode(b"ECHO abcdefghij\r\n").unwrap().is_some());
        // A bare newline is an empty inline request.
        assert_eq!(decode(b"\nPING"), Ok(Some(Frame::discard(1))));
        // A NUL hides the line end after it, as Redis's strchr does.
        assert_eq!(decode(b"EC\0\r\n"), Ok(None));
        assert!(decode(b"EC\0\r\n1234").is_err(), "until the limit");
    }

    #[test]
    fn doubles_print_as_printf_17g() {
        for (value, text) in [
            (0.1, "0.10000000000000001"),
            (1.0, "1"),
            (-0.5, "-0.5"),
            (1000.0, "1000"),
            (0.001, "0.001"),
            (1e-5, "1.0000000000000001e-05"),
            (1e17, "1e+17"),
            (12345678901234567.0, "12345678901234568"),
            (3.5, "3.5"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0.0, "0"),
        ] {
            assert_eq!(format_double(value), text, "{value}");
        }
    }

    #[test]
    fn integers_are_read_as_string2ll_reads_them() {
        for (text, value) in [
            (&b"0"[..], Some(0)),
            (b"-1", Some(-1)),
            (b"9223372036854775807", Some(i64::MAX)),
            (b"-9223372036854775808", Some(i64::MIN)),
            (b"9223372036854775808", None),
            (b"01", None),
            (b"-0", None),
            (b"+1", None),
            (b" 1", None),
            (b"1 ", None),
            (b"", None),
            (b"-", None),
            (b"1.5", None),
        ] {
            assert_eq!(parse_int(text), value, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn protocol_errors_as_redis_words_them() {
        let cases: [(&[u8], &str); 10] = [
            (b"*-x\r\n", "invalid multibulk length"),
            (b"*01\r\n", "invalid multibulk length"),
            (b"*1\n$4\r\nPING\r\n", "invalid multibulk length"),
            (b"*1\r\n$4\n\r\nPING\r\n", "invalid bulk length"),
            (b"*1\rX$4\r\nPING\r\n", "expected '\\n' after '\\r'"),
            (b"*2147483648\r\n", "invalid multibulk length"),
            (b"*1\r\n$-3\r\n", "invalid bulk length"),
            (b"*1\r\n$99999999999\r\n", "invalid bulk length"),
            (b"*1\r\n+OK\r\n", "expected '$', got '+'"),
            (b"SET k \"unterminated\n", "unbalanced quotes in request"),
        ];
        for (wire, why) in cases {
            assert_eq!(
                frames(wire),
                Err(DecodeError::invalid(why)),
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
        let long = vec![b'a'; 70 * 1024];
        assert_eq!(
            frames(&long),
            Err(DecodeError::invalid("too big inline request"))
        );
    }
}
