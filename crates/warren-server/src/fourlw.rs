//! Four-letter words: the text answers, formatted exactly as ZooKeeper 3.8/3.9 prints them.
//!
//! Twin of ZooKeeper's `server/command/*Command.java` (with `FourLetterCommands` for the
//! whitelist and `ServerStats.toString`, `ServerCnxn.dumpConnectionInfo`,
//! `ZooKeeperServer.dumpConf`, `WatchManager.dumpWatches`, `ExpiryQueue.dump` and
//! `Environment.list` for the pieces). Everything here is pure formatting of a
//! [`ServerStats`] snapshot that the server fills in; nothing reads a socket or a clock.
//!
//! The connection code calls [`word_from_prefix`] on the first four bytes of a new
//! connection; for a known word it writes [`answer`]'s text and closes. For `crst` and
//! `srst` it also resets the counters, and for `stmk` it reads the 8-byte mask first and
//! puts it in [`ServerStats::trace_mask`]: the answer only reports.
//!
//! Deviations: ZooKeeper lists watches, sessions and connections in hash-map order; we sort
//! them, so answers are deterministic. `mntr` prints ZooKeeper's server gauges but not the
//! hundreds of per-processor counters of its `ServerMetrics`. `envi` prints ZooKeeper's keys
//! with `<NA>` for the Java-only ones, as ZooKeeper does for a missing property.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use crate::config::ServerConfig;

/// Every four-letter word ZooKeeper 3.8/3.9 knows (`FourLetterCommands.cmd2String`); `*` in
/// the whitelist enables all of them.
pub const KNOWN_WORDS: [&str; 18] = [
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srst", "srvr", "stat",
    "wchc", "wchp", "wchs", "mntr", "isro", "hash",
];

/// The ZooKeeper release whose protocol and answers warren reproduces.
pub const ZOOKEEPER_COMPAT_VERSION: &str = "3.9.3";

/// ZooKeeper's answer when the server is not running (`AbstractFourLetterCommand`).
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// ZooKeeper's default trace mask (`ZooTrace`: client requests, server packets, sessions,
/// warnings), what `gtmk` reports until `stmk` changes it.
pub const DEFAULT_TRACE_MASK: i64 = 0b1_0011_0010;

/// The version warren reports: `3.9.3-warren-<crate version>`. Clients read the leading
/// `major.minor.patch`: kazoo's `server_version()` parses `zookeeper.version=` from `envi`
/// with `([\d\.]*)`, monitoring scripts read `Zookeeper version: ` from `srvr` and
/// `zk_version` from `mntr`.
pub fn full_version() -> String {
    format!(
        "{ZOOKEEPER_COMPAT_VERSION}-warren-{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// The four-letter word spelled by the first four bytes of a connection, if they spell
/// one (ZooKeeper checks this before treating them as a frame length).
pub fn word_from_prefix(prefix: [u8; 4]) -> Option<&'static str> {
    KNOWN_WORDS
        .iter()
        .copied()
        .find(|word| word.as_bytes() == prefix)
}

/// ZooKeeper's short name of an operation for `cons`'s `lop=` (`FinalRequestProcessor`);
/// `NA` for opcodes it does not name.
pub fn last_op_name(opcode: i32) -> &'static str {
    match opcode {
        11 => "PING",
        -10 => "SESS",
        14 => "MULT",
        22 => "MLTR",
        1 | 15 | 19 | 21 => "CREA",
        2 | 20 => "DELE",
        5 => "SETD",
        16 => "RECO",
        7 => "SETA",
        -11 => "CLOS",
        9 => "SYNC",
        13 => "CHEC",
        3 => "EXIS",
        4 => "GETD",
        101 => "SETW",
        105 => "STW2",
        106 => "ADDW",
        6 => "GETA",
        8 | 12 => "GETC",
        104 => "GETACN",
        17 => "CHKW",
        18 => "REMW",
        107 => "HOMI",
        103 => "GETE",
        _ => "NA",
    }
}

/// The server's role, as `srvr`'s `Mode:` and `mntr`'s `zk_server_state` print it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServerMode {
    /// A single server.
    #[default]
    Standalone,
    /// The ensemble's leader.
    Leader,
    /// A voting follower.
    Follower,
    /// A non-voting member.
    Observer,
    /// Cut off from the quorum, serving read-only clients.
    ReadOnly,
}

impl ServerMode {
    /// ZooKeeper's spelling (`ServerStats.Provider.getState`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServerMode::Standalone => "standalone",
            ServerMode::Leader => "leader",
            ServerMode::Follower => "follower",
            ServerMode::Observer => "observer",
            ServerMode::ReadOnly => "read-only",
        }
    }
}

/// One client connection, for `stat`, `cons` and `dump` (ZooKeeper's `ServerCnxn` stats).
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionStats {
    /// The client's address.
    pub remote: SocketAddr,
    /// ZooKeeper's NIO interest ops (1 = read, 4 = write, 5 = both, 0 = throttled).
    pub interest_ops: u32,
    /// Requests received and not yet answered (`queued=`).
    pub queued: u64,
    /// Packets received (`recved=`).
    pub received: u64,
    /// Packets sent (`sent=`).
    pub sent: u64,
    /// The session id; 0 before the handshake (then only the brief form is printed).
    pub session_id: i64,
    /// The last operation's short name, see [`last_op_name`] (`lop=`; `NA` initially).
    pub last_operation: String,
    /// When the connection was established, wall-clock ms since the epoch (`est=`).
    pub established_ms: i64,
    /// The negotiated session timeout in ms (`to=`).
    pub session_timeout_ms: i32,
    /// The last client xid answered, -1 for none (`lcxid=`, omitted when negative).
    pub last_cxid: i64,
    /// The zxid of the last reply (`lzxid=`; -1 initially).
    pub last_zxid: i64,
    /// Wall-clock ms of the last reply (`lresp=`; 0 initially).
    pub last_response_ms: i64,
    /// Latency of the last request in ms (`llat=`).
    pub last_latency_ms: i64,
    /// Smallest request latency in ms (`minlat=`; 0 when none).
    pub latency_ms_min: i64,
    /// Average request latency in ms, integer division (`avglat=`).
    pub latency_ms_avg: i64,
    /// Largest request latency in ms (`maxlat=`).
    pub latency_ms_max: i64,
    /// When the connection expires if idle, wall-clock ms (its `dump` bucket).
    pub expires_at_ms: i64,
}

/// One session, for `dump`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// The session id.
    pub session_id: i64,
    /// When it expires unless it hears from the client, wall-clock ms, rounded up to the
    /// tick as ZooKeeper's `ExpiryQueue` does (sessions are grouped by this value).
    pub expires_at_ms: i64,
    /// Paths of the ephemeral nodes it owns.
    pub ephemerals: Vec<String>,
}

/// One watch (session, path), for `wchs`, `wchc` and `wchp`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WatchEntry {
    /// The watching session.
    pub session_id: i64,
    /// The watched path.
    pub path: String,
}

/// The leader's gauges in `mntr` (`LeaderZooKeeperServer.registerMetrics`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderStats {
    /// Connected learners (followers and observers).
    pub learners: u64,
    /// Followers that are in sync.
    pub synced_followers: u64,
    /// Non-voting followers in sync.
    pub synced_non_voting_followers: u64,
    /// Observers in sync.
    pub synced_observers: u64,
    /// Sync requests waiting.
    pub pending_syncs: u64,
    /// Time as leader in ms.
    pub leader_uptime_ms: u64,
    /// Size of the last proposal in bytes (-1 before the first).
    pub proposal_bytes_last: i64,
    /// Smallest proposal in bytes (-1 before the first).
    pub proposal_bytes_min: i64,
    /// Largest proposal in bytes (-1 before the first).
    pub proposal_bytes_max: i64,
}

/// Ensemble facts for `mntr`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuorumStats {
    /// ZooKeeper's detailed peer state, e.g. `leading - broadcast`, `following - broadcast`.
    pub peer_state: String,
    /// Voting members.
    pub quorum_size: u64,
    /// Present on the leader.
    pub leader: Option<LeaderStats>,
}

/// The process environment, for `envi`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvironmentInfo {
    /// `host.name`.
    pub host_name: Option<String>,
    /// `os.name`.
    pub os_name: Option<String>,
    /// `os.arch`.
    pub os_arch: Option<String>,
    /// `os.version` (the kernel release).
    pub os_version: Option<String>,
    /// `user.name`.
    pub user_name: Option<String>,
    /// `user.home`.
    pub user_home: Option<String>,
    /// `user.dir` (the working directory).
    pub user_dir: Option<String>,
    /// `java.io.tmpdir` (the temporary directory).
    pub tmp_dir: Option<String>,
    /// `os.memory.free`, `os.memory.max`, `os.memory.total` in bytes, when known.
    pub memory_bytes_free_max_total: Option<(u64, u64, u64)>,
    /// Further `key=value` lines after ZooKeeper's.
    pub extra: Vec<(String, String)>,
}

impl EnvironmentInfo {
    /// Reads what the process can learn about itself without extra dependencies.
    pub fn from_process() -> EnvironmentInfo {
        let read_trimmed = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim().to_string())
        };
        EnvironmentInfo {
            host_name: read_trimmed("/proc/sys/kernel/hostname")
                .or_else(|| std::env::var("HOSTNAME").ok()),
            // Java's spellings, which scripts written for ZooKeeper may compare against.
            os_name: Some(
                match std::env::consts::OS {
                    "linux" => "Linux",
                    "macos" => "Mac OS X",
                    "windows" => "Windows",
                    "freebsd" => "FreeBSD",
                    other => other,
                }
                .to_string(),
            ),
            os_arch: Some(
                match std::env::consts::ARCH {
                    "x86_64" => "amd64",
                    "x86" => "x86",
                    other => other,
                }
                .to_string(),
            ),
            os_version: read_trimmed("/proc/sys/kernel/osrelease"),
            user_name: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .ok(),
            user_home: std::env::var("HOME").ok(),
            user_dir: std::env::current_dir()
                .ok()
                .map(|d| d.display().to_string()),
            tmp_dir: Some(std::env::temp_dir().display().to_string()),
            memory_bytes_free_max_total: None,
            extra: Vec::new(),
        }
    }
}

/// A snapshot of everything the four-letter words print. The server fills it in under its
/// locks and hands it to [`answer`].
#[derive(Clone, Debug, PartialEq)]
pub struct ServerStats {
    /// The full version string, normally [`full_version`].
    pub version: String,
    /// Whether the server is serving requests; when not, most words answer [`NOT_SERVING`].
    pub serving: bool,
    /// Cut off from its quorum without read-only mode: ZooKeeper's peer then runs no
    /// server, and `isro` answers `null` (the other words keep answering here).
    pub cut_off: bool,
    /// The server's role.
    pub mode: ServerMode,
    /// This server's id (0 standalone).
    pub server_id: u64,
    /// The client port actually bound, when it differs from the config (port 0).
    pub client_port: Option<u16>,
    /// The TLS port actually bound.
    pub secure_client_port: Option<u16>,
    /// Smallest request latency in ms (0 when none).
    pub latency_ms_min: i64,
    /// Average request latency in ms.
    pub latency_ms_avg: f64,
    /// Largest request latency in ms.
    pub latency_ms_max: i64,
    /// Packets received from clients.
    pub packets_received: u64,
    /// Packets sent to clients.
    pub packets_sent: u64,
    /// Requests received and not yet answered.
    pub outstanding_requests: u64,
    /// The last applied zxid.
    pub last_zxid: i64,
    /// Znodes in the tree.
    pub node_count: u64,
    /// All watches, data and child (ZooKeeper's `getWatchCount`), for `mntr`.
    pub watch_count: u64,
    /// Ephemeral znodes.
    pub ephemerals_count: u64,
    /// Bytes of znode data and paths (ZooKeeper's `approximateDataSize`).
    pub approximate_data_size: u64,
    /// Sessions in the replicated sessions table.
    pub global_sessions: u64,
    /// Local sessions (warren has none; 0).
    pub local_sessions: u64,
    /// Time since the server started, in ms.
    pub uptime_ms: u64,
    /// Open file descriptors, when known.
    pub open_file_descriptor_count: Option<u64>,
    /// The file-descriptor limit, when known.
    pub max_file_descriptor_count: Option<u64>,
    /// Size of the last reply in bytes (-1 before the first).
    pub client_response_bytes_last: i64,
    /// Smallest reply in bytes (-1 before the first).
    pub client_response_bytes_min: i64,
    /// Largest reply in bytes (-1 before the first).
    pub client_response_bytes_max: i64,
    /// TLS handshakes under way.
    pub outstanding_tls_handshake: u64,
    /// Failed authentications.
    pub auth_failed_count: u64,
    /// Connections from other hosts without mutual TLS.
    pub non_mtls_remote_conn_count: u64,
    /// Connections from this host without mutual TLS.
    pub non_mtls_local_conn_count: u64,
    /// Every client connection, the one asking included (ZooKeeper counts it too).
    pub connections: Vec<ConnectionStats>,
    /// The watches to list in `wchs`/`wchc`/`wchp`. ZooKeeper lists its data-watch table
    /// only (getData/exists and persistent watches, not getChildren ones); pass the same
    /// set to match it.
    pub watches: Vec<WatchEntry>,
    /// Every session, for `dump`.
    pub sessions: Vec<SessionStats>,
    /// Bytes of snapshot files (`dirs`, `conf`).
    pub data_dir_bytes: u64,
    /// Bytes of log files (`dirs`, `conf`).
    pub log_dir_bytes: u64,
    /// Ensemble facts; `None` standalone.
    pub quorum: Option<QuorumStats>,
    /// The Raft term, in an ensemble (printed by `srvr`, `stat` and `mntr`).
    pub raft_term: Option<u64>,
    /// The current configuration (`/zookeeper/config`'s text) once written, which `conf`
    /// prints as its membership (else zoo.cfg's `server.N` lines and `version=0`).
    pub membership: Option<String>,
    /// The process environment, for `envi`.
    pub environment: EnvironmentInfo,
    /// The trace mask `gtmk` reports (and `stmk` set).
    pub trace_mask: i64,
    /// Recent (zxid, tree digest) pairs for `hash`, oldest first.
    pub digests: Vec<(i64, i64)>,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            version: full_version(),
            serving: true,
            cut_off: false,
            mode: ServerMode::Standalone,
            server_id: 0,
            client_port: None,
            secure_client_port: None,
            latency_ms_min: 0,
            latency_ms_avg: 0.0,
            latency_ms_max: 0,
            packets_received: 0,
            packets_sent: 0,
            outstanding_requests: 0,
            last_zxid: 0,
            node_count: 0,
            watch_count: 0,
            ephemerals_count: 0,
            approximate_data_size: 0,
            global_sessions: 0,
            local_sessions: 0,
            uptime_ms: 0,
            open_file_descriptor_count: None,
            max_file_descriptor_count: None,
            client_response_bytes_last: -1,
            client_response_bytes_min: -1,
            client_response_bytes_max: -1,
            outstanding_tls_handshake: 0,
            auth_failed_count: 0,
            non_mtls_remote_conn_count: 0,
            non_mtls_local_conn_count: 0,
            connections: Vec::new(),
            watches: Vec::new(),
            sessions: Vec::new(),
            data_dir_bytes: 0,
            log_dir_bytes: 0,
            quorum: None,
            raft_term: None,
            membership: None,
            environment: EnvironmentInfo::default(),
            trace_mask: DEFAULT_TRACE_MASK,
            digests: Vec::new(),
        }
    }
}

/// The text the server writes for four-letter word `word`, then closes the connection.
///
/// A word outside the whitelist gets ZooKeeper's `<word> is not executed because it is not
/// in the whitelist.` line; a string that is not a four-letter word gets the empty string
/// (the caller should not have asked; see [`word_from_prefix`]).
pub fn answer(word: &str, cfg: &ServerConfig, stats: &ServerStats) -> String {
    if !KNOWN_WORDS.contains(&word) {
        return String::new();
    }
    if !cfg.four_letter_word_enabled(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    // These answer whether or not the server is serving, as in ZooKeeper.
    match word {
        "ruok" => return "imok".to_string(),
        "gtmk" | "stmk" => return stats.trace_mask.to_string(),
        "envi" => return envi(stats),
        "isro" if !stats.serving || stats.cut_off => return "null".to_string(),
        "hash" if !stats.serving => return NOT_SERVING.to_string(),
        _ if !stats.serving => return format!("{NOT_SERVING}\n"),
        _ => {}
    }
    match word {
        "srvr" => stat(stats, false),
        "stat" => stat(stats, true),
        "conf" => conf(cfg, stats),
        "cons" => cons(stats),
        "crst" => "Connection stats reset.\n".to_string(),
        "srst" => "Server stats reset.\n".to_string(),
        "dirs" => format!(
            "datadir_size: {}\nlogdir_size: {}\n",
            stats.data_dir_bytes, stats.log_dir_bytes
        ),
        "dump" => dump(stats),
        "wchs" => wchs(stats),
        "wchc" => wchc(stats),
        "wchp" => wchp(stats),
        "mntr" => mntr(stats),
        "isro" if stats.mode == ServerMode::ReadOnly => "ro".to_string(),
        "isro" => "rw".to_string(),
        "hash" => hash(stats),
        _ => String::new(),
    }
}

/// `srvr` and `stat` (`StatCommand` with `ServerStats.toString`).
fn stat(stats: &ServerStats, with_clients: bool) -> String {
    let mut out = format!("Zookeeper version: {}\n", stats.version);
    if stats.mode == ServerMode::ReadOnly {
        out.push_str("READ-ONLY mode; serving only read-only clients\n");
    }
    if with_clients {
        out.push_str("Clients:\n");
        for connection in sorted_connections(stats) {
            out.push_str(&connection_line(connection, true));
            out.push('\n');
        }
        out.push('\n');
    }
    let _ = write!(
        out,
        "Latency min/avg/max: {}/{}/{}\nReceived: {}\nSent: {}\nConnections: {}\n\
         Outstanding: {}\nZxid: 0x{:x}\nMode: {}\nNode count: {}\n",
        stats.latency_ms_min,
        java_average(stats.latency_ms_avg),
        stats.latency_ms_max,
        stats.packets_received,
        stats.packets_sent,
        stats.connections.len(),
        stats.outstanding_requests,
        stats.last_zxid,
        stats.mode.as_str(),
        stats.node_count,
    );
    if let Some(term) = stats.raft_term {
        let _ = writeln!(out, "Raft term: {term}");
    }
    if stats.mode == ServerMode::Leader {
        let leader = stats
            .quorum
            .as_ref()
            .and_then(|q| q.leader.clone())
            .unwrap_or_else(|| LeaderStats {
                proposal_bytes_last: -1,
                proposal_bytes_min: -1,
                proposal_bytes_max: -1,
                ..LeaderStats::default()
            });
        let _ = writeln!(
            out,
            "Proposal sizes last/min/max: {}/{}/{}",
            leader.proposal_bytes_last, leader.proposal_bytes_min, leader.proposal_bytes_max
        );
    }
    out
}

/// `ServerCnxn.dumpConnectionInfo`.
fn connection_line(c: &ConnectionStats, brief: bool) -> String {
    let ops = if c.interest_ops == 0 {
        "0".to_string()
    } else {
        format!("{:x}", c.interest_ops)
    };
    let mut out = format!(
        " {}[{ops}](queued={},recved={},sent={}",
        java_socket_address(&c.remote),
        c.queued,
        c.received,
        c.sent
    );
    if !brief && c.session_id != 0 {
        let _ = write!(
            out,
            ",sid=0x{:x},lop={},est={},to={}",
            c.session_id, c.last_operation, c.established_ms, c.session_timeout_ms
        );
        if c.last_cxid >= 0 {
            let _ = write!(out, ",lcxid=0x{:x}", c.last_cxid);
        }
        let _ = write!(
            out,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            c.last_zxid,
            c.last_response_ms,
            c.last_latency_ms,
            c.latency_ms_min,
            c.latency_ms_avg,
            c.latency_ms_max
        );
    }
    out.push(')');
    out
}

fn sorted_connections(stats: &ServerStats) -> Vec<&ConnectionStats> {
    let mut connections: Vec<&ConnectionStats> = stats.connections.iter().collect();
    connections.sort_by_key(|c| (c.remote, c.session_id));
    connections
}

/// `cons` (`ConsCommand`).
fn cons(stats: &ServerStats) -> String {
    let mut out = String::new();
    for connection in sorted_connections(stats) {
        out.push_str(&connection_line(connection, false));
        out.push('\n');
    }
    out.push('\n');
    out
}

/// `conf`: ZooKeeper's `dumpConf` lines, then warren's limits, then (in an ensemble)
/// `QuorumZooKeeperServer.dumpConf`'s block, which ends without a newline as ZooKeeper's.
fn conf(cfg: &ServerConfig, stats: &ServerStats) -> String {
    let client_port = stats.client_port.unwrap_or(cfg.client_port);
    let secure_port = stats
        .secure_client_port
        .or(cfg.secure_client_port)
        .map_or(-1, i32::from);
    let mut out = String::new();
    let _ = write!(
        out,
        "clientPort={client_port}\nsecureClientPort={secure_port}\ndataDir={}\n\
         dataDirSize={}\ndataLogDir={}\ndataLogSize={}\ntickTime={}\nmaxClientCnxns={}\n\
         minSessionTimeout={}\nmaxSessionTimeout={}\nclientPortListenBacklog={}\nserverId={}\n",
        absolute(&cfg.data_dir),
        stats.data_dir_bytes,
        absolute(cfg.effective_data_log_dir()),
        stats.log_dir_bytes,
        cfg.tick_time_ms,
        cfg.limits.connections_per_ip_max,
        cfg.limits.session_timeout_ms_min,
        cfg.limits.session_timeout_ms_max,
        cfg.limits.listen_backlog_max,
        stats.server_id,
    );
    out.push_str(&cfg.limits.render_conf());
    if stats.mode == ServerMode::Standalone || cfg.servers.is_empty() {
        return out;
    }
    let me = cfg.my_server();
    let _ = write!(
        out,
        "initLimit={}\nsyncLimit={}\nelectionAlg=3\nelectionPort={}\nquorumPort={}\n\
         peerType={}\nmembership: \n",
        cfg.init_limit_ticks,
        cfg.sync_limit_ticks,
        me.map_or(0, |s| s.election_port),
        me.map_or(0, |s| s.peer_port),
        me.map_or(0, |s| s.role as u8),
    );
    if let Some(current) = &stats.membership {
        out.push_str(current);
        return out;
    }
    for server in &cfg.servers {
        let _ = writeln!(out, "server.{}={server}", server.id);
    }
    out.push_str("version=0");
    out
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// `wchs` (`WatchManager.toString`, then a newline).
fn wchs(stats: &ServerStats) -> String {
    let by_session = watches_by_session(stats);
    let paths: BTreeSet<&str> = stats.watches.iter().map(|w| w.path.as_str()).collect();
    let total: usize = by_session.values().map(BTreeSet::len).sum();
    format!(
        "{} connections watching {} paths\nTotal watches:{total}\n",
        by_session.len(),
        paths.len()
    )
}

/// `wchc` (`WatchManager.dumpWatches(byPath = false)`, then a newline).
fn wchc(stats: &ServerStats) -> String {
    let mut out = String::new();
    for (session, paths) in watches_by_session(stats) {
        let _ = writeln!(out, "0x{session:x}");
        for path in paths {
            let _ = writeln!(out, "\t{path}");
        }
    }
    out.push('\n');
    out
}

/// `wchp` (`WatchManager.dumpWatches(byPath = true)`, then a newline).
fn wchp(stats: &ServerStats) -> String {
    let mut by_path: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    for watch in &stats.watches {
        by_path
            .entry(watch.path.as_str())
            .or_default()
            .insert(watch.session_id);
    }
    let mut out = String::new();
    for (path, sessions) in by_path {
        let _ = writeln!(out, "{path}");
        for session in sessions {
            let _ = writeln!(out, "\t0x{session:x}");
        }
    }
    out.push('\n');
    out
}

fn watches_by_session(stats: &ServerStats) -> BTreeMap<i64, BTreeSet<&str>> {
    let mut by_session: BTreeMap<i64, BTreeSet<&str>> = BTreeMap::new();
    for watch in &stats.watches {
        by_session
            .entry(watch.session_id)
            .or_default()
            .insert(watch.path.as_str());
    }
    by_session
}

/// `dump` (`DumpCommand`: the session expiry queue, ephemerals, the connection expiry queue).
fn dump(stats: &ServerStats) -> String {
    let mut out = String::from("SessionTracker dump:\nSession ");
    let sessions = stats
        .sessions
        .iter()
        .map(|s| (s.expires_at_ms, format!("0x{:x}", s.session_id)));
    expiry_queue(&mut out, sessions);
    out.push_str("ephemeral nodes dump:\n");
    let mut owners: Vec<&SessionStats> = stats
        .sessions
        .iter()
        .filter(|s| !s.ephemerals.is_empty())
        .collect();
    owners.sort_by_key(|s| s.session_id);
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", owners.len());
    for owner in owners {
        let _ = writeln!(out, "0x{:x}:", owner.session_id);
        let paths: BTreeSet<&str> = owner.ephemerals.iter().map(String::as_str).collect();
        for path in paths {
            let _ = writeln!(out, "\t{path}");
        }
    }
    out.push_str("Connections dump:\nConnections ");
    let connections = stats.connections.iter().map(|c| {
        let address = java_socket_address(&c.remote);
        (
            c.expires_at_ms,
            format!("ip: {address} sessionId: 0x{:x}", c.session_id),
        )
    });
    expiry_queue(&mut out, connections);
    out
}

/// `ExpiryQueue.dump`: `Sets (buckets)/(elements):`, then each bucket by time.
fn expiry_queue(out: &mut String, elements: impl Iterator<Item = (i64, String)>) {
    let mut buckets: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    let mut count = 0;
    for (time, element) in elements {
        count += 1;
        buckets.entry(time).or_default().insert(element);
    }
    let _ = writeln!(out, "Sets ({})/({count}):", buckets.len());
    for (time, set) in buckets {
        let _ = writeln!(out, "{} expire at {}:", set.len(), java_date(time));
        for element in set {
            let _ = writeln!(out, "\t{element}");
        }
    }
}

/// `mntr`: `zk_<key>\t<value>` lines (`MonitorCommand` over `dumpMonitorValues` and the
/// gauges registered by `ZooKeeperServer`, `QuorumZooKeeperServer` and
/// `LeaderZooKeeperServer.registerMetrics`; names kept identical for scrapers).
fn mntr(stats: &ServerStats) -> String {
    let mut out = String::new();
    let mut line = |key: &str, value: &dyn std::fmt::Display| {
        let _ = writeln!(out, "zk_{key}\t{value}");
    };
    line("version", &stats.version);
    line("server_state", &stats.mode.as_str());
    if let Some(quorum) = &stats.quorum {
        line("peer_state", &quorum.peer_state);
    }
    if let Some(term) = stats.raft_term {
        line("raft_term", &term);
    }
    // Doubles print as Java prints them.
    line("avg_latency", &java_average(stats.latency_ms_avg));
    line("max_latency", &stats.latency_ms_max);
    line("min_latency", &stats.latency_ms_min);
    line("packets_received", &stats.packets_received);
    line("packets_sent", &stats.packets_sent);
    line("num_alive_connections", &stats.connections.len());
    line("outstanding_requests", &stats.outstanding_requests);
    line("uptime", &stats.uptime_ms);
    line("znode_count", &stats.node_count);
    line("watch_count", &stats.watch_count);
    line("ephemerals_count", &stats.ephemerals_count);
    line("approximate_data_size", &stats.approximate_data_size);
    line("global_sessions", &stats.global_sessions);
    line("local_sessions", &stats.local_sessions);
    if let Some(open) = stats.open_file_descriptor_count {
        line("open_file_descriptor_count", &open);
    }
    if let Some(max) = stats.max_file_descriptor_count {
        line("max_file_descriptor_count", &max);
    }
    // warren drops no connections to shed load.
    line("connection_drop_probability", &java_double(0.0));
    line(
        "last_client_response_size",
        &stats.client_response_bytes_last,
    );
    line("max_client_response_size", &stats.client_response_bytes_max);
    line("min_client_response_size", &stats.client_response_bytes_min);
    line(
        "outstanding_tls_handshake",
        &stats.outstanding_tls_handshake,
    );
    line("auth_failed_count", &stats.auth_failed_count);
    line(
        "non_mtls_remote_conn_count",
        &stats.non_mtls_remote_conn_count,
    );
    line(
        "non_mtls_local_conn_count",
        &stats.non_mtls_local_conn_count,
    );
    if let Some(quorum) = &stats.quorum {
        line("quorum_size", &quorum.quorum_size);
        if let Some(leader) = &quorum.leader {
            line("learners", &leader.learners);
            line("synced_followers", &leader.synced_followers);
            line(
                "synced_non_voting_followers",
                &leader.synced_non_voting_followers,
            );
            line("synced_observers", &leader.synced_observers);
            line("pending_syncs", &leader.pending_syncs);
            line("leader_uptime", &leader.leader_uptime_ms);
            line("last_proposal_size", &leader.proposal_bytes_last);
            line("max_proposal_size", &leader.proposal_bytes_max);
            line("min_proposal_size", &leader.proposal_bytes_min);
        }
    }
    out
}

/// `envi` (`EnvCommand` over `Environment.list`).
fn envi(stats: &ServerStats) -> String {
    const NA: &str = "<NA>";
    let env = &stats.environment;
    let or_na = |v: &Option<String>| v.clone().unwrap_or_else(|| NA.to_string());
    let memory = |pick: fn(&(u64, u64, u64)) -> u64| {
        env.memory_bytes_free_max_total.as_ref().map_or_else(
            || NA.to_string(),
            |m| format!("{}MB", pick(m) / (1024 * 1024)),
        )
    };
    let entries = [
        ("zookeeper.version", stats.version.clone()),
        ("host.name", or_na(&env.host_name)),
        ("java.version", NA.to_string()),
        ("java.vendor", NA.to_string()),
        ("java.home", NA.to_string()),
        ("java.class.path", NA.to_string()),
        ("java.library.path", NA.to_string()),
        ("java.io.tmpdir", or_na(&env.tmp_dir)),
        ("java.compiler", NA.to_string()),
        ("os.name", or_na(&env.os_name)),
        ("os.arch", or_na(&env.os_arch)),
        ("os.version", or_na(&env.os_version)),
        ("user.name", or_na(&env.user_name)),
        ("user.home", or_na(&env.user_home)),
        ("user.dir", or_na(&env.user_dir)),
        ("os.memory.free", memory(|m| m.0)),
        ("os.memory.max", memory(|m| m.1)),
        ("os.memory.total", memory(|m| m.2)),
    ];
    let mut out = String::from("Environment:\n");
    for (key, value) in entries {
        let _ = writeln!(out, "{key}={value}");
    }
    for (key, value) in &env.extra {
        let _ = writeln!(out, "{key}={value}");
    }
    out
}

/// `hash` (`DigestCommand`): `<zxid hex>: <digest>` per line.
fn hash(stats: &ServerStats) -> String {
    let mut out = String::new();
    for (zxid, digest) in &stats.digests {
        let _ = writeln!(out, "{zxid:x}: {digest}");
    }
    out
}

/// Java's `InetSocketAddress.toString` for an unresolved-name address: `/ip:port`, IPv6 as
/// eight uncompressed groups in brackets (JDK 14+).
pub fn java_socket_address(address: &SocketAddr) -> String {
    match address {
        SocketAddr::V4(v4) => format!("/{}:{}", v4.ip(), v4.port()),
        SocketAddr::V6(v6) => {
            let groups: Vec<String> = v6
                .ip()
                .segments()
                .iter()
                .map(|g| format!("{g:x}"))
                .collect();
            format!("/[{}]:{}", groups.join(":"), v6.port())
        }
    }
}

/// ZooKeeper's `AvgMinMaxCounter.getAvg`: rounded half-up to 4 decimals, then printed as a
/// Java double (`6.5556`, `0.0`).
pub fn java_average(value: f64) -> String {
    java_double((value * 10_000.0).round() / 10_000.0)
}

/// Java's `Double.toString`: `0.0`, `1.5`, `0.3333333333333333`, `1.0E7`, `1.0E-4`.
pub fn java_double(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let magnitude = value.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let text = format!("{value}");
        return if text.contains('.') {
            text
        } else {
            format!("{text}.0")
        };
    }
    let text = format!("{value:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    if mantissa.contains('.') {
        format!("{mantissa}E{exponent}")
    } else {
        format!("{mantissa}.0E{exponent}")
    }
}

/// Java's `Date.toString` in UTC: `Thu Jan 01 00:00:00 UTC 1970`.
pub fn java_date(epoch_ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = epoch_ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month_name = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
    format!(
        "{weekday} {month_name} {day:02} {:02}:{:02}:{:02} UTC {year}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[path = "fourlw_test.rs"]
mod tests;
