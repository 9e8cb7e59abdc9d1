//! The jute primitives: big-endian ints and longs, one-byte booleans, length-prefixed byte
//! buffers and strings (length -1 means null), and counted vectors.
//!
//! Twin of Apache ZooKeeper's `BinaryInputArchive` / `BinaryOutputArchive`. Deviation: a
//! null string or buffer decodes as empty (ZooKeeper's server treats them alike everywhere a
//! client can send one), and encoding never writes -1 except through the explicit
//! [`Writer::null_buffer`] / [`Writer::null_vec`] helpers.

use thiserror::Error;

/// Why a byte sequence is not a valid record. A connection that sends one is closed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The record needs more bytes than the frame holds.
    #[error("truncated: needed {needed} more bytes at offset {offset}")]
    Truncated {
        /// Offset in the frame where the read started.
        offset: usize,
        /// Bytes the read needed.
        needed: usize,
    },
    /// A length or count is negative (other than -1) or larger than the bytes left.
    #[error("bad length {len} at offset {offset}")]
    BadLength {
        /// Offset of the length field.
        offset: usize,
        /// The length as sent.
        len: i32,
    },
    /// A field holds a value the protocol does not define (an unknown enum value).
    #[error("invalid value {value} for {field}")]
    BadValue {
        /// Name of the field.
        field: &'static str,
        /// The value as sent.
        value: i64,
    },
    /// Bytes are left over after the record ended.
    #[error("{0} trailing bytes after the record")]
    Trailing(usize),
}

/// A bounded reader over one frame.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads from `buf`, which is one whole frame body.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Fails with [`DecodeError::Trailing`] unless every byte was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Reads a 4-byte big-endian int.
    pub fn int(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads an 8-byte big-endian long.
    pub fn long(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// Reads a one-byte boolean (any non-zero byte is true, as Java's `readBoolean`).
    pub fn boolean(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }

    /// Reads an optional trailing boolean: `None` when the frame has ended (old clients
    /// omit the handshake's readOnly byte).
    pub fn opt_boolean(&mut self) -> Result<Option<bool>, DecodeError> {
        if self.remaining() == 0 {
            Ok(None)
        } else {
            self.boolean().map(Some)
        }
    }

    /// Reads a length that must be -1 (null) or fit in what remains, `unit` bytes per item.
    fn len(&mut self, unit: usize) -> Result<Option<usize>, DecodeError> {
        let offset = self.pos;
        let len = self.int()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || (len as usize).saturating_mul(unit) > self.remaining() {
            return Err(DecodeError::BadLength { offset, len });
        }
        Ok(Some(len as usize))
    }

    /// Reads a buffer; null decodes as empty.
    pub fn buffer(&mut self) -> Result<&'a [u8], DecodeError> {
        match self.len(1)? {
            None => Ok(&[]),
            Some(n) => self.take(n),
        }
    }

    /// Reads a buffer, keeping null distinct from empty.
    pub fn opt_buffer(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.len(1)? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }

    /// Reads a string; null decodes as empty. Never fails on the bytes themselves: see
    /// [`decode_string_lossy`].
    pub fn ustring(&mut self) -> Result<String, DecodeError> {
        Ok(self.opt_ustring()?.unwrap_or_default())
    }

    /// Reads a string, keeping null distinct from empty.
    pub fn opt_ustring(&mut self) -> Result<Option<String>, DecodeError> {
        let Some(n) = self.len(1)? else {
            return Ok(None);
        };
        Ok(Some(decode_string_lossy(self.take(n)?)))
    }

    /// Reads a vector whose elements take at least `min_item_bytes` each; null decodes as
    /// empty. The bound keeps a forged count from reserving memory the frame cannot fill.
    pub fn vec<T>(
        &mut self,
        min_item_bytes: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let Some(n) = self.len(min_item_bytes.max(1))? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// Reads a vector of strings (each at least its 4-byte length).
    pub fn string_vec(&mut self) -> Result<Vec<String>, DecodeError> {
        self.vec(4, |r| r.ustring())
    }
}

/// Decodes a jute `ustring` the way a Java peer means it, without ever failing.
///
/// - Valid UTF-8 is taken as is (the common case, one copy).
/// - A CESU-8 surrogate pair (`ED A0..AF xx ED B0..BF xx`, six bytes) becomes the one
///   supplementary character it encodes. Java's `BinaryOutputArchive` writes every UTF-16
///   unit separately, so a Java client sends non-BMP characters (emoji in a path) this way.
/// - Any other invalid byte sequence becomes U+FFFD, one per maximal invalid subsequence,
///   as Java's own server does with `new String(bytes, UTF_8)`.
///
/// The result is at most three times as long as `b` (one U+FFFD per bad byte).
/// Deviation: ZooKeeper's server decodes a CESU-8 pair as two U+FFFD, silently corrupting the
/// path; we keep the character and answer with standard UTF-8, which Java decodes correctly.
pub fn decode_string_lossy(b: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(b) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(b.len());
    let mut rest = b;
    while !rest.is_empty() {
        let err = match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(err) => err,
        };
        let (valid, bad) = rest.split_at(err.valid_up_to());
        // `valid` is UTF-8 by construction; the lossy call borrows without copying.
        out.push_str(&String::from_utf8_lossy(valid));
        if let Some(c) = cesu8_pair(bad) {
            out.push(c);
            rest = &bad[6..];
        } else {
            out.push(char::REPLACEMENT_CHARACTER);
            let skip = err.error_len().unwrap_or(bad.len()).max(1);
            rest = &bad[skip..];
        }
    }
    out
}

/// The supplementary character encoded by a CESU-8 surrogate pair at the start of `b`.
fn cesu8_pair(b: &[u8]) -> Option<char> {
    let [
        0xED,
        h1 @ 0xA0..=0xAF,
        h2 @ 0x80..=0xBF,
        0xED,
        l1 @ 0xB0..=0xBF,
        l2 @ 0x80..=0xBF,
        ..,
    ] = *b
    else {
        return None;
    };
    let high = 0xD000 | (u32::from(h1 & 0x3F) << 6) | u32::from(h2 & 0x3F);
    let low = 0xD000 | (u32::from(l1 & 0x3F) << 6) | u32::from(l2 & 0x3F);
    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
}

/// An appending writer.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// An empty writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    /// A writer that appends to `buf`.
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Writer { buf }
    }

    /// The bytes written.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Writes a 4-byte big-endian int.
    pub fn int(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Writes an 8-byte big-endian long.
    pub fn long(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Writes a one-byte boolean.
    pub fn boolean(&mut self, v: bool) -> &mut Self {
        self.buf.push(v as u8);
        self
    }

    /// Writes a length-prefixed buffer.
    pub fn buffer(&mut self, v: &[u8]) -> &mut Self {
        self.int(len_i32(v.len()));
        self.buf.extend_from_slice(v);
        self
    }

    /// Writes a null buffer (length -1).
    pub fn null_buffer(&mut self) -> &mut Self {
        self.int(-1)
    }

    /// Writes a length-prefixed UTF-8 string.
    pub fn ustring(&mut self, v: &str) -> &mut Self {
        self.buffer(v.as_bytes())
    }

    /// Writes a null vector (count -1).
    pub fn null_vec(&mut self) -> &mut Self {
        self.int(-1)
    }

    /// Writes a counted vector.
    pub fn vec<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) -> &mut Self {
        self.int(len_i32(items.len()));
        for i in items {
            item(self, i);
        }
        self
    }

    /// Writes a vector of strings.
    pub fn string_vec<S: AsRef<str>>(&mut self, items: &[S]) -> &mut Self {
        self.vec(items, |w, s| {
            w.ustring(s.as_ref());
        })
    }

    /// Appends raw bytes (an already encoded record).
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
}

fn len_i32(n: usize) -> i32 {
    // Frames are bounded far below 2 GiB (`packet_bytes_max`), so a longer field is a bug.
    i32::try_from(n).expect("jute field longer than i32::MAX: frame bound violated")
}

/// A jute record: a plain concatenation of fields.
pub trait Record: Sized {
    /// Appends this record's fields.
    fn encode(&self, w: &mut Writer);
    /// Reads this record's fields.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Encodes into a fresh vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.into_vec()
    }

    /// Decodes a whole buffer, failing on trailing bytes.
    fn from_bytes(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}
