//! Round trips of every peer message, and garbage that must be an error, never a panic.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use openraft::vote::RaftLeaderId;

use super::*;
use crate::types::{
    EntryPayload, LeaderId, Membership, Payload, PeerNode, StoredMembership, log_id,
};

fn vote(term: u64, node: u64, committed: bool) -> Vote {
    Vote {
        leader_id: LeaderId::new(term, node),
        committed,
    }
}

fn membership() -> Membership {
    let nodes = BTreeMap::from([
        (1, PeerNode { addr: "a:1".into() }),
        (2, PeerNode { addr: "b:2".into() }),
        (4, PeerNode { addr: "d:4".into() }),
    ]);
    Membership::new(vec![BTreeSet::from([1, 2])], nodes).unwrap()
}

/// Strips the length prefix, checking it.
fn body(frame: &[u8]) -> &[u8] {
    let n = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(n, frame.len() - 4);
    &frame[4..]
}

fn append_request() -> AppendEntriesRequest<TypeConfig> {
    AppendEntriesRequest {
        vote: vote(3, 1, true),
        prev_log_id: Some(log_id(2, 9)),
        entries: vec![
            Entry {
                log_id: log_id(3, 10),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: log_id(3, 11),
                payload: EntryPayload::Normal(Payload(Bytes::from_static(b"x"))),
            },
            Entry {
                log_id: log_id(3, 12),
                payload: EntryPayload::Membership(membership()),
            },
        ],
        leader_commit: Some(log_id(3, 10)),
    }
}

#[test]
fn hello_round_trips_and_checks_magic_and_version() {
    for kind in [StreamKind::Raft, StreamKind::Client, StreamKind::Append] {
        let h = Hello {
            kind,
            from: 2,
            to: 3,
            epoch: 77,
        };
        assert_eq!(Hello::decode(&h.encode()).unwrap(), h);
        let mut bad = h.encode();
        bad[0] = b'X';
        assert!(Hello::decode(&bad).is_err());
        // Another version, the one before the append stream included, is refused.
        for version in [1, 9] {
            let mut bad = h.encode();
            bad[4] = version;
            assert!(Hello::decode(&bad).is_err());
        }
    }
}

#[test]
fn raft_requests_round_trip() {
    let req = append_request();
    let (frame, n) = encode_append(&req);
    assert_eq!(n, 3);
    let RaftRequest::Append(back) = decode_raft_request(body(&frame)).unwrap() else {
        panic!("not an append")
    };
    assert_eq!(back.vote, req.vote);
    assert_eq!(back.prev_log_id, req.prev_log_id);
    assert_eq!(back.leader_commit, req.leader_commit);
    assert_eq!(back.entries, req.entries);

    let mut v = VoteRequest::new(vote(5, 2, false), Some(log_id(4, 40)));
    v.leadership_transfer = true;
    match decode_raft_request(body(&encode_vote(&v, false))).unwrap() {
        RaftRequest::Vote(back) => assert_eq!(back, v),
        other => panic!("{other:?}"),
    }
    match decode_raft_request(body(&encode_vote(&v, true))).unwrap() {
        RaftRequest::PreVote(back) => assert_eq!(back, v),
        other => panic!("{other:?}"),
    }

    let meta = SnapshotMeta {
        last_log_id: Some(log_id(3, 12)),
        last_membership: StoredMembership::new(Some(log_id(1, 1)), membership()),
    };
    let chunk = SnapshotChunk {
        offset: 16,
        done: Some((vote(3, 1, true), meta)),
        data: b"snapshot bytes".to_vec(),
    };
    match decode_raft_request(body(&encode_snapshot_chunk(&chunk))).unwrap() {
        RaftRequest::SnapshotChunk(back) => assert_eq!(back, chunk),
        other => panic!("{other:?}"),
    }

    let t = TransferLeaderRequest::new(vote(3, 1, true), 2, Some(log_id(3, 12)));
    match decode_raft_request(body(&encode_transfer_leader(&t))).unwrap() {
        RaftRequest::TransferLeader(back) => assert_eq!(back, t),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        decode_raft_request(body(&encode_probe())).unwrap(),
        RaftRequest::Probe
    ));
}

#[test]
fn raft_replies_round_trip() {
    let replies = [
        RaftReply::Append(AppendEntriesResponse::Success),
        RaftReply::Append(AppendEntriesResponse::PartialSuccess(Some(log_id(2, 3)))),
        RaftReply::Append(AppendEntriesResponse::PartialSuccess(None)),
        RaftReply::Append(AppendEntriesResponse::Conflict),
        RaftReply::Append(AppendEntriesResponse::HigherVote(vote(9, 3, true))),
        RaftReply::Vote(VoteResponse::new(
            vote(4, 2, false),
            Some(log_id(3, 7)),
            true,
        )),
        RaftReply::SnapshotChunk(None),
        RaftReply::SnapshotChunk(Some(vote(4, 1, true))),
        RaftReply::TransferLeader(Ok(())),
        RaftReply::TransferLeader(Err(TransferLeaderError::VoteChanged {
            expected: vote(3, 1, true),
            actual: vote(4, 2, false),
        })),
        RaftReply::TransferLeader(Err(TransferLeaderError::LogNotFlushed {
            expected: Some(log_id(3, 5)),
            actual: None,
        })),
        RaftReply::Probe { initialized: true },
        RaftReply::Error("stopping".into()),
    ];
    for r in replies {
        assert_eq!(decode_raft_reply(body(&encode_raft_reply(&r))).unwrap(), r);
    }
}

#[test]
fn client_messages_round_trip() {
    let reqs = [
        ClientRequest::Forward {
            id: 7,
            payload: b"write".to_vec(),
        },
        ClientRequest::ReadIndex { id: 8 },
        ClientRequest::AppSend {
            payload: b"ping".to_vec(),
        },
        ClientRequest::AppCall {
            id: 9,
            payload: Vec::new(),
        },
    ];
    for r in reqs {
        assert_eq!(
            decode_client_request(body(&encode_client_request(&r))).unwrap(),
            r
        );
    }
    let replies = [
        ClientReply::Forward {
            id: 1,
            result: Ok(42),
        },
        ClientReply::Forward {
            id: 2,
            result: Err(ProposeError::NotLeader {
                leader: Some((3, "c:3".into())),
            }),
        },
        ClientReply::ReadIndex {
            id: 3,
            result: Err(ProposeError::Indeterminate { leader: None }),
        },
        ClientReply::ReadIndex {
            id: 4,
            result: Ok(0),
        },
        ClientReply::AppCall {
            id: 5,
            result: Ok(b"pong".to_vec()),
        },
        ClientReply::AppCall {
            id: 6,
            result: Err("no handler".into()),
        },
    ];
    for r in replies {
        assert_eq!(
            decode_client_reply(body(&encode_client_reply(&r))).unwrap(),
            r
        );
    }
}

#[test]
fn truncated_or_padded_frames_are_errors() {
    // Why: a peer's bytes are untrusted; a short or long frame must close the connection
    // (an error), never panic or allocate from a bogus count.
    let (frame, _) = encode_append(&append_request());
    let full = body(&frame);
    for cut in 0..full.len() {
        assert!(decode_raft_request(&full[..cut]).is_err(), "prefix {cut}");
    }
    let mut padded = full.to_vec();
    padded.push(0);
    assert!(decode_raft_request(&padded).is_err());
    let mut huge = full.to_vec();
    // The entry count sits after type (1), vote (17) and two log ids (17 each).
    huge[52..56].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode_raft_request(&huge).is_err());
    let reply = encode_client_reply(&ClientReply::Forward {
        id: 1,
        result: Err(ProposeError::NotLeader {
            leader: Some((3, "c:3".into())),
        }),
    });
    let full = body(&reply);
    for cut in 0..full.len() {
        assert!(decode_client_reply(&full[..cut]).is_err(), "prefix {cut}");
    }
    assert!(decode_client_request(&[99]).is_err());
}

#[tokio::test]
async fn oversized_frames_are_refused_before_allocation() {
    let mut bytes: &[u8] = &[0xff, 0xff, 0xff, 0x7f, 1, 2, 3];
    let e = read_frame(&mut bytes, CLIENT_FRAME_BYTES_MAX)
        .await
        .unwrap_err();
    assert!(matches!(e, WireError::TooLarge { .. }), "{e}");
}

/// Three entries of half a frame's batch each, after index 9.
fn huge_batch() -> AppendEntriesRequest<TypeConfig> {
    let big = vec![7u8; APPEND_BATCH_BYTES / 2];
    AppendEntriesRequest {
        vote: vote(1, 1, true),
        prev_log_id: Some(log_id(1, 9)),
        entries: (0..3)
            .map(|i| Entry {
                log_id: log_id(1, 10 + i),
                payload: EntryPayload::Normal(Payload(Bytes::from(big.clone()))),
            })
            .collect(),
        leader_commit: Some(log_id(1, 8)),
    }
}

#[test]
fn a_huge_batch_is_cut_into_frames() {
    let req = huge_batch();
    let (frame, n) = encode_append(&req);
    assert_eq!(n, 1, "only one half-batch entry fits");
    assert!(frame.len() <= APPEND_BATCH_BYTES + 64);
}

#[test]
fn append_stream_frames_chain_their_prev_log_ids() {
    let req = huge_batch();
    let entries = &req.entries;
    let frames = encode_append_frames(&req);
    assert_eq!(frames.len(), 3, "one half-batch entry per frame");
    for (i, frame) in frames.iter().enumerate() {
        let RaftRequest::Append(part) = decode_raft_request(body(frame)).unwrap() else {
            panic!("frame {i} is not an append");
        };
        let prev = if i == 0 {
            req.prev_log_id
        } else {
            Some(entries[i - 1].log_id)
        };
        assert_eq!(part.prev_log_id, prev, "frame {i}");
        assert_eq!(part.entries, entries[i..=i], "frame {i}");
        assert_eq!(part.vote, req.vote);
        assert_eq!(part.leader_commit, req.leader_commit);
    }
    // A request that fits (or carries no entries: a heartbeat) is one frame, as before.
    let small = append_request();
    assert_eq!(encode_append_frames(&small), vec![encode_append(&small).0]);
    let heartbeat = AppendEntriesRequest {
        entries: Vec::new(),
        ..append_request()
    };
    assert_eq!(encode_append_frames(&heartbeat).len(), 1);
}

#[test]
fn append_stream_replies_round_trip() {
    let replies: Vec<AppendReply> = vec![
        Ok(Ok(Some(log_id(3, 12)))),
        Ok(Ok(None)),
        Ok(Err(StreamAppendError::Conflict(log_id(2, 9)))),
        Ok(Err(StreamAppendError::HigherVote(vote(4, 2, false)))),
        Err("node shutting down".into()),
    ];
    for reply in replies {
        let frame = encode_append_reply(&reply);
        assert_eq!(decode_append_reply(body(&frame)).unwrap(), reply);
        // Truncated or padded, never a panic.
        let b = body(&frame);
        assert!(decode_append_reply(&b[..b.len() - 1]).is_err());
        let mut padded = b.to_vec();
        padded.push(0);
        assert!(decode_append_reply(&padded).is_err());
    }
    // A conflict must name where.
    assert!(decode_append_reply(&[0x87, 1, 0]).is_err());
    assert!(decode_append_reply(&[0x87, 9]).is_err());
    assert!(decode_append_reply(&[0x81, 0]).is_err());
}
