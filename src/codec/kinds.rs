//! The built-in framings: [`Chunks`], [`Lines`], [`LengthPrefixed`].

use super::MAX_MESSAGE;

/// Each read is one message of at most `max` bytes: the seed's `recv(1024)`.
///
/// The reactor reads what the socket holds (up to its read budget) and cuts
/// each read's bytes into pieces of at most `max`, in order: the messages a
/// run of `recv(max)` calls on the same queued bytes would return, for one
/// `read` instead of one per piece. A chunk is never too long; how the
/// peer's bytes are split into chunks depends on timing, exactly as in the
/// Python server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunks {
    max: usize,
}

impl Chunks {
    /// Messages of at most `max` bytes (at least 1).
    pub fn new(max: usize) -> Chunks {
        Chunks {
            max: max.clamp(1, MAX_MESSAGE),
        }
    }

    /// The largest chunk.
    pub fn max(&self) -> usize {
        self.max
    }
}

/// Messages terminated by `\n`; a `\r` right before the `\n` is removed too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lines {
    max: usize,
}

impl Lines {
    /// Lines of at most `max` bytes, terminator excluded.
    pub fn new(max: usize) -> Lines {
        Lines {
            max: max.min(MAX_MESSAGE),
        }
    }

    /// The longest line accepted.
    pub fn max(&self) -> usize {
        self.max
    }
}

/// Width of a [`LengthPrefixed`] header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderWidth {
    /// Two bytes: messages up to 65,535 bytes.
    U16,
    /// Four bytes.
    U32,
}

/// Byte order of a [`LengthPrefixed`] header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOrder {
    /// Network order, Python's `struct.pack("!I", n)` or `">I"`.
    BigEndian,
    /// Python's `struct.pack("<I", n)`.
    LittleEndian,
}

/// A fixed-width length header, then that many bytes of message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LengthPrefixed {
    width: HeaderWidth,
    order: ByteOrder,
    max: usize,
}

impl LengthPrefixed {
    /// A `u32` big-endian header (Python's `struct.pack("!I", len)`), messages of
    /// at most `max` bytes.
    pub fn new(max: usize) -> LengthPrefixed {
        LengthPrefixed {
            width: HeaderWidth::U32,
            order: ByteOrder::BigEndian,
            max,
        }
    }

    /// The same codec with another header width.
    pub fn with_width(mut self, width: HeaderWidth) -> LengthPrefixed {
        self.width = width;
        self
    }

    /// The same codec with another byte order.
    pub fn with_order(mut self, order: ByteOrder) -> LengthPrefixed {
        self.order = order;
        self
    }

    /// The largest message accepted (the header's own range may be smaller).
    pub fn max(&self) -> usize {
        match self.width {
            HeaderWidth::U16 => self.max.min(u16::MAX as usize),
            HeaderWidth::U32 => self.max.min(MAX_MESSAGE),
        }
    }

    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        match self.width {
            HeaderWidth::U16 => 2,
            HeaderWidth::U32 => 4,
        }
    }

    pub(super) fn read_header(&self, header: &[u8]) -> usize {
        match (self.width, self.order) {
            (HeaderWidth::U16, ByteOrder::BigEndian) => {
                u16::from_be_bytes([header[0], header[1]]) as usize
            }
            (HeaderWidth::U16, ByteOrder::LittleEndian) => {
                u16::from_le_bytes([header[0], header[1]]) as usize
            }
            (HeaderWidth::U32, ByteOrder::BigEndian) => {
                u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize
            }
            (HeaderWidth::U32, ByteOrder::LittleEndian) => {
                u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize
            }
        }
    }

    pub(super) fn write_header(&self, len: usize, out: &mut Vec<u8>) {
        let mut bytes = [0u8; 4];
        let n = self.header_len();
        self.write_header_into(len, &mut bytes[..n]);
        out.extend_from_slice(&bytes[..n]);
    }

    pub(super) fn write_header_into(&self, len: usize, out: &mut [u8]) {
        match (self.width, self.order) {
            (HeaderWidth::U16, ByteOrder::BigEndian) => {
                out.copy_from_slice(&(len as u16).to_be_bytes())
            }
            (HeaderWidth::U16, ByteOrder::LittleEndian) => {
                out.copy_from_slice(&(len as u16).to_le_bytes())
            }
            (HeaderWidth::U32, ByteOrder::BigEndian) => {
                out.copy_from_slice(&(len as u32).to_be_bytes())
            }
            (HeaderWidth::U32, ByteOrder::LittleEndian) => {
                out.copy_from_slice(&(len as u32).to_le_bytes())
            }
        }
    }
}
