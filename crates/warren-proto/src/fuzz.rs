//! Fuzz targets written as plain functions, so that a stable `#[test]` can replay a seed
//! corpus and deterministic mutations, and a `cargo fuzz` harness can call them unchanged.

use crate::frame::{self, LEN_BYTES, PACKET_BYTES_MAX_DEFAULT};
use crate::jute::Record;
use crate::records::ConnectRequest;
use crate::request::{decode_connect, decode_frame, encode_request};

/// Feeds arbitrary bytes through everything a server does with a client's first bytes and
/// frames: four-letter-word detection, the length check, handshake decoding, header and
/// request decoding. Panics only if an invariant breaks: a decoded request must re-encode
/// to a frame that decodes to the same request.
///
/// Input layout: a 4-byte length prefix, then the frame (cut to the bytes present).
///
/// Memory: every length and count is checked against the bytes that remain before anything
/// is reserved, and each vector element needs at least 4 bytes of input, so a decoded
/// request holds at most a small multiple of its frame: strings grow by at most 3x (one
/// U+FFFD per bad byte), vectors by their element's size over its minimum wire size (about
/// 6x for string lists, about 12x for a multi of minimal ops with its growth slack).
pub fn fuzz_frame(data: &[u8]) {
    let Some((prefix, rest)) = data.split_first_chunk::<LEN_BYTES>() else {
        return;
    };
    let _ = frame::four_letter_word(*prefix);
    let body = match frame::check_frame_len(frame::decode_len(*prefix), PACKET_BYTES_MAX_DEFAULT) {
        Ok(n) => &rest[..n.min(rest.len())],
        Err(_) => rest,
    };
    if let Ok(c) = decode_connect(body) {
        assert_eq!(ConnectRequest::from_bytes(&c.to_bytes()).as_ref(), Ok(&c));
    }
    if let Ok((header, request)) = decode_frame(body) {
        let again = encode_request(header.xid, &request);
        let (h2, r2) = decode_frame(&again[LEN_BYTES..]).expect("a re-encoded request decodes");
        assert_eq!(r2, request, "re-encoded request differs");
        assert_eq!(h2.xid, header.xid);
    }
}
