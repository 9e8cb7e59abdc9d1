//! Framing: every message is a 4-byte big-endian length and that many bytes; the first 4
//! bytes of a fresh connection may instead be a four-letter word.
//!
//! Twin of `NIOServerCnxn.readLength` and `checkFourLetterWord`. The bound on a frame is the
//! server's (`packet_bytes_max`); [`PACKET_BYTES_MAX_DEFAULT`] is ZooKeeper's default.

use thiserror::Error;

use crate::jute::Writer;

/// ZooKeeper's default `jute.maxbuffer`: 0xfffff bytes.
pub const PACKET_BYTES_MAX_DEFAULT: usize = 0xfffff;

/// Bytes of the length prefix.
pub const LEN_BYTES: usize = 4;

/// A length prefix the server refuses; ZooKeeper closes the connection ("Len error").
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The length is negative.
    #[error("Len error: negative frame length {0}")]
    Negative(i32),
    /// The length is above the server's bound.
    #[error("Len error: frame length {len} above the maximum {max}")]
    TooLong {
        /// The length as sent.
        len: i32,
        /// The bound.
        max: usize,
    },
}

/// Reads a length prefix.
pub fn decode_len(prefix: [u8; LEN_BYTES]) -> i32 {
    i32::from_be_bytes(prefix)
}

/// Checks a frame length against the bound `max`, returning it as a size.
pub fn check_frame_len(len: i32, max: usize) -> Result<usize, FrameError> {
    let n = usize::try_from(len).map_err(|_| FrameError::Negative(len))?;
    if n > max {
        return Err(FrameError::TooLong { len, max });
    }
    Ok(n)
}

/// Builds a complete frame in one vector: reserves the prefix, lets `body` append, then
/// fills the prefix in.
pub fn encode_frame(body: impl FnOnce(&mut Writer)) -> Vec<u8> {
    encode_frame_with_capacity(FRAME_CAPACITY_DEFAULT, body)
}

/// Bytes reserved for a frame of unknown size: a reply header with a stat and a short path.
const FRAME_CAPACITY_DEFAULT: usize = 128;

/// [`encode_frame`] into a vector of `capacity` bytes (the prefix included), for frames
/// whose size the caller knows, so the vector is allocated once.
pub fn encode_frame_with_capacity(capacity: usize, body: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::with_capacity(capacity);
    w.int(0);
    body(&mut w);
    let mut v = w.into_vec();
    let len = i32::try_from(v.len() - LEN_BYTES)
        .expect("a frame is bounded far below 2 GiB: frame bound violated");
    v[..LEN_BYTES].copy_from_slice(&len.to_be_bytes());
    v
}

macro_rules! four_letter_words {
    ($($(#[$m:meta])* $v:ident = $s:literal,)*) => {
        /// A four-letter-word admin command (`FourLetterCommands`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FourLetterWord { $($(#[$m])* $v,)* }

        impl FourLetterWord {
            /// Every command.
            pub const ALL: &'static [FourLetterWord] = &[$(FourLetterWord::$v,)*];

            /// The command as sent, e.g. `"ruok"`.
            pub fn as_str(self) -> &'static str {
                match self { $(FourLetterWord::$v => $s,)* }
            }

            /// The command for four bytes (case-sensitive, as in ZooKeeper).
            pub fn from_bytes(b: [u8; 4]) -> Option<Self> {
                match &b { $(x if x == $s.as_bytes() => Some(FourLetterWord::$v),)* _ => None }
            }
        }
    };
}

four_letter_words! {
    /// Are you OK: answers `imok`.
    Ruok = "ruok",
    /// Server summary.
    Srvr = "srvr",
    /// Server summary and connections.
    Stat = "stat",
    /// Configuration.
    Conf = "conf",
    /// Connections.
    Cons = "cons",
    /// Reset connection statistics.
    Crst = "crst",
    /// Sessions and ephemerals.
    Dump = "dump",
    /// Environment.
    Envi = "envi",
    /// Reset server statistics.
    Srst = "srst",
    /// Watch summary.
    Wchs = "wchs",
    /// Watches by connection.
    Wchc = "wchc",
    /// Watches by path.
    Wchp = "wchp",
    /// Data directory sizes.
    Dirs = "dirs",
    /// Monitoring key/value lines.
    Mntr = "mntr",
    /// Read-only: `ro` or `rw`.
    Isro = "isro",
    /// Tree digests.
    Hash = "hash",
    /// Get the trace mask.
    Gtmk = "gtmk",
    /// Set the trace mask: ZooKeeper reads an 8-byte big-endian mask after the word.
    Stmk = "stmk",
}

/// The four-letter word in the first 4 bytes of a connection, if they are one. Only the
/// first message of a connection is looked at this way; every such word read as a length is
/// far above any frame bound, so no valid frame is mistaken for one.
pub fn four_letter_word(first: [u8; LEN_BYTES]) -> Option<FourLetterWord> {
    FourLetterWord::from_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_checked_against_the_bound() {
        assert_eq!(check_frame_len(0, 10), Ok(0));
        assert_eq!(check_frame_len(10, 10), Ok(10));
        assert_eq!(
            check_frame_len(11, 10),
            Err(FrameError::TooLong { len: 11, max: 10 })
        );
        assert_eq!(check_frame_len(-1, 10), Err(FrameError::Negative(-1)));
        assert_eq!(
            check_frame_len(i32::MIN, usize::MAX),
            Err(FrameError::Negative(i32::MIN))
        );
        assert!(check_frame_len(0xfffff, PACKET_BYTES_MAX_DEFAULT).is_ok());
        assert!(check_frame_len(0x100000, PACKET_BYTES_MAX_DEFAULT).is_err());
    }

    #[test]
    fn every_four_letter_word_is_recognised_and_is_too_long_for_a_frame() {
        assert_eq!(FourLetterWord::ALL.len(), 18);
        for w in FourLetterWord::ALL {
            let b: [u8; 4] = w.as_str().as_bytes().try_into().unwrap();
            assert_eq!(four_letter_word(b), Some(*w));
            assert!(check_frame_len(decode_len(b), PACKET_BYTES_MAX_DEFAULT).is_err());
        }
        assert_eq!(four_letter_word(*b"RUOK"), None);
        assert_eq!(four_letter_word([0, 0, 0, 44]), None);
    }

    #[test]
    fn encode_frame_fills_the_prefix() {
        let f = encode_frame(|w| {
            w.int(7).boolean(true);
        });
        assert_eq!(f, [0, 0, 0, 5, 0, 0, 0, 7, 1]);
    }
}
