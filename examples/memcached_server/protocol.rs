//! The memcached text protocol: a `Decoder` whose item is the parsed
//! [`Command`], with its key and value left in the frame as ranges, and
//! the refused values skipped by the length their command announced.
//!
//! What the decoder decides, it decides as memcached 1.6 does (the
//! differential test in tests/it/memcached_vs_memcached.rs sends the same
//! bytes to both):
//!
//! - a command is a line ended by `\n` (a `\r` before it is dropped);
//!   tokens are separated by spaces, runs of spaces count as one;
//! - a storage command (`set`, `add`, `replace`, `append`, `prepend`,
//!   `cas`) is followed by a data block of the announced length and
//!   `\r\n`; a block not ended so is `CLIENT_ERROR bad data chunk`;
//! - a command line with a malformed number, or a key over 250 bytes, is
//!   `CLIENT_ERROR bad command line format` and its data block, whose
//!   length cannot be trusted, is read as the next command (memcached
//!   does the same: usually `ERROR`);
//! - a value over the largest item is `SERVER_ERROR object too large for
//!   cache`: the command line is one frame, and its data block is a
//!   [`Frame::discard`], dropped as it arrives and never buffered;
//! - a line with no end within 2048 bytes that is not a `get` is refused
//!   (`CLIENT_ERROR line too long`), and the connection closed; memcached
//!   closes it without a word.

use std::ops::Range;

use selectloop::codec::{DecodeError, Decoder, Frame};

/// Longest key, in bytes (memcached's `KEY_MAX_LENGTH`).
pub const MAX_KEY: usize = 250;

/// Longest command line other than a `get` without its end: past it, the
/// line is refused.
pub const MAX_LINE: usize = 2048;

/// How a storage command treats the key's current value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    /// Store only if the value's cas unique is still this one.
    Cas(u64),
}

/// One command, as the decoder read it. Ranges are places in the frame's
/// payload.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `get`/`gets` (with cas uniques) of one key or more.
    Get {
        with_cas: bool,
        keys: Vec<Range<usize>>,
    },
    /// A storage command and its value.
    Store {
        op: StoreOp,
        key: Range<usize>,
        flags: u32,
        exptime: i64,
        value: Range<usize>,
        noreply: bool,
    },
    /// A storage command whose value is over the largest item: its data
    /// block is being discarded.
    TooLarge {
        op: StoreOp,
        key: Range<usize>,
        noreply: bool,
    },
    /// A storage command whose data block did not end in `\r\n`.
    BadDataChunk {
        noreply: bool,
    },
    Delete {
        key: Range<usize>,
        noreply: bool,
    },
    /// `incr` (`decr`: `incr` false) by `delta`.
    Arith {
        incr: bool,
        key: Range<usize>,
        delta: u64,
        noreply: bool,
    },
    Touch {
        key: Range<usize>,
        exptime: i64,
        noreply: bool,
    },
    FlushAll {
        delay: i64,
        noreply: bool,
    },
    Version,
    Verbosity {
        noreply: bool,
    },
    Stats,
    Quit,
    /// A line that breaks the grammar, answered with `reply` (its
    /// `noreply`, if it had one, honoured as memcached honours it).
    Error {
        reply: &'static str,
        noreply: bool,
    },
}

/// `ERROR`: a command memcached does not know, or a known one with the
/// wrong number of tokens.
const UNKNOWN: &str = "ERROR";
const BAD_FORMAT: &str = "CLIENT_ERROR bad command line format";

/// Frames memcached text commands.
#[derive(Debug)]
pub struct MemcacheDecoder {
    /// The largest value stored (memcached's `-I`, 1 MiB by default).
    max_item: usize,
    /// The data block of a refused value, to discard next.
    discard_next: Option<usize>,
    /// Bytes already searched for the line's end.
    scanned: usize,
}

impl MemcacheDecoder {
    pub fn new(max_item: usize) -> MemcacheDecoder {
        MemcacheDecoder {
            max_item,
            discard_next: None,
            scanned: 0,
        }
    }
}

impl Decoder for MemcacheDecoder {
    type Item = Command;

    fn decode(&mut self, buf: &[u8]) -> Result<Option<Frame<Command>>, DecodeError> {
        if let Some(len) = self.discard_next.take() {
            return Ok(Some(Frame::discard(len)));
        }
        let Some(at) = buf[self.scanned..].iter().position(|&b| b == b'\n') else {
            self.scanned = buf.len();
            if buf.len() > MAX_LINE && !starts_like_get(buf) {
                return Err(DecodeError::invalid("line too long"));
            }
            return Ok(None);
        };
        let newline = self.scanned + at;
        let end = if newline > 0 && buf[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        let line_len = newline + 1;
        let mut tokens: [Range<usize>; 24] = Default::default();
        let count = tokenize(&buf[..end], &mut tokens);
        let tokens = &tokens[..count];
        let word = |i: usize| &buf[tokens[i].clone()];
        let noreply = count > 1 && word(count - 1) == b"noreply";
        let line_only = |command| Ok(Some(Frame::with_item(0..end, line_len, command)));
        let command = if count == 0 {
            Command::Error {
                reply: UNKNOWN,
                noreply: false,
            }
        } else {
            match word(0) {
                b"get" | b"gets" if count >= 2 => {
                    return self.finish(self.get(
                        buf,
                        tokens[0].end,
                        end,
                        line_len,
                        word(0) == b"gets",
                    ));
                }
                b"set" | b"add" | b"replace" | b"append" | b"prepend"
                    if count == 5 || count == 6 =>
                {
                    let found = self.store(buf, tokens, line_len, noreply);
                    return self.finish(found);
                }
                b"cas" if count == 6 || count == 7 => {
                    let found = self.store(buf, tokens, line_len, noreply);
                    return self.finish(found);
                }
                b"delete" if (2..=4).contains(&count) => delete(buf, tokens, noreply),
                b"incr" | b"decr" if count == 3 || count == 4 => arith(buf, tokens, noreply),
                b"touch" if count == 3 || count == 4 => touch(buf, tokens, noreply),
                b"flush_all" if count <= 3 => flush_all(buf, tokens, noreply),
                b"version" => Command::Version,
                b"verbosity" if count == 2 || count == 3 => Command::Verbosity { noreply },
                b"stats" if count == 1 => Command::Stats,
                b"quit" => Command::Quit,
                _ => Command::Error {
                    reply: UNKNOWN,
                    noreply: false,
                },
            }
        };
        self.scanned = 0;
        line_only(command)
    }
}

/// Whether `buf` starts with a `get`: such a line may be long (many keys).
fn starts_like_get(buf: &[u8]) -> bool {
    buf.starts_with(b"get ") || buf.starts_with(b"gets ")
}

/// Splits `line` at spaces into at most `tokens.len()` tokens (the last
/// takes the rest); returns how many.
fn tokenize(line: &[u8], tokens: &mut [Range<usize>]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < line.len() && count < tokens.len() {
        while i < line.len() && line[i] == b' ' {
            i += 1;
        }
        if i == line.len() {
            break;
        }
        let start = i;
        if count == tokens.len() - 1 {
            i = line.len();
        } else {
            while i < line.len() && line[i] != b' ' {
                i += 1;
            }
        }
        tokens[count] = start..i;
        count += 1;
    }
    count
}

/// An unsigned decimal, as memcached's `safe_strtoull` reads one (digits
/// only here: no sign, no spaces, at most 20 of them).
pub fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// A signed decimal (`safe_strtol`), for exptimes and delays.
fn parse_i64(text: &[u8]) -> Option<i64> {
    match text.split_first() {
        Some((b'-', digits)) => parse_u64(digits).and_then(|n| 0i64.checked_sub_unsigned(n)),
        _ => parse_u64(text).and_then(|n| i64::try_from(n).ok()),
    }
}

impl MemcacheDecoder {
    fn finish(
        &mut self,
        found: Result<Option<Frame<Command>>, DecodeError>,
    ) -> Result<Option<Frame<Command>>, DecodeError> {
        if !matches!(found, Ok(None)) {
            self.scanned = 0;
        }
        found
    }

    /// `get <key>*`: every key, however many (the line may be long).
    fn get(
        &self,
        buf: &[u8],
        after_command: usize,
        end: usize,
        line_len: usize,
        with_cas: bool,
    ) -> Result<Option<Frame<Command>>, DecodeError> {
        let mut keys = Vec::new();
        let mut i = after_command;
        let line = &buf[..end];
        loop {
            while i < line.len() && line[i] == b' ' {
                i += 1;
            }
            if i == line.len() {
                break;
            }
            let start = i;
            while i < line.len() && line[i] != b' ' {
                i += 1;
            }
            if i - start > MAX_KEY {
                let error = Command::Error {
                    reply: BAD_FORMAT,
                    noreply: false,
                };
                return Ok(Some(Frame::with_item(0..end, line_len, error)));
            }
            keys.push(start..i);
        }
        let command = Command::Get { with_cas, keys };
        Ok(Some(Frame::with_item(0..end, line_len, command)))
    }

    /// A storage command: its line, then its data block.
    fn store(
        &mut self,
        buf: &[u8],
        tokens: &[Range<usize>],
        line_len: usize,
        noreply: bool,
    ) -> Result<Option<Frame<Command>>, DecodeError> {
        let word = |i: usize| &buf[tokens[i].clone()];
        let line_end = tokens[tokens.len() - 1].end;
        let error = |reply| {
            let command = Command::Error { reply, noreply };
            Ok(Some(Frame::with_item(0..line_end, line_len, command)))
        };
        let key = tokens[1].clone();
        let flags = parse_u64(word(2)).and_then(|f| u32::try_from(f).ok());
        let exptime = parse_i64(word(3));
        let len = parse_i64(word(4)).filter(|&n| (0..i64::from(i32::MAX - 2)).contains(&n));
        let op = match word(0) {
            b"set" => StoreOp::Set,
            b"add" => StoreOp::Add,
            b"replace" => StoreOp::Replace,
            b"append" => StoreOp::Append,
            b"prepend" => StoreOp::Prepend,
            _ => match parse_u64(word(5)) {
                Some(unique) => StoreOp::Cas(unique),
                None => return error(BAD_FORMAT),
            },
        };
        let (Some(flags), Some(exptime), Some(len)) = (flags, exptime, len) else {
            return error(BAD_FORMAT);
        };
        if key.len() > MAX_KEY {
            return error(BAD_FORMAT);
        }
        let len = len as usize;
        if len > self.max_item {
            // The line is answered; the block it announced goes unread.
            self.discard_next = Some(len + 2);
            let command = Command::TooLarge { op, key, noreply };
            return Ok(Some(Frame::with_item(0..line_end, line_len, command)));
        }
        let whole = line_len + len + 2;
        if buf.len() < whole {
            return Ok(None);
        }
        let command = if &buf[whole - 2..whole] == b"\r\n" {
            Command::Store {
                op,
                key,
                flags,
                exptime,
                value: line_len..line_len + len,
                noreply,
            }
        } else {
            Command::BadDataChunk { noreply }
        };
        Ok(Some(Frame::with_item(0..whole, whole, command)))
    }
}

fn delete(buf: &[u8], tokens: &[Range<usize>], noreply: bool) -> Command {
    // `delete <key> [0] [noreply]`: a time other than 0 is no longer taken.
    let extra = tokens.len() - 2 - usize::from(noreply);
    let zero_time = extra == 0 || (extra == 1 && &buf[tokens[2].clone()] == b"0");
    if !zero_time {
        let reply = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
        return Command::Error { reply, noreply };
    }
    match key_of(tokens, noreply) {
        Ok(key) => Command::Delete { key, noreply },
        Err(refused) => refused,
    }
}

/// The key at `tokens[1]`, or the error a key over 250 bytes gets.
fn key_of(tokens: &[Range<usize>], noreply: bool) -> Result<Range<usize>, Command> {
    let key = tokens[1].clone();
    if key.len() > MAX_KEY {
        return Err(Command::Error {
            reply: BAD_FORMAT,
            noreply,
        });
    }
    Ok(key)
}

fn arith(buf: &[u8], tokens: &[Range<usize>], noreply: bool) -> Command {
    let key = match key_of(tokens, noreply) {
        Ok(key) => key,
        Err(refused) => return refused,
    };
    let incr = &buf[tokens[0].clone()] == b"incr";
    match parse_u64(&buf[tokens[2].clone()]) {
        Some(delta) => Command::Arith {
            incr,
            key,
            delta,
            noreply,
        },
        None => {
            let reply = "CLIENT_ERROR invalid numeric delta argument";
            Command::Error { reply, noreply }
        }
    }
}

fn touch(buf: &[u8], tokens: &[Range<usize>], noreply: bool) -> Command {
    let key = match key_of(tokens, noreply) {
        Ok(key) => key,
        Err(refused) => return refused,
    };
    match parse_i64(&buf[tokens[2].clone()]) {
        Some(exptime) => Command::Touch {
            key,
            exptime,
            noreply,
        },
        None => {
            let reply = "CLIENT_ERROR invalid exptime argument";
            Command::Error { reply, noreply }
        }
    }
}

fn flush_all(buf: &[u8], tokens: &[Range<usize>], noreply: bool) -> Command {
    let args = tokens.len() - 1 - usize::from(noreply);
    match args {
        0 => Command::FlushAll { delay: 0, noreply },
        1 => match parse_i64(&buf[tokens[1].clone()]) {
            Some(delay) => Command::FlushAll { delay, noreply },
            None => Command::Error {
                reply: "CLIENT_ERROR invalid exptime argument",
                noreply,
            },
        },
        _ => Command::Error {
            reply: UNKNOWN,
            noreply: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every frame of `wire`, split in two at every byte: the same
    /// commands come out, and the refused value is discarded whole.
    #[test]
    fn commands_split_at_every_byte() {
        let wire: &[u8] = b"set a 5 0 3\r\nabc\r\nget a b\r\nset big 0 0 9\r\n123456789\r\n\
incr n 7 noreply\nbogus\r\ncas a 0 0 1 42\r\nxy\r\n";
        for cut in 0..=wire.len() {
            let mut decoder = MemcacheDecoder::new(8);
            let mut got = Vec::new();
            let mut discarded = 0;
            // What is left of a discard longer than the bytes buffered:
            // dropped as it arrives, as the loop does.
            let mut skip = 0;
            let mut buffered = Vec::new();
            for piece in [&wire[..cut], &wire[cut..]] {
                buffered.extend_from_slice(piece);
                let dropped = skip.min(buffered.len());
                buffered.drain(..dropped);
                skip -= dropped;
                while skip == 0 {
                    let Some(frame) = decoder.decode(&buffered).unwrap() else {
                        break;
                    };
                    let bytes = buffered[frame.payload()].to_vec();
                    let consumed = frame.consumed().min(buffered.len());
                    if frame.is_discard() {
                        discarded += frame.consumed();
                        assert_eq!(frame.consumed(), 11, "cut at {cut}");
                        skip = frame.consumed() - consumed;
                    }
                    buffered.drain(..consumed);
                    if let Some(command) = frame.into_item() {
                        got.push((bytes, command));
                    }
                }
            }
            assert_eq!(discarded, 11);
            let commands: Vec<_> = got.iter().map(|(_, c)| c).collect();
            let (bytes, first) = &got[0];
            let Command::Store {
                op: StoreOp::Set,
                key,
                flags: 5,
                value,
                ..
            } = first
            else {
                panic!("cut at {cut}: {first:?}");
            };
            assert_eq!(
                (&bytes[key.clone()], &bytes[value.clone()]),
                (&b"a"[..], &b"abc"[..])
            );
            assert!(matches!(commands[1], Command::Get { keys, .. } if keys.len() == 2));
            assert!(matches!(
                commands[2],
                Command::TooLarge {
                    op: StoreOp::Set,
                    ..
                }
            ));
            assert!(matches!(
                commands[3],
                Command::Arith {
                    incr: true,
                    delta: 7,
                    noreply: true,
                    ..
                }
            ));
            assert!(matches!(commands[4], Command::Error { reply: "ERROR", .. }));
            // `xy` for a length of 1: the block is `x` and `y\r`, not
            // `x\r\n`; what is left, `\n`, is an empty line.
            assert!(matches!(
                commands[5],
                Command::BadDataChunk { noreply: false }
            ));
            assert!(matches!(commands[6], Command::Error { reply: "ERROR", .. }));
            assert_eq!(commands.len(), 7, "cut at {cut}");
        }
    }

    #[test]
    fn numbers_and_keys_are_held_to_the_grammar() {
        let one = |wire: &[u8]| {
            let frame = MemcacheDecoder::new(1024).decode(wire).unwrap().unwrap();
            frame.into_item().unwrap()
        };
        let bad = Command::Error {
            reply: BAD_FORMAT,
            noreply: false,
        };
        assert_eq!(one(b"set k -1 0 1\r\n"), bad, "flags are unsigned");
        assert_eq!(one(b"set k 4294967296 0 1\r\n"), bad, "flags are 32 bits");
        assert_eq!(one(b"set k 0 0 -1\r\n"), bad, "a length is not negative");
        assert_eq!(one(b"set k 0 0 1x\r\n"), bad);
        let long_key = [b"get ".as_slice(), &[b'k'; 251], b"\r\n"].concat();
        assert_eq!(one(&long_key), bad, "keys are 250 bytes at most");
        let longest = [b"get ".as_slice(), &[b'k'; 250], b"\r\n"].concat();
        assert!(matches!(one(&longest), Command::Get { .. }));
        assert!(matches!(one(b"incr k -1\r\n"), Command::Error { .. }));
        assert!(matches!(
            one(b"incr k 18446744073709551615\r\n"),
            Command::Arith {
                delta: u64::MAX,
                ..
            }
        ));
        assert!(matches!(
            one(b"set k 0 0\r\n"),
            Command::Error { reply: "ERROR", .. }
        ));
        assert!(matches!(
            one(b"\r\n"),
            Command::Error { reply: "ERROR", .. }
        ));
    }

    #[test]
    fn a_long_line_is_refused_unless_it_is_a_get() {
        let mut decoder = MemcacheDecoder::new(1024);
        let long = vec![b'x'; MAX_LINE + 1];
        assert!(decoder.decode(&long).is_err());
        let mut decoder = MemcacheDecoder::new(1024);
        let long_get = [b"get ".as_slice(), &[b'k'; MAX_LINE]].concat();
        assert_eq!(decoder.decode(&long_get), Ok(None));
        let mut decoder = MemcacheDecoder::new(1024);
        assert_eq!(decoder.decode(&long[..MAX_LINE]), Ok(None), "at the limit");
    }
}
