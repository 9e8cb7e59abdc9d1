//! Test support: an in-process warren server on a free port, and the real `warren` binary
//! run against it with a clean environment.
//!
//! The binary is `$WARREN_BIN` if set, else `warren` beside this test's `deps/` directory,
//! where `cargo test --workspace` and `cargo nextest run --workspace` (as `make verify`)
//! build it. Run `cargo build -p warren` first when testing this crate alone.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use warren_server::config::{ConfigOverrides, ServerConfig};
use warren_server::server::Server;

/// How long a line from a child process may take to arrive.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(20);

/// A server on its own runtime, stopped on drop, with a scratch directory for the CLI's
/// home and files.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    server: Option<Server>,
    rt: tokio::runtime::Runtime,
}

impl TestServer {
    /// Starts a server with every 4lw enabled, TTL nodes allowed, and `extra` settings.
    pub fn start(extra: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut properties = vec![
            ("4lw.commands.whitelist".to_owned(), "*".to_owned()),
            ("tickTime".to_owned(), "50".to_owned()),
            ("extendedTypesEnabled".to_owned(), "true".to_owned()),
        ];
        properties.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let cfg = ServerConfig::load(ConfigOverrides {
            client_port: Some(0),
            client_port_address: Some("127.0.0.1".to_owned()),
            data_dir: Some(dir.path().join("data")),
            properties,
            ..ConfigOverrides::default()
        })
        .expect("test config is valid")
        .0;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(Server::start(cfg)).expect("server starts");
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        TestServer {
            addr: server.local_addr(),
            dir,
            server: Some(server),
            rt,
        }
    }

    /// A path in the scratch directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `warren ARGS` against this server, without stdin.
    pub fn warren(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).stdin(Stdio::null()).output().unwrap())
    }

    /// `warren ARGS` with `input` on stdin.
    pub fn warren_stdin(&self, args: &[&str], input: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        Run::from(child.wait_with_output().unwrap())
    }

    /// The command for `warren ARGS` against this server: `WARREN_SERVER` set, every other
    /// `WARREN_*` variable removed, `HOME` in the scratch directory (no config file).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(warren_bin());
        cmd.args(args)
            .env_remove("WARREN_AUTH")
            .env_remove("WARREN_CONFIG")
            .env_remove("WARREN_LOG")
            .env_remove("XDG_CONFIG_HOME")
            .env("HOME", self.dir.path().join("home"))
            .env("WARREN_SERVER", self.addr.to_string())
            .current_dir(self.dir.path());
        cmd
    }

    /// Sends a four-letter word.
    pub fn four_letter_word(&self, word: &str) -> String {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(word.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown(Duration::from_millis(200)));
        }
    }
}

/// The `warren` binary under test.
pub fn warren_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("WARREN_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap();
    let dir = if dir.ends_with("deps") {
        dir.parent().unwrap()
    } else {
        dir
    };
    let bin = dir.join("warren");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p warren` (or set WARREN_BIN)",
        bin.display()
    );
    bin
}

/// A finished run: exit code, stdout, stderr.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub raw_stdout: Vec<u8>,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            raw_stdout: o.stdout,
        }
    }
}

impl Run {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        &self.stdout
    }

    /// Asserts failure with `code` and a stderr line `warren: <message>`.
    #[track_caller]
    pub fn fails(&self, code: i32, message: &str) {
        assert_eq!(self.code, code, "exit code: {self:?}");
        let expected = format!("warren: {message}");
        assert!(
            self.stderr.lines().any(|l| l == expected),
            "expected stderr line {expected:?}: {self:?}"
        );
    }
}

/// A child process whose output lines arrive on channels; killed on drop.
pub struct Spawned {
    pub child: Child,
    pub stdout: mpsc::Receiver<String>,
    pub stderr: mpsc::Receiver<String>,
}

impl Spawned {
    /// Spawns `cmd` with stdout and stderr read line by line.
    pub fn spawn(mut cmd: Command) -> Spawned {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        Spawned {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits for a line on `rx` containing `needle`, returning it.
    #[track_caller]
    pub fn expect_line(rx: &mpsc::Receiver<String>, needle: &str) -> String {
        let deadline = std::time::Instant::now() + LINE_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(e) => panic!("no line containing {needle:?}: {e}"),
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines<R>(r: R) -> mpsc::Receiver<String>
where
    R: std::io::Read + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Writes `bytes` to `path`.
pub fn write_file(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

/// Deterministic pseudo-random bytes (no dependency needed).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
