//! `Party` and `ShallowParty`: kazoo's membership lists.
//!
//! Twin: `kazoo/recipe/party.py`. Layout:
//!
//! ```text
//! Party:         /path/<uuid4 hex>__party__          ephemeral, data: identifier
//! ShallowParty:  /path/<uuid4 hex>-<identifier>      ephemeral, no data
//! ```
//!
//! A `ShallowParty` lists its members with one `getChildren`; its identifiers must be
//! valid node-name text.

use crate::connection::Connection;
use crate::error::Result;
use crate::path::{EPHEMERAL, ensure_path, join, uuid_hex};

const PARTY_NODE_NAME: &str = "__party__";

/// The two kinds of party.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Deep,
    Shallow,
}

/// A member of a kazoo party: [`Party`] or [`ShallowParty`].
pub struct BaseParty {
    conn: Connection,
    path: String,
    data: Vec<u8>,
    node: String,
    kind: Kind,
    participating: std::sync::atomic::AtomicBool,
}

/// kazoo's `Party`: members' identifiers are their nodes' data.
pub type Party = BaseParty;

/// kazoo's `ShallowParty`: members' identifiers are in their node names.
pub struct ShallowParty(BaseParty);

impl BaseParty {
    /// A member of the party at `path`, known as `identifier`.
    pub fn new(conn: &Connection, path: &str, identifier: &str) -> Party {
        BaseParty::with_kind(
            conn,
            path,
            identifier,
            format!("{}{PARTY_NODE_NAME}", uuid_hex()),
            Kind::Deep,
        )
    }

    fn with_kind(
        conn: &Connection,
        path: &str,
        identifier: &str,
        node: String,
        kind: Kind,
    ) -> Self {
        BaseParty {
            conn: conn.clone(),
            path: path.to_owned(),
            data: identifier.as_bytes().to_vec(),
            node,
            kind,
            participating: false.into(),
        }
    }

    /// This member's node path.
    pub fn create_path(&self) -> String {
        join(&self.path, &self.node)
    }

    /// True between `join` and `leave`.
    pub fn participating(&self) -> bool {
        self.participating.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Joins (idempotent: an existing node from an earlier try counts).
    pub async fn join(&self) -> Result<()> {
        let data: &[u8] = match self.kind {
            Kind::Deep => &self.data,
            Kind::Shallow => b"",
        };
        self.conn
            .retry(|c| async move {
                ensure_path(&c, &self.path).await?;
                match c.create(&self.create_path(), data, &EPHEMERAL).await {
                    Ok(_) | Err(zookeeper_client::Error::NodeExists) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
        self.participating
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Leaves; false if this member was not in the party.
    pub async fn leave(&self) -> Result<bool> {
        self.participating
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.conn
            .retry(|c| async move {
                match c.delete(&self.create_path(), None).await {
                    Ok(()) => Ok(true),
                    Err(zookeeper_client::Error::NoNode) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            })
            .await
    }

    async fn children(&self) -> Result<Vec<String>> {
        let mut children = self
            .conn
            .retry(|c| async move {
                ensure_path(&c, &self.path).await?;
                Ok(c.list_children(&self.path).await?)
            })
            .await?;
        if self.kind == Kind::Deep {
            children.retain(|c| c.contains(PARTY_NODE_NAME));
        }
        Ok(children)
    }

    /// The number of members.
    pub async fn len(&self) -> Result<usize> {
        Ok(self.children().await?.len())
    }

    /// True if nobody is in the party.
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// The members' identifiers (kazoo's iteration), in no particular order.
    pub async fn members(&self) -> Result<Vec<String>> {
        let children = self.children().await?;
        if self.kind == Kind::Shallow {
            return Ok(children
                .iter()
                .map(|c| c.split_once('-').map_or("", |(_, id)| id).to_owned())
                .collect());
        }
        let mut out = Vec::with_capacity(children.len());
        for child in children {
            let path = join(&self.path, &child);
            let r = self
                .conn
                .retry(|c| {
                    let path = path.clone();
                    async move { Ok(c.get_data(&path).await?) }
                })
                .await;
            match r {
                Ok((data, _)) => out.push(String::from_utf8_lossy(&data).into_owned()),
                Err(e) if e.is_no_node() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

impl ShallowParty {
    /// A member of the shallow party at `path`, known as `identifier`.
    pub fn new(conn: &Connection, path: &str, identifier: &str) -> ShallowParty {
        let node = format!("{}-{identifier}", uuid_hex());
        ShallowParty(BaseParty::with_kind(
            conn,
            path,
            identifier,
            node,
            Kind::Shallow,
        ))
    }
}

impl std::ops::Deref for ShallowParty {
    type Target = BaseParty;
    fn deref(&self) -> &BaseParty {
        &self.0
    }
}
