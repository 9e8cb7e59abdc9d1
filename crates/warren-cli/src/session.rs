//! [`Session`]: one ZooKeeper session for the CLI, with the server's limits.
//!
//! Connecting fails eagerly (one pass over the servers) so a dead address is reported at
//! once; the cause is found by a plain TCP connect to each server, since the client only
//! says "no hosts". The packet limit comes from `--packet-limit`, else from the `conf`
//! four-letter word (`packet_bytes_max` on warren, `jute.maxbuffer` where a server prints it),
//! else ZooKeeper's default 0xfffff; it is looked up once, and only when a request could
//! come near it.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::Duration;

use zookeeper_client as zk;

use crate::config::Resolved;
use crate::error::{Access, CliError, ErrorKind, Result, io_cause};

/// ZooKeeper's default `jute.maxbuffer`: the largest frame a server reads.
pub const DEFAULT_PACKET_LIMIT: u32 = 0xfffff;

/// Requests smaller than this are sent without looking the limit up (no server accepts
/// less than a few kilobytes).
const LOOKUP_THRESHOLD: usize = 1024;

/// How long the `conf` lookup and the connection probe may take per server.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The server's bounds that decide whether a request fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest request frame (after the 4-byte length) the server reads, in bytes.
    pub packet_bytes_max: u32,
    /// Where the packet limit came from, for messages.
    pub source: LimitSource,
    /// The most operations one `multi` may carry, if the server says.
    pub multi_ops_max: Option<u32>,
}

/// Where [`Limits::packet_bytes_max`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitSource {
    /// `--packet-limit`.
    Flag,
    /// The server's `conf` four-letter word.
    Server,
    /// ZooKeeper's default `jute.maxbuffer`.
    Default,
}

impl std::fmt::Display for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = match self.source {
            LimitSource::Flag => "--packet-limit",
            LimitSource::Server => "the server's conf",
            LimitSource::Default => "jute.maxbuffer default 0xfffff",
        };
        write!(f, "{} bytes ({from})", self.packet_bytes_max)
    }
}

/// A connected session.
pub struct Session {
    client: zk::Client,
    hosts: Vec<String>,
    packet_limit_flag: Option<u32>,
    limits: OnceLock<Limits>,
}

impl Session {
    /// Connects with `cfg`'s servers and credentials.
    pub async fn connect(cfg: &Resolved) -> Result<Session> {
        let hosts = parse_hosts(&cfg.server);
        if hosts.is_empty() {
            return Err(CliError::usage(format!(
                "no server in the connect string {:?}",
                cfg.server
            )));
        }
        let connector = zk::Client::connector()
            .with_session_timeout(Duration::from_millis(cfg.session_timeout_ms))
            .with_connection_timeout(
                PROBE_TIMEOUT.max(Duration::from_millis(cfg.session_timeout_ms * 2 / 5)),
            )
            .with_fail_eagerly();
        let client = match connector.connect(&cfg.server).await {
            Ok(c) => c,
            Err(zk::Error::AuthFailed) => {
                return Err(CliError::new(
                    ErrorKind::NoAuth,
                    "authentication failed: the server refused the credentials",
                ));
            }
            Err(e) => return Err(connect_failure(&hosts, &e)),
        };
        if let Some(auth) = &cfg.auth {
            // Bounded: a server that answers `auth` with another xid than the request's
            // (warren before the fix that came with this CLI) is never heard from.
            let added = client.auth("digest", auth.as_bytes());
            let timeout = Duration::from_millis(cfg.session_timeout_ms);
            match tokio::time::timeout(timeout, added).await {
                Ok(Ok(())) => {}
                Ok(Err(zk::Error::AuthFailed)) => {
                    return Err(CliError::new(
                        ErrorKind::NoAuth,
                        "authentication failed: the server refused the credentials",
                    ));
                }
                Ok(Err(e)) => return Err(CliError::from_zk(e, Access::Read, "/")),
                Err(_) => {
                    return Err(CliError::new(
                        ErrorKind::Connection,
                        format!("the server did not answer the credentials within {timeout:?}"),
                    ));
                }
            }
        }
        Ok(Session {
            client,
            hosts,
            packet_limit_flag: cfg.packet_limit,
            limits: OnceLock::new(),
        })
    }

    /// The client.
    pub fn client(&self) -> &zk::Client {
        &self.client
    }

    /// Closes the session now, so its ephemeral nodes go at once rather than at its
    /// timeout, waiting briefly for the server to confirm.
    pub async fn close(self) {
        let mut state = self.client.state_watcher();
        drop(self.client);
        let closed = async { while !state.changed().await.is_terminated() {} };
        let _ = tokio::time::timeout(Duration::from_secs(2), closed).await;
    }

    /// The server's limits (looked up once).
    pub fn limits(&self) -> Limits {
        *self
            .limits
            .get_or_init(|| lookup_limits(&self.hosts, self.packet_limit_flag))
    }

    /// Refuses a request of `request_bytes` that would not fit; `what` says what it is.
    pub fn check_fits(&self, request_bytes: usize, what: impl FnOnce() -> String) -> Result<()> {
        if request_bytes < LOOKUP_THRESHOLD {
            return Ok(());
        }
        let limits = self.limits();
        if request_bytes <= limits.packet_bytes_max as usize {
            return Ok(());
        }
        Err(CliError::new(
            ErrorKind::TooLarge,
            format!(
                "{} needs a {request_bytes}-byte request, over the server's packet limit of \
                 {limits}; nothing was sent",
                what()
            ),
        ))
    }

    /// Words for a `BadVersion` on `path` when `expected` was asked for: reads the node's
    /// version now, so the message says what it is at.
    pub async fn version_changed(&self, path: &str, expected: i32) -> CliError {
        match self.client.check_stat(path).await {
            Ok(Some(stat)) => CliError::new(
                ErrorKind::BadVersion,
                format!(
                    "version changed: expected {expected}, node is at {} ({path})",
                    stat.version
                ),
            ),
            Ok(None) => CliError::from_zk(zk::Error::NoNode, Access::Read, path),
            Err(e) => CliError::from_zk(e, Access::Read, path),
        }
    }
}

/// The `host:port` parts of a connect string (chroot and `tcp://` prefixes dropped).
pub fn parse_hosts(connect: &str) -> Vec<String> {
    let hosts = match connect.find('/') {
        // A scheme such as `tcp://` has its slashes after a colon; a chroot does not.
        Some(i) if !connect[..i].ends_with(':') => &connect[..i],
        _ => connect,
    };
    hosts
        .split(',')
        .map(|h| h.trim())
        .map(|h| h.split_once("://").map_or(h, |(_, rest)| rest))
        .map(|h| h.split('/').next().unwrap_or(h))
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.contains(':') {
                h.to_owned()
            } else {
                format!("{h}:2181")
            }
        })
        .collect()
}

/// Explains a failed connect: a TCP connect to each server gives the cause.
fn connect_failure(hosts: &[String], err: &zk::Error) -> CliError {
    let mut causes = Vec::new();
    for host in hosts {
        let cause = match probe(host) {
            Err(e) => e,
            Ok(()) => format!("the server accepted TCP but gave no session ({err})"),
        };
        causes.push(format!("{host}: {cause}"));
    }
    CliError::new(
        ErrorKind::Connection,
        format!("cannot connect to {}", causes.join("; ")),
    )
}

fn probe(host: &str) -> std::result::Result<(), String> {
    let addrs = host
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {}", io_cause(&e)))?;
    let mut last = "no address".to_owned();
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e) => last = io_cause(&e),
        }
    }
    Err(last)
}

fn lookup_limits(hosts: &[String], flag: Option<u32>) -> Limits {
    if let Some(n) = flag {
        return Limits {
            packet_bytes_max: n,
            source: LimitSource::Flag,
            multi_ops_max: None,
        };
    }
    let conf = hosts.iter().find_map(|h| four_letter_word(h, "conf").ok());
    let conf = conf.as_deref().unwrap_or("");
    let packet =
        conf_value(conf, "packet_bytes_max").or_else(|| conf_value(conf, "jute.maxbuffer"));
    Limits {
        packet_bytes_max: packet.unwrap_or(DEFAULT_PACKET_LIMIT),
        source: if packet.is_some() {
            LimitSource::Server
        } else {
            LimitSource::Default
        },
        multi_ops_max: conf_value(conf, "multi_ops_max"),
    }
}

/// Sends a four-letter word to `host` and returns the answer.
pub fn four_letter_word(host: &str, word: &str) -> std::io::Result<String> {
    let addr = host
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)?;
    s.set_read_timeout(Some(PROBE_TIMEOUT))?;
    s.write_all(word.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// The value of `key=value` in a `conf` answer.
pub fn conf_value(conf: &str, key: &str) -> Option<u32> {
    conf.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .and_then(|(_, v)| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_from_the_connect_string() {
        assert_eq!(parse_hosts("a:1,b:2/chroot"), vec!["a:1", "b:2"]);
        assert_eq!(parse_hosts("tcp://a:1,b"), vec!["a:1", "b:2181"]);
        assert_eq!(parse_hosts(""), Vec::<String>::new());
    }

    #[test]
    fn conf_values_are_read_by_key() {
        let conf = "clientPort=2181\npacket_bytes_max=4096\nmulti_ops_max=10\n";
        assert_eq!(conf_value(conf, "packet_bytes_max"), Some(4096));
        assert_eq!(conf_value(conf, "multi_ops_max"), Some(10));
        assert_eq!(conf_value(conf, "jute.maxbuffer"), None);
    }
}
