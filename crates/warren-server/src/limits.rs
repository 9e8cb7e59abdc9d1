//! Every bound the server enforces, declared in one place.
//!
//! Each field carries its default and the ZooKeeper setting it mirrors, where ZooKeeper has
//! one. The config file sets them (see the key table in `config.rs`); the `conf` four-letter
//! word prints them with [`Limits::render_conf`]. A bound that ZooKeeper leaves open is closed
//! here with a default large enough that no client written for ZooKeeper should meet it,
//! because an unbounded queue is a bug waiting for load.

use std::fmt::Write as _;

/// Writes the proposer packs into one Raft entry at most (those queued at one moment).
/// Not a zoo.cfg setting.
pub const PROPOSAL_BATCH_MAX: usize = 512;

/// Bytes of commands in one batched Raft entry at most; a larger command goes alone (the
/// Raft payload bound, `warren_raft::PAYLOAD_BYTES_MAX`, still applies to it). Not a zoo.cfg
/// setting.
pub const PROPOSAL_BATCH_BYTES_MAX: usize = 256 * 1024;

/// Znodes a snapshot freeze copies per hold of the tree's write lock; commands apply between
/// holds, so a snapshot never stalls writes for long (1,000 and 10,000 gave the same p99 of
/// a paced create load in `bench` runs). Not a zoo.cfg setting.
pub const SNAPSHOT_FREEZE_CHUNK_NODES: usize = 1_000;

/// A graceful shutdown snapshots the tree if this many writes or more were applied since
/// the newest snapshot's state, so the next start reads a snapshot instead of replaying them
/// from the log (replaying 44k batched entries of 10 creates took ~0.7 s; 558 batched
/// entries holding ~500k creates, 0.3 s). Counted in writes, not log entries: one entry may
/// batch thousands. Not a zoo.cfg setting.
pub const SHUTDOWN_SNAPSHOT_MIN_WRITES: u64 = 1_000;

/// How long a graceful shutdown waits for that snapshot (1M znodes, 200 MB, take ~1 s to
/// save); past it the server stops without one and the next start replays the log. Not a
/// zoo.cfg setting.
pub const SHUTDOWN_SNAPSHOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The bounds the server enforces. `Limits::default()` is the shipped configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted or sent, in bytes (the 4-byte length prefix excluded).
    /// ZooKeeper: `jute.maxbuffer`, default 0xfffff = 1,048,575. A larger length closes the
    /// connection ("Len error").
    pub packet_bytes_max: u32,
    /// Longest znode path accepted in a request, in UTF-8 bytes. Default 65,535. ZooKeeper
    /// has no separate bound (only `jute.maxbuffer`); this keeps watch tables and error
    /// traces small.
    pub path_bytes_max: u32,
    /// Requests read but not yet answered, over all connections; above it the server stops
    /// reading sockets until replies drain. ZooKeeper: `zookeeper.globalOutstandingLimit`,
    /// default 1000.
    pub requests_in_flight_max: u32,
    /// Requests read but not yet answered on one session; above it that connection stops
    /// being read. Default 500 (ZooKeeper has none), half the global budget so one session
    /// cannot hold all of it.
    pub requests_in_flight_per_session_max: u32,
    /// Watches (one-shot and persistent, all paths) one session may hold; a request that
    /// would add more fails. Default 1,000,000 (ZooKeeper has none; large Kafka and HBase
    /// deployments hold hundreds of thousands on one session).
    pub watches_per_session_max: u32,
    /// Paths in one `setWatches`/`setWatches2` request, all lists together. Default 200,000,
    /// a little above what one `packet_bytes_max` frame of one-byte paths can carry.
    pub set_watches_paths_max: u32,
    /// Operations in one `multi` or `multiRead`. Default 10,000 (ZooKeeper has none beyond
    /// `jute.maxbuffer`, which admits about 75,000 minimal ops).
    pub multi_ops_max: u32,
    /// Concurrent connections from one IP address; 0 = unlimited. ZooKeeper:
    /// `maxClientCnxns`, default 60.
    pub connections_per_ip_max: u32,
    /// Concurrent client connections in all; 0 = unlimited. ZooKeeper: `zookeeper.maxCnxns`,
    /// default 0 (unlimited); warren defaults to 65,536 so a connection storm meets a bound
    /// before the file-descriptor limit.
    pub connections_max: u32,
    /// Bytes queued for one connection (replies and watch events) that the client has not
    /// read yet; a slower consumer is disconnected. Default 16 MiB (ZooKeeper has none).
    pub outbox_bytes_max: u64,
    /// Time a new connection may take to send its `ConnectRequest` (or four-letter word)
    /// before it is closed, in milliseconds. ZooKeeper:
    /// `zookeeper.nio.sessionlessCnxnTimeout`, default 10,000.
    pub handshake_timeout_ms: u32,
    /// Sessions expired in one tick; the rest wait for the next tick, which spreads an
    /// expiry burst (for example after a network split) over time. Default 10,000
    /// (ZooKeeper has none).
    pub expirations_per_tick_max: u32,
    /// Smallest session timeout granted, in milliseconds; a smaller request is raised to it.
    /// ZooKeeper: `minSessionTimeout`, default 2 × `tickTime` (6,000 with the code default
    /// tick of 3,000).
    pub session_timeout_ms_min: u32,
    /// Largest session timeout granted, in milliseconds; a larger request is lowered to it.
    /// ZooKeeper: `maxSessionTimeout`, default 20 × `tickTime` (60,000).
    pub session_timeout_ms_max: u32,
    /// Empty containers (and expired TTL nodes) the leader deletes per minute. ZooKeeper:
    /// `znode.container.maxPerMinute`, default 10,000.
    pub container_deletions_per_minute_max: u32,
    /// Pending connections the listening socket queues before `accept`. ZooKeeper:
    /// `clientPortListenBacklog`, default -1 (the JVM's 50); warren defaults to 1,024.
    pub listen_backlog_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            packet_bytes_max: 0xfffff,
            path_bytes_max: 65_535,
            requests_in_flight_max: 1000,
            requests_in_flight_per_session_max: 500,
            watches_per_session_max: 1_000_000,
            set_watches_paths_max: 200_000,
            multi_ops_max: 10_000,
            connections_per_ip_max: 60,
            connections_max: 65_536,
            outbox_bytes_max: 16 * 1024 * 1024,
            handshake_timeout_ms: 10_000,
            expirations_per_tick_max: 10_000,
            session_timeout_ms_min: 2 * DEFAULT_TICK_TIME_MS,
            session_timeout_ms_max: 20 * DEFAULT_TICK_TIME_MS,
            container_deletions_per_minute_max: 10_000,
            listen_backlog_max: 1024,
        }
    }
}

/// ZooKeeper's code default `tickTime` (`ZooKeeperServer.DEFAULT_TICK_TIME`), in ms.
pub const DEFAULT_TICK_TIME_MS: u32 = 3000;

/// The smallest `packet_bytes_max` accepted: a `ConnectRequest` frame is 45 bytes and a
/// reply header 16, so anything below this could not carry a session handshake.
pub const PACKET_BYTES_MIN: u32 = 64;

impl Limits {
    /// The limits as `(name, value)` pairs, in declaration order. Names are the field names,
    /// which are also the `warren.<name>` config keys.
    pub fn entries(&self) -> [(&'static str, u64); 16] {
        [
            ("packet_bytes_max", self.packet_bytes_max.into()),
            ("path_bytes_max", self.path_bytes_max.into()),
            ("requests_in_flight_max", self.requests_in_flight_max.into()),
            (
                "requests_in_flight_per_session_max",
                self.requests_in_flight_per_session_max.into(),
            ),
            (
                "watches_per_session_max",
                self.watches_per_session_max.into(),
            ),
            ("set_watches_paths_max", self.set_watches_paths_max.into()),
            ("multi_ops_max", self.multi_ops_max.into()),
            ("connections_per_ip_max", self.connections_per_ip_max.into()),
            ("connections_max", self.connections_max.into()),
            ("outbox_bytes_max", self.outbox_bytes_max),
            ("handshake_timeout_ms", self.handshake_timeout_ms.into()),
            (
                "expirations_per_tick_max",
                self.expirations_per_tick_max.into(),
            ),
            ("session_timeout_ms_min", self.session_timeout_ms_min.into()),
            ("session_timeout_ms_max", self.session_timeout_ms_max.into()),
            (
                "container_deletions_per_minute_max",
                self.container_deletions_per_minute_max.into(),
            ),
            ("listen_backlog_max", self.listen_backlog_max.into()),
        ]
    }

    /// The limits as `name=value` lines, one per field, each ending in `\n`: the block the
    /// `conf` four-letter word prints after ZooKeeper's own lines.
    pub fn render_conf(&self) -> String {
        let mut out = String::new();
        for (name, value) in self.entries() {
            // Writing into a String cannot fail.
            let _ = writeln!(out, "{name}={value}");
        }
        out
    }

    /// Checks the rules that tie limits together; the error names the offending limit.
    pub fn validate(&self) -> Result<(), String> {
        if self.packet_bytes_max < PACKET_BYTES_MIN {
            return Err(format!(
                "packet_bytes_max {} is below the minimum {PACKET_BYTES_MIN}",
                self.packet_bytes_max
            ));
        }
        if self.session_timeout_ms_min > self.session_timeout_ms_max {
            return Err(format!(
                "session_timeout_ms_min {} must not be larger than session_timeout_ms_max {}",
                self.session_timeout_ms_min, self.session_timeout_ms_max
            ));
        }
        let zero_means_unlimited = ["connections_per_ip_max", "connections_max"];
        for (name, value) in self.entries() {
            if value == 0 && !zero_means_unlimited.contains(&name) {
                return Err(format!("{name} must be greater than 0"));
            }
        }
        Ok(())
    }

    /// The session timeout a client asking for `requested_ms` is granted: clamped into
    /// [`session_timeout_ms_min`, `session_timeout_ms_max`] as ZooKeeper's
    /// `processConnectRequest` does.
    ///
    /// [`session_timeout_ms_min`]: Limits::session_timeout_ms_min
    /// [`session_timeout_ms_max`]: Limits::session_timeout_ms_max
    pub fn negotiate_session_timeout_ms(&self, requested_ms: i32) -> i32 {
        let min = i64::from(self.session_timeout_ms_min);
        let max = i64::from(self.session_timeout_ms_max);
        let granted = i64::from(requested_ms).max(min).min(max);
        i32::try_from(granted).unwrap_or(i32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_zookeeper() {
        let limits = Limits::default();
        assert_eq!(limits.packet_bytes_max, 1_048_575);
        assert_eq!(limits.connections_per_ip_max, 60);
        assert_eq!(limits.requests_in_flight_max, 1000);
        assert_eq!(limits.session_timeout_ms_min, 6000);
        assert_eq!(limits.session_timeout_ms_max, 60_000);
        assert_eq!(limits.handshake_timeout_ms, 10_000);
        assert_eq!(limits.container_deletions_per_minute_max, 10_000);
        assert_eq!(limits.validate(), Ok(()));
    }

    #[test]
    fn render_prints_every_field_once() {
        let text = Limits::default().render_conf();
        assert_eq!(text.lines().count(), 16);
        assert!(text.starts_with("packet_bytes_max=1048575\npath_bytes_max=65535\n"));
        assert!(text.ends_with("listen_backlog_max=1024\n"));
        assert!(text.contains("\noutbox_bytes_max=16777216\n"));
    }

    #[test]
    fn validate_rejects_inconsistent_limits() {
        let mut limits = Limits {
            session_timeout_ms_min: 10,
            session_timeout_ms_max: 5,
            ..Limits::default()
        };
        assert!(
            limits
                .validate()
                .unwrap_err()
                .contains("session_timeout_ms_min")
        );

        limits = Limits {
            multi_ops_max: 0,
            ..Limits::default()
        };
        assert_eq!(
            limits.validate().unwrap_err(),
            "multi_ops_max must be greater than 0"
        );

        limits = Limits {
            connections_per_ip_max: 0,
            connections_max: 0,
            ..Limits::default()
        };
        assert_eq!(limits.validate(), Ok(()));

        limits = Limits {
            packet_bytes_max: 10,
            ..Limits::default()
        };
        assert!(limits.validate().unwrap_err().contains("packet_bytes_max"));
    }

    #[test]
    fn session_timeout_is_clamped() {
        let limits = Limits::default();
        assert_eq!(limits.negotiate_session_timeout_ms(100), 6000);
        assert_eq!(limits.negotiate_session_timeout_ms(30_000), 30_000);
        assert_eq!(limits.negotiate_session_timeout_ms(i32::MAX), 60_000);
        assert_eq!(limits.negotiate_session_timeout_ms(-5), 6000);
    }
}
