//! Test support: an in-process warren server on a free port, and a demo run with
//! participants of this crate's `warren-demo` binary.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::watch;
use warren_demos::{Launcher, ServerOpts, Supervisor};
use warren_server::config::{ConfigOverrides, ServerConfig};
use warren_server::server::Server;

/// A bound on a whole demo run: a failure bound, never a timing assertion.
pub const RUN_BOUND: Duration = Duration::from_secs(90);

/// A warren server on this test's runtime, over a temporary data directory.
pub struct TestServer {
    pub addr: SocketAddr,
    server: Option<Server>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server on a free port. Ticks of 100 ms let sessions be as short as 200 ms
    /// and as long as 30 s.
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let properties = [
            ("tickTime", "100"),
            ("maxSessionTimeout", "30000"),
            ("4lw.commands.whitelist", "*"),
        ];
        let overrides = ConfigOverrides {
            client_port: Some(0),
            client_port_address: Some("127.0.0.1".to_owned()),
            data_dir: Some(dir.path().to_path_buf()),
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..ConfigOverrides::default()
        };
        let cfg = ServerConfig::load(overrides).expect("test config").0;
        let server = Server::start(cfg).await.expect("server starts");
        TestServer {
            addr: server.local_addr(),
            server: Some(server),
            _dir: dir,
        }
    }

    /// Server options for a demo against this server.
    pub fn opts(&self, session_timeout_ms: u64) -> ServerOpts {
        ServerOpts {
            server: self.addr.to_string(),
            session_timeout_ms,
            bound_s: 60,
        }
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown(Duration::from_millis(200)).await;
        }
    }
}

/// A supervisor whose participants are this crate's `warren-demo` binary, and the sender
/// that stops it (kept alive for the run; never sent in these tests).
pub fn supervisor() -> (Supervisor, watch::Sender<bool>) {
    let launcher = Launcher::new(env!("CARGO_BIN_EXE_warren-demo"), &["demo-participant"]);
    let (tx, rx) = watch::channel(false);
    (Supervisor::new(launcher, rx), tx)
}

/// Awaits a demo run, failing the test if it takes longer than [`RUN_BOUND`].
pub async fn bounded<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(RUN_BOUND, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}
