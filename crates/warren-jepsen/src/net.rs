//! Test hosts: one network namespace per server, joined by a bridge, with the test process
//! (the clients and the nemesis) in the root namespace.
//!
//! ```text
//!  root namespace              <tag>-hub namespace          <tag>-s1 .. <tag>-sN
//!  <tag> 10.77.X.1/24  ──veth──  cli ─┐
//!                                    br0 ── sI ──veth── eth0 10.77.X.(10+I)/24
//! ```
//!
//! `<tag>` is `wj<pid of the test process>`; X is a /24 of 10.77.0.0/16 that no root
//! interface uses yet. The bridge lives in its own namespace so that traffic between
//! servers never crosses the root namespace's firewall (Docker's FORWARD policy is DROP on
//! machines with Docker, and `bridge-nf-call-iptables` would apply it to a root bridge).
//! Every address is one of our own hosts; nothing is routed anywhere else.
//!
//! Partitions are iptables DROP rules inside the servers' namespaces (INPUT from and OUTPUT
//! to the peer), so they vanish with the namespaces and never touch the root firewall;
//! healing flushes those chains. [`Network`]'s `Drop` kills whatever still runs inside its
//! namespaces and deletes them (the veths and rules go with them). A run killed before it
//! could clean up is reaped by the next run ([`reap_stale`]) or by `tests/faults/cleanup.sh`.

use std::net::Ipv4Addr;

use crate::cmd::{run, signal};

/// The prefix of every namespace and root link this module creates.
pub const TAG_PREFIX: &str = "wj";

/// One server host.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its network namespace.
    pub ns: String,
    /// Its address on the bridge.
    pub addr: Ipv4Addr,
}

/// The namespaces, bridge and veths of one run (see the module docs).
#[derive(Debug)]
pub struct Network {
    tag: String,
    hub: String,
    hosts: Vec<Host>,
    client_addr: Ipv4Addr,
    created: Vec<String>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args).map(|_| ())
}

/// A /24 of 10.77.0.0/16 that no interface of the root namespace has an address in.
fn pick_subnet() -> Result<u8, String> {
    let used = run("ip", &["-4", "-o", "addr", "show"])?;
    let start = (std::process::id() % 250) as u8;
    (0..250u8)
        .map(|k| start.wrapping_add(k) % 250 + 1)
        .find(|x| !used.contains(&format!(" 10.77.{x}.")))
        .ok_or_else(|| "every 10.77.X.0/24 is in use".to_string())
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The pid in a name `wj<pid>` or `wj<pid>-...`, if the name is one of ours.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TAG_PREFIX)?;
    let digits = rest.split(['-', '@']).next()?;
    digits.parse().ok()
}

/// Deletes namespaces and root links left by runs whose test process is gone, killing
/// whatever still runs inside those namespaces first.
pub fn reap_stale() {
    if let Ok(list) = run("ip", &["netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if owner_pid(name).is_some_and(|pid| !pid_alive(pid)) {
                kill_inside(name);
                let _ = ip(&["netns", "del", name]);
            }
        }
    }
    if let Ok(links) = run("ip", &["-o", "link", "show"]) {
        for line in links.lines() {
            let Some(name) = line.split(": ").nth(1).and_then(|n| n.split('@').next()) else {
                continue;
            };
            if owner_pid(name).is_some_and(|pid| !pid_alive(pid)) {
                let _ = ip(&["link", "del", name]);
            }
        }
    }
}

/// SIGKILLs every process in namespace `ns` (only ever one of ours), by pid.
fn kill_inside(ns: &str) {
    if let Ok(pids) = run("ip", &["netns", "pids", ns]) {
        for pid in pids.lines().filter_map(|p| p.trim().parse::<u32>().ok()) {
            let _ = signal(pid, "CONT");
            let _ = signal(pid, "KILL");
        }
    }
}

impl Network {
    /// Creates the hub and `servers` hosts. Fails (never skips) when this machine cannot:
    /// the message says which command failed.
    pub fn create(servers: usize) -> Result<Network, String> {
        reap_stale();
        let tag = format!("{TAG_PREFIX}{}", std::process::id());
        let x = pick_subnet()?;
        let mut net = Network {
            hub: format!("{tag}-hub"),
            tag,
            hosts: (0..servers)
                .map(|i| Host {
                    ns: String::new(),
                    addr: Ipv4Addr::new(10, 77, x, 11 + i as u8),
                })
                .collect(),
            client_addr: Ipv4Addr::new(10, 77, x, 1),
            created: Vec::new(),
        };
        // `net` is built before the first command so its Drop cleans a partial setup.
        net.build(x)?;
        Ok(net)
    }

    fn add_ns(&mut self, name: &str) -> Result<(), String> {
        ip(&["netns", "add", name])?;
        self.created.push(name.to_string());
        ip(&["-n", name, "link", "set", "lo", "up"])
    }

    fn build(&mut self, x: u8) -> Result<(), String> {
        let hub = self.hub.clone();
        let tag = self.tag.clone();
        self.add_ns(&hub)?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        ip(&[
            "link", "add", &tag, "type", "veth", "peer", "name", "cli", "netns", &hub,
        ])?;
        ip(&["-n", &hub, "link", "set", "cli", "master", "br0"])?;
        ip(&["-n", &hub, "link", "set", "cli", "up"])?;
        ip(&["addr", "add", &format!("10.77.{x}.1/24"), "dev", &tag])?;
        ip(&["link", "set", &tag, "up"])?;
        for i in 0..self.hosts.len() {
            let ns = format!("{tag}-s{}", i + 1);
            let port = format!("s{}", i + 1);
            self.add_ns(&ns)?;
            ip(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port, "up"])?;
            let addr = format!("{}/24", self.hosts[i].addr);
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            // Prove iptables works in the namespace now, not at the first partition.
            run(
                "ip",
                &["netns", "exec", &ns, "iptables", "-w", "-n", "-L", "INPUT"],
            )?;
            self.hosts[i].ns = ns;
        }
        Ok(())
    }

    /// The server hosts.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The address of the test process (clients and nemesis) on the bridge.
    pub fn client_addr(&self) -> Ipv4Addr {
        self.client_addr
    }

    fn iptables(&self, host: usize, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["netns", "exec", &self.hosts[host].ns, "iptables", "-w"];
        all.extend_from_slice(args);
        run("ip", &all).map(|_| ())
    }

    /// Drops all traffic between server `host` and `peer`, inside the host's namespace.
    pub fn cut(&self, host: usize, peer: Ipv4Addr) -> Result<(), String> {
        let p = peer.to_string();
        self.iptables(host, &["-A", "INPUT", "-s", &p, "-j", "DROP"])?;
        self.iptables(host, &["-A", "OUTPUT", "-d", &p, "-j", "DROP"])
    }

    /// Cuts server `host` off from the clients (and the nemesis's four-letter words).
    pub fn cut_client(&self, host: usize) -> Result<(), String> {
        self.cut(host, self.client_addr)
    }

    /// Cuts servers `a` and `b` apart, both ways.
    pub fn cut_between(&self, a: usize, b: usize) -> Result<(), String> {
        self.cut(a, self.hosts[b].addr)?;
        self.cut(b, self.hosts[a].addr)
    }

    /// Removes every DROP rule: flushes INPUT and OUTPUT in every server namespace.
    pub fn heal(&self) -> Result<(), String> {
        for host in 0..self.hosts.len() {
            self.iptables(host, &["-F", "INPUT"])?;
            self.iptables(host, &["-F", "OUTPUT"])?;
        }
        Ok(())
    }

    /// How many DROP rules are in place now, over all hosts.
    pub fn rule_count(&self) -> usize {
        (0..self.hosts.len())
            .filter_map(|h| {
                run(
                    "ip",
                    &["netns", "exec", &self.hosts[h].ns, "iptables", "-w", "-S"],
                )
                .ok()
            })
            .map(|s| {
                s.lines()
                    .filter(|l| l.contains("DROP") && l.starts_with("-A"))
                    .count()
            })
            .sum()
    }

    /// Whether namespace `ns` still exists (for tests of the cleanup).
    pub fn ns_exists(ns: &str) -> bool {
        run("ip", &["netns", "list"])
            .map(|l| {
                l.lines()
                    .any(|line| line.split_whitespace().next() == Some(ns))
            })
            .unwrap_or(false)
    }

    /// The names of every namespace this network created.
    pub fn namespaces(&self) -> Vec<String> {
        self.created.clone()
    }

    /// The root namespace's link name.
    pub fn root_link(&self) -> &str {
        &self.tag
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            kill_inside(ns);
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("warren-jepsen: cleanup: {e}");
            }
        }
        // Deleting the hub took the root veth's peer, and so the root veth, with it.
        let _ = ip(&["link", "del", &self.tag]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pids_are_read_from_our_names_only() {
        assert_eq!(owner_pid("wj123-s1"), Some(123));
        assert_eq!(owner_pid("wj123"), Some(123));
        assert_eq!(owner_pid("wj123@if4"), Some(123));
        assert_eq!(owner_pid("docker0"), None);
        assert_eq!(owner_pid("wjx-s1"), None);
    }
}
