//! Apache ZooKeeper 3.8 from Debian's `zookeeper` package, run as a child process on a free
//! port, standalone (`ZooKeeperServerMain`), and killed by pid when dropped (also while a
//! panic unwinds).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's jar: its manifest's `Class-Path` names every dependency.
const DEBIAN_JAR: &str = "/usr/share/java/zookeeper.jar";

/// Where an unpacked upstream tarball keeps its jars (used when Debian's is absent).
const TARBALL_DIRS: &[&str] = &["/usr/share/zookeeper", "/usr/share/zookeeper/lib"];

/// An SLF4J binding, so that ZooKeeper's log reaches `zookeeper.log` (read on failure).
const LOG_BINDING: &str = "/usr/share/java/slf4j-simple.jar";

/// How long ZooKeeper may take to start serving (a cold JVM on a busy 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(40);

/// The Java classpath of an installed ZooKeeper (`ZOOKEEPER_CLASSPATH` overrides the
/// search), or `None` when neither the package nor `java` is there.
pub fn classpath() -> Option<String> {
    if let Ok(cp) = std::env::var("ZOOKEEPER_CLASSPATH") {
        return Some(cp);
    }
    if !java_available() {
        return None;
    }
    let mut jars: Vec<PathBuf> = Vec::new();
    if Path::new(DEBIAN_JAR).is_file() {
        jars.push(PathBuf::from(DEBIAN_JAR));
    } else {
        for dir in TARBALL_DIRS {
            let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == "jar"))
                .collect();
            found.sort();
            jars.extend(found);
        }
    }
    if jars.is_empty() {
        return None;
    }
    if Path::new(LOG_BINDING).is_file() {
        jars.push(PathBuf::from(LOG_BINDING));
    }
    let parts: Vec<String> = jars.iter().map(|j| j.display().to_string()).collect();
    Some(parts.join(":"))
}

fn java_available() -> bool {
    Command::new(java())
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn java() -> String {
    std::env::var("JAVA").unwrap_or_else(|_| "java".to_owned())
}

/// A running ZooKeeper; killed on drop.
pub struct ZooKeeper {
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl ZooKeeper {
    /// Starts ZooKeeper on a free port with TTL nodes enabled and the container sweep every
    /// `container_check_interval_ms`, and waits until it serves.
    /// Panics (with the tail of its log) if it does not come up.
    pub fn start(classpath: &str, container_check_interval_ms: u128) -> ZooKeeper {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let cfg = dir.path().join("zoo.cfg");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let text = format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             maxClientCnxns=0\n4lw.commands.whitelist=*\nadmin.enableServer=false\n\
             reconfigEnabled=false\n",
            data.display()
        );
        std::fs::write(&cfg, text).unwrap();
        let log = std::fs::File::create(dir.path().join("zookeeper.log")).unwrap();
        let child = Command::new(java())
            .args([
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Djava.awt.headless=true",
                "-Dzookeeper.extendedTypesEnabled=true",
                &format!("-Dznode.container.checkIntervalMs={container_check_interval_ms}"),
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
                "-cp",
                classpath,
                "org.apache.zookeeper.server.ZooKeeperServerMain",
            ])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("java starts");
        let mut zk = ZooKeeper {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            dir,
        };
        zk.wait_until_up();
        zk
    }

    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if serving(self.addr) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "ZooKeeper exited ({status}) before answering:\n{}",
                    self.log_tail()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "ZooKeeper did not start serving within {START_TIMEOUT:?}:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of ZooKeeper's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("zookeeper.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this pid only; the JVM has no children of its own.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (bound to 127.0.0.1:0, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// True when the server at `addr` serves requests. `ruok` is not enough: ZooKeeper answers
/// `imok` as soon as it listens, before its database is loaded, and closes handshakes until
/// then ("ZooKeeperServer not running"); `srvr` reports the mode only once it serves.
fn serving(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"srvr").is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.contains("Mode: standalone")
}
