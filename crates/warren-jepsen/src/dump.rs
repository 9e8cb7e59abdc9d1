//! A whole tree as read through one server: every znode's data and stat, by path.
//!
//! The final checks compare dumps (convergence) and look things up in them (acknowledged
//! writes, ephemerals). Reading one is [`crate::client::Session::dump`]'s job; this module
//! is the plain data and its comparison.

use std::collections::BTreeMap;

use warren_proto::Stat;

/// One znode as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its data (`None`: null data, as ZooKeeper keeps apart from empty).
    pub data: Option<Vec<u8>>,
    /// Its stat.
    pub stat: Stat,
}

impl Node {
    /// The data as UTF-8 text (lossy), empty for null data.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.data.as_deref().unwrap_or_default()).into_owned()
    }

    /// A node with `text` as data and a stat carrying only `version` and the ephemeral
    /// owner, for hand-written dumps in tests.
    pub fn with(text: &str, version: i32, ephemeral_owner: i64) -> Node {
        Node {
            data: Some(text.as_bytes().to_vec()),
            stat: Stat {
                version,
                ephemeral_owner,
                data_length: text.len() as i32,
                ..Stat::default()
            },
        }
    }
}

/// Every znode by path (`/` included).
pub type Dump = BTreeMap<String, Node>;

/// The differences between two dumps, at most `limit` of them, in path order.
pub fn differences(a: &Dump, b: &Dump, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut ia = a.iter().peekable();
    let mut ib = b.iter().peekable();
    while out.len() < limit {
        let line = match (ia.peek(), ib.peek()) {
            (None, None) => break,
            (Some((p, _)), None) => {
                let l = format!("{p}: only in the first");
                ia.next();
                l
            }
            (None, Some((p, _))) => {
                let l = format!("{p}: only in the second");
                ib.next();
                l
            }
            (Some((pa, na)), Some((pb, nb))) => match pa.cmp(pb) {
                std::cmp::Ordering::Less => {
                    let l = format!("{pa}: only in the first");
                    ia.next();
                    l
                }
                std::cmp::Ordering::Greater => {
                    let l = format!("{pb}: only in the second");
                    ib.next();
                    l
                }
                std::cmp::Ordering::Equal => {
                    let differ = na != nb;
                    let l = format!("{pa}: {na:?} vs {nb:?}");
                    ia.next();
                    ib.next();
                    if !differ {
                        continue;
                    }
                    l
                }
            },
        };
        out.push(line);
    }
    out
}
