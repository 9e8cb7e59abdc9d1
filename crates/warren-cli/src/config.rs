//! Where the CLI connects and as whom: flags, then environment, then the config file.
//!
//! Precedence, highest first: `--server`/`--auth`, `WARREN_SERVER`/`WARREN_AUTH`, the config
//! file (`--config`, `WARREN_CONFIG`, else `$XDG_CONFIG_HOME/warren/cli.toml` or
//! `~/.config/warren/cli.toml`), then the default server `127.0.0.1:2181` and no credentials.
//! The file has two keys and nothing else:
//!
//! ```toml
//! server = "zk1:2181,zk2:2181"
//! auth = "alice:secret"
//! ```

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use crate::error::{CliError, ErrorKind, Result};

/// The server used when no flag, variable or file names one.
pub const DEFAULT_SERVER: &str = "127.0.0.1:2181";

/// Connection options every command takes.
#[derive(Args, Clone, Debug, Default)]
pub struct ConnArgs {
    /// Servers to connect to: `host:port,...` with an optional `/chroot` [default: 127.0.0.1:2181]
    #[arg(long, env = "WARREN_SERVER", value_name = "HOST:PORT,...")]
    pub server: Option<String>,
    /// Credentials for the digest scheme, `user:password`.
    #[arg(
        long,
        env = "WARREN_AUTH",
        value_name = "USER:PASSWORD",
        hide_env_values = true
    )]
    pub auth: Option<String>,
    /// The CLI's config file (keys `server` and `auth`) [default: ~/.config/warren/cli.toml]
    #[arg(long = "cli-config", env = "WARREN_CONFIG", value_name = "FILE")]
    pub cli_config: Option<PathBuf>,
    /// The server's request size limit in bytes [default: from the server's `conf`, else
    /// jute.maxbuffer's 0xfffff]
    #[arg(long, value_name = "BYTES")]
    pub packet_limit: Option<u32>,
    /// Session timeout to ask for, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub session_timeout_ms: u64,
}

/// The config file's contents.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Connect string.
    pub server: Option<String>,
    /// `user:password` for the digest scheme.
    pub auth: Option<String>,
}

/// Resolved connection settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The connect string.
    pub server: String,
    /// `user:password`, if any.
    pub auth: Option<String>,
    /// `--packet-limit`, if given.
    pub packet_limit: Option<u32>,
    /// Session timeout in milliseconds.
    pub session_timeout_ms: u64,
}

impl ConnArgs {
    /// Applies the precedence rules (clap has already merged flags with the environment).
    pub fn resolve(&self) -> Result<Resolved> {
        let file = match self.config_path() {
            Some((path, explicit)) => read_file_config(&path, explicit)?,
            None => FileConfig::default(),
        };
        let server = self
            .server
            .clone()
            .or(file.server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let auth = self.auth.clone().or(file.auth);
        if auth.as_ref().is_some_and(|a| !a.contains(':')) {
            return Err(CliError::usage(
                "credentials must be user:password (digest scheme)",
            ));
        }
        Ok(Resolved {
            server,
            auth,
            packet_limit: self.packet_limit,
            session_timeout_ms: self.session_timeout_ms,
        })
    }

    /// The config file to read and whether it was named explicitly (an explicit file must
    /// exist; the default one may be absent).
    fn config_path(&self) -> Option<(PathBuf, bool)> {
        if let Some(p) = &self.cli_config {
            return Some((p.clone(), true));
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some((base.join("warren").join("cli.toml"), false))
    }
}

fn read_file_config(path: &Path, explicit: bool) -> Result<FileConfig> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(FileConfig::default());
        }
        Err(e) => return Err(CliError::local(path, &e)),
    };
    parse_file_config(&text)
        .map_err(|why| CliError::new(ErrorKind::Usage, format!("{}: {why}", path.display())))
}

/// Parses the config file's text.
pub fn parse_file_config(text: &str) -> std::result::Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.message().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_has_server_and_auth_only() {
        let c = parse_file_config("server = \"a:1,b:2\"\nauth = \"u:p\"\n").unwrap();
        assert_eq!(c.server.as_deref(), Some("a:1,b:2"));
        assert_eq!(c.auth.as_deref(), Some("u:p"));
        assert!(parse_file_config("servers = \"x\"").is_err());
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cli.toml");
        std::fs::write(&path, "server = \"file:1\"\nauth = \"f:f\"\n").unwrap();
        let args = ConnArgs {
            server: Some("flag:2".into()),
            cli_config: Some(path.clone()),
            ..ConnArgs::default()
        };
        let r = args.resolve().unwrap();
        assert_eq!(r.server, "flag:2");
        assert_eq!(r.auth.as_deref(), Some("f:f"));
        let missing = ConnArgs {
            cli_config: Some(dir.path().join("nope.toml")),
            ..ConnArgs::default()
        };
        assert_eq!(missing.resolve().unwrap_err().kind, ErrorKind::LocalIo);
    }
}
