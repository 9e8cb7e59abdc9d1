//! [`CliError`]: what went wrong, in words, with an exit code per kind.
//!
//! Every failure the CLI reports is one of these: a ZooKeeper error code turned into a
//! sentence that names the znode and the operation (see [`CliError::from_zk`]), a connection
//! failure with its cause, a refused oversized request, or a local file problem.

use std::fmt;

use zookeeper_client as zk;

/// The kind of a failure; each has its own exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Anything else: an unexpected server answer, a server-side failure.
    Other,
    /// A bad command line, path, ACL or argument (clap's own usage errors exit 2 too).
    Usage,
    /// The znode does not exist.
    NoNode,
    /// The znode already exists.
    NodeExists,
    /// Not authorised, or authentication failed.
    NoAuth,
    /// The znode has children.
    NotEmpty,
    /// The znode's version is not the one expected.
    BadVersion,
    /// The servers cannot be reached, or the session was lost.
    Connection,
    /// The request would exceed the server's packet limit.
    TooLarge,
    /// A local file could not be read or written.
    LocalIo,
}

impl ErrorKind {
    /// The process exit code for this kind (documented in the crate root and `--help`).
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Other => 1,
            ErrorKind::Usage => 2,
            ErrorKind::NoNode => 3,
            ErrorKind::NodeExists => 4,
            ErrorKind::NoAuth => 5,
            ErrorKind::NotEmpty => 6,
            ErrorKind::BadVersion => 7,
            ErrorKind::Connection => 8,
            ErrorKind::TooLarge => 9,
            ErrorKind::LocalIo => 10,
        }
    }
}

/// What a request was doing, so an error can say "not authorised to *read* /x".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// getData, getChildren, exists.
    Read,
    /// setData.
    Write,
    /// create (checked on the parent).
    Create,
    /// delete (checked on the parent).
    Delete,
    /// getACL / setACL.
    Admin,
}

impl Access {
    fn verb(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Create => "create",
            Access::Delete => "delete",
            Access::Admin => "change the ACL of",
        }
    }
}

/// A failure, said in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliError {
    /// What kind of failure (decides the exit code).
    pub kind: ErrorKind,
    /// The sentence printed after `warren: `.
    pub message: String,
}

/// The CLI's result type.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

impl CliError {
    /// A failure of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> CliError {
        CliError {
            kind,
            message: message.into(),
        }
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::new(ErrorKind::Usage, message)
    }

    /// A local file error on `path`.
    pub fn local(path: &std::path::Path, err: &std::io::Error) -> CliError {
        CliError::new(
            ErrorKind::LocalIo,
            format!("{}: {}", path.display(), io_cause(err)),
        )
    }

    /// The exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }

    /// Turns a client error for a request on `path` doing `access` into words.
    ///
    /// `BadVersion` carries no versions in the protocol; [`crate::session::Session`] fills
    /// them in where it knows them (see `Session::version_changed`).
    pub fn from_zk(err: zk::Error, access: Access, path: &str) -> CliError {
        use ErrorKind as K;
        let (kind, message) = match err {
            zk::Error::NoNode => (K::NoNode, format!("no such node: {path}")),
            zk::Error::NodeExists => (K::NodeExists, format!("node already exists: {path}")),
            zk::Error::NoAuth => (
                K::NoAuth,
                format!("not authorised to {} {path}", access.verb()),
            ),
            zk::Error::AuthFailed => (
                K::NoAuth,
                "authentication failed: the server refused the credentials".to_owned(),
            ),
            zk::Error::NotEmpty => (K::NotEmpty, format!("node not empty: {path} (use rm -r)")),
            zk::Error::BadVersion => (K::BadVersion, format!("version changed: {path}")),
            zk::Error::NoChildrenForEphemerals => (
                K::Usage,
                format!("cannot create {path}: its parent is ephemeral and may not have children"),
            ),
            zk::Error::InvalidAcl => (K::Usage, format!("invalid ACL for {path}")),
            zk::Error::BadArguments(why) => (K::Usage, format!("{path}: {why}")),
            zk::Error::Unimplemented => (
                K::Other,
                format!(
                    "the server does not implement this request on {path} (TTL nodes need \
                     extendedTypesEnabled=true)"
                ),
            ),
            zk::Error::ConnectionLoss | zk::Error::Timeout => (
                K::Connection,
                format!(
                    "connection lost during the request on {path}; it may or may not have happened"
                ),
            ),
            zk::Error::SessionExpired => (K::Connection, "session expired".to_owned()),
            zk::Error::ClientClosed => (K::Connection, "connection closed".to_owned()),
            zk::Error::NoHosts => (K::Connection, "no server reachable".to_owned()),
            zk::Error::MarshallingError => (
                K::TooLarge,
                format!(
                    "the server could not decode the request on {path} (too large or malformed)"
                ),
            ),
            zk::Error::QuotaExceeded => (K::Other, format!("quota exceeded under {path}")),
            zk::Error::Throttled => (K::Other, "the server is throttling requests".to_owned()),
            zk::Error::NotReadOnly => (
                K::Other,
                format!("cannot change {path}: the server is read-only"),
            ),
            other => (K::Other, format!("{path}: {other}")),
        };
        CliError::new(kind, message)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// An I/O error's cause in lower-case words ("connection refused", "no such file or
/// directory"), without Rust's " (os error 111)" suffix.
pub fn io_cause(err: &std::io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_cause_and_the_node() {
        let e = CliError::from_zk(zk::Error::NoNode, Access::Read, "/a/b");
        assert_eq!(e.message, "no such node: /a/b");
        assert_eq!(e.exit_code(), 3);
        let e = CliError::from_zk(zk::Error::NoAuth, Access::Read, "/x");
        assert_eq!(e.message, "not authorised to read /x");
        let e = CliError::from_zk(zk::Error::NotEmpty, Access::Delete, "/a");
        assert_eq!(e.message, "node not empty: /a (use rm -r)");
    }

    #[test]
    fn io_causes_read_as_words() {
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(io_cause(&e), "connection refused");
    }
}
