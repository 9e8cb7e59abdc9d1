//! The servers under test: `warren server` processes, each inside its host's network
//! namespace (`ip netns exec`, which execs, so the child's pid is the server's), started,
//! killed (SIGKILL), paused (SIGSTOP/SIGCONT) and restarted by pid.
//!
//! One server runs standalone (`--client-port`, `--data-dir`); several get a ZooKeeper
//! `zoo.cfg` with `server.N=addr:2888:3888;2181` lines and `--id N` plus a `myid` file, as an
//! existing ZooKeeper deployment would. Every server allows every four-letter word. Each
//! server's output is appended to `<dir>/sN.log` across restarts. `Drop` SIGKILLs every
//! server still running, so none outlives the run, a panicking one included.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::signal;
use crate::net::Network;

/// The client port every server listens on, inside its own namespace.
pub const CLIENT_PORT: u16 = 2181;

/// Sends a four-letter word and reads the answer to EOF, bounded by 2 s per step.
pub fn four_letter_word(addr: SocketAddr, word: &str) -> std::io::Result<String> {
    let t = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, t)?;
    stream.set_read_timeout(Some(t))?;
    stream.set_write_timeout(Some(t))?;
    stream.write_all(word.as_bytes())?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// The `Mode:` of a `srvr` answer (`standalone`, `leader`, `follower`, ...).
pub fn srvr_mode(srvr: &str) -> Option<&str> {
    srvr.lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(str::trim)
}

/// The `Zxid:` of a `srvr` answer.
pub fn srvr_zxid(srvr: &str) -> Option<i64> {
    let hex = srvr.lines().find_map(|l| l.strip_prefix("Zxid: "))?.trim();
    i64::from_str_radix(hex.trim_start_matches("0x"), 16).ok()
}

/// The `(zxid, digest)` lines of a `hash` answer (`<hex zxid>: <digest>`).
pub fn hash_digests(hash: &str) -> Vec<(i64, i64)> {
    hash.lines()
        .filter_map(|l| {
            let (z, d) = l.split_once(':')?;
            Some((
                i64::from_str_radix(z.trim(), 16).ok()?,
                d.trim().parse().ok()?,
            ))
        })
        .collect()
}

/// Options of the servers of a run.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The `warren` binary.
    pub warren: PathBuf,
    /// zoo.cfg `tickTime` (session timeouts are bounded by 2 and 20 ticks).
    pub tick_ms: u32,
    /// How long a (re)started server may take to answer `srvr` with a mode.
    pub ready_timeout: Duration,
}

#[derive(Debug)]
struct Server {
    id: u8,
    ns: String,
    addr: SocketAddr,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
    starts: u32,
}

/// The servers of one run (see the module docs).
#[derive(Debug)]
pub struct Cluster {
    cfg: ClusterConfig,
    servers: Vec<Server>,
    dir: PathBuf,
    /// Servers that exited without being killed, with their status: always a finding.
    pub unexpected_exits: Vec<String>,
}

impl Cluster {
    /// Lays out data directories and configs under `dir` for one server per host of `net`;
    /// starts nothing.
    pub fn new(cfg: ClusterConfig, net: &Network, dir: &Path) -> Result<Cluster, String> {
        let n = net.hosts().len();
        let io = |e: std::io::Error| format!("cluster directory {}: {e}", dir.display());
        let mut servers = Vec::new();
        for (i, host) in net.hosts().iter().enumerate() {
            let id = (i + 1) as u8;
            let data = dir.join(format!("s{id}"));
            std::fs::create_dir_all(&data).map_err(io)?;
            let data_s = data.to_string_lossy().into_owned();
            let mut args: Vec<String> = vec!["server".into()];
            if n == 1 {
                args.extend([
                    "--client-port".into(),
                    CLIENT_PORT.to_string(),
                    "--data-dir".into(),
                    data_s,
                    "--tick-time".into(),
                    cfg.tick_ms.to_string(),
                    "-D".into(),
                    "4lw.commands.whitelist=*".into(),
                ]);
            } else {
                let conf = dir.join(format!("s{id}.cfg"));
                let mut text = format!(
                    "tickTime={}\ninitLimit=10\nsyncLimit=5\ndataDir={data_s}\n\
                     clientPort={CLIENT_PORT}\n4lw.commands.whitelist=*\n",
                    cfg.tick_ms
                );
                for (j, h) in net.hosts().iter().enumerate() {
                    text.push_str(&format!(
                        "server.{}={}:2888:3888;{CLIENT_PORT}\n",
                        j + 1,
                        h.addr
                    ));
                }
                std::fs::write(&conf, text).map_err(io)?;
                std::fs::write(data.join("myid"), format!("{id}\n")).map_err(io)?;
                args.extend([
                    "--config".into(),
                    conf.to_string_lossy().into_owned(),
                    "--id".into(),
                    id.to_string(),
                ]);
            }
            servers.push(Server {
                id,
                ns: host.ns.clone(),
                addr: SocketAddr::from((host.addr, CLIENT_PORT)),
                args,
                log: dir.join(format!("s{id}.log")),
                child: None,
                paused: false,
                starts: 0,
            });
        }
        Ok(Cluster {
            cfg,
            servers,
            dir: dir.to_path_buf(),
            unexpected_exits: Vec::new(),
        })
    }

    /// How many servers.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Server `i`'s name in reports (`s1`, ...).
    pub fn name(&self, i: usize) -> String {
        format!("s{}", self.servers[i].id)
    }

    /// Every server's client address.
    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(|s| s.addr).collect()
    }

    /// Server `i`'s client address.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.servers[i].addr
    }

    /// Where the servers' data and logs are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Spawns server `i` in its namespace (it must not be running).
    pub fn start(&mut self, i: usize) -> Result<(), String> {
        self.note_exit(i);
        let warren = self.cfg.warren.clone();
        let s = &mut self.servers[i];
        assert!(s.child.is_none(), "s{} started twice", s.id);
        s.starts += 1;
        let mut log = File::options()
            .create(true)
            .append(true)
            .open(&s.log)
            .map_err(|e| format!("{}: {e}", s.log.display()))?;
        let _ = writeln!(log, "=== warren-jepsen: start #{} of s{}", s.starts, s.id);
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", &s.ns])
            .arg(&warren)
            .args(&s.args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("spawn s{} in {}: {e}", s.id, s.ns))?;
        s.child = Some(child);
        s.paused = false;
        Ok(())
    }

    /// Waits until server `i` answers `srvr` with a mode (serving), bounded by the ready
    /// timeout; an exit meanwhile is an error with the log's tail.
    pub fn wait_ready(&mut self, i: usize) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            if let Ok(reply) = four_letter_word(self.servers[i].addr, "srvr")
                && srvr_mode(&reply).is_some()
            {
                return Ok(started.elapsed());
            }
            if let Some(status) = self.exited(i) {
                return Err(format!(
                    "{} exited with {status} before serving; log tail:\n{}",
                    self.name(i),
                    self.log_tail(i, 30)
                ));
            }
            if started.elapsed() > self.cfg.ready_timeout {
                return Err(format!(
                    "{} did not serve within {:?}; log tail:\n{}",
                    self.name(i),
                    self.cfg.ready_timeout,
                    self.log_tail(i, 30)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit status if server `i`'s process has exited (it is then reaped).
    fn exited(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        let s = &mut self.servers[i];
        let status = s.child.as_mut()?.try_wait().ok().flatten()?;
        s.child = None;
        Some(status)
    }

    /// Records an exit we did not cause.
    fn note_exit(&mut self, i: usize) {
        if let Some(status) = self.exited(i) {
            let line = format!("{} exited by itself ({status})", self.name(i));
            self.unexpected_exits.push(line);
        }
    }

    /// Whether server `i` runs (paused or not).
    pub fn is_running(&mut self, i: usize) -> bool {
        self.note_exit(i);
        self.servers[i].child.is_some()
    }

    /// SIGKILLs server `i` and reaps it.
    pub fn kill(&mut self, i: usize) -> Result<(), String> {
        self.note_exit(i);
        let s = &mut self.servers[i];
        let Some(mut child) = s.child.take() else {
            return Ok(());
        };
        child
            .kill()
            .map_err(|e| format!("SIGKILL s{}: {e}", s.id))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().map_err(|e| e.to_string())?.is_none() {
            if Instant::now() > deadline {
                return Err(format!("s{} still running 10 s after SIGKILL", s.id));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        s.paused = false;
        Ok(())
    }

    /// SIGSTOPs server `i`.
    pub fn pause(&mut self, i: usize) -> Result<(), String> {
        let s = &mut self.servers[i];
        if let Some(child) = &s.child {
            signal(child.id(), "STOP")?;
            s.paused = true;
        }
        Ok(())
    }

    /// SIGCONTs server `i` if paused.
    pub fn resume(&mut self, i: usize) -> Result<(), String> {
        let s = &mut self.servers[i];
        if let (Some(child), true) = (&s.child, s.paused) {
            signal(child.id(), "CONT")?;
        }
        s.paused = false;
        Ok(())
    }

    /// Resumes paused servers, restarts killed ones and waits for all to serve.
    pub fn heal(&mut self) -> Result<(), String> {
        for i in 0..self.len() {
            self.resume(i)?;
            if !self.is_running(i) {
                self.start(i)?;
            }
        }
        for i in 0..self.len() {
            self.wait_ready(i)?;
        }
        Ok(())
    }

    /// Server `i`'s `srvr` answer, if it answers.
    pub fn srvr(&self, i: usize) -> Option<String> {
        four_letter_word(self.servers[i].addr, "srvr").ok()
    }

    /// The server whose `srvr` says `Mode: leader`, if exactly one does.
    pub fn leader(&self) -> Option<usize> {
        let leaders: Vec<usize> = (0..self.len())
            .filter(|&i| {
                self.srvr(i)
                    .is_some_and(|r| srvr_mode(&r) == Some("leader"))
            })
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// Server `i`'s `hash` digests (empty if it reports none or does not answer).
    pub fn digests(&self, i: usize) -> Vec<(i64, i64)> {
        four_letter_word(self.servers[i].addr, "hash")
            .map(|h| hash_digests(&h))
            .unwrap_or_default()
    }

    /// The last `n` lines of server `i`'s log.
    pub fn log_tail(&self, i: usize, n: usize) -> String {
        let log = std::fs::read_to_string(&self.servers[i].log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Log lines of every server that speak of a crash or damage: panics, corruption,
    /// error-level traces.
    pub fn damage(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.servers {
            let log = std::fs::read_to_string(&s.log).unwrap_or_default();
            for line in log.lines() {
                let lower = line.to_ascii_lowercase();
                if lower.contains("panicked")
                    || lower.contains("corrupt")
                    || line.contains(" ERROR ")
                {
                    out.push(format!("s{}: {line}", s.id));
                }
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for s in &mut self.servers {
            if let Some(mut child) = s.child.take() {
                if s.paused {
                    let _ = signal(child.id(), "CONT");
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_letter_answers_are_parsed() {
        let srvr = "Zookeeper version: 3.9.3\nZxid: 0x1f\nMode: leader\nNode count: 4\n";
        assert_eq!(srvr_mode(srvr), Some("leader"));
        assert_eq!(srvr_zxid(srvr), Some(0x1f));
        assert_eq!(
            hash_digests("1f: 12345\n20: -7\n"),
            vec![(0x1f, 12345), (0x20, -7)]
        );
        assert_eq!(hash_digests(""), vec![]);
    }
}
