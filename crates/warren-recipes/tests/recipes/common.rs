//! Test support: an in-process warren server on a free port, a TCP proxy whose links can be
//! cut, session expiry on demand, kazoo (Python) participants, and bounded waits.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::AbortHandle;
use warren_recipes::{ConnState, ConnectOptions, Connection};
use warren_server::config::{ConfigOverrides, ServerConfig};
use warren_server::server::Server;

/// Every wait in these tests is bounded by this; it is a failure bound, never a timing
/// assertion.
pub const BOUND: Duration = Duration::from_secs(30);

/// Awaits `fut`, failing the test with `what` if it takes longer than [`BOUND`].
pub async fn bounded<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(BOUND, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Polls `cond` until it holds (bounded).
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    bounded(what, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// A warren server on this test's runtime, over a temporary data directory.
pub struct TestServer {
    pub addr: SocketAddr,
    server: Option<Server>,
    dir: tempfile::TempDir,
}

fn config(dir: &Path, port: u16) -> ServerConfig {
    let properties = [
        ("4lw.commands.whitelist", "*"),
        ("tickTime", "50"),
        ("maxSessionTimeout", "30000"),
    ];
    let overrides = ConfigOverrides {
        client_port: Some(port),
        client_port_address: Some("127.0.0.1".to_owned()),
        data_dir: Some(dir.to_path_buf()),
        properties: properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..ConfigOverrides::default()
    };
    ServerConfig::load(overrides)
        .expect("test config is valid")
        .0
}

impl TestServer {
    /// Starts a server on a free port.
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::start(config(dir.path(), 0))
            .await
            .expect("server starts");
        TestServer {
            addr: server.local_addr(),
            server: Some(server),
            dir,
        }
    }

    /// The connect string.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// Stops the server, then starts it again on the same port over the same directory
    /// (sessions are replicated state, so they survive).
    pub async fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown(Duration::from_millis(200)).await;
        }
        let cfg = config(self.dir.path(), self.addr.port());
        let server = bounded("server restart", async {
            loop {
                match Server::start(cfg.clone()).await {
                    Ok(s) => return s,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        })
        .await;
        self.server = Some(server);
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown(Duration::from_millis(200)).await;
        }
    }
}

/// Default options for a test connection: a session long enough that a busy machine does
/// not lose it by accident.
pub fn options() -> ConnectOptions {
    ConnectOptions {
        session_timeout: Duration::from_secs(10),
        ..ConnectOptions::default()
    }
}

/// A connection to `servers` with [`options`].
pub async fn connect(servers: &str) -> Connection {
    bounded("connect", Connection::connect(servers, options()))
        .await
        .expect("connects")
}

/// Ends `conn`'s current session from outside, as an expiry would: a second client resumes
/// the session and closes it. Waits until `conn` has a fresh session (next epoch).
pub async fn expire_session(servers: &str, conn: &Connection) {
    let before = conn.status().epoch;
    let session = conn.client().expect("open").session().clone();
    let thief = zookeeper_client::Client::connector()
        .with_session(session)
        .connect(servers)
        .await
        .expect("resumes the session");
    drop(thief);
    let mut rx = conn.status_watcher();
    bounded("a fresh session", async {
        loop {
            let s = *rx.borrow_and_update();
            if s.epoch > before && s.state == ConnState::Connected {
                return;
            }
            rx.changed().await.expect("connection alive");
        }
    })
    .await;
}

/// A TCP proxy in front of a server: its links can be cut, and new ones refused.
pub struct Proxy {
    pub addr: SocketAddr,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    refuse: Arc<std::sync::atomic::AtomicBool>,
    accept: AbortHandle,
}

impl Proxy {
    /// Starts a proxy to `target` on a free port.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let refuse = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (l, r) = (links.clone(), refuse.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if r.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                l.lock().unwrap().push(link.abort_handle());
            }
        })
        .abort_handle();
        Proxy {
            addr,
            links,
            refuse,
            accept,
        }
    }

    /// The connect string through the proxy.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// Closes every open link (both sockets).
    pub fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// Refuses (closes at once) new links while `refuse` is true.
    pub fn refuse(&self, refuse: bool) {
        self.refuse
            .store(refuse, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Waits until `conn`'s state is `state`.
pub async fn wait_state(conn: &Connection, state: ConnState) {
    let mut rx = conn.status_watcher();
    bounded(&format!("state {state:?}"), async {
        loop {
            if rx.borrow_and_update().state == state {
                return;
            }
            rx.changed().await.expect("connection alive");
        }
    })
    .await;
}

/// The venv's python with kazoo, or `None` (skip) outside CI. In CI (`CI=true`) a missing
/// python or kazoo fails the test: interop must never be skipped silently there.
pub fn kazoo_python() -> Option<PathBuf> {
    let venv = std::env::var_os("WARREN_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/warren/venv")))
        .expect("WARREN_VENV or HOME is set");
    let python = venv.join("bin/python");
    let ok = std::process::Command::new(&python)
        .args(["-c", "import kazoo.client, kazoo.recipe.lock"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "kazoo is not importable by {} (set WARREN_VENV or run tests/kazoo/setup-venv.sh); \
         CI must run the kazoo interop tests",
        python.display()
    );
    eprintln!("SKIPPED: no kazoo at {} (not in CI)", python.display());
    None
}

/// A kazoo participant: a Python process running `script` with `KAZOO_HOSTS` set, driven
/// line by line over stdin/stdout.
pub struct Kazoo {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

/// Lines every kazoo script starts with: a started client `zk` on `$KAZOO_HOSTS`, and
/// `say(...)` (print and flush) and `wait(word)` (block until stdin says it).
pub const KAZOO_PRELUDE: &str = r#"
import os, sys, logging
logging.basicConfig(level=logging.ERROR)
from kazoo.client import KazooClient
zk = KazooClient(hosts=os.environ["KAZOO_HOSTS"], timeout=10.0)
zk.start(timeout=30)
def say(*a):
    print(*a, flush=True)
def wait(word):
    line = sys.stdin.readline().strip()
    assert line == word, "expected %r, got %r" % (word, line)
"#;

impl Kazoo {
    /// Starts `script` (after [`KAZOO_PRELUDE`]) against `hosts`.
    pub fn spawn(python: &Path, hosts: &str, script: &str) -> Kazoo {
        let code = format!("{KAZOO_PRELUDE}\n{script}\nzk.stop()\nzk.close()\n");
        let mut child = Command::new(python)
            .args(["-u", "-c", &code])
            .env("KAZOO_HOSTS", hosts)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python starts");
        let stdin = child.stdin.take().expect("stdin piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
        Kazoo {
            child,
            stdin,
            stdout,
        }
    }

    /// The next line the script says (bounded); fails if it ended.
    pub async fn line(&mut self) -> String {
        bounded("a line from kazoo", self.stdout.next_line())
            .await
            .expect("reads kazoo's stdout")
            .expect("kazoo script ended early (see its stderr above)")
    }

    /// Waits for the script to say exactly `want`.
    pub async fn expect(&mut self, want: &str) {
        let got = self.line().await;
        assert_eq!(got, want, "kazoo said {got:?}, expected {want:?}");
    }

    /// Tells the script `word`.
    pub async fn send(&mut self, word: &str) {
        self.stdin
            .write_all(format!("{word}\n").as_bytes())
            .await
            .expect("writes kazoo's stdin");
        self.stdin.flush().await.expect("flushes kazoo's stdin");
    }

    /// Waits for the script to exit successfully.
    pub async fn finish(mut self) {
        let status = bounded("kazoo to exit", self.child.wait())
            .await
            .expect("waits");
        assert!(status.success(), "kazoo script failed: {status}");
    }
}
