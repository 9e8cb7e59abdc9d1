//! Path and node helpers shared by the recipes (kazoo's `ensure_path`, node options).

use zookeeper_client::{Acls, Client, CreateMode, CreateOptions};

use crate::error::Result;

/// A persistent node open to anyone (kazoo's default ACL, `OPEN_ACL_UNSAFE`).
pub const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());
/// An ephemeral node open to anyone.
pub const EPHEMERAL: CreateOptions<'static> = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
/// A persistent sequential node open to anyone.
pub const PERSISTENT_SEQUENTIAL: CreateOptions<'static> =
    CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
/// An ephemeral sequential node open to anyone.
pub const EPHEMERAL_SEQUENTIAL: CreateOptions<'static> =
    CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());

/// `parent + "/" + child`, without a double slash under the root.
pub fn join(parent: &str, child: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// The last component of `path`.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// kazoo's `ensure_path`: creates `path` and its missing ancestors as persistent nodes with
/// empty data. Returns true if `path` already existed (or another client made it first).
pub async fn ensure_path(client: &Client, path: &str) -> Result<bool> {
    if path == "/" || client.check_stat(path).await?.is_some() {
        return Ok(true);
    }
    if let Some(i) = path.rfind('/').filter(|i| *i > 0) {
        client.mkdir(&path[..i], &PERSISTENT).await?;
    }
    match client.create(path, b"", &PERSISTENT).await {
        Ok(_) => Ok(false),
        Err(zookeeper_client::Error::NodeExists) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// A fresh kazoo-style unique id: `uuid.uuid4().hex`, 32 lowercase hex digits.
pub fn uuid_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_and_basename() {
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(join("/", "b"), "/b");
        assert_eq!(basename("/a/b"), "b");
    }

    #[test]
    fn uuid_hex_is_kazoo_shaped() {
        let id = uuid_hex();
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
}
