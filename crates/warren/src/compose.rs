//! `warren compose --servers N`: a docker-compose file for an N-server ensemble.
//!
//! It writes, under `--dir`:
//!
//! - `docker-compose.yml` (file format 2.4, which both Debian's docker-compose 1.29 and
//!   Compose v2 read): one service `warrenK` per server, on the project's default network,
//!   running the image built by `docker/build-image.sh` (a static binary `FROM scratch`);
//! - `serverK/zoo.cfg`, mounted read-only at `/conf/zoo.cfg`: ZooKeeper's format, with
//!   `server.K=warrenK:2888:3888;2181` lines (peers find each other by service name, through
//!   Docker's embedded DNS) and `dataDir=/data`;
//! - `serverK/data/myid`, the host directory mounted at `/data`. The data lives on the host,
//!   so it survives `docker-compose down -v` and can be read there, and each container runs
//!   as the owner of that directory (`user:`), so the files stay the user's and need no root
//!   to delete.
//!
//! Each server's client port 2181 is published on the host (`--publish-address`, default
//! 127.0.0.1) at `--client-port-base + K - 1`, or at ports that are free when the command
//! runs. A healthcheck runs `warren healthcheck` inside the container (there is no shell in
//! a `FROM scratch` image, so the binary probes itself).

use std::fmt::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;

/// The client port every server listens on inside its container.
pub const CONTAINER_CLIENT_PORT: u16 = 2181;
/// The peer (Raft) port inside the containers.
pub const CONTAINER_PEER_PORT: u16 = 2888;
/// ZooKeeper's election port, kept for the config format (Raft elects over the peer port).
pub const CONTAINER_ELECTION_PORT: u16 = 3888;

/// Arguments of `warren compose`.
#[derive(Args, Debug, Clone)]
pub struct ComposeArgs {
    /// Number of servers: odd (1, 3, 5, ...) for a majority that survives failures.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub servers: u8,
    /// Directory for docker-compose.yml and each server's config and data.
    #[arg(long, default_value = "warren-compose")]
    pub dir: PathBuf,
    /// The image to run (build it with `docker/build-image.sh TAG`).
    #[arg(long, default_value = "warren:latest")]
    pub image: String,
    /// Host port for server 1's client port; server K gets this + K - 1. Without it, ports
    /// free on this host now are chosen.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub client_port_base: Option<u16>,
    /// Host address the client ports are published on.
    #[arg(long, default_value = "127.0.0.1")]
    pub publish_address: String,
    /// Overwrite the compose file and configs of an existing directory (data is kept).
    #[arg(long)]
    pub force: bool,
    /// Extra `key=value` settings for every server's zoo.cfg (repeatable).
    #[arg(long = "set", short = 'D', value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
}

/// One server of the compose ensemble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Server id (1-based); its service and host name is `warren<id>`.
    pub id: u8,
    /// The host port its client port is published on.
    pub host_port: u16,
}

impl Member {
    /// The compose service name, which is also the host name peers use.
    pub fn service(&self) -> String {
        format!("warren{}", self.id)
    }
}

/// What `warren compose` wrote.
#[derive(Debug)]
pub struct Written {
    /// The members, in id order.
    pub members: Vec<Member>,
    /// The compose file.
    pub compose_file: PathBuf,
    /// The client connect string on the host.
    pub connect_string: String,
}

/// Writes the ensemble's files and prints how to build the image and start it.
pub fn run(args: ComposeArgs) -> anyhow::Result<()> {
    let written = write(&args)?;
    let file = written.compose_file.display();
    println!(
        "wrote {file} and {} server directories under {}",
        written.members.len(),
        args.dir.display()
    );
    println!("connect string: {}", written.connect_string);
    println!("build the image once (in warren's source tree):");
    println!(
        "                       docker/build-image.sh {}",
        args.image
    );
    println!("start:                 docker-compose -f {file} up -d");
    println!("watch health:          docker-compose -f {file} ps");
    println!("stop (data is kept):   docker-compose -f {file} down -v");
    println!("(`docker compose` (v2) takes the same file and arguments)");
    Ok(())
}

/// Writes `docker-compose.yml` and every `serverK/{zoo.cfg,data/myid}` under `args.dir`.
pub fn write(args: &ComposeArgs) -> anyhow::Result<Written> {
    validate(args)?;
    let compose_file = args.dir.join("docker-compose.yml");
    if compose_file.exists() && !args.force {
        bail!(
            "{} already exists: pass --force to rewrite it (data directories are kept) or \
             choose another --dir",
            compose_file.display()
        );
    }
    let members = members(args)?;
    let mut owner = None;
    for m in &members {
        let home = args.dir.join(format!("server{}", m.id));
        let data = home.join("data");
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let meta = std::fs::metadata(&data).with_context(|| format!("{}", data.display()))?;
        owner.get_or_insert((meta.uid(), meta.gid()));
        write_file(&data.join("myid"), &format!("{}\n", m.id))?;
        write_file(&home.join("zoo.cfg"), &zoo_cfg(args, m))?;
    }
    let owner = owner.expect("validate checked that there is at least one server");
    write_file(&compose_file, &compose_yaml(args, &members, owner))?;
    let connect_string = members
        .iter()
        .map(|m| host_port_string(&args.publish_address, m.host_port))
        .collect::<Vec<_>>()
        .join(",");
    Ok(Written {
        members,
        compose_file,
        connect_string,
    })
}

fn validate(args: &ComposeArgs) -> anyhow::Result<()> {
    if args.servers == 0 {
        bail!("--servers must be at least 1");
    }
    if args.servers.is_multiple_of(2) {
        // ZooKeeper's own advice: an even ensemble tolerates no more failures than the odd
        // one below it, and needs a larger majority.
        eprintln!(
            "warning: {} servers tolerate as many failures as {}; an odd number is better",
            args.servers,
            args.servers - 1
        );
    }
    if args.image.trim().is_empty() || args.image.chars().any(char::is_whitespace) {
        bail!(
            "--image {:?}: expected an image reference such as warren:latest",
            args.image
        );
    }
    if args.publish_address.parse::<std::net::IpAddr>().is_err() {
        bail!(
            "--publish-address {:?}: expected an IP address such as 127.0.0.1",
            args.publish_address
        );
    }
    for p in &args.properties {
        let Some((k, _)) = p.split_once('=') else {
            bail!("--set {p}: expected KEY=VALUE");
        };
        let k = k.trim();
        if k.starts_with("server.") || ["dataDir", "clientPort", "dataLogDir"].contains(&k) {
            bail!("--set {p}: warren compose writes {k} itself");
        }
    }
    Ok(())
}

/// The members with their host ports: consecutive from the base, or free ones.
pub fn members(args: &ComposeArgs) -> anyhow::Result<Vec<Member>> {
    let ports: Vec<u16> = match args.client_port_base {
        Some(base) => {
            let last = u32::from(base) + u32::from(args.servers) - 1;
            if last > u32::from(u16::MAX) {
                bail!(
                    "--client-port-base {base}: {} servers need ports up to {last}",
                    args.servers
                );
            }
            (0..u16::from(args.servers)).map(|k| base + k).collect()
        }
        None => free_ports(&args.publish_address, args.servers)?,
    };
    Ok((1..=args.servers)
        .zip(ports)
        .map(|(id, host_port)| Member { id, host_port })
        .collect())
}

/// `n` distinct ports free on `address` now (held open together, so they differ).
fn free_ports(address: &str, n: u8) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((address, 0)))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("finding free ports on {address}"))?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

fn host_port_string(address: &str, port: u16) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// The zoo.cfg of `me`, as the server reads it inside its container.
pub fn zoo_cfg(args: &ComposeArgs, me: &Member) -> String {
    let mut cfg = format!(
        "# warren compose: server {id} of {n}, mounted read-only at /conf/zoo.cfg\n\
         tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/data\nclientPort={CONTAINER_CLIENT_PORT}\n\
         4lw.commands.whitelist=*\n",
        id = me.id,
        n = args.servers
    );
    for id in 1..=args.servers {
        let _ = writeln!(
            cfg,
            "server.{id}=warren{id}:{CONTAINER_PEER_PORT}:{CONTAINER_ELECTION_PORT};{CONTAINER_CLIENT_PORT}"
        );
    }
    for p in &args.properties {
        cfg += p.trim();
        cfg.push('\n');
    }
    cfg
}

/// The compose file. `owner` is the uid and gid the servers run as.
pub fn compose_yaml(args: &ComposeArgs, members: &[Member], owner: (u32, u32)) -> String {
    let mut y = format!(
        "# Written by `warren compose --servers {n}`. Build the image first:\n\
         #   docker/build-image.sh {image}\n\
         # then: docker-compose -f THIS_FILE up -d\n\
         version: \"2.4\"\n\
         services:\n",
        n = args.servers,
        image = args.image
    );
    for m in members {
        let s = m.service();
        let id = m.id;
        let _ = write!(
            y,
            "  {s}:\n\
             \x20   image: {image}\n\
             \x20   hostname: {s}\n\
             \x20   user: \"{uid}:{gid}\"\n\
             \x20   command: [\"server\", \"--config\", \"/conf/zoo.cfg\"]\n\
             \x20   volumes:\n\
             \x20     - ./server{id}/zoo.cfg:/conf/zoo.cfg:ro\n\
             \x20     - ./server{id}/data:/data\n\
             \x20   ports:\n\
             \x20     - \"{publish}:{CONTAINER_CLIENT_PORT}\"\n\
             \x20   healthcheck:\n\
             \x20     test: [\"CMD\", \"/warren\", \"healthcheck\", \"--server\", \"127.0.0.1:{CONTAINER_CLIENT_PORT}\"]\n\
             \x20     interval: 5s\n\
             \x20     timeout: 3s\n\
             \x20     retries: 3\n\
             \x20     start_period: 30s\n\
             \x20   stop_grace_period: 15s\n",
            image = args.image,
            uid = owner.0,
            gid = owner.1,
            publish = host_port_string(&args.publish_address, m.host_port),
        );
    }
    y
}

/// Arguments of `warren healthcheck`.
#[derive(Args, Debug, Clone)]
pub struct HealthArgs {
    /// The server to ask (`host:port`).
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub server: String,
}

/// Exits 0 if the server answers `srvr` with its mode (it is serving: standalone, or in an
/// ensemble with a leader), else fails with what it answered. `srvr` is the one four-letter
/// word ZooKeeper never whitelists away, so this works with any configuration.
pub fn healthcheck(args: HealthArgs) -> anyhow::Result<()> {
    let reply = four_letter_word(&args.server, "srvr")
        .with_context(|| format!("asking {} for srvr", args.server))?;
    match reply.lines().find_map(|l| l.strip_prefix("Mode: ")) {
        Some(mode) => {
            println!("{}: serving, mode {mode}", args.server);
            Ok(())
        }
        None => bail!("{} is not serving: {:?}", args.server, reply.trim()),
    }
}

/// Sends a four-letter word and reads the whole answer, every step bounded.
fn four_letter_word(server: &str, word: &str) -> std::io::Result<String> {
    use std::io::{Read as _, Write as _};
    use std::net::ToSocketAddrs as _;
    let bound = std::time::Duration::from_secs(2);
    let addr = server
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("the address resolves to nothing"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, bound)?;
    stream.set_read_timeout(Some(bound))?;
    stream.set_write_timeout(Some(bound))?;
    stream.write_all(word.as_bytes())?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_server::config::{PeerRole, ServerConfig};

    fn args(n: u8, dir: &Path) -> ComposeArgs {
        ComposeArgs {
            servers: n,
            dir: dir.to_path_buf(),
            image: "warren:test".into(),
            client_port_base: Some(12181),
            publish_address: "127.0.0.1".into(),
            force: false,
            properties: vec!["snapCount=1000".into()],
        }
    }

    #[test]
    fn every_zoo_cfg_is_one_the_server_accepts_and_lists_the_whole_ensemble() {
        let dir = tempfile::tempdir().unwrap();
        let written = write(&args(3, dir.path())).unwrap();
        assert_eq!(
            written.connect_string,
            "127.0.0.1:12181,127.0.0.1:12182,127.0.0.1:12183"
        );
        for id in 1..=3u8 {
            let home = dir.path().join(format!("server{id}"));
            let myid = std::fs::read_to_string(home.join("data/myid")).unwrap();
            assert_eq!(myid, format!("{id}\n"));
            // The server's own parser reads the file as it is inside the container, where the
            // host's data directory is mounted at /data (so the myid file is read too).
            let text = std::fs::read_to_string(home.join("zoo.cfg")).unwrap();
            assert!(text.contains("\ndataDir=/data\n"), "{text}");
            let data = home.join("data");
            let as_mounted = home.join("zoo-as-mounted.cfg");
            let text = text.replace("dataDir=/data", &format!("dataDir={}", data.display()));
            std::fs::write(&as_mounted, text).unwrap();
            let (cfg, warnings) = ServerConfig::from_zoo_cfg(&as_mounted).unwrap();
            assert!(warnings.is_empty(), "{warnings:?}");
            assert_eq!(cfg.my_id, Some(id));
            assert_eq!(cfg.client_port, CONTAINER_CLIENT_PORT);
            let hosts: Vec<_> = cfg
                .servers
                .iter()
                .map(|s| (s.id, s.host.as_str(), s.peer_port, s.role, s.client_port))
                .collect();
            assert_eq!(
                hosts,
                vec![
                    (1, "warren1", 2888, PeerRole::Participant, Some(2181)),
                    (2, "warren2", 2888, PeerRole::Participant, Some(2181)),
                    (3, "warren3", 2888, PeerRole::Participant, Some(2181)),
                ]
            );
        }
    }

    #[test]
    fn the_compose_file_mounts_each_config_read_only_and_publishes_each_client_port() {
        let dir = tempfile::tempdir().unwrap();
        let written = write(&args(3, dir.path())).unwrap();
        let yaml = std::fs::read_to_string(&written.compose_file).unwrap();
        assert!(yaml.contains("version: \"2.4\"\n"));
        for id in 1..=3 {
            assert!(yaml.contains(&format!("  warren{id}:\n    image: warren:test\n")));
            assert!(yaml.contains(&format!("      - ./server{id}/zoo.cfg:/conf/zoo.cfg:ro\n")));
            assert!(yaml.contains(&format!("      - ./server{id}/data:/data\n")));
            assert!(yaml.contains(&format!("      - \"127.0.0.1:1218{id}:2181\"\n")));
        }
        let meta = std::fs::metadata(dir.path().join("server1/data")).unwrap();
        assert!(yaml.contains(&format!("user: \"{}:{}\"", meta.uid(), meta.gid())));
    }

    #[test]
    fn free_ports_are_distinct_and_an_existing_file_needs_force() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(5, dir.path());
        a.client_port_base = None;
        let written = write(&a).unwrap();
        let mut ports: Vec<_> = written.members.iter().map(|m| m.host_port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 5);
        assert!(!ports.contains(&2181));
        let err = write(&a).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        a.force = true;
        write(&a).unwrap();
    }

    #[test]
    fn bad_input_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let refused = |a: ComposeArgs| write(&a).unwrap_err().to_string();
        let mut a = args(3, dir.path());
        a.client_port_base = Some(65534);
        assert!(refused(a).contains("need ports up to 65536"));
        let mut a = args(3, dir.path());
        a.properties = vec!["dataDir=/x".into()];
        assert!(refused(a).contains("writes dataDir itself"));
        let mut a = args(3, dir.path());
        a.properties = vec!["snapCount".into()];
        assert!(refused(a).contains("expected KEY=VALUE"));
        let mut a = args(3, dir.path());
        a.publish_address = "localhost".into();
        assert!(refused(a).contains("expected an IP address"));
        let mut a = args(3, dir.path());
        a.image = "two words".into();
        assert!(refused(a).contains("expected an image reference"));
        assert!(!dir.path().join("docker-compose.yml").exists());
    }
}
