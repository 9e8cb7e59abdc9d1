//! The nemesis: a seeded plan of faults, and its execution against the servers and the
//! network.
//!
//! [`plan`] turns a seed into a list of [`Step`]s (a quiet gap, a fault, how long it
//! holds), so a seed names the schedule; targets that depend on the run (the leader) are
//! symbolic and resolved when the step runs (`srvr`'s `Mode:` line). Faults run one at a
//! time and each is undone after its hold: a killed server is restarted, a paused one
//! continued, DROP rules flushed. After the last step everything is healed (every server
//! running and serving, no rule left), whatever happened before.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::history::{Recorder, Time};
use crate::net::Network;
use crate::rng::Rng;

/// Which server a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A fixed server (index).
    Server(usize),
    /// The current leader (found with `srvr`); a standalone server is its own leader.
    Leader,
}

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL, then restart after the hold.
    Kill(Target),
    /// SIGSTOP, then SIGCONT after the hold.
    Pause(Target),
    /// Drop all traffic between the clients and one server.
    IsolateClients(Target),
    /// Split the servers: the `minority` servers starting at index `first` (wrapping) are
    /// cut off from the rest.
    Partition {
        /// First server of the minority side.
        first: usize,
        /// How many servers are on the minority side.
        minority: usize,
    },
    /// Cut the leader off from every other server (clients still reach it).
    IsolateLeader,
}

/// One step of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Quiet time before the fault.
    pub gap: Duration,
    /// The fault.
    pub fault: Fault,
    /// How long it holds before it is undone.
    pub hold: Duration,
}

/// The schedule for `seed`: steps filling about `window`, for `servers` servers. With one
/// server: kills, pauses and client isolation of that server; with more, also partitions,
/// leader isolation and faults aimed at the leader.
pub fn plan(seed: u64, servers: usize, window: Duration) -> Vec<Step> {
    let mut rng = Rng::new(seed);
    let mut steps = Vec::new();
    let mut total = Duration::ZERO;
    let window_ms = window.as_millis() as u64;
    let n = servers.max(1);
    loop {
        let gap = Duration::from_millis(rng.range(800, 2_500));
        let (fault, hold_ms) = if n == 1 {
            match rng.range(0, 2) {
                0 => (Fault::Kill(Target::Server(0)), rng.range(200, 2_000)),
                1 => (Fault::Pause(Target::Server(0)), rng.range(300, 2_500)),
                _ => (
                    Fault::IsolateClients(Target::Server(0)),
                    rng.range(500, 3_000),
                ),
            }
        } else {
            let any = Target::Server(rng.range(0, n as u64 - 1) as usize);
            match rng.range(0, 6) {
                0 => (Fault::Kill(any), rng.range(300, 4_000)),
                1 => (Fault::Kill(Target::Leader), rng.range(300, 4_000)),
                2 => (Fault::Pause(any), rng.range(300, 3_000)),
                3 => (Fault::Pause(Target::Leader), rng.range(300, 3_000)),
                4 => (Fault::IsolateLeader, rng.range(1_000, 5_000)),
                5 => (
                    Fault::Partition {
                        first: rng.range(0, n as u64 - 1) as usize,
                        minority: ((n - 1) / 2).max(1),
                    },
                    rng.range(1_000, 5_000),
                ),
                _ => (Fault::IsolateClients(any), rng.range(500, 3_000)),
            }
        };
        let hold = Duration::from_millis(hold_ms);
        if (total + gap + hold).as_millis() as u64 > window_ms {
            break;
        }
        total += gap + hold;
        steps.push(Step { gap, fault, hold });
    }
    steps
}

/// A fault as it happened.
#[derive(Debug, Clone)]
pub struct FaultEvent {
    /// When it began, on the history's clock.
    pub at: Time,
    /// When it was undone.
    pub healed_at: Time,
    /// What was done, to which server.
    pub what: String,
}

/// What executing a plan produced.
#[derive(Debug)]
pub struct Execution {
    /// The faults, in order.
    pub events: Vec<FaultEvent>,
    /// Nemesis operations that failed (a failed iptables call, a server that would not
    /// come back): each fails the run.
    pub errors: Vec<String>,
    /// When the final heal completed, on the history's clock.
    pub healed_at: Time,
}

fn resolve(target: Target, cluster: &Cluster) -> usize {
    match target {
        Target::Server(i) => i,
        Target::Leader if cluster.len() == 1 => 0,
        // No single leader now (an election is running): hit server 0, deterministically.
        Target::Leader => cluster.leader().unwrap_or(0),
    }
}

/// Sleeps `d` in short slices, returning early when `stop` is set.
fn nap(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Applies `fault`; returns what was done, and the servers whose rules/processes need
/// undoing are implied by the fault (see [`undo`]).
fn apply(fault: Fault, cluster: &mut Cluster, net: &Network) -> Result<(String, usize), String> {
    match fault {
        Fault::Kill(t) => {
            let i = resolve(t, cluster);
            cluster.kill(i)?;
            Ok((format!("kill -9 {}{}", cluster.name(i), leader_note(t)), i))
        }
        Fault::Pause(t) => {
            let i = resolve(t, cluster);
            cluster.pause(i)?;
            Ok((
                format!("pause (SIGSTOP) {}{}", cluster.name(i), leader_note(t)),
                i,
            ))
        }
        Fault::IsolateClients(t) => {
            let i = resolve(t, cluster);
            net.cut_client(i)?;
            Ok((format!("cut clients from {}", cluster.name(i)), i))
        }
        Fault::Partition { first, minority } => {
            let n = cluster.len();
            let small: Vec<usize> = (0..minority).map(|k| (first + k) % n).collect();
            for &a in &small {
                for b in (0..n).filter(|b| !small.contains(b)) {
                    net.cut_between(a, b)?;
                }
            }
            let names: Vec<String> = small.iter().map(|&i| cluster.name(i)).collect();
            Ok((
                format!("partition {{{}}} from the rest", names.join(",")),
                first,
            ))
        }
        Fault::IsolateLeader => {
            let i = resolve(Target::Leader, cluster);
            for b in (0..cluster.len()).filter(|&b| b != i) {
                net.cut_between(i, b)?;
            }
            Ok((
                format!("isolate leader {} from the other servers", cluster.name(i)),
                i,
            ))
        }
    }
}

fn leader_note(t: Target) -> &'static str {
    if t == Target::Leader { " (leader)" } else { "" }
}

/// Undoes `fault` applied to server `i`.
fn undo(fault: Fault, i: usize, cluster: &mut Cluster, net: &Network) -> Result<(), String> {
    match fault {
        Fault::Kill(_) => {
            cluster.start(i)?;
            cluster.wait_ready(i).map(|_| ())
        }
        Fault::Pause(_) => cluster.resume(i),
        Fault::IsolateClients(_) | Fault::Partition { .. } | Fault::IsolateLeader => net.heal(),
    }
}

/// Runs `steps` against the servers until done or `stop`, then heals everything. Prints
/// each fault as it happens.
pub fn execute(
    steps: &[Step],
    cluster: &mut Cluster,
    net: &Network,
    clock: &Recorder,
    stop: &Arc<AtomicBool>,
) -> Execution {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for step in steps {
        nap(step.gap, stop);
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let at = clock.now();
        match apply(step.fault, cluster, net) {
            Ok((what, i)) => {
                println!("nemesis {:>7.2}s  {what} for {:?}", secs(at), step.hold);
                nap(step.hold, stop);
                if let Err(e) = undo(step.fault, i, cluster, net) {
                    errors.push(format!("undoing `{what}`: {e}"));
                }
                events.push(FaultEvent {
                    at,
                    healed_at: clock.now(),
                    what,
                });
            }
            Err(e) => errors.push(format!("applying {:?}: {e}", step.fault)),
        }
    }
    if let Err(e) = net.heal() {
        errors.push(format!("final heal of the network: {e}"));
    }
    if let Err(e) = cluster.heal() {
        errors.push(format!("final heal of the servers: {e}"));
    }
    let healed_at = clock.now();
    println!(
        "nemesis {:>7.2}s  healed: every server serving, no rule left",
        secs(healed_at)
    );
    Execution {
        events,
        errors,
        healed_at,
    }
}

/// Nanoseconds of the history clock as seconds.
pub fn secs(t: Time) -> f64 {
    t as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_names_one_schedule_within_its_window() {
        let window = Duration::from_secs(40);
        let a = plan(42, 3, window);
        assert_eq!(a, plan(42, 3, window));
        assert_ne!(a, plan(43, 3, window));
        assert!(!a.is_empty());
        let total: Duration = a.iter().map(|s| s.gap + s.hold).sum();
        assert!(total <= window);
    }

    #[test]
    fn one_server_plans_only_hit_that_server_and_the_clients() {
        for seed in 0..50 {
            for step in plan(seed, 1, Duration::from_secs(30)) {
                assert!(matches!(
                    step.fault,
                    Fault::Kill(Target::Server(0))
                        | Fault::Pause(Target::Server(0))
                        | Fault::IsolateClients(Target::Server(0))
                ));
            }
        }
    }

    #[test]
    fn three_server_plans_include_every_fault_kind() {
        let steps: Vec<Step> = (0..20)
            .flat_map(|seed| plan(seed, 3, Duration::from_secs(60)))
            .collect();
        let has = |f: &dyn Fn(&Fault) -> bool| steps.iter().any(|s| f(&s.fault));
        assert!(has(&|f| matches!(f, Fault::Kill(Target::Leader))));
        assert!(has(&|f| matches!(f, Fault::Pause(_))));
        assert!(has(&|f| matches!(f, Fault::IsolateLeader)));
        assert!(has(&|f| matches!(f, Fault::Partition { minority: 1, .. })));
        assert!(has(&|f| matches!(f, Fault::IsolateClients(_))));
    }
}
