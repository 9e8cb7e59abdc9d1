//! `warren demo 2pc`: two-phase commit of a replicated register, its state in warren.
//!
//! N replicas hold a register's value; C coordinator candidates run an [`Election`] at
//! `BASE/election`, and the leader drives rounds. Everything a round needs lives in warren:
//!
//! ```text
//! BASE/replicas/<replica>            ephemeral: the replica is alive
//! BASE/rounds/<round, 10 digits>     {"round", "value", "participants", "phase": voting|decided,
//!                                      "decision": commit|abort, "reason", "started_by", "decided_by"}
//! BASE/rounds/<round>/votes/<replica>  "commit" or "abort"
//! BASE/done                          every round is decided
//! ```
//!
//! Phase one: the coordinator creates the round (participants: the replicas alive then) and
//! each participant votes (abort with probability `--abort-prob`, seeded per replica and
//! round). Phase two: the coordinator decides **commit iff every participant voted
//! commit**; it decides abort at the first abort vote, or when a participant that has not
//! voted leaves (its ephemeral node goes when its session expires: a killed replica), or at
//! the vote timeout. The decision is written with the round's version (compare-and-set),
//! so it is written once. Replicas apply the value iff the decision is commit.
//!
//! A coordinator killed mid-round loses its election node with its session; the next
//! candidate leads, finds the round still `voting`, and finishes it from the votes in
//! warren. The demo's `--kill-replica-in-round` and `--kill-coordinator-in-round` make a
//! participant stall at that round (after the round exists, before its vote or decision)
//! and the coordinator of the demo kills it there with SIGKILL.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;
use warren_recipes::path::{EPHEMERAL, PERSISTENT, ensure_path, join};
use warren_recipes::zookeeper_client::{self, Client};
use warren_recipes::{Connection, Election};

use crate::ServerOpts;
use crate::participant::{connect, emit, run_base, seeded, stopped};
use crate::supervisor::{Ending, Supervisor};

/// Options of `warren demo 2pc`.
#[derive(Args, Debug, Clone)]
pub struct Opts {
    /// Server and session settings.
    #[command(flatten)]
    pub server: ServerOpts,
    /// Number of replicas of the register.
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// Number of coordinator candidates (one leads; the others wait to replace it).
    #[arg(long, default_value_t = 2)]
    pub coordinators: usize,
    /// Number of rounds (one value proposed each).
    #[arg(long, default_value_t = 5)]
    pub rounds: u64,
    /// Probability that a replica votes abort in a round (seeded).
    #[arg(long, default_value_t = 0.2)]
    pub abort_prob: f64,
    /// Seed of the votes.
    #[arg(long, default_value_t = 3)]
    pub seed: u64,
    /// Kill replica-1 (SIGKILL) in this round, before it votes.
    #[arg(long, value_name = "ROUND")]
    pub kill_replica_in_round: Option<u64>,
    /// Kill the leading coordinator (SIGKILL) in this round, before it decides.
    #[arg(long, value_name = "ROUND")]
    pub kill_coordinator_in_round: Option<u64>,
    /// Time a replica takes to prepare its vote.
    #[arg(long, default_value_t = 50, value_name = "MS")]
    pub vote_delay_ms: u64,
    /// A round with missing votes aborts after this long.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    pub vote_timeout_ms: u64,
}

/// Arguments of a coordinator candidate.
#[derive(Args, Debug, Clone)]
pub struct CoordinatorArgs {
    /// ZooKeeper connect string.
    #[arg(long)]
    pub server: String,
    /// Session timeout to ask for.
    #[arg(long, value_name = "MS")]
    pub session_timeout_ms: u64,
    /// The run's base path.
    #[arg(long)]
    pub base: String,
    /// This candidate's name.
    #[arg(long)]
    pub name: String,
    /// Replicas to wait for before the first round.
    #[arg(long)]
    pub replicas: usize,
    /// Rounds to run.
    #[arg(long)]
    pub rounds: u64,
    /// Stall (to be killed) after starting this round.
    #[arg(long)]
    pub stall_in_round: Option<u64>,
    /// Abort a round whose votes are missing after this long.
    #[arg(long, value_name = "MS")]
    pub vote_timeout_ms: u64,
}

/// Arguments of a replica.
#[derive(Args, Debug, Clone)]
pub struct ReplicaArgs {
    /// ZooKeeper connect string.
    #[arg(long)]
    pub server: String,
    /// Session timeout to ask for.
    #[arg(long, value_name = "MS")]
    pub session_timeout_ms: u64,
    /// The run's base path.
    #[arg(long)]
    pub base: String,
    /// This replica's name.
    #[arg(long)]
    pub name: String,
    /// Probability of voting abort.
    #[arg(long)]
    pub abort_prob: f64,
    /// Seed of the votes.
    #[arg(long)]
    pub seed: u64,
    /// Stall (to be killed) in this round, before voting.
    #[arg(long)]
    pub stall_in_round: Option<u64>,
    /// Time to prepare a vote.
    #[arg(long, value_name = "MS")]
    pub vote_delay_ms: u64,
}

/// A vote or a decision.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Apply the value.
    Commit,
    /// Keep the old value.
    Abort,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Commit => "commit",
            Verdict::Abort => "abort",
        }
    }
}

/// Where a round stands.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Phase {
    Voting,
    Decided,
}

/// A round znode's data.
#[derive(Serialize, Deserialize, Debug, Clone)]
struct Round {
    round: u64,
    value: String,
    participants: Vec<String>,
    phase: Phase,
    decision: Option<Verdict>,
    reason: Option<String>,
    started_by: String,
    decided_by: Option<String>,
}

/// What a 2pc participant reports, one JSON line each.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "ev", rename_all = "kebab-case")]
pub enum Event {
    /// Connected (a replica: registered).
    Ready,
    /// A coordinator candidate won the election.
    Lead,
    /// A new leader found a round undecided and finishes it.
    Recover {
        /// Round.
        round: u64,
    },
    /// A coordinator started a round.
    RoundStart {
        /// Round.
        round: u64,
        /// Proposed value.
        value: String,
        /// Replicas asked to vote.
        participants: Vec<String>,
    },
    /// Stalling here, to be killed by the demo.
    Stalling {
        /// Round.
        round: u64,
    },
    /// A replica's vote (logged before it is stored).
    Vote {
        /// Round.
        round: u64,
        /// The vote.
        vote: Verdict,
    },
    /// A coordinator's decision, as stored.
    Decision {
        /// Round.
        round: u64,
        /// The decision.
        decision: Verdict,
        /// Why, in words.
        reason: String,
    },
    /// A replica applied a committed value.
    Applied {
        /// Round.
        round: u64,
        /// The new value.
        value: String,
    },
    /// A replica saw a round abort.
    Aborted {
        /// Round.
        round: u64,
    },
    /// Every round is decided; the replica's final value.
    Final {
        /// The register's value (`None`: never committed).
        value: Option<String>,
    },
    /// A coordinator saw every round decided.
    Finished,
    /// Stopped on a signal.
    Stopped,
}

fn round_path(base: &str, round: u64) -> String {
    join(&join(base, "rounds"), &format!("{round:010}"))
}

async fn read_round(c: &Client, path: &str) -> anyhow::Result<(Round, i32)> {
    let (data, stat) = c.get_data(path).await?;
    let round = serde_json::from_slice(&data).context("a round znode")?;
    Ok((round, stat.version))
}

async fn sorted_children(c: &Client, path: &str) -> anyhow::Result<Vec<String>> {
    let mut children = c.list_children(path).await?;
    children.sort();
    Ok(children)
}

/// Waits until `BASE/done` exists.
async fn wait_done(conn: &Connection, base: &str) -> anyhow::Result<()> {
    let path = join(base, "done");
    loop {
        let c = conn.client()?;
        let (stat, watcher) = c.check_and_watch_stat(&path).await?;
        if stat.is_some() {
            return Ok(());
        }
        watcher.changed().await;
    }
}

/// Plays a coordinator candidate until every round is decided or SIGTERM/SIGINT.
pub async fn coordinator(a: CoordinatorArgs, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let conn = connect(&a.server, Duration::from_millis(a.session_timeout_ms)).await?;
    let c = conn.client()?;
    ensure_path(&c, &join(&a.base, "rounds")).await?;
    ensure_path(&c, &join(&a.base, "replicas")).await?;
    emit(&Event::Ready);
    let election = Election::new(&conn, &join(&a.base, "election"), &a.name);
    let result = tokio::select! {
        r = election.run(lead(&a, &conn)) => r.map_err(anyhow::Error::from).and_then(|r| r.unwrap_or(Ok(()))),
        r = wait_done(&conn, &a.base) => r,
        _ = stopped(&stop) => {
            emit(&Event::Stopped);
            Ok(())
        }
    };
    election.cancel();
    conn.close();
    result
}

async fn lead(a: &CoordinatorArgs, conn: &Connection) -> anyhow::Result<()> {
    emit(&Event::Lead);
    let c = conn.client()?;
    let rounds_dir = join(&a.base, "rounds");
    loop {
        let rounds = sorted_children(&c, &rounds_dir).await?;
        let mut next = 1;
        if let Some(last) = rounds.last() {
            let (round, _) = read_round(&c, &join(&rounds_dir, last)).await?;
            if round.phase == Phase::Voting {
                emit(&Event::Recover { round: round.round });
                decide(a, &c, round.round).await?;
            }
            next = round.round + 1;
        } else {
            wait_replicas(&c, &a.base, a.replicas).await?;
        }
        if next > a.rounds {
            match c.create(&join(&a.base, "done"), b"", &PERSISTENT).await {
                Ok(_) | Err(zookeeper_client::Error::NodeExists) => {}
                Err(e) => return Err(e.into()),
            }
            emit(&Event::Finished);
            return Ok(());
        }
        start_round(a, &c, next).await?;
        if a.stall_in_round == Some(next) {
            emit(&Event::Stalling { round: next });
            std::future::pending::<()>().await;
        }
        decide(a, &c, next).await?;
    }
}

async fn wait_replicas(c: &Client, base: &str, n: usize) -> anyhow::Result<()> {
    let dir = join(base, "replicas");
    loop {
        let (children, watcher) = c.list_and_watch_children(&dir).await?;
        if children.len() >= n {
            return Ok(());
        }
        watcher.changed().await;
    }
}

async fn start_round(a: &CoordinatorArgs, c: &Client, n: u64) -> anyhow::Result<()> {
    let participants = sorted_children(c, &join(&a.base, "replicas")).await?;
    let round = Round {
        round: n,
        value: format!("value-{n}"),
        participants: participants.clone(),
        phase: Phase::Voting,
        decision: None,
        reason: None,
        started_by: a.name.clone(),
        decided_by: None,
    };
    let path = round_path(&a.base, n);
    let data = serde_json::to_vec(&round).expect("rounds serialize");
    let mut multi = c.new_multi_writer();
    multi.add_create(&path, &data, &PERSISTENT)?;
    multi.add_create(&join(&path, "votes"), b"", &PERSISTENT)?;
    multi
        .commit()
        .await
        .map_err(zookeeper_client::Error::from)?;
    emit(&Event::RoundStart {
        round: n,
        value: round.value,
        participants,
    });
    Ok(())
}

/// Phase two of round `n`: waits for the votes (or a reason to abort), then writes the
/// decision once, with the round's version.
async fn decide(a: &CoordinatorArgs, c: &Client, n: u64) -> anyhow::Result<()> {
    let path = round_path(&a.base, n);
    let deadline = Instant::now() + Duration::from_millis(a.vote_timeout_ms);
    loop {
        let (mut round, version) = read_round(c, &path).await?;
        if round.phase == Phase::Decided {
            return Ok(());
        }
        let (voters, votes_changed) = c.list_and_watch_children(&join(&path, "votes")).await?;
        let (members, members_changed) = c
            .list_and_watch_children(&join(&a.base, "replicas"))
            .await?;
        let mut votes = BTreeMap::new();
        for v in &voters {
            let (data, _) = c.get_data(&join(&join(&path, "votes"), v)).await?;
            votes.insert(v.clone(), data);
        }
        let verdict = judge(
            &round.participants,
            &votes,
            &members,
            Instant::now() >= deadline,
        );
        let Some((decision, reason)) = verdict else {
            tokio::select! {
                _ = votes_changed.changed() => {}
                _ = members_changed.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
            continue;
        };
        round.phase = Phase::Decided;
        round.decision = Some(decision);
        round.reason = Some(reason.clone());
        round.decided_by = Some(a.name.clone());
        let data = serde_json::to_vec(&round).expect("rounds serialize");
        match c.set_data(&path, &data, Some(version)).await {
            Ok(_) => {
                emit(&Event::Decision {
                    round: n,
                    decision,
                    reason,
                });
                return Ok(());
            }
            Err(zookeeper_client::Error::BadVersion) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The decision from what is known, or `None` to wait for more.
fn judge(
    participants: &[String],
    votes: &BTreeMap<String, Vec<u8>>,
    members: &[String],
    timed_out: bool,
) -> Option<(Verdict, String)> {
    if let Some((who, _)) = votes.iter().find(|(_, v)| v.as_slice() == b"abort") {
        return Some((Verdict::Abort, format!("{who} voted abort")));
    }
    let missing: Vec<&String> = participants
        .iter()
        .filter(|p| !votes.contains_key(*p))
        .collect();
    if missing.is_empty() {
        return Some((Verdict::Commit, "every participant voted commit".into()));
    }
    if let Some(gone) = missing.iter().find(|p| !members.contains(p)) {
        return Some((Verdict::Abort, format!("{gone} left before voting")));
    }
    timed_out.then(|| (Verdict::Abort, format!("no vote from {}", missing[0])))
}

/// Plays a replica until every round is decided or SIGTERM/SIGINT.
pub async fn replica(a: ReplicaArgs, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let conn = connect(&a.server, Duration::from_millis(a.session_timeout_ms)).await?;
    let c = conn.client()?;
    ensure_path(&c, &join(&a.base, "rounds")).await?;
    ensure_path(&c, &join(&a.base, "replicas")).await?;
    c.create(&join(&join(&a.base, "replicas"), &a.name), b"", &EPHEMERAL)
        .await?;
    emit(&Event::Ready);
    let result = tokio::select! {
        r = serve(&a, &c) => r,
        _ = stopped(&stop) => {
            emit(&Event::Stopped);
            Ok(())
        }
    };
    conn.close();
    result
}

async fn serve(a: &ReplicaArgs, c: &Client) -> anyhow::Result<()> {
    let rounds_dir = join(&a.base, "rounds");
    let done = join(&a.base, "done");
    let mut value: Option<String> = None;
    let mut last = String::new();
    loop {
        let (mut rounds, rounds_changed) = c.list_and_watch_children(&rounds_dir).await?;
        rounds.sort();
        rounds.retain(|r| *r > last);
        for r in rounds {
            let path = join(&rounds_dir, &r);
            let (round, _) = read_round(c, &path).await?;
            let participant = round.participants.contains(&a.name);
            if participant {
                vote(a, c, &path, round.round).await?;
            }
            let decided = wait_decided(c, &path).await?;
            match (decided.decision, participant) {
                (Some(Verdict::Commit), true) => {
                    value = Some(decided.value.clone());
                    emit(&Event::Applied {
                        round: decided.round,
                        value: decided.value,
                    });
                }
                // Not asked (joined later): learn the value without claiming to apply it.
                (Some(Verdict::Commit), false) => value = Some(decided.value),
                (_, true) => emit(&Event::Aborted {
                    round: decided.round,
                }),
                _ => {}
            }
            last = r;
        }
        let (finished, done_changed) = c.check_and_watch_stat(&done).await?;
        if finished.is_some() && sorted_children(c, &rounds_dir).await?.last() <= Some(&last) {
            emit(&Event::Final { value });
            return Ok(());
        }
        tokio::select! {
            _ = rounds_changed.changed() => {}
            _ = done_changed.changed() => {}
        }
    }
}

async fn vote(a: &ReplicaArgs, c: &Client, path: &str, round: u64) -> anyhow::Result<()> {
    let mine = join(&join(path, "votes"), &a.name);
    if c.check_stat(&mine).await?.is_some() {
        return Ok(());
    }
    if a.stall_in_round == Some(round) {
        emit(&Event::Stalling { round });
        std::future::pending::<()>().await;
    }
    let abort = seeded(a.seed, &a.name, round).f64() < a.abort_prob;
    let vote = if abort {
        Verdict::Abort
    } else {
        Verdict::Commit
    };
    tokio::time::sleep(Duration::from_millis(a.vote_delay_ms)).await;
    emit(&Event::Vote { round, vote });
    match c.create(&mine, vote.as_str().as_bytes(), &PERSISTENT).await {
        Ok(_) | Err(zookeeper_client::Error::NodeExists) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn wait_decided(c: &Client, path: &str) -> anyhow::Result<Round> {
    loop {
        let (data, _, watcher) = c.get_and_watch_data(path).await?;
        let round: Round = serde_json::from_slice(&data).context("a round znode")?;
        if round.phase == Phase::Decided {
            return Ok(round);
        }
        watcher.changed().await;
    }
}

/// One round as the run saw it.
#[derive(Debug, Clone, Default)]
pub struct RoundSeen {
    /// Proposed value.
    pub value: String,
    /// Replicas asked to vote.
    pub participants: Vec<String>,
    /// Who started it.
    pub started_by: String,
    /// Votes, by replica.
    pub votes: BTreeMap<String, Verdict>,
    /// Decisions written (exactly one expected), with who wrote them and why.
    pub decisions: Vec<(String, Verdict, String)>,
    /// Replicas that applied it.
    pub applied: BTreeSet<String>,
}

/// What a run of the 2pc demo saw.
#[derive(Debug)]
pub struct TwoPcSummary {
    /// Rounds, by number.
    pub rounds: BTreeMap<u64, RoundSeen>,
    /// Final register value, by replica that finished.
    pub finals: BTreeMap<String, Option<String>>,
    /// Participants the demo killed.
    pub killed: Vec<String>,
    /// Rounds wanted.
    pub rounds_wanted: u64,
    /// The options' kill rounds: (replica, coordinator).
    pub kill_rounds: (Option<u64>, Option<u64>),
    /// How the run ended.
    pub ending: Ending,
}

/// Runs the 2pc demo: replicas, coordinators, rounds, and the kills asked for.
pub async fn coordinate(o: &Opts, sup: &mut Supervisor) -> TwoPcSummary {
    let base = run_base("2pc");
    let r = scenario(o, sup, &base).await;
    sup.shutdown().await;
    let mut rounds: BTreeMap<u64, RoundSeen> = BTreeMap::new();
    let mut finals = BTreeMap::new();
    for (who, e) in sup.events::<Event>() {
        match e {
            Event::RoundStart {
                round,
                value,
                participants,
            } => {
                let r = rounds.entry(round).or_default();
                r.value = value;
                r.participants = participants;
                r.started_by = who;
            }
            Event::Vote { round, vote } => {
                rounds.entry(round).or_default().votes.insert(who, vote);
            }
            Event::Decision {
                round,
                decision,
                reason,
            } => rounds
                .entry(round)
                .or_default()
                .decisions
                .push((who, decision, reason)),
            Event::Applied { round, .. } => {
                rounds.entry(round).or_default().applied.insert(who);
            }
            Event::Final { value } => {
                finals.insert(who, value);
            }
            _ => {}
        }
    }
    TwoPcSummary {
        rounds,
        finals,
        killed: sup.killed(),
        rounds_wanted: o.rounds,
        kill_rounds: (o.kill_replica_in_round, o.kill_coordinator_in_round),
        ending: Ending::of(r, sup),
    }
}

async fn scenario(o: &Opts, sup: &mut Supervisor, base: &str) -> anyhow::Result<()> {
    let common = |name: &str| -> Vec<String> {
        [
            ("--server", o.server.server.clone()),
            (
                "--session-timeout-ms",
                o.server.session_timeout_ms.to_string(),
            ),
            ("--base", base.to_owned()),
            ("--name", name.to_owned()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_owned(), v])
        .collect()
    };
    let mut names = Vec::new();
    for i in 1..=o.replicas {
        let name = format!("replica-{i}");
        let mut args = common(&name);
        args.extend([
            "--abort-prob".into(),
            o.abort_prob.to_string(),
            "--seed".into(),
            o.seed.to_string(),
            "--vote-delay-ms".into(),
            o.vote_delay_ms.to_string(),
        ]);
        if let (1, Some(r)) = (i, o.kill_replica_in_round) {
            args.extend(["--stall-in-round".into(), r.to_string()]);
        }
        sup.spawn(&name, "twopc-replica", &args)?;
        names.push(name);
    }
    for i in 1..=o.coordinators {
        let name = format!("coordinator-{i}");
        let mut args = common(&name);
        args.extend([
            "--replicas".into(),
            o.replicas.to_string(),
            "--rounds".into(),
            o.rounds.to_string(),
            "--vote-timeout-ms".into(),
            o.vote_timeout_ms.to_string(),
        ]);
        if let Some(r) = o.kill_coordinator_in_round {
            args.extend(["--stall-in-round".into(), r.to_string()]);
        }
        sup.spawn(&name, "twopc-coordinator", &args)?;
        names.push(name);
    }
    let kills = usize::from(o.kill_replica_in_round.is_some())
        + usize::from(o.kill_coordinator_in_round.is_some() && o.coordinators > 1);
    let bound = o.server.bound();
    for _ in 0..kills {
        let staller = sup
            .wait_for("a participant to reach its kill round", bound, |l| {
                matches!(
                    serde_json::from_value::<Event>(l.value.clone()),
                    Ok(Event::Stalling { .. })
                )
                .then(|| l.who.clone())
            })
            .await?;
        sup.kill(&staller);
    }
    let killed = sup.killed();
    names.retain(|n| !killed.contains(n));
    sup.wait_exited(&names, bound).await?;
    Ok(())
}

impl TwoPcSummary {
    /// The last committed value.
    pub fn last_committed(&self) -> Option<String> {
        self.rounds
            .values()
            .rev()
            .find(|r| matches!(r.decisions.first(), Some((_, Verdict::Commit, _))))
            .map(|r| r.value.clone())
    }

    /// The decision of `round`, if one was made.
    pub fn decision(&self, round: u64) -> Option<Verdict> {
        self.rounds.get(&round)?.decisions.first().map(|d| d.1)
    }

    fn round_violations(&self, n: u64, r: &RoundSeen) -> Vec<String> {
        let mut out = Vec::new();
        let Some((_, decision, _)) = r.decisions.first() else {
            if self.ending.finished() {
                out.push(format!("round {n} was never decided"));
            }
            return out;
        };
        if r.decisions.len() > 1 {
            out.push(format!("round {n} was decided {} times", r.decisions.len()));
        }
        let all_commit = r
            .participants
            .iter()
            .all(|p| r.votes.get(p) == Some(&Verdict::Commit));
        if (*decision == Verdict::Commit) != all_commit {
            out.push(format!(
                "round {n} decided {} but the votes were {:?} of {:?}",
                decision.as_str(),
                r.votes,
                r.participants
            ));
        }
        for p in &r.participants {
            let applied = r.applied.contains(p);
            let alive = !self.killed.contains(p);
            if *decision == Verdict::Commit && alive && !applied && self.ending.finished() {
                out.push(format!("{p} did not apply committed round {n}"));
            }
            if *decision == Verdict::Abort && applied {
                out.push(format!("{p} applied aborted round {n}"));
            }
        }
        out
    }
}

impl crate::Summary for TwoPcSummary {
    fn violations(&self) -> Vec<String> {
        let mut out = self.ending.violations();
        for (n, r) in &self.rounds {
            out.extend(self.round_violations(*n, r));
        }
        if !self.ending.finished() {
            return out;
        }
        if self.rounds.len() as u64 != self.rounds_wanted {
            out.push(format!(
                "{} of {} rounds ran",
                self.rounds.len(),
                self.rounds_wanted
            ));
        }
        let want = self.last_committed();
        for (who, value) in &self.finals {
            if *value != want {
                out.push(format!(
                    "{who} ends with {value:?}, the register is {want:?}"
                ));
            }
        }
        if let (Some(k), _) = self.kill_rounds
            && self.decision(k) != Some(Verdict::Abort)
        {
            out.push(format!("round {k} lost a replica and did not abort"));
        }
        if let (_, Some(k)) = self.kill_rounds
            && let Some(r) = self.rounds.get(&k)
        {
            let decided_by = r.decisions.first().map(|d| d.0.as_str());
            if !self.killed.contains(&r.started_by) || decided_by == Some(r.started_by.as_str()) {
                out.push(format!(
                    "round {k}: started by {}, decided by {decided_by:?}: no takeover",
                    r.started_by
                ));
            }
        }
        out
    }

    fn interrupted(&self) -> bool {
        self.ending.interrupted
    }
}

impl fmt::Display for TwoPcSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== 2pc: a register replicated by two-phase commit")?;
        writeln!(
            f,
            "{:<6} {:<9} {:<15} {:<34} {:<8} {:<15} applied at (why)",
            "round", "value", "started by", "votes", "decision", "decided by"
        )?;
        for (n, r) in &self.rounds {
            let votes: Vec<String> = r
                .participants
                .iter()
                .map(|p| {
                    let v = r.votes.get(p).map_or("-", |v| v.as_str());
                    format!("{}:{v}", p.trim_start_matches("replica-"))
                })
                .collect();
            let (decision, by, reason) = r
                .decisions
                .first()
                .map(|(by, d, why)| (d.as_str(), by.as_str(), why.as_str()))
                .unwrap_or(("-", "-", ""));
            let applied: Vec<&str> = r
                .applied
                .iter()
                .map(|p| p.trim_start_matches("replica-"))
                .collect();
            writeln!(
                f,
                "{n:<6} {:<9} {:<15} {:<34} {decision:<8} {by:<15} {} ({reason})",
                r.value,
                r.started_by,
                votes.join(" "),
                applied.join(",")
            )?;
        }
        if !self.killed.is_empty() {
            writeln!(f, "killed (SIGKILL): {}", self.killed.join(", "))?;
        }
        for (who, value) in &self.finals {
            writeln!(
                f,
                "{who} ends with {}",
                value.as_deref().unwrap_or("(none)")
            )?;
        }
        write!(
            f,
            "register: {}",
            self.last_committed()
                .as_deref()
                .unwrap_or("(never committed)")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn votes(v: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn commit_only_when_every_participant_voted_commit() {
        let p = vec!["a".to_owned(), "b".to_owned()];
        let members = p.clone();
        let all = votes(&[("a", "commit"), ("b", "commit")]);
        assert_eq!(judge(&p, &all, &members, false).unwrap().0, Verdict::Commit);
        let one_abort = votes(&[("a", "abort")]);
        assert_eq!(
            judge(&p, &one_abort, &members, false).unwrap().0,
            Verdict::Abort
        );
        let waiting = votes(&[("a", "commit")]);
        assert_eq!(judge(&p, &waiting, &members, false), None);
        let gone = judge(&p, &waiting, &["a".to_owned()], false).unwrap();
        assert_eq!(gone, (Verdict::Abort, "b left before voting".into()));
        assert_eq!(
            judge(&p, &waiting, &members, true).unwrap().0,
            Verdict::Abort
        );
    }
}
