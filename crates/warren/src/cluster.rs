//! `warren cluster --servers N`: a local ensemble in one command.
//!
//! Each server is a separate `warren server` process of this same binary, with its own data
//! directory, client port, peer port and election port, configured by a ZooKeeper zoo.cfg
//! (`server.N` lines and a `myid` file) written under `--dir`. The command prints the connect
//! string, waits until every server answers `ruok`, and stops the servers gracefully
//! (SIGTERM, then SIGKILL after a grace period) on Ctrl-C or SIGTERM. A server that dies on
//! its own is reported and left dead, so that failover can be tried by killing one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Arguments of `warren cluster`.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// Number of servers (3 or 5 for a fault-tolerant ensemble).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub servers: u8,
    /// Directory for the servers' configs, data and logs.
    #[arg(long, default_value = "warren-cluster")]
    pub dir: PathBuf,
    /// Address every server listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Client port of server 1; server N uses this + N - 1.
    #[arg(long, default_value_t = 2181)]
    pub client_port: u16,
    /// Peer (Raft) port of server 1; server N uses this + N - 1.
    #[arg(long, default_value_t = 2888)]
    pub peer_port: u16,
    /// Election port of server 1 (kept for ZooKeeper's config format); server N uses this + N - 1.
    #[arg(long, default_value_t = 3888)]
    pub election_port: u16,
    /// Extra `key=value` settings for every server (repeatable), as `warren server --set`.
    #[arg(long = "set", short = 'D', value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
}

/// One server of the local ensemble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Server id (1-based).
    pub id: u8,
    /// Client port.
    pub client_port: u16,
    /// Peer port.
    pub peer_port: u16,
    /// Election port.
    pub election_port: u16,
}

/// The members of an ensemble laid out from `args`.
pub fn members(args: &ClusterArgs) -> Vec<Member> {
    (1..=args.servers)
        .map(|id| {
            let k = u16::from(id - 1);
            Member {
                id,
                client_port: args.client_port + k,
                peer_port: args.peer_port + k,
                election_port: args.election_port + k,
            }
        })
        .collect()
}

/// ZooKeeper's zoo.cfg for `me`, listing every member.
pub fn zoo_cfg(args: &ClusterArgs, me: &Member, data_dir: &Path) -> String {
    let mut cfg = format!(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
         clientPortAddress={}\n4lw.commands.whitelist=*\n",
        data_dir.display(),
        me.client_port,
        args.host
    );
    for m in members(args) {
        cfg += &format!(
            "server.{}={}:{}:{};{}:{}\n",
            m.id, args.host, m.peer_port, m.election_port, args.host, m.client_port
        );
    }
    for p in &args.properties {
        cfg += p;
        cfg.push('\n');
    }
    cfg
}

/// The client connect string of the ensemble.
pub fn connect_string(args: &ClusterArgs) -> String {
    members(args)
        .iter()
        .map(|m| format!("{}:{}", args.host, m.client_port))
        .collect::<Vec<_>>()
        .join(",")
}

struct Running {
    member: Member,
    child: Option<Child>,
    log: PathBuf,
}

/// Runs the ensemble until Ctrl-C or SIGTERM.
pub fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding this program's path")?;
    let mut servers = Vec::new();
    for m in members(&args) {
        servers.push(spawn(&exe, &args, m)?);
    }
    println!(
        "warren cluster: {} servers under {}",
        servers.len(),
        args.dir.display()
    );
    println!("connect string: {}", connect_string(&args));
    let result = supervise(&args, &mut servers);
    stop_all(&mut servers);
    result
}

fn spawn(exe: &Path, args: &ClusterArgs, m: Member) -> anyhow::Result<Running> {
    let home = args.dir.join(format!("server{}", m.id));
    let data = home.join("data");
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let data = data.canonicalize()?;
    std::fs::write(data.join("myid"), format!("{}\n", m.id))?;
    let cfg = home.join("zoo.cfg");
    std::fs::write(&cfg, zoo_cfg(args, &m, &data))?;
    let log = home.join("server.log");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    let child = Command::new(exe)
        .arg("server")
        .arg("--config")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("starting server {}", m.id))?;
    Ok(Running {
        member: m,
        child: Some(child),
        log,
    })
}

fn supervise(args: &ClusterArgs, servers: &mut [Running]) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut announced = false;
    let started = Instant::now();
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return anyhow::Ok(()),
                _ = term.recv() => return anyhow::Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            for s in servers.iter_mut() {
                let exited = s.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
                if let Some(status) = exited {
                    println!(
                        "server {} exited ({status}); its log: {}",
                        s.member.id,
                        s.log.display()
                    );
                    s.child = None;
                }
            }
            if !announced
                && servers
                    .iter()
                    .all(|s| ruok(&args.host, s.member.client_port))
            {
                announced = true;
                println!(
                    "all servers answer ruok after {:?}; Ctrl-C stops them",
                    started.elapsed()
                );
            }
        }
    })
}

/// True if the server on `port` answers `ruok` with `imok`.
pub fn ruok(host: &str, port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect((host, port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut out = String::new();
    s.write_all(b"ruok").is_ok() && s.read_to_string(&mut out).is_ok() && out == "imok"
}

fn stop_all(servers: &mut [Running]) {
    for s in servers.iter() {
        if let Some(c) = &s.child {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for s in servers.iter_mut() {
        let Some(child) = s.child.as_mut() else {
            continue;
        };
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
            let _ = child.wait();
        }
        println!("server {} stopped", s.member.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(n: u8) -> ClusterArgs {
        ClusterArgs {
            servers: n,
            dir: "d".into(),
            host: "127.0.0.1".into(),
            client_port: 2181,
            peer_port: 2888,
            election_port: 3888,
            properties: vec!["snapCount=1000".into()],
        }
    }

    #[test]
    fn members_get_consecutive_ports_and_the_config_lists_them_all() {
        let a = args(3);
        let m = members(&a);
        assert_eq!(
            m[2],
            Member {
                id: 3,
                client_port: 2183,
                peer_port: 2890,
                election_port: 3890
            }
        );
        let cfg = zoo_cfg(&a, &m[1], Path::new("/data/2"));
        assert!(cfg.contains("clientPort=2182\n"));
        assert!(cfg.contains("server.1=127.0.0.1:2888:3888;127.0.0.1:2181\n"));
        assert!(cfg.contains("server.3=127.0.0.1:2890:3890;127.0.0.1:2183\n"));
        assert!(cfg.ends_with("snapCount=1000\n"));
        assert_eq!(
            connect_string(&a),
            "127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183"
        );
    }
}
