//! The log payload (`Command`, `Op`) and what applying it yields (`Applied`, `Outcome`,
//! `Trigger`). The byte form is what the Raft log stores: a leading format version byte,
//! then jute-style fields. A version's layout never changes; a new layout gets a new byte.
//!
//! Format version 1:
//! ```text
//! u8 1 | long origin | long session | int xid | long time_ms | vector<Id> auth | op
//! op   = int tag, then
//!   1 CreateSession   int timeout_ms, buffer password (16 bytes)
//!   2 CloseSession
//!   3 Create          ustring path, buffer data, vector<ACL> acl, int mode, long ttl_ms
//!   4 Delete          ustring path, int version
//!   5 SetData         ustring path, buffer data, int version
//!   6 SetAcl          ustring path, vector<ACL> acl, int version
//!   7 Check           ustring path, int version
//!   8 Multi           int count, count × op (no nesting)
//!   9 DeleteContainer ustring path
//!  10 DeleteTtl       ustring path
//!  11 Refused         int error code
//!  12 Reconfig        long cur_config_id, u8 malformed, vector<server> joining,
//!                     vector<long> leaving, u8 has_new_members, vector<server> new_members,
//!                     vector<server> initial
//!  13 SetConfig       vector<server> servers
//! server = long id, ustring spec (see `crate::config`)
//! ```
//!
//! A log entry holds one command, or a **batch** of them ([`encode_batch`]): the leader's
//! proposer packs the writes queued at one moment into one entry, so Raft's per-entry work
//! (log record, commit, apply call) is shared; each command still applies on its own, in
//! order, with its own zxid. Batch format version 1:
//! ```text
//! u8 0xB1 | int count (≥ 2) | count × buffer command (the bytes of `Command::encode`)
//! ```

use crate::config::ConfigServer;
use warren_proto::{
    Acl, CreateMode, DecodeError, ErrorCode, EventType, Id, Reader, Record, SessionId, Stat,
    Writer, Xid, Zxid,
};

/// The current (and only) format version of [`Command::encode`].
pub const COMMAND_FORMAT_V1: u8 = 1;

/// First byte of a log entry holding a batch of commands ([`encode_batch`]).
pub const BATCH_FORMAT_V1: u8 = 0xB1;

/// A log entry holding `commands` (each the bytes of [`Command::encode`]), applied in order.
/// Use it for two or more: a single command is an entry by itself.
pub fn encode_batch<'a>(commands: impl ExactSizeIterator<Item = &'a [u8]> + Clone) -> Vec<u8> {
    let len = 1 + 4 + commands.clone().map(|c| 4 + c.len()).sum::<usize>();
    let count = i32::try_from(commands.len()).expect("a batch holds fewer than 2^31 commands");
    let mut buf = Vec::with_capacity(len);
    buf.push(BATCH_FORMAT_V1);
    let mut w = Writer::from_vec(buf);
    w.int(count);
    for c in commands {
        w.buffer(c);
    }
    w.into_vec()
}

/// The commands of a log entry, in order: one for a command, several for a batch.
pub fn decode_entry(bytes: &[u8]) -> Result<Vec<Command>, DecodeError> {
    let Some((&BATCH_FORMAT_V1, rest)) = bytes.split_first() else {
        return Command::decode(bytes).map(|c| vec![c]);
    };
    let mut r = Reader::new(rest);
    let commands = r.vec(4, |r| Command::decode(r.buffer()?))?;
    r.finish()?;
    Ok(commands)
}

/// One write, stamped by the leader, as the log carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The server that holds the client's connection (it sends the reply).
    pub origin: u64,
    /// The client's session (for session ops, the session created or closed).
    pub session: SessionId,
    /// The client's request id, echoed in the reply.
    pub xid: Xid,
    /// The leader's wall clock in ms; the tree's only notion of time (ctime, mtime, TTL).
    pub time_ms: i64,
    /// The connection's authenticated ids (`digest:user:hash`, `ip:addr`, `super:`).
    pub auth: Vec<Id>,
    /// What to do.
    pub op: Op,
}

/// The operation of a [`Command`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Adds the session `Command::session` (a no-op if it exists).
    CreateSession {
        /// Negotiated timeout.
        timeout_ms: i32,
        /// The session's password.
        password: [u8; 16],
    },
    /// Closes `Command::session` and deletes its ephemerals (client close and expiry).
    CloseSession,
    /// create/create2/createContainer/createTTL.
    Create {
        /// Path (for sequential modes, the prefix).
        path: String,
        /// Data.
        data: Option<Vec<u8>>,
        /// ACL as the client sent it (expanded and checked at apply).
        acl: Vec<Acl>,
        /// Mode.
        mode: CreateMode,
        /// TTL for the TTL modes; [`Op::NO_TTL`] (-1) otherwise, as ZooKeeper, which answers
        /// BadArguments for a TTL ≥ 0 with a non-TTL mode.
        ttl_ms: i64,
    },
    /// delete.
    Delete {
        /// Path.
        path: String,
        /// Expected data version, -1 for any.
        version: i32,
    },
    /// setData.
    SetData {
        /// Path.
        path: String,
        /// New data.
        data: Option<Vec<u8>>,
        /// Expected data version, -1 for any.
        version: i32,
    },
    /// setACL.
    SetAcl {
        /// Path.
        path: String,
        /// New ACL.
        acl: Vec<Acl>,
        /// Expected ACL version (aversion), -1 for any.
        version: i32,
    },
    /// check (version assertion; meant for multi).
    Check {
        /// Path.
        path: String,
        /// Expected data version, -1 for any.
        version: i32,
    },
    /// multi: Create/Delete/SetData/Check, all or nothing, one zxid.
    Multi(Vec<Op>),
    /// The leader's container sweep; re-checked at apply.
    DeleteContainer {
        /// Path.
        path: String,
    },
    /// The leader's TTL sweep; re-checked at apply against `Command::time_ms`.
    DeleteTtl {
        /// Path.
        path: String,
    },
    /// A write the server refused before the log (a body that does not decode, a TTL node
    /// while TTLs are disabled, reconfig on a standalone server). Like ZooKeeper's error
    /// txn it takes a zxid and changes nothing else; the outcome is `Error(code)`.
    Refused {
        /// The error the client gets.
        code: ErrorCode,
    },
    /// reconfig: the ensemble's configuration in `/zookeeper/config` changes (see
    /// [`crate::config`]); the server makes Raft's membership follow it.
    Reconfig {
        /// `curConfigId`: the expected config version, -1 for any.
        from_config: i64,
        /// The server could not parse the request: BadArguments after the version check.
        malformed: bool,
        /// Servers joining (incremental mode).
        joining: Vec<ConfigServer>,
        /// Server ids leaving (incremental mode).
        leaving: Vec<u64>,
        /// The whole new configuration (non-incremental mode).
        new_members: Option<Vec<ConfigServer>>,
        /// The configuration to start from while `/zookeeper/config` is still empty (the
        /// proposing server's zoo.cfg members; the leader writes them there soon after an
        /// ensemble forms, and a reconfig may come first).
        initial: Vec<ConfigServer>,
    },
    /// The leader writes the configuration of zoo.cfg into an empty `/zookeeper/config`
    /// (once, when an ensemble first has a leader); a no-op (NodeExists) if one is there.
    SetConfig {
        /// The members.
        servers: Vec<ConfigServer>,
    },
}

impl Op {
    /// The `ttl_ms` of a create that is not a TTL create.
    pub const NO_TTL: i64 = -1;
}

/// The result of applying a command, as the client's reply needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Session created/closed, delete, check.
    Done,
    /// Create: the actual path (with the sequence suffix) and the new node's stat.
    Created {
        /// The created path.
        path: String,
        /// Its stat.
        stat: Stat,
    },
    /// setData, setACL: the node's stat after the change.
    Stat(Stat),
    /// reconfig: the new `/zookeeper/config` data and stat.
    Data {
        /// The node's data.
        data: Vec<u8>,
        /// Its stat.
        stat: Stat,
    },
    /// A multi whose ops all succeeded, one outcome each.
    Multi(Vec<Outcome>),
    /// A failed multi: Ok for ops before the failure, its code, then RuntimeInconsistency.
    MultiFailed(Vec<ErrorCode>),
    /// The op failed with this code; nothing changed.
    Error(ErrorCode),
}

/// A raw change fact for the watch registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The path whose watches it concerns.
    pub path: String,
    /// What happened there.
    pub event: EventType,
}

/// What one apply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The zxid this command took (failed ones take one too).
    pub zxid: Zxid,
    /// The result.
    pub outcome: Outcome,
    /// Watch triggers in the order the changes happened (empty on failure).
    pub triggers: Vec<Trigger>,
}

mod tag {
    pub const CREATE_SESSION: i32 = 1;
    pub const CLOSE_SESSION: i32 = 2;
    pub const CREATE: i32 = 3;
    pub const DELETE: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const SET_ACL: i32 = 6;
    pub const CHECK: i32 = 7;
    pub const MULTI: i32 = 8;
    pub const DELETE_CONTAINER: i32 = 9;
    pub const DELETE_TTL: i32 = 10;
    pub const REFUSED: i32 = 11;
    pub const RECONFIG: i32 = 12;
    pub const SET_CONFIG: i32 = 13;
}

impl Command {
    /// The log bytes of this command (format version [`COMMAND_FORMAT_V1`]).
    pub fn encode(&self) -> Vec<u8> {
        // Sized exactly up front: growing from empty cost ~5 reallocations per write.
        let mut buf = Vec::with_capacity(self.encoded_len());
        buf.push(COMMAND_FORMAT_V1);
        let mut w = Writer::from_vec(buf);
        w.long(self.origin as i64)
            .long(self.session.0)
            .int(self.xid.0)
            .long(self.time_ms);
        w.vec(&self.auth, |w, id| id.encode(w));
        encode_op(&mut w, &self.op);
        w.into_vec()
    }

    /// The length of [`Command::encode`]'s bytes.
    pub fn encoded_len(&self) -> usize {
        1 + 8 + 8 + 4 + 8 + 4 + self.auth.iter().map(id_len).sum::<usize>() + op_len(&self.op)
    }

    /// Decodes log bytes of any known format version.
    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        let Some((&version, rest)) = bytes.split_first() else {
            return Err(DecodeError::Truncated {
                offset: 0,
                needed: 1,
            });
        };
        if version != COMMAND_FORMAT_V1 {
            return Err(DecodeError::BadValue {
                field: "command format version",
                value: version.into(),
            });
        }
        let mut r = Reader::new(rest);
        let cmd = Command {
            origin: r.long()? as u64,
            session: SessionId(r.long()?),
            xid: Xid(r.int()?),
            time_ms: r.long()?,
            auth: r.vec(8, Id::decode)?,
            op: decode_op(&mut r, true)?,
        };
        r.finish()?;
        Ok(cmd)
    }
}

fn encode_op(w: &mut Writer, op: &Op) {
    match op {
        Op::CreateSession {
            timeout_ms,
            password,
        } => {
            w.int(tag::CREATE_SESSION).int(*timeout_ms).buffer(password);
        }
        Op::CloseSession => {
            w.int(tag::CLOSE_SESSION);
        }
        Op::Create {
            path,
            data,
            acl,
            mode,
            ttl_ms,
        } => {
            w.int(tag::CREATE).ustring(path);
            opt_buffer(w, data.as_deref());
            w.vec(acl, |w, a| a.encode(w));
            w.int(mode.code()).long(*ttl_ms);
        }
        Op::Delete { path, version } => {
            w.int(tag::DELETE).ustring(path).int(*version);
        }
        Op::SetData {
            path,
            data,
            version,
        } => {
            w.int(tag::SET_DATA).ustring(path);
            opt_buffer(w, data.as_deref());
            w.int(*version);
        }
        Op::SetAcl { path, acl, version } => {
            w.int(tag::SET_ACL).ustring(path);
            w.vec(acl, |w, a| a.encode(w));
            w.int(*version);
        }
        Op::Check { path, version } => {
            w.int(tag::CHECK).ustring(path).int(*version);
        }
        Op::Multi(ops) => {
            w.int(tag::MULTI);
            w.vec(ops, encode_op);
        }
        Op::DeleteContainer { path } => {
            w.int(tag::DELETE_CONTAINER).ustring(path);
        }
        Op::DeleteTtl { path } => {
            w.int(tag::DELETE_TTL).ustring(path);
        }
        Op::Refused { code } => {
            w.int(tag::REFUSED).int(code.code());
        }
        Op::Reconfig {
            from_config,
            malformed,
            joining,
            leaving,
            new_members,
            initial,
        } => {
            w.int(tag::RECONFIG).long(*from_config);
            w.boolean(*malformed);
            w.vec(joining, encode_server);
            w.vec(leaving, |w, id| {
                w.long(*id as i64);
            });
            w.boolean(new_members.is_some());
            w.vec(new_members.as_deref().unwrap_or(&[]), encode_server);
            w.vec(initial, encode_server);
        }
        Op::SetConfig { servers } => {
            w.int(tag::SET_CONFIG);
            w.vec(servers, encode_server);
        }
    }
}

fn encode_server(w: &mut Writer, s: &ConfigServer) {
    w.long(s.id as i64).ustring(&s.spec);
}

fn decode_server(r: &mut Reader<'_>) -> Result<ConfigServer, DecodeError> {
    Ok(ConfigServer {
        id: r.long()? as u64,
        spec: r.ustring()?,
    })
}

fn decode_op(r: &mut Reader<'_>, top: bool) -> Result<Op, DecodeError> {
    let t = r.int()?;
    Ok(match t {
        tag::CREATE_SESSION => {
            let timeout_ms = r.int()?;
            let pw = r.buffer()?;
            let password = <[u8; 16]>::try_from(pw).map_err(|_| DecodeError::BadValue {
                field: "password length",
                value: pw.len() as i64,
            })?;
            Op::CreateSession {
                timeout_ms,
                password,
            }
        }
        tag::CLOSE_SESSION => Op::CloseSession,
        tag::CREATE => {
            let path = r.ustring()?;
            let data = r.opt_buffer()?.map(<[u8]>::to_vec);
            let acl = r.vec(12, Acl::decode)?;
            let code = r.int()?;
            let mode = CreateMode::from_code(code).ok_or(DecodeError::BadValue {
                field: "create mode",
                value: code.into(),
            })?;
            Op::Create {
                path,
                data,
                acl,
                mode,
                ttl_ms: r.long()?,
            }
        }
        tag::DELETE => Op::Delete {
            path: r.ustring()?,
            version: r.int()?,
        },
        tag::SET_DATA => Op::SetData {
            path: r.ustring()?,
            data: r.opt_buffer()?.map(<[u8]>::to_vec),
            version: r.int()?,
        },
        tag::SET_ACL => Op::SetAcl {
            path: r.ustring()?,
            acl: r.vec(12, Acl::decode)?,
            version: r.int()?,
        },
        tag::CHECK => Op::Check {
            path: r.ustring()?,
            version: r.int()?,
        },
        tag::MULTI if top => Op::Multi(r.vec(4, |r| decode_op(r, false))?),
        tag::DELETE_CONTAINER => Op::DeleteContainer { path: r.ustring()? },
        tag::DELETE_TTL => Op::DeleteTtl { path: r.ustring()? },
        tag::REFUSED => {
            let code = r.int()?;
            let code = ErrorCode::from_code(code).ok_or(DecodeError::BadValue {
                field: "refused error code",
                value: code.into(),
            })?;
            Op::Refused { code }
        }
        tag::RECONFIG => {
            let from_config = r.long()?;
            let malformed = r.boolean()?;
            let joining = r.vec(12, decode_server)?;
            let leaving = r.vec(8, |r| Ok(r.long()? as u64))?;
            let has_new = r.boolean()?;
            let new_members = r.vec(12, decode_server)?;
            Op::Reconfig {
                from_config,
                malformed,
                joining,
                leaving,
                new_members: has_new.then_some(new_members),
                initial: r.vec(12, decode_server)?,
            }
        }
        tag::SET_CONFIG => Op::SetConfig {
            servers: r.vec(12, decode_server)?,
        },
        other => {
            return Err(DecodeError::BadValue {
                field: "op tag",
                value: other.into(),
            });
        }
    })
}

/// A jute buffer that may be null (length -1), as ZooKeeper keeps null data apart from empty.
/// Encoded lengths, mirroring `encode_op` field by field (jute: 4-byte lengths and ints).
fn str_len(s: &str) -> usize {
    4 + s.len()
}

fn id_len(id: &Id) -> usize {
    str_len(&id.scheme) + str_len(&id.id)
}

fn acl_len(acl: &[Acl]) -> usize {
    4 + acl.iter().map(|a| 4 + id_len(&a.id)).sum::<usize>()
}

fn op_len(op: &Op) -> usize {
    let data_len = |d: &Option<Vec<u8>>| 4 + d.as_ref().map_or(0, Vec::len);
    4 + match op {
        Op::CreateSession { password, .. } => 4 + 4 + password.len(),
        Op::CloseSession => 0,
        Op::Create {
            path, data, acl, ..
        } => str_len(path) + data_len(data) + acl_len(acl) + 4 + 8,
        Op::Delete { path, .. } | Op::Check { path, .. } => str_len(path) + 4,
        Op::SetData { path, data, .. } => str_len(path) + data_len(data) + 4,
        Op::SetAcl { path, acl, .. } => str_len(path) + acl_len(acl) + 4,
        Op::Multi(ops) => 4 + ops.iter().map(op_len).sum::<usize>(),
        Op::DeleteContainer { path } | Op::DeleteTtl { path } => str_len(path),
        Op::Refused { .. } => 4,
        Op::Reconfig {
            joining,
            leaving,
            new_members,
            initial,
            ..
        } => {
            8 + 1
                + servers_len(joining)
                + 4
                + 8 * leaving.len()
                + 1
                + servers_len(new_members.as_deref().unwrap_or(&[]))
                + servers_len(initial)
        }
        Op::SetConfig { servers } => servers_len(servers),
    }
}

fn servers_len(servers: &[ConfigServer]) -> usize {
    4 + servers.iter().map(|s| 8 + str_len(&s.spec)).sum::<usize>()
}

fn opt_buffer(w: &mut Writer, data: Option<&[u8]>) {
    match data {
        Some(d) => w.buffer(d),
        None => w.null_buffer(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_ops() -> Vec<Op> {
        let acl = vec![Acl {
            perms: 31,
            id: Id::new("digest", "u:h"),
        }];
        let create = Op::Create {
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            acl: acl.clone(),
            mode: CreateMode::PersistentSequentialWithTtl,
            ttl_ms: 5,
        };
        vec![
            Op::CreateSession {
                timeout_ms: 3000,
                password: [7; 16],
            },
            Op::CloseSession,
            create.clone(),
            Op::Delete {
                path: "/a".into(),
                version: -1,
            },
            Op::SetData {
                path: "/a".into(),
                data: Some(vec![]),
                version: 3,
            },
            Op::SetAcl {
                path: "/a".into(),
                acl,
                version: 0,
            },
            Op::Check {
                path: "/a".into(),
                version: 1,
            },
            Op::Multi(vec![
                create,
                Op::Check {
                    path: "/b".into(),
                    version: 2,
                },
            ]),
            Op::Multi(vec![]),
            Op::DeleteContainer { path: "/c".into() },
            Op::DeleteTtl { path: "/t".into() },
            Op::Reconfig {
                from_config: 0x1_0000_0007,
                malformed: false,
                joining: vec![ConfigServer {
                    id: 4,
                    spec: "10.0.0.4:2888:3888:participant;0.0.0.0:2181".into(),
                }],
                leaving: vec![2, 3],
                new_members: Some(vec![]),
                initial: vec![ConfigServer {
                    id: 1,
                    spec: "10.0.0.1:2888:3888:participant;0.0.0.0:2181".into(),
                }],
            },
            Op::SetConfig {
                servers: vec![ConfigServer {
                    id: 1,
                    spec: "10.0.0.1:2888:3888:participant;0.0.0.0:2181".into(),
                }],
            },
        ]
    }

    #[test]
    fn commands_round_trip() {
        for op in sample_ops() {
            let cmd = Command {
                origin: u64::MAX,
                session: SessionId(-5),
                xid: Xid(9),
                time_ms: 1_700_000_000_000,
                auth: vec![Id::new("ip", "1.2.3.4")],
                op,
            };
            let bytes = cmd.encode();
            assert_eq!(bytes.len(), cmd.encoded_len(), "{cmd:?}");
            assert_eq!(bytes[0], COMMAND_FORMAT_V1);
            assert_eq!(Command::decode(&bytes).unwrap(), cmd);
            // Every strict prefix is rejected, never a panic.
            for n in 0..bytes.len() {
                assert!(Command::decode(&bytes[..n]).is_err());
            }
        }
    }

    #[test]
    fn batches_round_trip_in_order_and_reject_damage() {
        let commands: Vec<Command> = sample_ops()
            .into_iter()
            .enumerate()
            .map(|(i, op)| Command {
                origin: 7,
                session: SessionId(3),
                xid: Xid(i as i32),
                time_ms: 5,
                auth: vec![],
                op,
            })
            .collect();
        let encoded: Vec<Vec<u8>> = commands.iter().map(Command::encode).collect();
        let batch = encode_batch(encoded.iter().map(Vec::as_slice));
        assert_eq!(batch[0], BATCH_FORMAT_V1);
        assert_eq!(decode_entry(&batch).unwrap(), commands);
        // A plain command is an entry of one.
        assert_eq!(
            decode_entry(&encoded[0]).unwrap(),
            vec![commands[0].clone()]
        );
        for n in 0..batch.len() {
            assert!(decode_entry(&batch[..n]).is_err(), "prefix of {n} bytes");
        }
        let mut trailing = batch.clone();
        trailing.push(0);
        assert!(decode_entry(&trailing).is_err());
    }

    #[test]
    fn golden_v1_bytes_never_change() {
        let cmd = Command {
            origin: 1,
            session: SessionId(2),
            xid: Xid(3),
            time_ms: 4,
            auth: vec![],
            op: Op::Delete {
                path: "/a".into(),
                version: -1,
            },
        };
        let expected: Vec<u8> = [
            &[1u8][..],
            &1i64.to_be_bytes(),
            &2i64.to_be_bytes(),
            &3i32.to_be_bytes(),
            &4i64.to_be_bytes(),
            &0i32.to_be_bytes(),
            &4i32.to_be_bytes(),
            &2i32.to_be_bytes(),
            b"/a",
            &(-1i32).to_be_bytes(),
        ]
        .concat();
        assert_eq!(cmd.encode(), expected);
    }

    #[test]
    fn rejects_unknown_version_nesting_and_trailing_bytes() {
        assert!(Command::decode(&[2]).is_err());
        assert!(Command::decode(&[]).is_err());
        let nested = Command {
            origin: 0,
            session: SessionId(0),
            xid: Xid(0),
            time_ms: 0,
            auth: vec![],
            op: Op::Multi(vec![Op::Multi(vec![])]),
        };
        assert!(Command::decode(&nested.encode()).is_err());
        let mut b = Command {
            op: Op::CloseSession,
            ..nested
        }
        .encode();
        b.push(0);
        assert_eq!(Command::decode(&b), Err(DecodeError::Trailing(1)));
    }
}
