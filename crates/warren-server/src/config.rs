//! The server's configuration, read from a ZooKeeper `zoo.cfg`.
//!
//! Twin of ZooKeeper's `QuorumPeerConfig.parse`/`parseProperties` (with `ServerConfig` for
//! standalone). The file is Java properties (`key=value`, `key = value`, `key: value` or
//! `key value`; `#` and `!` comments; `\` line continuation; keys and values trimmed).
//! ZooKeeper's keys are mapped to our snake_case fields in one table, [`KEYS`]:
//!
//! - **zoo.cfg keys** (`tickTime`, `dataDir`, `clientPort`, ...) match exactly.
//! - **Java system properties** (`zookeeper.4lw.commands.whitelist`, `readonlymode.enabled`,
//!   `jute.maxbuffer`, ...) match with or without the `zookeeper.` prefix. ZooKeeper turns an
//!   unknown zoo.cfg key `k` into the system property `zookeeper.k`, so `4lw.commands.whitelist`
//!   and `ssl.keyStore.location` work in zoo.cfg; we also accept the property's own name
//!   (what operators pass with `-D`), and for the few properties ZooKeeper reads without the
//!   prefix (`readonlymode.enabled`, `jute.maxbuffer`) we accept them in the file too, where
//!   ZooKeeper would silently ignore them.
//! - **warren keys** `warren.<limit>` set any field of [`Limits`] by its name.
//!
//! Deviations from ZooKeeper, each deliberate: `dataDir` defaults to `./warren-data` instead
//! of being required; an unknown key is returned as a warning instead of becoming a system
//! property; booleans must be `true`/`false` (`yes`/`no` too), where some ZooKeeper
//! properties read anything but `true` as false; `clientPort=0` asks for an ephemeral port;
//! the file is read as UTF-8 (Latin-1 when it is not valid UTF-8) where Java reads Latin-1.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::fourlw::KNOWN_WORDS;
use crate::limits::{DEFAULT_TICK_TIME_MS, Limits};

/// A configuration that cannot be used. Each variant names what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A key has a value that cannot be used.
    #[error("bad value {value:?} for {key}: {reason}")]
    BadValue {
        /// The key as written in the file (or override).
        key: String,
        /// The value as written.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// Keys that are each valid do not fit together.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The role of an ensemble member (`server.N=...:participant|observer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PeerRole {
    /// Votes and may lead (ZooKeeper's default).
    #[default]
    Participant,
    /// Follows without voting.
    Observer,
}

impl PeerRole {
    /// ZooKeeper's spelling: `participant` or `observer`.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerRole::Participant => "participant",
            PeerRole::Observer => "observer",
        }
    }
}

/// One `server.N=host:peerPort:electionPort[:participant|observer][;[clientAddr:]clientPort]`
/// line, parsed and kept for the ensemble.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSpec {
    /// `N`, the server id (1..=255; it is the top byte of every session id it creates).
    pub id: u8,
    /// Host name or address for the peer and election ports (IPv6 without brackets).
    pub host: String,
    /// ZooKeeper's quorum port (2888 by convention); warren's Raft port.
    pub peer_port: u16,
    /// ZooKeeper's leader-election port (3888 by convention).
    pub election_port: u16,
    /// Participant or observer.
    pub role: PeerRole,
    /// The client address after `;`, if given (`0.0.0.0` when only a port is given).
    pub client_address: Option<String>,
    /// The client port after `;`, if given.
    pub client_port: Option<u16>,
}

impl fmt::Display for ServerSpec {
    /// ZooKeeper's `QuorumServer.toString`, used in `conf`'s membership block.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            bracket_ipv6(&self.host),
            self.peer_port,
            self.election_port,
            self.role.as_str()
        )?;
        if let Some(port) = self.client_port {
            let address = self.client_address.as_deref().unwrap_or("0.0.0.0");
            write!(f, ";{}:{port}", bracket_ipv6(address))?;
        }
        Ok(())
    }
}

fn bracket_ipv6(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// TLS material for the secure client port (`ssl.*` properties). warren reads PEM files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SslConfig {
    /// `ssl.keyStore.location`: the server's certificate chain and key (PEM).
    pub key_store_location: Option<PathBuf>,
    /// `ssl.keyStore.password`: the password of an encrypted key.
    pub key_store_password: Option<String>,
    /// `ssl.keyStore.type` as written (`PEM` is what warren reads).
    pub key_store_type: Option<String>,
    /// `ssl.trustStore.location`: the CA certificates that client certificates must chain to.
    pub trust_store_location: Option<PathBuf>,
    /// `ssl.trustStore.password`.
    pub trust_store_password: Option<String>,
    /// `ssl.trustStore.type` as written.
    pub trust_store_type: Option<String>,
    /// `ssl.clientAuth`: `need` (ZooKeeper's default when unset), `want` or `none`.
    pub client_auth: Option<String>,
}

/// The whole server configuration. `ServerConfig::default()` is a standalone server on
/// port 2181 keeping its data in `./warren-data`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// The file this came from, if any.
    pub config_path: Option<PathBuf>,
    /// `tickTime`: the basic time unit in ms (session expiry buckets, default timeouts).
    /// ZooKeeper's code default 3000 (its sample zoo.cfg says 2000).
    pub tick_time_ms: u32,
    /// `dataDir`: snapshots, metadata and the `myid` file. Default `./warren-data`.
    pub data_dir: PathBuf,
    /// `dataLogDir`: the Raft log, when it should live on another disk; `None` = `data_dir`.
    pub data_log_dir: Option<PathBuf>,
    /// `clientPort`, default 2181; 0 asks the OS for a free port.
    pub client_port: u16,
    /// `clientPortAddress`: the address to listen on; `None` = all addresses.
    pub client_port_address: Option<String>,
    /// `secureClientPort`: the TLS port; `None` (or 0 in the file) = no TLS listener.
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress`; `None` = all addresses.
    pub secure_client_port_address: Option<String>,
    /// `minSessionTimeout` as written (ms); `None` (or -1) = 2 × tick. The effective value
    /// is `limits.session_timeout_ms_min`.
    pub session_timeout_ms_min: Option<u32>,
    /// `maxSessionTimeout` as written (ms); `None` (or -1) = 20 × tick. The effective value
    /// is `limits.session_timeout_ms_max`.
    pub session_timeout_ms_max: Option<u32>,
    /// `4lw.commands.whitelist`: the four-letter words answered; `*` = all. `srvr` is always
    /// answered and `isro` too when `read_only_mode_enabled` (see
    /// [`ServerConfig::four_letter_word_enabled`]). Default `["srvr"]`.
    pub four_letter_words: Vec<String>,
    /// `readonlymode.enabled`: serve read-only clients when cut off from the quorum.
    pub read_only_mode_enabled: bool,
    /// `zookeeper.extendedTypesEnabled`: allow TTL nodes (server ids must then be ≤ 254).
    pub extended_types_enabled: bool,
    /// `zookeeper.skipACL`: skip every ACL check (ZooKeeper spells it `yes`).
    pub skip_acl: bool,
    /// `snapCount`: transactions between snapshots (the first after a random number in
    /// `[snapCount/2 + 1, snapCount]`). Default 100,000.
    pub snap_count: u32,
    /// `autopurge.snapRetainCount`: snapshots kept by the purge; at least 3. Default 3.
    pub snap_retain_count: u32,
    /// `autopurge.purgeInterval`: hours between purges; 0 = never. Default 0.
    pub purge_interval_hours: u32,
    /// `zookeeper.DigestAuthenticationProvider.superDigest`: `super:<base64 sha1>`; a client
    /// that authenticates as this digest user passes every ACL check.
    pub super_digest: Option<String>,
    /// `java.security.auth.login.config`: the JAAS file with SASL credentials.
    pub jaas_config_path: Option<PathBuf>,
    /// `ssl.*`: TLS material for `secure_client_port`.
    pub ssl: SslConfig,
    /// `znode.container.checkIntervalMs`: how often the leader looks for empty containers
    /// and expired TTL nodes. Default 60,000.
    pub container_check_interval_ms: u32,
    /// `znode.container.maxNeverUsedIntervalMs`: a container that never had a child is
    /// deleted after this long; 0 = never. Default 0.
    pub container_max_never_used_interval_ms: u64,
    /// `server.N` lines (or those of `dynamic_config_file`), sorted by id. Empty = standalone.
    pub servers: Vec<ServerSpec>,
    /// This server's id, from the `myid` file in `data_dir` (read when it exists).
    pub my_id: Option<u8>,
    /// `initLimit`: ticks a follower may take to connect and catch up. Default 10.
    pub init_limit_ticks: u32,
    /// `syncLimit`: ticks a follower may lag before it is dropped. Default 5.
    pub sync_limit_ticks: u32,
    /// `standaloneEnabled`: a one-server ensemble runs standalone. Default true.
    pub standalone_enabled: bool,
    /// `reconfigEnabled`: allow the `reconfig` operation. Default false.
    pub reconfig_enabled: bool,
    /// `dynamicConfigFile`: where the `server.N` lines live instead of the main file.
    pub dynamic_config_file: Option<PathBuf>,
    /// Every bound the server enforces.
    pub limits: Limits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            config_path: None,
            tick_time_ms: DEFAULT_TICK_TIME_MS,
            data_dir: PathBuf::from("./warren-data"),
            data_log_dir: None,
            client_port: 2181,
            client_port_address: None,
            secure_client_port: None,
            secure_client_port_address: None,
            session_timeout_ms_min: None,
            session_timeout_ms_max: None,
            four_letter_words: vec!["srvr".to_string()],
            read_only_mode_enabled: false,
            extended_types_enabled: false,
            skip_acl: false,
            snap_count: 100_000,
            snap_retain_count: SNAP_RETAIN_COUNT_MIN,
            purge_interval_hours: 0,
            super_digest: None,
            jaas_config_path: None,
            ssl: SslConfig::default(),
            container_check_interval_ms: 60_000,
            container_max_never_used_interval_ms: 0,
            servers: Vec::new(),
            my_id: None,
            init_limit_ticks: 10,
            sync_limit_ticks: 5,
            standalone_enabled: true,
            reconfig_enabled: false,
            dynamic_config_file: None,
            limits: Limits::default(),
        }
    }
}

/// ZooKeeper's `MIN_SNAP_RETAIN_COUNT`: the purge never keeps fewer snapshots.
pub const SNAP_RETAIN_COUNT_MIN: u32 = 3;

/// Settings from the command line, applied after the file. `None` leaves the file's value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigOverrides {
    /// The zoo.cfg to read (used by [`ServerConfig::load`]; ignored by `apply_overrides`).
    pub config_file: Option<PathBuf>,
    /// Overrides `clientPort`.
    pub client_port: Option<u16>,
    /// Overrides `clientPortAddress`.
    pub client_port_address: Option<String>,
    /// Overrides `dataDir` (the `myid` file is then read from the new directory).
    pub data_dir: Option<PathBuf>,
    /// Overrides `dataLogDir`.
    pub data_log_dir: Option<PathBuf>,
    /// Overrides `tickTime`; derived session timeouts follow it.
    pub tick_time_ms: Option<u32>,
    /// Overrides `maxClientCnxns`.
    pub connections_per_ip_max: Option<u32>,
    /// Overrides the `myid` file.
    pub my_id: Option<u8>,
    /// Further `key=value` settings (like Java's `-Dkey=value`), applied in order through
    /// the same key table as the file.
    pub properties: Vec<(String, String)>,
}

impl ServerConfig {
    /// Reads a ZooKeeper zoo.cfg (and its `dynamicConfigFile` and `myid`, if any).
    /// Returns the configuration and warnings for keys that were not used.
    pub fn from_zoo_cfg(path: &Path) -> Result<(ServerConfig, Vec<String>), ConfigError> {
        let (mut config, warnings) = ServerConfig::parse_zoo_cfg(path)?;
        config.finish()?;
        Ok((config, warnings))
    }

    /// Reads a zoo.cfg without the final checks, which need the command-line overrides
    /// (`--id` stands for a missing `myid` file, for example).
    fn parse_zoo_cfg(path: &Path) -> Result<(ServerConfig, Vec<String>), ConfigError> {
        let text = read_text(path)?;
        let mut config = ServerConfig {
            config_path: Some(path.to_path_buf()),
            ..ServerConfig::default()
        };
        let mut warnings = Vec::new();
        let mut state = ParseState::default();
        let entries = parse_properties(&text);
        warn_duplicates(&entries, &mut warnings);
        for (key, value) in &entries {
            config.apply_entry(key, value, &mut state, &mut warnings)?;
        }
        if let Some(dynamic) = config.dynamic_config_file.clone() {
            if state.saw_server_line {
                return Err(ConfigError::Invalid(
                    "server.N lines must be in the dynamicConfigFile, not in the main file"
                        .to_string(),
                ));
            }
            config.read_dynamic_config(&dynamic, &mut state)?;
        }
        config.servers = state.servers.into_values().collect();
        config.read_my_id()?;
        config.adopt_client_address(state.client_port_set)?;
        Ok((config, warnings))
    }

    /// Reads `overrides.config_file` if given (else starts from the defaults), then applies
    /// the overrides. Returns the configuration and the warnings.
    pub fn load(overrides: ConfigOverrides) -> Result<(ServerConfig, Vec<String>), ConfigError> {
        let (mut config, mut warnings) = match &overrides.config_file {
            Some(path) => ServerConfig::parse_zoo_cfg(path)?,
            None => (ServerConfig::default(), Vec::new()),
        };
        warnings.extend(config.apply_overrides(overrides)?);
        Ok((config, warnings))
    }

    /// Applies command-line overrides on top of the file, then re-derives what depends on
    /// them (session timeouts from the tick, `myid` from the data directory). Returns
    /// warnings for override properties that were not used.
    pub fn apply_overrides(
        &mut self,
        overrides: ConfigOverrides,
    ) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        if let Some(port) = overrides.client_port {
            self.client_port = port;
        }
        if let Some(address) = overrides.client_port_address {
            self.client_port_address = Some(address);
        }
        if let Some(dir) = overrides.data_dir {
            self.data_dir = dir;
            self.my_id = None;
            self.read_my_id()?;
        }
        if let Some(dir) = overrides.data_log_dir {
            self.data_log_dir = Some(dir);
        }
        if let Some(tick) = overrides.tick_time_ms {
            if tick == 0 {
                return Err(bad("tickTime", "0", "must be greater than 0"));
            }
            self.tick_time_ms = tick;
        }
        if let Some(max) = overrides.connections_per_ip_max {
            self.limits.connections_per_ip_max = max;
        }
        if let Some(id) = overrides.my_id {
            self.my_id = Some(id);
            // This server's line may name its client port (the file's own `clientPort`
            // was checked against the line of the `myid` file's id, if there was one).
            if overrides.client_port.is_none() {
                self.adopt_client_address(false)?;
            }
        }
        let mut state = ParseState::default();
        for (key, value) in &overrides.properties {
            self.apply_entry(key.trim(), value.trim(), &mut state, &mut warnings)?;
        }
        if state.saw_server_line {
            let mut servers: BTreeMap<u8, ServerSpec> =
                self.servers.drain(..).map(|s| (s.id, s)).collect();
            servers.append(&mut state.servers);
            self.servers = servers.into_values().collect();
        }
        self.finish()?;
        Ok(warnings)
    }

    /// Whether the four-letter word `word` is answered: it is in the whitelist, or the
    /// whitelist holds `*` and `word` is a known word, or it is `srvr` (always on, since
    /// `zkServer.sh status` needs it), or it is `isro` and read-only mode is enabled.
    /// ZooKeeper's `FourLetterCommands.isEnabled`.
    pub fn four_letter_word_enabled(&self, word: &str) -> bool {
        if word == "srvr" || (word == "isro" && self.read_only_mode_enabled) {
            return true;
        }
        self.four_letter_words.iter().any(|w| w == word)
            || (self.four_letter_words.iter().any(|w| w == "*") && KNOWN_WORDS.contains(&word))
    }

    /// The directory of the Raft log: `data_log_dir`, else `data_dir`.
    pub fn effective_data_log_dir(&self) -> &Path {
        self.data_log_dir.as_deref().unwrap_or(&self.data_dir)
    }

    /// This server's own `server.N` line, if it is in an ensemble.
    pub fn my_server(&self) -> Option<&ServerSpec> {
        let id = self.my_id?;
        self.servers.iter().find(|s| s.id == id)
    }

    /// Applies one `key=value` through the key table, as if it were a line of zoo.cfg.
    /// Returns a warning when the key is not used.
    pub fn set(&mut self, key: &str, value: &str) -> Result<Option<String>, ConfigError> {
        let mut warnings = Vec::new();
        let mut state = ParseState::default();
        self.apply_entry(key.trim(), value.trim(), &mut state, &mut warnings)?;
        if state.saw_server_line {
            return Err(ConfigError::Invalid(format!(
                "{key} can only be set in a config file"
            )));
        }
        self.finish()?;
        Ok(warnings.pop())
    }

    fn apply_entry(
        &mut self,
        key: &str,
        value: &str,
        state: &mut ParseState,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        if let Some(id) = key.strip_prefix("server.") {
            let spec = parse_server_line(key, id, value)?;
            state.saw_server_line = true;
            state.servers.insert(spec.id, spec);
            return Ok(());
        }
        if key.starts_with("group.") || key.starts_with("weight.") {
            return Err(bad(key, value, "hierarchical quorums are not supported"));
        }
        match lookup(key) {
            Some(spec) => match spec.kind {
                Kind::Ignored | Kind::IgnoredProperty | Kind::IgnoredPrefix => {
                    warnings.push(format!(
                        "{key}: accepted for ZooKeeper compatibility, ignored"
                    ));
                    Ok(())
                }
                _ => {
                    if spec.key == "clientPort" {
                        state.client_port_set = true;
                    }
                    (spec.apply)(self, key, value, warnings)
                }
            },
            None => {
                warnings.push(format!("{key}: unknown key, ignored"));
                Ok(())
            }
        }
    }

    fn read_dynamic_config(
        &mut self,
        path: &Path,
        state: &mut ParseState,
    ) -> Result<(), ConfigError> {
        let text = read_text(path)?;
        for (key, value) in parse_properties(&text) {
            if let Some(id) = key.strip_prefix("server.") {
                let spec = parse_server_line(&key, id, &value)?;
                state.servers.insert(spec.id, spec);
            } else if key == "version" {
                // ZooKeeper takes the config version from the file name; a version key is
                // an error there. We only need the members, so it is skipped.
            } else {
                return Err(bad(
                    &key,
                    &value,
                    "only server.N lines belong in a dynamicConfigFile",
                ));
            }
        }
        Ok(())
    }

    /// Reads `data_dir/myid` when it exists (ZooKeeper's `setupMyId`).
    fn read_my_id(&mut self) -> Result<(), ConfigError> {
        let path = self.data_dir.join("myid");
        if !path.is_file() {
            return Ok(());
        }
        let text = read_text(&path)?;
        let line = text.lines().next().unwrap_or("").trim();
        let id = parse_server_id("myid", line)?;
        self.my_id = Some(id);
        Ok(())
    }

    /// ZooKeeper's `setupClientPort`: a client address in this server's `server.N` line
    /// becomes the client port, and must agree with an explicit `clientPort`.
    fn adopt_client_address(&mut self, client_port_set: bool) -> Result<(), ConfigError> {
        let Some(me) = self.my_server().cloned() else {
            return Ok(());
        };
        let Some(port) = me.client_port else {
            return Ok(());
        };
        if client_port_set && self.client_port != port {
            return Err(ConfigError::Invalid(format!(
                "clientPort {} differs from the client port {port} in server.{}",
                self.client_port, me.id
            )));
        }
        self.client_port = port;
        if let Some(address) = me.client_address.filter(|a| a != "0.0.0.0") {
            self.client_port_address = Some(address);
        }
        Ok(())
    }

    /// Derives the effective session timeouts and checks the rules between keys.
    fn finish(&mut self) -> Result<(), ConfigError> {
        let tick = self.tick_time_ms;
        self.limits.session_timeout_ms_min = self
            .session_timeout_ms_min
            .unwrap_or_else(|| tick.saturating_mul(2));
        self.limits.session_timeout_ms_max = self
            .session_timeout_ms_max
            .unwrap_or_else(|| tick.saturating_mul(20));
        if self.limits.session_timeout_ms_min > self.limits.session_timeout_ms_max {
            return Err(ConfigError::Invalid(format!(
                "minSessionTimeout {} must not be larger than maxSessionTimeout {}",
                self.limits.session_timeout_ms_min, self.limits.session_timeout_ms_max
            )));
        }
        self.limits.validate().map_err(ConfigError::Invalid)?;
        if self.servers.len() > 1 {
            let Some(id) = self.my_id else {
                return Err(ConfigError::Invalid(format!(
                    "{} servers are listed but {} has no myid file",
                    self.servers.len(),
                    self.data_dir.display()
                )));
            };
            if !self.servers.iter().any(|s| s.id == id) {
                return Err(ConfigError::Invalid(format!(
                    "myid {id} is not among the server.N lines"
                )));
            }
        }
        if self.extended_types_enabled && self.servers.iter().any(|s| s.id == 255) {
            return Err(ConfigError::Invalid(
                "server id 255 cannot be used with extendedTypesEnabled (TTL nodes)".to_string(),
            ));
        }
        Ok(())
    }
}

#[derive(Default)]
struct ParseState {
    saw_server_line: bool,
    client_port_set: bool,
    servers: BTreeMap<u8, ServerSpec>,
}

// ---------------------------------------------------------------------------------------
// The key table.

/// How a key of [`KEYS`] is matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A zoo.cfg key, matched exactly.
    ZooCfg,
    /// A Java system property, matched with or without the `zookeeper.` prefix.
    Property,
    /// A warren-only key (`warren.*`), matched exactly.
    Warren,
    /// A zoo.cfg key warren accepts and ignores (with a warning).
    Ignored,
    /// A system property warren accepts and ignores (with a warning).
    IgnoredProperty,
    /// A family of system properties (this prefix) warren accepts and ignores.
    IgnoredPrefix,
}

type Apply = fn(&mut ServerConfig, &str, &str, &mut Vec<String>) -> Result<(), ConfigError>;

/// One row of the key table: ZooKeeper's key, how it is matched, and the field it sets.
pub struct KeySpec {
    /// The key as ZooKeeper spells it.
    pub key: &'static str,
    /// How it is matched.
    pub kind: Kind,
    /// The `ServerConfig` field it sets (for docs and tests), e.g. `limits.packet_bytes_max`.
    pub field: &'static str,
    apply: Apply,
}

const fn row(key: &'static str, kind: Kind, field: &'static str, apply: Apply) -> KeySpec {
    KeySpec {
        key,
        kind,
        field,
        apply,
    }
}

fn ignore(_: &mut ServerConfig, _: &str, _: &str, _: &mut Vec<String>) -> Result<(), ConfigError> {
    Ok(())
}

/// Every key warren understands: ZooKeeper's name → our field. The one place the mapping
/// lives.
#[rustfmt::skip]
pub static KEYS: &[KeySpec] = &[
    // zoo.cfg keys (QuorumPeerConfig.parseProperties).
    row("tickTime", Kind::ZooCfg, "tick_time_ms", |c, k, v, _| {
        c.tick_time_ms = parse_positive(k, v)?; Ok(())
    }),
    row("dataDir", Kind::ZooCfg, "data_dir", |c, k, v, _| {
        c.data_dir = parse_path(k, v)?; Ok(())
    }),
    row("dataLogDir", Kind::ZooCfg, "data_log_dir", |c, k, v, _| {
        c.data_log_dir = Some(parse_path(k, v)?); Ok(())
    }),
    row("clientPort", Kind::ZooCfg, "client_port", |c, k, v, _| {
        c.client_port = parse_port(k, v)?; Ok(())
    }),
    row("clientPortAddress", Kind::ZooCfg, "client_port_address", |c, k, v, _| {
        c.client_port_address = Some(parse_nonempty(k, v)?); Ok(())
    }),
    row("secureClientPort", Kind::ZooCfg, "secure_client_port", |c, k, v, _| {
        c.secure_client_port = Some(parse_port(k, v)?).filter(|p| *p != 0); Ok(())
    }),
    row("secureClientPortAddress", Kind::ZooCfg, "secure_client_port_address", |c, k, v, _| {
        c.secure_client_port_address = Some(parse_nonempty(k, v)?); Ok(())
    }),
    row("maxClientCnxns", Kind::ZooCfg, "limits.connections_per_ip_max", |c, k, v, _| {
        c.limits.connections_per_ip_max = parse_u32(k, v)?; Ok(())
    }),
    row("minSessionTimeout", Kind::ZooCfg, "session_timeout_ms_min", |c, k, v, _| {
        c.session_timeout_ms_min = parse_timeout(k, v)?; Ok(())
    }),
    row("maxSessionTimeout", Kind::ZooCfg, "session_timeout_ms_max", |c, k, v, _| {
        c.session_timeout_ms_max = parse_timeout(k, v)?; Ok(())
    }),
    row("clientPortListenBacklog", Kind::ZooCfg, "limits.listen_backlog_max", |c, k, v, _| {
        // -1 is ZooKeeper's "use the default".
        if v != "-1" { c.limits.listen_backlog_max = parse_positive(k, v)?; }
        Ok(())
    }),
    row("initLimit", Kind::ZooCfg, "init_limit_ticks", |c, k, v, _| {
        c.init_limit_ticks = parse_positive(k, v)?; Ok(())
    }),
    row("syncLimit", Kind::ZooCfg, "sync_limit_ticks", |c, k, v, _| {
        c.sync_limit_ticks = parse_positive(k, v)?; Ok(())
    }),
    row("autopurge.snapRetainCount", Kind::ZooCfg, "snap_retain_count", |c, k, v, w| {
        let count = parse_u32(k, v)?;
        if count < SNAP_RETAIN_COUNT_MIN {
            w.push(format!("{k}: {count} is below {SNAP_RETAIN_COUNT_MIN}; using {SNAP_RETAIN_COUNT_MIN}"));
        }
        c.snap_retain_count = count.max(SNAP_RETAIN_COUNT_MIN);
        Ok(())
    }),
    row("autopurge.purgeInterval", Kind::ZooCfg, "purge_interval_hours", |c, k, v, _| {
        c.purge_interval_hours = parse_u32(k, v)?; Ok(())
    }),
    row("standaloneEnabled", Kind::ZooCfg, "standalone_enabled", |c, k, v, _| {
        c.standalone_enabled = parse_bool(k, v)?; Ok(())
    }),
    row("reconfigEnabled", Kind::ZooCfg, "reconfig_enabled", |c, k, v, _| {
        c.reconfig_enabled = parse_bool(k, v)?; Ok(())
    }),
    row("dynamicConfigFile", Kind::ZooCfg, "dynamic_config_file", |c, k, v, _| {
        c.dynamic_config_file = Some(parse_path(k, v)?); Ok(())
    }),
    // Java system properties; zoo.cfg may name them without the "zookeeper." prefix.
    row("zookeeper.4lw.commands.whitelist", Kind::Property, "four_letter_words", |c, k, v, w| {
        c.four_letter_words = parse_whitelist(k, v, w); Ok(())
    }),
    row("readonlymode.enabled", Kind::Property, "read_only_mode_enabled", |c, k, v, _| {
        c.read_only_mode_enabled = parse_bool(k, v)?; Ok(())
    }),
    row("zookeeper.extendedTypesEnabled", Kind::Property, "extended_types_enabled", |c, k, v, _| {
        c.extended_types_enabled = parse_bool(k, v)?; Ok(())
    }),
    row("zookeeper.skipACL", Kind::Property, "skip_acl", |c, k, v, _| {
        c.skip_acl = parse_bool(k, v)?; Ok(())
    }),
    row("zookeeper.snapCount", Kind::Property, "snap_count", |c, k, v, _| {
        c.snap_count = parse_positive(k, v)?; Ok(())
    }),
    row("zookeeper.DigestAuthenticationProvider.superDigest", Kind::Property, "super_digest", |c, k, v, _| {
        c.super_digest = Some(parse_super_digest(k, v)?); Ok(())
    }),
    row("java.security.auth.login.config", Kind::Property, "jaas_config_path", |c, k, v, _| {
        c.jaas_config_path = Some(parse_path(k, v)?); Ok(())
    }),
    row("jute.maxbuffer", Kind::Property, "limits.packet_bytes_max", |c, k, v, _| {
        c.limits.packet_bytes_max = parse_positive(k, v)?; Ok(())
    }),
    row("zookeeper.globalOutstandingLimit", Kind::Property, "limits.requests_in_flight_max", |c, k, v, _| {
        c.limits.requests_in_flight_max = parse_positive(k, v)?; Ok(())
    }),
    row("zookeeper.maxCnxns", Kind::Property, "limits.connections_max", |c, k, v, _| {
        c.limits.connections_max = parse_u32(k, v)?; Ok(())
    }),
    row("zookeeper.nio.sessionlessCnxnTimeout", Kind::Property, "limits.handshake_timeout_ms", |c, k, v, _| {
        c.limits.handshake_timeout_ms = parse_positive(k, v)?; Ok(())
    }),
    row("znode.container.checkIntervalMs", Kind::Property, "container_check_interval_ms", |c, k, v, _| {
        c.container_check_interval_ms = parse_positive(k, v)?; Ok(())
    }),
    row("znode.container.maxPerMinute", Kind::Property, "limits.container_deletions_per_minute_max", |c, k, v, _| {
        c.limits.container_deletions_per_minute_max = parse_positive(k, v)?; Ok(())
    }),
    row("znode.container.maxNeverUsedIntervalMs", Kind::Property, "container_max_never_used_interval_ms", |c, k, v, _| {
        c.container_max_never_used_interval_ms = parse_u64(k, v)?; Ok(())
    }),
    row("zookeeper.ssl.keyStore.location", Kind::Property, "ssl.key_store_location", |c, k, v, _| {
        c.ssl.key_store_location = Some(parse_path(k, v)?); Ok(())
    }),
    row("zookeeper.ssl.keyStore.password", Kind::Property, "ssl.key_store_password", |c, _, v, _| {
        c.ssl.key_store_password = Some(v.to_string()); Ok(())
    }),
    row("zookeeper.ssl.keyStore.type", Kind::Property, "ssl.key_store_type", |c, k, v, _| {
        c.ssl.key_store_type = Some(parse_store_type(k, v)?); Ok(())
    }),
    row("zookeeper.ssl.trustStore.location", Kind::Property, "ssl.trust_store_location", |c, k, v, _| {
        c.ssl.trust_store_location = Some(parse_path(k, v)?); Ok(())
    }),
    row("zookeeper.ssl.trustStore.password", Kind::Property, "ssl.trust_store_password", |c, _, v, _| {
        c.ssl.trust_store_password = Some(v.to_string()); Ok(())
    }),
    row("zookeeper.ssl.trustStore.type", Kind::Property, "ssl.trust_store_type", |c, k, v, _| {
        c.ssl.trust_store_type = Some(parse_store_type(k, v)?); Ok(())
    }),
    row("zookeeper.ssl.clientAuth", Kind::Property, "ssl.client_auth", |c, k, v, _| {
        c.ssl.client_auth = Some(parse_client_auth(k, v)?); Ok(())
    }),
    // warren's own limits, by field name.
    row("warren.packet_bytes_max", Kind::Warren, "limits.packet_bytes_max", |c, k, v, _| {
        c.limits.packet_bytes_max = parse_positive(k, v)?; Ok(())
    }),
    row("warren.path_bytes_max", Kind::Warren, "limits.path_bytes_max", |c, k, v, _| {
        c.limits.path_bytes_max = parse_positive(k, v)?; Ok(())
    }),
    row("warren.requests_in_flight_max", Kind::Warren, "limits.requests_in_flight_max", |c, k, v, _| {
        c.limits.requests_in_flight_max = parse_positive(k, v)?; Ok(())
    }),
    row("warren.requests_in_flight_per_session_max", Kind::Warren, "limits.requests_in_flight_per_session_max", |c, k, v, _| {
        c.limits.requests_in_flight_per_session_max = parse_positive(k, v)?; Ok(())
    }),
    row("warren.watches_per_session_max", Kind::Warren, "limits.watches_per_session_max", |c, k, v, _| {
        c.limits.watches_per_session_max = parse_positive(k, v)?; Ok(())
    }),
    row("warren.set_watches_paths_max", Kind::Warren, "limits.set_watches_paths_max", |c, k, v, _| {
        c.limits.set_watches_paths_max = parse_positive(k, v)?; Ok(())
    }),
    row("warren.multi_ops_max", Kind::Warren, "limits.multi_ops_max", |c, k, v, _| {
        c.limits.multi_ops_max = parse_positive(k, v)?; Ok(())
    }),
    row("warren.connections_per_ip_max", Kind::Warren, "limits.connections_per_ip_max", |c, k, v, _| {
        c.limits.connections_per_ip_max = parse_u32(k, v)?; Ok(())
    }),
    row("warren.connections_max", Kind::Warren, "limits.connections_max", |c, k, v, _| {
        c.limits.connections_max = parse_u32(k, v)?; Ok(())
    }),
    row("warren.outbox_bytes_max", Kind::Warren, "limits.outbox_bytes_max", |c, k, v, _| {
        c.limits.outbox_bytes_max = parse_positive_u64(k, v)?; Ok(())
    }),
    row("warren.handshake_timeout_ms", Kind::Warren, "limits.handshake_timeout_ms", |c, k, v, _| {
        c.limits.handshake_timeout_ms = parse_positive(k, v)?; Ok(())
    }),
    row("warren.expirations_per_tick_max", Kind::Warren, "limits.expirations_per_tick_max", |c, k, v, _| {
        c.limits.expirations_per_tick_max = parse_positive(k, v)?; Ok(())
    }),
    row("warren.session_timeout_ms_min", Kind::Warren, "session_timeout_ms_min", |c, k, v, _| {
        c.session_timeout_ms_min = parse_timeout(k, v)?; Ok(())
    }),
    row("warren.session_timeout_ms_max", Kind::Warren, "session_timeout_ms_max", |c, k, v, _| {
        c.session_timeout_ms_max = parse_timeout(k, v)?; Ok(())
    }),
    row("warren.container_deletions_per_minute_max", Kind::Warren, "limits.container_deletions_per_minute_max", |c, k, v, _| {
        c.limits.container_deletions_per_minute_max = parse_positive(k, v)?; Ok(())
    }),
    row("warren.listen_backlog_max", Kind::Warren, "limits.listen_backlog_max", |c, k, v, _| {
        c.limits.listen_backlog_max = parse_positive(k, v)?; Ok(())
    }),
    // Accepted so that a ZooKeeper zoo.cfg loads, but without effect here.
    row("electionAlg", Kind::Ignored, "", ignore),
    row("peerType", Kind::Ignored, "", ignore),
    row("syncEnabled", Kind::Ignored, "", ignore),
    row("localSessionsEnabled", Kind::Ignored, "", ignore),
    row("localSessionsUpgradingEnabled", Kind::Ignored, "", ignore),
    row("quorumListenOnAllIPs", Kind::Ignored, "", ignore),
    row("observerMasterPort", Kind::Ignored, "", ignore),
    row("connectToLearnerMasterLimit", Kind::Ignored, "", ignore),
    row("sslQuorum", Kind::Ignored, "", ignore),
    row("sslQuorumReloadCertFiles", Kind::Ignored, "", ignore),
    row("portUnification", Kind::Ignored, "", ignore),
    row("multiAddress.enabled", Kind::Ignored, "", ignore),
    row("quorum.cnxn.threads.size", Kind::Ignored, "", ignore),
    row("metricsProvider.", Kind::IgnoredPrefix, "", ignore),
    row("quorum.auth.", Kind::IgnoredPrefix, "", ignore),
    row("zookeeper.authProvider.", Kind::IgnoredPrefix, "", ignore),
    row("zookeeper.admin.", Kind::IgnoredPrefix, "", ignore),
    row("zookeeper.serverCnxnFactory", Kind::IgnoredProperty, "", ignore),
    row("zookeeper.preAllocSize", Kind::IgnoredProperty, "", ignore),
    row("zookeeper.forceSync", Kind::IgnoredProperty, "", ignore),
    row("zookeeper.snapSizeLimitInKb", Kind::IgnoredProperty, "", ignore),
    row("zookeeper.txnLogSizeLimitInKb", Kind::IgnoredProperty, "", ignore),
    row("zookeeper.watchManagerName", Kind::IgnoredProperty, "", ignore),
    row("zookeeper.enforceQuota", Kind::IgnoredProperty, "", ignore),
    row("zookeeper.digest.enabled", Kind::IgnoredProperty, "", ignore),
    row("zookeeper.snapshot.compression.method", Kind::IgnoredProperty, "", ignore),
];

/// The row of [`KEYS`] that `key` (as written in zoo.cfg or an override) refers to.
pub fn lookup(key: &str) -> Option<&'static KeySpec> {
    let bare = key.strip_prefix("zookeeper.").unwrap_or(key);
    KEYS.iter().find(|spec| match spec.kind {
        Kind::ZooCfg | Kind::Warren | Kind::Ignored => spec.key == key,
        Kind::Property | Kind::IgnoredProperty => {
            spec.key.strip_prefix("zookeeper.").unwrap_or(spec.key) == bare
        }
        Kind::IgnoredPrefix => {
            bare.starts_with(spec.key.strip_prefix("zookeeper.").unwrap_or(spec.key))
        }
    })
}

// ---------------------------------------------------------------------------------------
// Value parsers. Each failure names the key and the value.

fn bad(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn parse_u32(key: &str, value: &str) -> Result<u32, ConfigError> {
    value
        .parse::<u32>()
        .map_err(|_| bad(key, value, "expected a whole number from 0 to 4294967295"))
}

fn parse_u64(key: &str, value: &str) -> Result<u64, ConfigError> {
    value
        .parse::<u64>()
        .map_err(|_| bad(key, value, "expected a non-negative whole number"))
}

fn parse_positive_u64(key: &str, value: &str) -> Result<u64, ConfigError> {
    match parse_u64(key, value)? {
        0 => Err(bad(key, value, "must be greater than 0")),
        n => Ok(n),
    }
}

fn parse_positive(key: &str, value: &str) -> Result<u32, ConfigError> {
    match parse_u32(key, value)? {
        0 => Err(bad(key, value, "must be greater than 0")),
        n => Ok(n),
    }
}

fn parse_port(key: &str, value: &str) -> Result<u16, ConfigError> {
    value
        .parse::<u16>()
        .map_err(|_| bad(key, value, "expected a port from 0 to 65535"))
}

/// ZooKeeper's session timeouts: -1 = derive from the tick.
fn parse_timeout(key: &str, value: &str) -> Result<Option<u32>, ConfigError> {
    if value == "-1" {
        return Ok(None);
    }
    parse_positive(key, value).map(Some).map_err(|_| {
        bad(
            key,
            value,
            "expected milliseconds (> 0), or -1 for the default",
        )
    })
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(bad(key, value, "expected true or false")),
    }
}

fn parse_nonempty(key: &str, value: &str) -> Result<String, ConfigError> {
    if value.is_empty() {
        return Err(bad(key, value, "must not be empty"));
    }
    Ok(value.to_string())
}

fn parse_path(key: &str, value: &str) -> Result<PathBuf, ConfigError> {
    parse_nonempty(key, value).map(PathBuf::from)
}

fn parse_server_id(key: &str, value: &str) -> Result<u8, ConfigError> {
    match value.parse::<u8>() {
        Ok(id) if id >= 1 => Ok(id),
        _ => Err(bad(key, value, "a server id is a number from 1 to 255")),
    }
}

/// `user:base64(sha1)`: the hash is 20 bytes, 28 base64 characters.
fn parse_super_digest(key: &str, value: &str) -> Result<String, ConfigError> {
    let Some((user, hash)) = value.split_once(':') else {
        return Err(bad(key, value, "expected user:base64-sha1-digest"));
    };
    let base64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=';
    if user.is_empty() || hash.len() != 28 || !hash.chars().all(base64) {
        return Err(bad(key, value, "expected user:base64-sha1-digest"));
    }
    Ok(value.to_string())
}

fn parse_store_type(key: &str, value: &str) -> Result<String, ConfigError> {
    if !value.eq_ignore_ascii_case("PEM") {
        return Err(bad(key, value, "warren reads PEM files only"));
    }
    Ok(value.to_string())
}

fn parse_client_auth(key: &str, value: &str) -> Result<String, ConfigError> {
    let lower = value.to_ascii_lowercase();
    if !matches!(lower.as_str(), "need" | "want" | "none") {
        return Err(bad(key, value, "expected need, want or none"));
    }
    Ok(lower)
}

/// ZooKeeper's whitelist: comma-separated, trimmed, empty items dropped.
fn parse_whitelist(key: &str, value: &str, warnings: &mut Vec<String>) -> Vec<String> {
    let words: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    for word in &words {
        if word != "*" && !KNOWN_WORDS.contains(&word.as_str()) {
            warnings.push(format!("{key}: {word:?} is not a four-letter word"));
        }
    }
    words
}

/// `server.N` → [`ServerSpec`], as `QuorumPeer.QuorumServer` parses it (one address; the
/// `|`-separated multi-address form is refused).
pub(crate) fn parse_server_line(
    key: &str,
    id: &str,
    value: &str,
) -> Result<ServerSpec, ConfigError> {
    let id = parse_server_id(key, id).map_err(|_| bad(key, value, "N must be from 1 to 255"))?;
    let wrong = || {
        bad(
            key,
            value,
            "expected host:peerPort:electionPort[:participant|observer][;[clientAddress:]clientPort]",
        )
    };
    let mut halves = value.split(';');
    let server_part = halves.next().unwrap_or("");
    let client_part = halves.next();
    if halves.next().is_some() {
        return Err(wrong());
    }
    if server_part.contains('|') {
        return Err(bad(
            key,
            value,
            "multiple addresses per server are not supported",
        ));
    }
    let parts = split_host_and_ports(server_part.trim()).ok_or_else(wrong)?;
    if !(3..=4).contains(&parts.len()) {
        return Err(wrong());
    }
    let port = |s: &str| s.parse::<u16>().ok().filter(|p| *p != 0);
    let peer_port = port(&parts[1]).ok_or_else(wrong)?;
    let election_port = port(&parts[2]).ok_or_else(wrong)?;
    if peer_port == election_port {
        return Err(bad(key, value, "the peer and election ports must differ"));
    }
    let role = match parts.get(3).map(|r| r.to_ascii_lowercase()) {
        None => PeerRole::Participant,
        Some(r) if r == "participant" => PeerRole::Participant,
        Some(r) if r == "observer" => PeerRole::Observer,
        Some(_) => return Err(wrong()),
    };
    let (client_address, client_port) = match client_part.map(str::trim) {
        None => (None, None),
        Some(client) => {
            let parts = split_host_and_ports(client).ok_or_else(wrong)?;
            match parts.as_slice() {
                [p] => (
                    Some("0.0.0.0".to_string()),
                    Some(port(p).ok_or_else(wrong)?),
                ),
                [host, p] => (Some(host.clone()), Some(port(p).ok_or_else(wrong)?)),
                _ => return Err(wrong()),
            }
        }
    };
    if parts[0].is_empty() {
        return Err(wrong());
    }
    Ok(ServerSpec {
        id,
        host: parts[0].clone(),
        peer_port,
        election_port,
        role,
        client_address,
        client_port,
    })
}

/// Splits `host:a:b` on colons, with an IPv6 host in brackets (`[::1]:a:b`), as
/// ZooKeeper's `ConfigUtils.getHostAndPort`.
fn split_host_and_ports(s: &str) -> Option<Vec<String>> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let mut parts = vec![host.to_string()];
        if !after.is_empty() {
            parts.extend(after.strip_prefix(':')?.split(':').map(str::to_string));
        }
        return Some(parts);
    }
    Some(s.split(':').map(str::to_string).collect())
}

// ---------------------------------------------------------------------------------------
// Java properties.

fn read_text(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        // Java's Properties.load(InputStream) reads ISO-8859-1.
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    })
}

fn warn_duplicates(entries: &[(String, String)], warnings: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    for (key, _) in entries {
        if !seen.insert(key.as_str()) {
            warnings.push(format!("{key}: set more than once; the last value wins"));
        }
    }
}

/// Parses Java properties text (`java.util.Properties.load`) into `(key, value)` pairs in
/// file order, each trimmed as ZooKeeper trims them.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    let mut lines = text.lines();
    while let Some(first) = lines.next() {
        let first = first.trim_start_matches([' ', '\t', '\u{c}']);
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        // Join continuation lines: an odd number of trailing backslashes continues.
        let mut logical = String::new();
        let mut current = first.to_string();
        loop {
            let trailing = current.chars().rev().take_while(|c| *c == '\\').count();
            if trailing % 2 == 1 {
                current.pop();
                logical.push_str(&current);
                match lines.next() {
                    Some(next) => {
                        current = next.trim_start_matches([' ', '\t', '\u{c}']).to_string()
                    }
                    None => break,
                }
            } else {
                logical.push_str(&current);
                break;
            }
        }
        let (key, value) = split_key_value(&logical);
        entries.push((
            unescape(&key).trim().to_string(),
            unescape(&value).trim().to_string(),
        ));
    }
    entries
}

/// The key ends at the first unescaped `=`, `:` or whitespace; one `=` or `:` (with
/// whitespace around it) separates it from the value.
fn split_key_value(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '=' | ':' | ' ' | '\t' | '\u{c}' => break,
            _ => i += 1,
        }
    }
    let end_of_key = i.min(chars.len());
    let key: String = chars[..end_of_key].iter().collect();
    let mut j = end_of_key;
    while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\u{c}') {
        j += 1;
    }
    if j < chars.len() && matches!(chars[j], '=' | ':') {
        j += 1;
    }
    let value: String = chars[j.min(chars.len())..].iter().collect();
    (key, value)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) => out.push(decoded),
                    None => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
#[path = "config_test.rs"]
mod tests;
