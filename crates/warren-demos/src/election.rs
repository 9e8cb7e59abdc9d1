//! `warren demo election`: N workers elect a leader and exchange Lamport-clocked messages.
//!
//! Each worker is a process running an [`Election`] at `BASE/election`. The leader sends a
//! `task` to every other contender each round; a worker acknowledges each task with an
//! `ack` to the sender. Messages travel through inbox znodes, `BASE/inbox/<worker>/m-<seq>`
//! (persistent sequential; the reader deletes each once read). Every message carries the
//! sender's Lamport clock: a send ticks the clock, a receive sets it to
//! `max(local, message) + 1`, and becoming leader is a local event that ticks it.
//!
//! The coordinator kills the first leader (SIGKILL) after a few rounds; its session expires
//! after the session timeout, its election node goes with it, and the next contender leads.
//! At the end the merged log is printed in Lamport order and checked: every receive has a
//! send with a smaller clock, and each process's clocks grow.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use warren_recipes::path::{PERSISTENT_SEQUENTIAL, ensure_path, join};
use warren_recipes::{Connection, Election};

use crate::ServerOpts;
use crate::participant::{connect, emit, granted_timeout_ms, run_base, stopped};
use crate::supervisor::{Ending, Supervisor};

/// Options of `warren demo election`.
#[derive(Args, Debug, Clone)]
pub struct Opts {
    /// Server and session settings.
    #[command(flatten)]
    pub server: ServerOpts,
    /// Number of worker processes.
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    /// Rounds a leader runs before it is killed (and the last one before the end).
    #[arg(long, default_value_t = 3)]
    pub rounds: u64,
    /// Pause between a leader's rounds.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub interval_ms: u64,
    /// How many leaders to kill, one after another (at most workers - 1).
    #[arg(long, default_value_t = 1)]
    pub kills: usize,
}

/// Arguments of one election worker.
#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// ZooKeeper connect string.
    #[arg(long)]
    pub server: String,
    /// Session timeout to ask for.
    #[arg(long, value_name = "MS")]
    pub session_timeout_ms: u64,
    /// The run's base path.
    #[arg(long)]
    pub base: String,
    /// This worker's name.
    #[arg(long)]
    pub name: String,
    /// Pause between the rounds it leads.
    #[arg(long, value_name = "MS")]
    pub interval_ms: u64,
}

/// What a worker reports, one JSON line each.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "ev", rename_all = "kebab-case")]
pub enum Event {
    /// Connected, with the session timeout the server granted.
    Ready {
        /// Granted session timeout.
        session_timeout_ms: u64,
    },
    /// Won the election (a local Lamport event).
    Lead {
        /// Lamport clock.
        clock: u64,
    },
    /// About to send a message (logged before the message exists).
    Send {
        /// Message id, `<sender>#<n>`.
        id: String,
        /// Recipient.
        to: String,
        /// `task` or `ack`.
        kind: String,
        /// Lamport clock carried by the message.
        clock: u64,
    },
    /// Received a message.
    Recv {
        /// Message id.
        id: String,
        /// Sender.
        from: String,
        /// `task` or `ack`.
        kind: String,
        /// The clock the message carried.
        send_clock: u64,
        /// Lamport clock after the receive.
        clock: u64,
    },
    /// The leader finished round `n` (no clock: not a message event).
    Round {
        /// Round number of this leader.
        n: u64,
    },
    /// Stopped on a signal.
    Stopped {
        /// Final Lamport clock.
        clock: u64,
    },
}

impl Event {
    /// The Lamport clock of a clocked event.
    pub fn clock(&self) -> Option<u64> {
        match self {
            Event::Lead { clock }
            | Event::Send { clock, .. }
            | Event::Recv { clock, .. }
            | Event::Stopped { clock } => Some(*clock),
            Event::Ready { .. } | Event::Round { .. } => None,
        }
    }
}

/// A message in an inbox znode.
#[derive(Serialize, Deserialize, Debug)]
struct Message {
    id: String,
    from: String,
    kind: String,
    n: u64,
    clock: u64,
}

/// One worker process.
struct Worker {
    conn: Connection,
    base: String,
    name: String,
    /// The Lamport clock; held while its event is written, so stdout order is clock order.
    clock: Mutex<u64>,
    sent: AtomicU64,
}

/// Plays one election worker until SIGTERM/SIGINT.
pub async fn worker(a: WorkerArgs, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let conn = connect(&a.server, Duration::from_millis(a.session_timeout_ms)).await?;
    emit(&Event::Ready {
        session_timeout_ms: granted_timeout_ms(&conn),
    });
    let me = Worker {
        conn: conn.clone(),
        base: a.base.clone(),
        name: a.name.clone(),
        clock: Mutex::new(0),
        sent: AtomicU64::new(0),
    };
    let inbox = me.inbox(&me.name);
    conn.retry(|c| {
        let inbox = inbox.clone();
        async move { ensure_path(&c, &inbox).await.map(|_| ()) }
    })
    .await?;
    let election = Election::new(&conn, &join(&a.base, "election"), &a.name);
    let interval = Duration::from_millis(a.interval_ms);
    let result = tokio::select! {
        r = me.serve_inbox() => r,
        r = election.run(me.lead(&election, interval)) => match r {
            Ok(Some(r)) => r,
            Ok(None) => Ok(()),
            Err(e) => Err(e.into()),
        },
        _ = stopped(&stop) => Ok(()),
    };
    election.cancel();
    conn.close();
    {
        // Stopping is a local event of the process: it ticks the clock too.
        let mut clock = me.clock();
        *clock += 1;
        emit(&Event::Stopped { clock: *clock });
    }
    result
}

impl Worker {
    fn inbox(&self, worker: &str) -> String {
        join(&join(&self.base, "inbox"), worker)
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.clock.lock().expect("clock lock is never poisoned")
    }

    /// The leader's work: a task to every other contender each round, forever.
    async fn lead(&self, election: &Election, interval: Duration) -> anyhow::Result<()> {
        {
            let mut clock = self.clock();
            *clock += 1;
            emit(&Event::Lead { clock: *clock });
        }
        for n in 1.. {
            let contenders = election.contenders().await?;
            for to in contenders.iter().filter(|c| **c != self.name) {
                self.send(to, "task", n).await?;
            }
            emit(&Event::Round { n });
            tokio::time::sleep(interval).await;
        }
        Ok(())
    }

    async fn send(&self, to: &str, kind: &str, n: u64) -> anyhow::Result<()> {
        let id = format!(
            "{}#{}",
            self.name,
            self.sent.fetch_add(1, Ordering::SeqCst) + 1
        );
        let clock = {
            let mut clock = self.clock();
            *clock += 1;
            emit(&Event::Send {
                id: id.clone(),
                to: to.to_owned(),
                kind: kind.to_owned(),
                clock: *clock,
            });
            *clock
        };
        let message = Message {
            id,
            from: self.name.clone(),
            kind: kind.to_owned(),
            n,
            clock,
        };
        let data = serde_json::to_vec(&message).expect("messages serialize");
        let path = join(&self.inbox(to), "m-");
        self.conn
            .retry(|c| {
                let (path, data) = (path.clone(), data.clone());
                async move {
                    c.create(&path, &data, &PERSISTENT_SEQUENTIAL).await?;
                    Ok(())
                }
            })
            .await
            .with_context(|| format!("sending to {to}"))
    }

    fn receive(&self, m: &Message) {
        let mut clock = self.clock();
        *clock = (*clock).max(m.clock) + 1;
        emit(&Event::Recv {
            id: m.id.clone(),
            from: m.from.clone(),
            kind: m.kind.clone(),
            send_clock: m.clock,
            clock: *clock,
        });
    }

    /// Reads this worker's inbox in sequence order, forever; answers each task with an ack.
    async fn serve_inbox(&self) -> anyhow::Result<()> {
        let inbox = self.inbox(&self.name);
        loop {
            let c = self.conn.client()?;
            let (mut children, watcher) = match c.list_and_watch_children(&inbox).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::debug!(%e, "inbox: looking again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            children.sort();
            for child in children {
                let path = join(&inbox, &child);
                let Ok((data, _)) = c.get_data(&path).await else {
                    continue;
                };
                let message: Message =
                    serde_json::from_slice(&data).context("a message in an inbox")?;
                self.receive(&message);
                let _ = c.delete(&path, None).await;
                if message.kind == "task" {
                    self.send(&message.from, "ack", message.n).await?;
                }
            }
            watcher.changed().await;
        }
    }
}

/// A leader killed and the one that took over.
#[derive(Debug, Clone)]
pub struct Takeover {
    /// The killed leader.
    pub killed: String,
    /// The next leader.
    pub new_leader: String,
    /// From the kill to the new leader's `lead` event, as the coordinator saw them.
    pub after: Duration,
}

/// What a run of the election demo saw.
#[derive(Debug)]
pub struct ElectionSummary {
    /// Number of workers.
    pub workers: usize,
    /// The session timeout the server granted (0 if no worker said).
    pub session_timeout_ms: u64,
    /// Leaders in the order they led.
    pub leaders: Vec<String>,
    /// Each kill of a leader and who took over.
    pub takeovers: Vec<Takeover>,
    /// Every event, with its worker, in the order received.
    pub events: Vec<(String, Event)>,
    /// Leaders the options asked to kill.
    pub kills_wanted: usize,
    /// How the run ended.
    pub ending: Ending,
}

/// Runs the election demo: spawn, let a leader lead, kill it, watch the next take over.
pub async fn coordinate(o: &Opts, sup: &mut Supervisor) -> ElectionSummary {
    let base = run_base("election");
    let mut leaders = Vec::new();
    let mut takeovers = Vec::new();
    let r = scenario(o, sup, &base, &mut leaders, &mut takeovers).await;
    sup.shutdown().await;
    let events = sup.events::<Event>();
    let session_timeout_ms = events
        .iter()
        .find_map(|(_, e)| match e {
            Event::Ready { session_timeout_ms } => Some(*session_timeout_ms),
            _ => None,
        })
        .unwrap_or(0);
    ElectionSummary {
        workers: o.workers,
        session_timeout_ms,
        leaders,
        takeovers,
        events,
        kills_wanted: o.kills.min(o.workers.saturating_sub(1)),
        ending: Ending::of(r, sup),
    }
}

async fn scenario(
    o: &Opts,
    sup: &mut Supervisor,
    base: &str,
    leaders: &mut Vec<String>,
    takeovers: &mut Vec<Takeover>,
) -> anyhow::Result<()> {
    for i in 1..=o.workers {
        let name = format!("worker-{i}");
        let args = vec![
            "--server".into(),
            o.server.server.clone(),
            "--session-timeout-ms".into(),
            o.server.session_timeout_ms.to_string(),
            "--base".into(),
            base.to_owned(),
            "--name".into(),
            name.clone(),
            "--interval-ms".into(),
            o.interval_ms.to_string(),
        ];
        sup.spawn(&name, "election-worker", &args)?;
    }
    let bound = o.server.bound();
    let mut leader = sup.wait_for("a leader", bound, |l| lead_of(l, &[])).await?;
    leaders.push(leader.clone());
    for _ in 0..o.kills.min(o.workers.saturating_sub(1)) {
        wait_rounds(sup, &leader, o.rounds, bound).await?;
        sup.kill(&leader);
        let killed_at = sup.elapsed();
        let gone = sup.killed();
        let (new_leader, at) = sup
            .wait_for("the next leader", bound, |l| {
                lead_of(l, &gone).map(|who| (who, l.at))
            })
            .await?;
        takeovers.push(Takeover {
            killed: leader.clone(),
            new_leader: new_leader.clone(),
            after: at.saturating_sub(killed_at),
        });
        leaders.push(new_leader.clone());
        leader = new_leader;
    }
    wait_rounds(sup, &leader, o.rounds, bound).await?;
    Ok(())
}

fn lead_of(l: &crate::supervisor::Line, not: &[String]) -> Option<String> {
    let lead = matches!(
        serde_json::from_value::<Event>(l.value.clone()),
        Ok(Event::Lead { .. })
    );
    (lead && !not.contains(&l.who)).then(|| l.who.clone())
}

async fn wait_rounds(
    sup: &mut Supervisor,
    leader: &str,
    rounds: u64,
    bound: Duration,
) -> anyhow::Result<()> {
    sup.wait_for(&format!("{rounds} rounds of {leader}"), bound, |l| {
        let done = l.who == leader
            && matches!(serde_json::from_value::<Event>(l.value.clone()),
                        Ok(Event::Round { n }) if n >= rounds);
        done.then_some(())
    })
    .await?;
    Ok(())
}

impl ElectionSummary {
    /// Clocked events in Lamport order (ties by worker): the merged log.
    pub fn merged(&self) -> Vec<(u64, &str, &Event)> {
        let mut merged: Vec<(u64, &str, &Event)> = self
            .events
            .iter()
            .filter_map(|(who, e)| Some((e.clock()?, who.as_str(), e)))
            .collect();
        merged.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        merged
    }

    /// Causality violations: a receive without its send, or not after it; a clock that
    /// does not grow within a process.
    pub fn causality_violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        let sends: HashMap<&str, u64> = self
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Send { id, clock, .. } => Some((id.as_str(), *clock)),
                _ => None,
            })
            .collect();
        for (who, e) in &self.events {
            let Event::Recv {
                id,
                send_clock,
                clock,
                ..
            } = e
            else {
                continue;
            };
            match sends.get(id.as_str()) {
                None => out.push(format!("{who} received {id}, which nobody sent")),
                Some(s) if s != send_clock || clock <= s => out.push(format!(
                    "{who} received {id} at clock {clock}, sent at clock {s} \
                     (the message said {send_clock})"
                )),
                Some(_) => {}
            }
        }
        let mut last: HashMap<&str, u64> = HashMap::new();
        for (who, e) in &self.events {
            let Some(clock) = e.clock() else { continue };
            if let Some(prev) = last.insert(who.as_str(), clock)
                && clock <= prev
            {
                out.push(format!("{who}'s clock went from {prev} to {clock}"));
            }
        }
        out
    }

    fn count(&self, kind: &str) -> usize {
        let is = |e: &Event| {
            matches!(
                (kind, e),
                ("send", Event::Send { .. }) | ("recv", Event::Recv { .. })
            )
        };
        self.events.iter().filter(|(_, e)| is(e)).count()
    }
}

impl crate::Summary for ElectionSummary {
    fn violations(&self) -> Vec<String> {
        let mut out = self.ending.violations();
        out.extend(self.causality_violations());
        for t in &self.takeovers {
            if t.new_leader == t.killed {
                out.push(format!("{} was killed and still leads", t.killed));
            }
        }
        if self.ending.finished() && self.takeovers.len() < self.kills_wanted {
            out.push(format!(
                "{} of {} killed leaders were replaced",
                self.takeovers.len(),
                self.kills_wanted
            ));
        }
        if self.count("recv") == 0 && self.ending.finished() {
            out.push("no message was received".into());
        }
        out
    }

    fn interrupted(&self) -> bool {
        self.ending.interrupted
    }
}

impl fmt::Display for ElectionSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== merged log, in Lamport order (clock, worker, event)")?;
        for (clock, who, e) in self.merged() {
            let what = match e {
                Event::Lead { .. } => "becomes LEADER".to_owned(),
                Event::Send { id, to, kind, .. } => format!("send {kind} {id} -> {to}"),
                Event::Recv {
                    id,
                    from,
                    kind,
                    send_clock,
                    ..
                } => format!("recv {kind} {id} <- {from} (sent at {send_clock})"),
                Event::Stopped { .. } => "stops".to_owned(),
                _ => continue,
            };
            writeln!(f, "{clock:>5}  {who:<10} {what}")?;
        }
        writeln!(f, "== election: {} workers", self.workers)?;
        writeln!(f, "leaders, in order: {}", self.leaders.join(" -> "))?;
        for t in &self.takeovers {
            writeln!(
                f,
                "killed {} (SIGKILL); {} took over {:.1} s later (granted session timeout \
                 {} ms; the server expires sessions on its tick)",
                t.killed,
                t.new_leader,
                t.after.as_secs_f64(),
                self.session_timeout_ms
            )?;
        }
        let mut per: BTreeMap<&str, (usize, usize, u64)> = BTreeMap::new();
        for (who, e) in &self.events {
            let p = per.entry(who.as_str()).or_default();
            match e {
                Event::Send { .. } => p.0 += 1,
                Event::Recv { .. } => p.1 += 1,
                _ => {}
            }
            if let Some(c) = e.clock() {
                p.2 = p.2.max(c);
            }
        }
        writeln!(
            f,
            "{:<10} {:>6} {:>6} {:>11}",
            "worker", "sent", "recv", "last clock"
        )?;
        for (who, (s, r, c)) in per {
            writeln!(f, "{who:<10} {s:>6} {r:>6} {c:>11}")?;
        }
        write!(
            f,
            "messages: {} sent, {} received; causality checked on every receive",
            self.count("send"),
            self.count("recv")
        )
    }
}
