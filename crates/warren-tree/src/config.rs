//! The ensemble's configuration as `/zookeeper/config` holds it, and `reconfig` at apply.
//!
//! Twin of the reconfig case of ZooKeeper's `PrepRequestProcessor.pRequest2Txn` and of
//! `QuorumMaj.toString`. The node's data is one `server.N=<spec>` line per member in id
//! order, then `version=<hex>`, the zxid of the command that wrote it (ZooKeeper's config
//! version is the zxid of its reconfig too), with no newline at the end:
//! ```text
//! server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181
//! server.2=127.0.0.1:2889:3889:observer;0.0.0.0:2182
//! version=100000003
//! ```
//! `<spec>` is `host:peerPort:electionPort:participant|observer;clientAddr:clientPort`,
//! canonicalised by the server before the log (the tree does not parse addresses).
//!
//! Checks at apply, in ZooKeeper's order: the session; `curConfigId` (-1, or the current
//! version: else BadVersion); a request the server could not parse (BadArguments); fewer than
//! two participants in the result (BadArguments, ZooKeeper's rule with `standaloneEnabled`);
//! WRITE on `/zookeeper/config` (world:anyone READ, so only `super` passes: NoAuth). On
//! success the node gets the new data, `mzxid`/`mtime` of the command and, as in ZooKeeper,
//! whose reconfig writes the node with version -1, data version -1; the outcome is
//! [`crate::Outcome::Data`] (the reply is a GetDataResponse).

use std::collections::BTreeMap;

/// `/zookeeper/config`.
pub const CONFIG_PATH: &str = "/zookeeper/config";

/// One member of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigServer {
    /// The server id `N`.
    pub id: u64,
    /// The canonical text after `server.N=`.
    pub spec: String,
}

impl ConfigServer {
    /// Whether it votes (its spec does not say `observer`).
    pub fn is_participant(&self) -> bool {
        let server_part = self.spec.split(';').next().unwrap_or("");
        !server_part.ends_with(":observer")
    }
}

/// The members and version in a `/zookeeper/config` node's data. Empty data (a standalone
/// server, or an ensemble before its leader wrote the configuration) has no members and
/// version 0, as ZooKeeper's static configuration.
pub fn parse_config(data: &[u8]) -> (BTreeMap<u64, ConfigServer>, i64) {
    let text = String::from_utf8_lossy(data);
    let mut servers = BTreeMap::new();
    let mut version = 0;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("version=") {
            version = i64::from_str_radix(v.trim(), 16).unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("server.")
            && let Some((id, spec)) = rest.split_once('=')
            && let Ok(id) = id.parse::<u64>()
        {
            let spec = spec.to_owned();
            servers.insert(id, ConfigServer { id, spec });
        }
    }
    (servers, version)
}

/// The data of `/zookeeper/config` for `servers` at config version `version`.
pub fn render_config<'a>(
    servers: impl IntoIterator<Item = &'a ConfigServer>,
    version: i64,
) -> Vec<u8> {
    let mut out = String::new();
    for s in servers {
        out.push_str(&format!("server.{}={}\n", s.id, s.spec));
    }
    out.push_str(&format!("version={version:x}"));
    out.into_bytes()
}

/// The configuration after a reconfig: `new_members` replaces everything (ZooKeeper's
/// non-incremental mode); otherwise `leaving` go and `joining` come (a joiner replaces a
/// member with its id).
pub fn next_config(
    current: &BTreeMap<u64, ConfigServer>,
    joining: &[ConfigServer],
    leaving: &[u64],
    new_members: Option<&[ConfigServer]>,
) -> BTreeMap<u64, ConfigServer> {
    if let Some(all) = new_members {
        return all.iter().map(|s| (s.id, s.clone())).collect();
    }
    let mut next = current.clone();
    for id in leaving {
        next.remove(id);
    }
    for s in joining {
        next.insert(s.id, s.clone());
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(id: u64, spec: &str) -> ConfigServer {
        ConfigServer {
            id,
            spec: spec.to_owned(),
        }
    }

    #[test]
    fn render_then_parse_round_trips_and_ends_with_the_version_line() {
        let servers = [
            server(1, "127.0.0.1:2888:3888:participant;0.0.0.0:2181"),
            server(100, "0.0.0.0:1:2:observer;0.0.0.0:3"),
        ];
        let data = render_config(&servers, 0x1_0000_0003);
        let text = String::from_utf8(data.clone()).unwrap();
        assert_eq!(text.split('\n').next_back(), Some("version=100000003"));
        let (parsed, version) = parse_config(&data);
        assert_eq!(version, 0x1_0000_0003);
        assert_eq!(parsed.values().cloned().collect::<Vec<_>>(), servers);
        assert!(parsed[&1].is_participant());
        assert!(!parsed[&100].is_participant());
    }

    #[test]
    fn empty_data_is_no_members_at_version_zero() {
        assert_eq!(parse_config(b""), (BTreeMap::new(), 0));
    }

    #[test]
    fn incremental_and_whole_changes() {
        let current: BTreeMap<u64, ConfigServer> = [(1, server(1, "a")), (2, server(2, "b"))]
            .into_iter()
            .collect();
        let next = next_config(&current, &[server(2, "b2"), server(3, "c")], &[1], None);
        let specs: Vec<_> = next.values().map(|s| s.spec.as_str()).collect();
        assert_eq!(specs, ["b2", "c"]);
        let whole = next_config(&current, &[], &[], Some(&[server(9, "z")]));
        assert_eq!(whole.keys().copied().collect::<Vec<_>>(), [9]);
    }
}
