//! Running the real `warren` binary from integration tests.
//!
//! [`ServerProcess`] starts `warren server` with its output in a file, waits for its port with
//! a bound, stops it with SIGKILL or SIGTERM, and kills it in `Drop`, so no server outlives a
//! test, a panicking one included. Every wait here has a deadline.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The binary under test, built by cargo for this test run.
pub const WARREN: &str = env!("CARGO_BIN_EXE_warren");

/// How long a server may take to answer on its port after it is spawned.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a server may take to exit after a signal, or to fail at start-up.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// A port that was free a moment ago: bind `127.0.0.1:0`, read the port, release it.
///
/// Never 2181, which real clients' tests expect to be free (the OS never hands out a port
/// below its ephemeral range, and 2181 is far below it).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    assert_ne!(port, 2181, "the OS handed out ZooKeeper's default port");
    port
}

/// A `warren` child process whose stdout and stderr go to `log_path`.
pub struct ServerProcess {
    child: Child,
    /// Where the child's stdout and stderr are written.
    pub log_path: PathBuf,
    /// The client port it was told to use (0 if unknown).
    pub port: u16,
}

impl ServerProcess {
    /// Spawns `warren <args>` in `cwd`, output appended to `log_path`.
    pub fn spawn(args: &[&str], cwd: &Path, log_path: &Path, port: u16) -> ServerProcess {
        let log = File::options()
            .create(true)
            .append(true)
            .open(log_path)
            .expect("open the server's log file");
        let err = log.try_clone().expect("clone the log file handle");
        let child = Command::new(WARREN)
            .args(args)
            .current_dir(cwd)
            .env("NO_COLOR", "1")
            .env_remove("WARREN_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn the warren binary");
        ServerProcess {
            child,
            log_path: log_path.to_path_buf(),
            port,
        }
    }

    /// Spawns `warren server --client-port <port> --data-dir <data_dir> <extra>`.
    pub fn server(data_dir: &Path, port: u16, log_path: &Path, extra: &[&str]) -> ServerProcess {
        let port_arg = port.to_string();
        let data_arg = data_dir.to_str().expect("utf-8 temp path");
        let mut args = vec!["server", "--client-port", &port_arg, "--data-dir", data_arg];
        args.extend_from_slice(extra);
        let cwd = data_dir.parent().unwrap_or(Path::new("/"));
        ServerProcess::spawn(&args, cwd, log_path, port)
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The ZooKeeper connect string of this server.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits until the server answers the `srvr` four-letter word (always enabled), or panics
    /// with its log if it exits or does not answer within [`READY_TIMEOUT`].
    pub fn wait_ready(&mut self) -> Duration {
        self.wait_ready_or_exit().unwrap_or_else(|status| {
            panic!(
                "warren exited with {status} before answering on port {}; its log:\n{}",
                self.port,
                self.log()
            )
        })
    }

    /// Waits until the server answers `srvr` (`Ok`, how long it took) or exits (`Err`, its
    /// status); panics with its log if neither happens within [`READY_TIMEOUT`].
    pub fn wait_ready_or_exit(&mut self) -> Result<Duration, ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_status() {
                return Err(status);
            }
            if let Ok(reply) = four_letter_word(self.port, "srvr")
                && reply.contains("Mode:")
            {
                return Ok(start.elapsed());
            }
            assert!(
                start.elapsed() < READY_TIMEOUT,
                "warren did not answer `srvr` on port {} within {READY_TIMEOUT:?}; its log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// For a server started with `--client-port 0`: waits for its `serving local_addr=<addr>`
    /// log line and returns that address, the port the OS picked included; sets `self.port`.
    pub fn wait_serving_addr(&mut self) -> SocketAddr {
        let start = Instant::now();
        loop {
            let log = self.log();
            let found = log.lines().find_map(|l| {
                let rest = &l[l.find("serving local_addr=")? + "serving local_addr=".len()..];
                rest.split_whitespace().next()?.parse::<SocketAddr>().ok()
            });
            if let Some(addr) = found {
                self.port = addr.port();
                return addr;
            }
            if let Some(status) = self.try_status() {
                panic!("warren exited with {status} before serving; its log:\n{log}");
            }
            assert!(
                start.elapsed() < READY_TIMEOUT,
                "warren logged no `serving local_addr=` within {READY_TIMEOUT:?}; its log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The exit status if the child has exited, without waiting.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits up to `limit` for the child to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if start.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILLs the child and reaps it; panics if it had already exited by itself.
    pub fn kill_9(&mut self) {
        if let Some(status) = self.try_status() {
            panic!(
                "warren exited by itself with {status} before the planned kill; its log:\n{}",
                self.log()
            );
        }
        self.child.kill().expect("SIGKILL warren");
        let status = self
            .wait_exit(EXIT_TIMEOUT)
            .expect("warren still running after SIGKILL");
        assert_eq!(status.signal(), Some(9), "warren's status after SIGKILL");
    }

    /// Sends SIGTERM (with the `kill` utility: the workspace forbids `unsafe`, so no libc).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(
            status.success(),
            "kill -TERM {} failed: {status}",
            self.pid()
        );
    }

    /// Sends SIGTERM and waits for a clean exit (status 0) within [`EXIT_TIMEOUT`]; returns
    /// how long it took.
    pub fn stop_gracefully(&mut self) -> Duration {
        let start = Instant::now();
        self.terminate();
        let status = self.wait_exit(EXIT_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "warren still running {EXIT_TIMEOUT:?} after SIGTERM; its log:\n{}",
                self.log()
            )
        });
        assert!(
            status.success(),
            "warren exited with {status} after SIGTERM; its log:\n{}",
            self.log()
        );
        start.elapsed()
    }

    /// Everything the child wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // SIGKILL by pid even on panic, so no server outlives the test; an already reaped
        // child makes `kill` fail harmlessly.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends a four-letter word to `127.0.0.1:port` and reads the reply to EOF, bounded by 2 s.
pub fn four_letter_word(port: u16, word: &str) -> std::io::Result<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(word.as_bytes())?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// Lines of a server log that speak of damage or a crash of the server itself: corruption,
/// panics, error-level traces. A cut torn tail is a warning, not damage, and is not listed.
pub fn damage_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            lower.contains("corrupt") || lower.contains("panicked") || l.contains(" ERROR ")
        })
        .collect()
}

/// How many times a server log reports cutting a torn log tail at recovery.
pub fn torn_tail_cuts(log: &str) -> usize {
    log.lines().filter(|l| l.contains("torn tail")).count()
}
